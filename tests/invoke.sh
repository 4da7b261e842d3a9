#!/usr/bin/env bash
# `make invoke` against `cargo lambda watch`, as a developer runs them: the functions are
# built and served by cargo-lambda's local Lambda emulator, DynamoDB Local holds the table,
# and the fixtures of tests/events get the replies the README documents.
# Runs inside tests/with-services.sh (needs AWS_ENDPOINT_URL_DYNAMODB).
set -euo pipefail
cd "$(dirname "$0")/.."

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export CONNECTIONS_TABLE="invoke-$$-$RANDOM"
export JWT_SECRET=devhive-realtime-development-secret-do-not-deploy MEMBERSHIP=none RUST_LOG=warn
# The relay drains a database of its own, with one change waiting in its outbox.
relay_db="invoke_$$"
"$PG_BIN/psql" -q "$DATABASE_URL" -c "CREATE DATABASE $relay_db"
relay_url="${DATABASE_URL%/*}/$relay_db"
DATABASE_URL="$relay_url" target/debug/devhive-realtime migrate >/dev/null
"$PG_BIN/psql" -q "$relay_url" -c "INSERT INTO realtime_outbox (payload) VALUES ('{\"resource\":\"task\",\"id\":\"t-1\",\"action\":\"UPDATE\",\"project_id\":\"aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa\"}')"
unset DATABASE_URL
target/debug/devhive-realtime table >/dev/null

log=$(mktemp)
PATH="$PWD/.venv/bin:$PATH" cargo lambda watch --invoke-port "$port" \
  --env-vars "CONNECTIONS_TABLE=$CONNECTIONS_TABLE,JWT_SECRET=$JWT_SECRET,MEMBERSHIP=none,RUST_LOG=warn,AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB,AWS_ACCESS_KEY_ID=test,AWS_SECRET_ACCESS_KEY=test,AWS_REGION=us-east-1,DATABASE_URL=$relay_url,BROADCASTER_FUNCTION_NAME=broadcaster,AWS_ENDPOINT_URL_LAMBDA=http://127.0.0.1:$port,WEBSOCKET_ENDPOINT=http://127.0.0.1:9/dev" \
  >"$log" 2>&1 &
watch_pid=$!
trap 'kill $watch_pid 2>/dev/null; wait $watch_pid 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 600); do
  (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
  kill -0 $watch_pid 2>/dev/null || { cat "$log"; echo "cargo lambda watch exited" >&2; exit 1; }
  sleep 0.1
done

passed=0
failed=0
check() { # name, function, fixture, expected text
  local out
  out=$(make -s invoke FN="$2" EVENT="$3" INVOKE_PORT="$port" 2>&1) || true
  if grep -qF -- "$4" <<<"$out"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "invoke $1: expected $4, got: $out" >&2
  fi
}
check connect connect tests/events/connect.json '"statusCode":200'
check subscribe subscribe tests/events/subscribe.json '{\"type\":\"subscribed\",\"message\":\"subscribed\",\"project_id\":\"aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa\"}'
check ping subscribe tests/events/ping.json '{\"type\":\"pong\"}'
check bad-token connect tests/events/connect-bad-token.json '"statusCode":401'
check disconnect disconnect tests/events/disconnect.json '"statusCode":200'
# The relay invokes the broadcaster through cargo-lambda's own Invoke API, then drains until
# its deadline less 10 s.
check relay relay tests/events/relay-schedule.json '"delivered":1'
echo "invoke: $passed passed, $failed failed"
[ "$failed" = 0 ]
