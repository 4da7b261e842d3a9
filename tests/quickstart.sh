#!/usr/bin/env bash
# The newcomer's path, as the README writes it: `make dev` in the background (its own
# Postgres, on a free port), then the block between the <!-- quickstart --> markers of
# README.md, run by bash; the subscribed client must print the message's cache_invalidate.
# Three times: with the memory store, with `--store dynamodb` (make dev starts DynamoDB Local),
# and with `--tls` (the client connects over wss:// trusting the CA the server wrote at start).
# Also: a second `make dev` on a taken address fails at once, before starting anything, and
# `make invoke` with a missing fixture says so. One summary line for make test.
set -euo pipefail
cd "$(dirname "$0")/.."
passed=0
failed=0
log=$(mktemp)
dev=""
stop() { if [ -n "$dev" ]; then kill -TERM -- -"$dev" 2>/dev/null || true; wait "$dev" 2>/dev/null || true; dev=""; fi; }
trap 'stop; rm -f "$log"' EXIT
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "quickstart: $1" >&2; tail -20 "$log" >&2; }
block=$(awk '/<!-- quickstart -->/{on=1; next} /<!-- \/quickstart -->/{on=0} on && !/^```/' README.md)
[ -n "$block" ] || { echo "quickstart: no quickstart block in README.md" >&2; echo "quickstart: 0 passed, 1 failed"; exit 1; }

newcomer() { # DEV_ARGS
  local port out
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  rm -f target/dev.env
  DEVHIVE_ADDR=127.0.0.1:$port setsid make -s dev DEV_ARGS="$1" >"$log" 2>&1 &
  dev=$!
  for _ in $(seq 1 1200); do
    [ -f target/dev.env ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$dev" 2>/dev/null || break
    sleep 0.1
  done
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    bad "make dev $1 did not listen"; stop; return
  fi
  if [[ "$1" == *--tls* ]] && ! grep -q '^DEV_WS=wss://' target/dev.env; then
    bad "make dev $1: target/dev.env does not give a wss:// URL: $(cat target/dev.env)"
  elif out=$(timeout 60 bash -euo pipefail -c "$block" 2>&1) &&
    grep -q '"type":"cache_invalidate".*"resource":"message","action":"INSERT"' <<<"$out"; then
    ok
  else
    bad "make dev $1: the README block did not deliver the message: $out"
  fi
  # The address is taken now: another make dev must refuse before starting any service.
  local second
  if second=$(DEVHIVE_ADDR=127.0.0.1:$port timeout 30 make -s dev 2>&1); then
    bad "a second make dev on a taken address started"
  elif grep -q "cannot listen on 127.0.0.1:$port: Address already in use" <<<"$second" &&
    ! grep -q "services:" <<<"$second"; then
    ok
  else
    bad "a second make dev on a taken address: $second"
  fi
  stop
}

newcomer ""
newcomer "--store dynamodb"
newcomer "--tls"
if missing=$(make -s invoke FN=connect EVENT=tests/events/missing.json 2>&1); then
  bad "make invoke with a missing fixture succeeded"
elif grep -q "make invoke: no fixture tests/events/missing.json" <<<"$missing" && ! grep -q Traceback <<<"$missing"; then
  ok
else
  bad "make invoke with a missing fixture: $missing"
fi
echo "quickstart: $passed passed, $failed failed"
[ "$failed" = 0 ]
