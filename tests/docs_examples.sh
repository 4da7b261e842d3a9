#!/usr/bin/env bash
# The docs' second paths, run as written: the Python (boto3) publishing example of
# docs/protocol.md against a dev server of its own (its address put in for 127.0.0.1:8080).
# Needs target/debug/devhive-realtime (make test builds it) and .venv (boto3, with the SAM CLI).
# One summary line for make test.
set -euo pipefail
cd "$(dirname "$0")/.."
passed=0
failed=0
log=$(mktemp)
dev=""
stop() { if [ -n "$dev" ]; then kill -TERM "$dev" 2>/dev/null || true; wait "$dev" 2>/dev/null || true; dev=""; fi; }
trap 'stop; rm -f "$log"' EXIT
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "docs-examples: $1" >&2; }

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
env -u DATABASE_URL target/debug/devhive-realtime dev --addr "127.0.0.1:$port" >"$log" 2>&1 &
dev=$!
for _ in $(seq 1 300); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 "$dev" 2>/dev/null || break
  sleep 0.1
done

# The ```sh block of docs/protocol.md that uses boto3.
block=$(awk '/^```sh$/{on=1; b=""; next} /^```$/{if (on && b ~ /boto3/) print b; on=0; next} on{b = b $0 "\n"}' docs/protocol.md)
if [ -z "$block" ]; then
  bad "no boto3 example in docs/protocol.md"
elif out=$(timeout 60 env -u AWS_REGION -u AWS_DEFAULT_REGION -u AWS_PROFILE bash -euo pipefail -c "${block//127.0.0.1:8080/127.0.0.1:$port}" 2>&1) &&
  grep -q '^200 {"delivered":0,' <<<"$out"; then
  ok
else
  bad "the boto3 example of docs/protocol.md: $out"
  tail -5 "$log" >&2
fi
stop
echo "docs-examples: $passed passed, $failed failed"
[ "$failed" = 0 ]
