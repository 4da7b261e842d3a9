#!/usr/bin/env bash
# The README's quick start, as written: `make dev` in the background (its own Postgres, on a
# free port), then the block between <!-- quickstart --> markers of README.md, run by bash; the
# subscribed client must print the message's cache_invalidate. One summary line for make test.
set -euo pipefail
cd "$(dirname "$0")/.."
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
log=$(mktemp)
DEVHIVE_ADDR=127.0.0.1:$port setsid make -s dev >"$log" 2>&1 &
dev=$!
trap 'kill -TERM -- -$dev 2>/dev/null || true; wait $dev 2>/dev/null || true; rm -f "$log"' EXIT
fail() { echo "quickstart: $1" >&2; tail -20 "$log" >&2; echo "quickstart: 0 passed, 1 failed"; exit 1; }
for _ in $(seq 1 1200); do
  [ -f target/dev.env ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 $dev 2>/dev/null || fail "make dev exited"
  sleep 0.1
done
(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || fail "make dev did not listen within 120 s"
block=$(awk '/<!-- quickstart -->/{on=1; next} /<!-- \/quickstart -->/{on=0} on && !/^```/' README.md)
[ -n "$block" ] || fail "no quickstart block in README.md"
out=$(timeout 60 bash -euo pipefail -c "$block" 2>&1) || fail "the block failed: $out"
if grep -q '"type":"cache_invalidate".*"resource":"message","action":"INSERT"' <<<"$out"; then
  echo "quickstart: 1 passed, 0 failed"
else
  fail "no message event in: $out"
fi
