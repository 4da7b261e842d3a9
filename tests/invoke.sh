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

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for_port() { # port, pid, log
  for _ in $(seq 1 600); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || { cat "$3"; echo "process $2 exited" >&2; exit 1; }
    sleep 0.1
  done
  echo "nothing listens on port $1" >&2; exit 1
}

# The broadcaster under cargo lambda watch posts through a dev server's Management API (over the
# same table) to a real WebSocket client.
dev_port=$(free_port)
dev_log=$(mktemp)
target/debug/devhive-realtime dev --addr "127.0.0.1:$dev_port" --store dynamodb >"$dev_log" 2>&1 &
dev_pid=$!

log=$(mktemp)
PATH="$PWD/.venv/bin:$PATH" cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$port" \
  --env-vars "CONNECTIONS_TABLE=$CONNECTIONS_TABLE,JWT_SECRET=$JWT_SECRET,MEMBERSHIP=none,RUST_LOG=warn,AWS_ENDPOINT_URL_DYNAMODB=$AWS_ENDPOINT_URL_DYNAMODB,AWS_ACCESS_KEY_ID=test,AWS_SECRET_ACCESS_KEY=test,AWS_REGION=us-east-1,DATABASE_URL=$relay_url,BROADCASTER_FUNCTION_NAME=broadcaster,AWS_ENDPOINT_URL_LAMBDA=http://127.0.0.1:$port,WEBSOCKET_ENDPOINT=http://127.0.0.1:$dev_port/dev" \
  >"$log" 2>&1 &
watch_pid=$!
trap 'kill $watch_pid $dev_pid 2>/dev/null; wait $watch_pid $dev_pid 2>/dev/null; rm -f "$log" "$dev_log"' EXIT
wait_for_port "$dev_port" "$dev_pid" "$dev_log"
wait_for_port "$port" "$watch_pid" "$log"

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
    tail -5 "$log" >&2
  fi
}
check connect connect tests/events/connect.json '"statusCode":200'
# Presence is on (WEBSOCKET_ENDPOINT is set): the reply lists who is online.
check subscribe subscribe tests/events/subscribe.json '{\"type\":\"subscribed\",\"message\":\"subscribed\",\"project_id\":\"aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa\",\"online\":[\"'
check ping subscribe tests/events/ping.json '{\"type\":\"pong\"}'
check bad-token connect tests/events/connect-bad-token.json '"statusCode":401'
check disconnect disconnect tests/events/disconnect.json '"statusCode":200'
project=aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa
client_out=$(mktemp)
python3 tests/ws-listen.py "ws://127.0.0.1:$dev_port/?token=$(target/debug/devhive-realtime token --user "$(python3 -c 'import uuid; print(uuid.uuid4())')")&project_id=$project" 120 >"$client_out" &
client_pid=$!
for _ in $(seq 1 300); do grep -q ready "$client_out" && break; sleep 0.1; done
check broadcaster broadcaster tests/events/broadcaster.json '"delivered":1,"expired":0,"failed":0,"gone":0,"recipients":1'
if wait $client_pid && grep -q '"type":"task_updated"' "$client_out"; then
  passed=$((passed + 1))
else
  failed=$((failed + 1))
  echo "invoke broadcaster: the client did not receive the event: $(cat "$client_out")" >&2
fi
rm -f "$client_out"
# The relay invokes the broadcaster through cargo-lambda's own Invoke API, then drains until
# its deadline less 10 s.
check relay relay tests/events/relay-schedule.json '"delivered":1'
# The sweeper runs on the same schedule event; no connection is due for its hint here.
check sweeper sweeper tests/events/relay-schedule.json '"recipients":0'
# Panics unwind in the release profile: under `cargo lambda watch --release` the fixture
# tests/panicking fails the invocation that panics with the panic's message, and the same
# process answers the next one as its second (with `abort` the process dies with the first
# invocation: neither answer comes).
release_port=$(free_port)
release_log=$(mktemp)
PATH="$PWD/.venv/bin:$PATH" cargo lambda watch --release --invoke-address 127.0.0.1 --invoke-port "$release_port" >"$release_log" 2>&1 &
release_pid=$!
trap 'kill $watch_pid $dev_pid $release_pid 2>/dev/null; wait $watch_pid $dev_pid $release_pid 2>/dev/null; rm -f "$log" "$dev_log" "$release_log"' EXIT
wait_for_port "$release_port" "$release_pid" "$release_log"
panic_invoke() { # payload, expected text, seconds (the first builds the fixture in release)
  local out
  out=$(PATH="$PWD/.venv/bin:$PATH" timeout "$3" cargo lambda invoke panicking --invoke-address 127.0.0.1 --invoke-port "$release_port" --data-ascii "$1" 2>&1) || true
  if grep -qF -- "$2" <<<"$out"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    echo "invoke panicking $1: expected $2, got: $out" >&2
    tail -5 "$release_log" >&2
  fi
}
panic_invoke '{"panic":true}' 'asked to panic (invocation 1)' 600
panic_invoke '{}' '"invocation":2' 60
echo "invoke: $passed passed, $failed failed"
[ "$failed" = 0 ]
