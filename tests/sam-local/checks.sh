#!/usr/bin/env bash
# The checks of `make sam-local`, run by tests/sam-local/run.sh inside tests/with-services.sh
# (DynamoDB Local, and Postgres listening on the Docker bridge too) with its dockerd up: each
# function's arm64 artifact runs in a Lambda container with `sam local invoke` on its fixture,
# against services the container reaches as host.docker.internal. One line per function, then
# `sam-local: N passed, M failed`.
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${SL_GATEWAY:?}" "${SL_TEMPLATE:?}" "${AWS_ENDPOINT_URL_DYNAMODB:?}" "${DATABASE_URL:?}"

sam=(.venv/bin/sam)
common=(--template "$SL_TEMPLATE" --skip-pull-image --add-host host.docker.internal:host-gateway)
work=$(mktemp -d /tmp/devhive-sam-local.XXXXXX)
project=aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa
user=11111111-1111-4111-8111-111111111111 # the fixtures' token subject
connection=Yp3sNdx0IAMCKfQ=                # the fixtures' connection id
pids=()
passed=0
failed=0
ran=0
summary=""
cleanup() {
  local status=$? pid
  # A run cut short still ends with the counts, the functions it did not reach as failed.
  [ -n "$summary" ] || echo "sam-local: $passed passed, $((failed + 7 - ran)) failed (stopped after $ran of 7 functions)"
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  # Kept for a look after the run: replies, SAM's and the functions' logs, the services' logs.
  rm -rf target/sam-local/last-run && mv "$work" target/sam-local/last-run 2>/dev/null || rm -rf "$work"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { python3 -c 'import socket, sys; s=socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1])' "$SL_GATEWAY"; }
wait_for_port() { # host port pid log what
  local _
  for _ in $(seq 1 1200); do
    (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
    kill -0 "$3" 2>/dev/null || { tail -n 20 "$4" >&2; echo "sam-local: $5 exited during start-up" >&2; exit 1; }
    sleep 0.1
  done
  tail -n 20 "$4" >&2
  echo "sam-local: $5 did not open $1:$2 within 120 s" >&2
  exit 1
}
psql_() { "$PG_BIN/psql" -X -q -t -A -v ON_ERROR_STOP=1 "$DATABASE_URL" -c "$1"; }

# The table, the schema, a user and a project (no membership yet).
export CONNECTIONS_TABLE="sam-local-$$"
export JWT_SECRET=devhive-realtime-development-secret-do-not-deploy RUST_LOG=warn
target/debug/devhive-realtime table >/dev/null
target/debug/devhive-realtime migrate >/dev/null
psql_ "INSERT INTO users (id, email) VALUES ('$user', 'sam-local@example.com');
       INSERT INTO projects (id, name) VALUES ('$project', 'sam local')"

ddb_port=${AWS_ENDPOINT_URL_DYNAMODB##*:}
pg_in_container="${DATABASE_URL/@127.0.0.1:/@host.docker.internal:}"

# A dev server for its Management API (over the same table) and the WebSocket clients, on the
# bridge address the containers reach; its own relay stays off (no DATABASE_URL).
dev_port=$(free_port)
env -u DATABASE_URL MEMBERSHIP=none target/debug/devhive-realtime dev --addr "$SL_GATEWAY:$dev_port" --store dynamodb \
  --allow-host host.docker.internal >"$work/dev.log" 2>&1 &
dev_pid=$!
pids+=("$dev_pid")

# sam local start-lambda serves the broadcaster to the relay (Lambda Invoke, as on AWS).
lambda_port=$(free_port)

# What every function gets (the local template declares each of these).
cat >"$work/env.json" <<EOF
{"Parameters": {
  "CONNECTIONS_TABLE": "$CONNECTIONS_TABLE",
  "JWT_SECRET": "$JWT_SECRET",
  "MEMBERSHIP": "postgres",
  "DATABASE_URL": "$pg_in_container",
  "AWS_ENDPOINT_URL_DYNAMODB": "http://host.docker.internal:$ddb_port",
  "AWS_ENDPOINT_URL_LAMBDA": "http://host.docker.internal:$lambda_port",
  "BROADCASTER_FUNCTION_NAME": "BroadcasterFunction",
  "WEBSOCKET_ENDPOINT": "http://host.docker.internal:$dev_port/dev",
  "RUST_LOG": "warn"
}}
EOF
"${sam[@]}" local start-lambda "${common[@]}" --host "$SL_GATEWAY" --port "$lambda_port" \
  --env-vars "$work/env.json" >"$work/start-lambda.log" 2>&1 &
lambda_pid=$!
pids+=("$lambda_pid")
wait_for_port "$SL_GATEWAY" "$dev_port" "$dev_pid" "$work/dev.log" "the dev server"
wait_for_port "$SL_GATEWAY" "$lambda_port" "$lambda_pid" "$work/start-lambda.log" "sam local start-lambda"

ok() { echo "$1: ok $2 ($took)"; passed=$((passed + 1)); ran=$((ran + 1)); }
fail() {
  echo "$1: FAIL $2"
  failed=$((failed + 1)); ran=$((ran + 1))
}

# invoke LogicalId fixture: the reply in $work/<id>.out, SAM's and the function's log in .err.
# Fails (returns 1) on "No response from invoke container", whatever SAM's exit code.
invoke() {
  local id=$1 fixture=$2 status=0 started=$SECONDS
  python3 tests/refresh-event.py "$fixture" >"$work/$id.event"
  timeout 300 "${sam[@]}" local invoke "$id" "${common[@]}" -e "$work/$id.event" \
    --env-vars "$work/env.json" >"$work/$id.out" 2>"$work/$id.err" || status=$?
  # Wall time of the sam command, and the function's own Duration from its REPORT line.
  took="$((SECONDS - started)) s, $(grep -oP '\tDuration: \K[0-9]+' "$work/$id.err" | head -n 1 || true) ms in the function"
  if grep -q 'No response from invoke container' "$work/$id.err"; then
    why="No response from invoke container (sam exited $status)"
    return 1
  fi
  if [ $status -ne 0 ]; then
    why="sam local invoke exited $status: $(grep -v '^\s*$' "$work/$id.err" | tail -n 3 | tr '\n' ' ' || true)"
    return 1
  fi
  return 0
}
reply() { # SAM's reply (its last line), as compact JSON
  python3 -c 'import json, sys
lines = [l for l in open(sys.argv[1]) if l.strip()]
print(json.dumps(json.loads(lines[-1]), separators=(",", ":")))' "$work/$1.out" 2>/dev/null || cat "$work/$1.out"
}
explain() { # id expected
  why="expected $2, got: $(reply "$1" | head -c 300 || true) $(grep -iE 'error|panic|fail' "$work/$1.err" | head -n 3 | tr '\n' ' ' || true)"
}
ddb_item() { # connection id → the item's JSON, or nothing
  AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test .venv/bin/python - "$1" <<'EOF'
import json, os, sys
import boto3
ddb = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"], region_name="us-east-1")
items = ddb.scan(TableName=os.environ["CONNECTIONS_TABLE"])["Items"]
for item in items:
    if any(v.get("S") == sys.argv[1] for v in item.values()):
        print(json.dumps(item))
EOF
}
listen() { # output file: a subscribed WebSocket client on the dev server, up to 120 s
  python3 tests/ws-listen.py "ws://$SL_GATEWAY:$dev_port/?token=$(target/debug/devhive-realtime token --user "$(python3 -c 'import uuid; print(uuid.uuid4())')")&project_id=$project" 120 >"$1" 2>&1 &
  listener=$!
  pids+=("$listener")
  local _
  for _ in $(seq 1 300); do grep -qs ready "$1" && return 0; sleep 0.1; done
  echo "sam-local: the WebSocket client did not connect: $(cat "$1")" >&2
  return 1
}

# ConnectFunction: refused while the user is no member (Postgres membership), then accepted,
# and its item is in DynamoDB Local.
id=ConnectFunction
if ! invoke $id tests/events/connect.json; then fail $id "$why"
elif ! reply $id | grep -q '"statusCode":403'; then explain $id 'statusCode 403 for a non-member'; fail $id "$why"
elif [ -n "$(ddb_item "$connection")" ]; then fail $id "a refused connection was stored"
else
  psql_ "INSERT INTO project_members (project_id, user_id) VALUES ('$project', '$user')"
  if ! invoke $id tests/events/connect.json; then fail $id "$why"
  elif ! reply $id | grep -q '"statusCode":200'; then explain $id 'statusCode 200 for a member'; fail $id "$why"
  elif [ -z "$(ddb_item "$connection")" ]; then fail $id "answered 200 but no item for $connection in DynamoDB Local"
  else ok $id "403 for a non-member, 200 once project_members has the user (Postgres); item $connection written to DynamoDB Local"
  fi
fi

# StatusFunction counts that connection.
id=StatusFunction
if ! invoke $id tests/events/status.json; then fail $id "$why"
elif ! reply $id | grep -q '\\"project_clients\\":1' || ! reply $id | grep -q "$user"; then explain $id 'project_clients 1 and the user'; fail $id "$why"
else ok $id "counts the connection: project_clients 1, user_ids [$user]"
fi

# SubscribeFunction answers subscribed (presence on: online lists the user).
id=SubscribeFunction
if ! invoke $id tests/events/subscribe.json; then fail $id "$why"
elif ! reply $id | grep -qF '{\"type\":\"subscribed\",\"message\":\"subscribed\",\"project_id\":\"'"$project"'\",\"online\":[\"'"$user"; then
  explain $id 'subscribed with online ['"$user"']'; fail $id "$why"
else ok $id "answers subscribed to $project, online [$user]"
fi

# DisconnectFunction removes the item.
id=DisconnectFunction
if ! invoke $id tests/events/disconnect.json; then fail $id "$why"
elif ! reply $id | grep -q '"statusCode":200'; then explain $id 'statusCode 200'; fail $id "$why"
elif [ -n "$(ddb_item "$connection")" ]; then fail $id "answered 200 but $connection is still in DynamoDB Local"
else ok $id "200; item $connection removed from DynamoDB Local"
fi

# BroadcasterFunction posts through the dev server's Management API to a real WebSocket client.
id=BroadcasterFunction
client="$work/client-broadcaster.log"
if ! listen "$client"; then fail $id "the WebSocket client did not connect"
elif ! invoke $id tests/events/broadcaster.json; then fail $id "$why"
elif ! reply $id | grep -qF '"delivered":1,"expired":0,"failed":0,"gone":0,"recipients":1'; then explain $id 'delivered 1 of 1'; fail $id "$why"
elif ! wait "$listener" || ! grep -q '"type":"task_updated"' "$client"; then fail $id "the client did not receive the event: $(head -c 300 "$client")"
else ok $id "delivered 1 of 1 through the Management API; the WebSocket client received task_updated"
fi

# SweeperFunction on its schedule event: no connection is due for its hint.
id=SweeperFunction
if ! invoke $id tests/events/relay-schedule.json; then fail $id "$why"
elif ! reply $id | grep -q '"recipients":0'; then explain $id 'recipients 0'; fail $id "$why"
else ok $id "ran on its schedule event: recipients 0 (nothing due)"
fi

# RelayFunction: a commit in Postgres (a task inserted: its trigger writes the outbox) reaches a
# subscribed client through the relay in its container → Lambda Invoke on sam local
# start-lambda → the broadcaster in its container → the Management API; the outbox is drained.
id=RelayFunction
client="$work/client-relay.log"
task=$(python3 -c 'import uuid; print(uuid.uuid4())')
if ! listen "$client"; then fail $id "the WebSocket client did not connect"
else
  # Only this commit waits in the outbox (the set-up's own rows are dropped first).
  psql_ "DELETE FROM realtime_outbox"
  psql_ "INSERT INTO tasks (id, project_id, title) VALUES ('$task', '$project', 'through sam local')"
  waiting=$(psql_ "SELECT count(*) FROM realtime_outbox")
  if [ "$(psql_ "SELECT count(*) FROM realtime_outbox WHERE payload->>'id' = '$task'")" != 1 ]; then fail $id "the commit wrote no outbox row"
  elif ! invoke $id tests/events/relay-schedule.json; then fail $id "$why"
  elif ! reply $id | grep -q "\"delivered\":$waiting,"; then explain $id "delivered $waiting (the outbox's rows)"; fail $id "$why"
  elif [ "$(psql_ "SELECT count(*) FROM realtime_outbox")" != 0 ]; then fail $id "the outbox still holds $(psql_ "SELECT count(*) FROM realtime_outbox") rows"
  elif ! wait "$listener" || ! grep -q "$task" "$client"; then
    fail $id "the client did not receive task $task: $(head -c 300 "$client"); start-lambda: $(tail -n 5 "$work/start-lambda.log" | tr '\n' ' ')"
  else ok $id "outbox drained ($waiting delivered) into BroadcasterFunction on sam local start-lambda; the WebSocket client received task $task"
  fi
fi

summary="sam-local: $passed passed, $failed failed"
echo "$summary"
[ "$failed" = 0 ] && [ "$ran" -ge 7 ]
