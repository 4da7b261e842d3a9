#!/usr/bin/env bash
# `make dev`: the dev server with what it needs, checked in the order that fails fastest.
#  1. The listen address is free (before anything else starts).
#  2. The web client is built for the dev console at http://ADDR/ (when npm is installed).
#  3. A throwaway Postgres 15, migrated, when it is installed and DATABASE_URL is unset (the
#     relay and triggers then run; membership stays off unless DEV_MEMBERSHIP says otherwise),
#     and DynamoDB Local when the DynamoDB store is asked for without an endpoint.
# Arguments are the dev server's flags (`make dev DEV_ARGS="…"`).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/debug/devhive-realtime
addr=${DEVHIVE_ADDR:-127.0.0.1:8080}
store=${DEVHIVE_STORE:-}
tls=${DEVHIVE_TLS:-}
ca=${DEVHIVE_TLS_CA_OUT:-target/dev-tls/ca.pem}
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --addr) addr=${args[i + 1]:-$addr} ;;
    --addr=*) addr=${args[i]#--addr=} ;;
    --store) store=${args[i + 1]:-} ;;
    --store=*) store=${args[i]#--store=} ;;
    --tls) tls=1 ;;
    --tls-ca-out) ca=${args[i + 1]:-$ca} ;;
    --tls-ca-out=*) ca=${args[i]#--tls-ca-out=} ;;
  esac
done
case "$tls" in "" | 0 | false | no | off) tls="" ;; esac

python3 - "$addr" <<'PY'
import socket, sys
addr = sys.argv[1]
host, _, port = addr.rpartition(":")
host = host.strip("[]")
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
# As the server binds (tokio sets SO_REUSEADDR): the TIME-WAIT sockets a stopped dev server's
# own connections leave on the port do not stop it from listening again.
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((host, int(port)))
except (OSError, ValueError) as e:
    sys.exit(f"make dev: cannot listen on {addr}: {getattr(e, 'strerror', None) or e}. "
             f"Stop what uses it, or pick another address: make dev DEV_ARGS=\"--addr 127.0.0.1:8081\"")
PY

if command -v npm >/dev/null; then
  (
    cd clients/web
    [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] ||
      npm ci --no-audit --no-fund --loglevel=error >/dev/null
    npm run --silent build >/dev/null
  ) || echo "make dev: the web client did not build; the dev console at / will say so" >&2
else
  echo "make dev: npm is not installed; the dev console at / needs the built web client" >&2
fi

services=()
if [ -z "${DATABASE_URL:-}" ] && [ -x "${PG_BIN:-/usr/lib/postgresql/15/bin}/initdb" ]; then
  services+=(postgres)
fi
if [ "$store" = dynamodb ] && [ -z "${AWS_ENDPOINT_URL_DYNAMODB:-}" ]; then
  services+=(dynamodb)
fi
# target/dev.env: what a second terminal needs (`. target/dev.env`), as the README's quick start
# does. With --tls: wss:// and https:// URLs, and DEV_CA (exported), the CA the server writes at
# start (tests/ws-listen.py trusts it).
run='set -e
if [ -n "${DEV_OWN_DATABASE:-}" ]; then
  "$0" migrate
  export MEMBERSHIP=${DEV_MEMBERSHIP:-none}
fi
mkdir -p target
if [ -n "$DEV_TLS_CA" ]; then
  printf "DEV_WS=wss://%s\nDEV_HTTP=https://%s\nDATABASE_URL=%s\nexport DEV_CA=%s\n" "$DEV_ADDR" "$DEV_ADDR" "${DATABASE_URL:-}" "$DEV_TLS_CA" >target/dev.env
  echo "make dev: target/dev.env holds DEV_WS, DEV_HTTP, DATABASE_URL and DEV_CA (the CA to trust) for another terminal (. target/dev.env); it stays after this server stops" >&2
else
  printf "DEV_WS=ws://%s\nDEV_HTTP=http://%s\nDATABASE_URL=%s\n" "$DEV_ADDR" "$DEV_ADDR" "${DATABASE_URL:-}" >target/dev.env
  echo "make dev: target/dev.env holds DEV_WS, DEV_HTTP and DATABASE_URL for another terminal (. target/dev.env); it stays after this server stops" >&2
fi
exec "$0" dev "$@"'
export DEV_ADDR=$addr
export DEV_TLS_CA=${tls:+$(realpath -m "$ca")}
rm -f target/dev.env
if [ ${#services[@]} -gt 0 ]; then
  own=""
  [[ " ${services[*]} " == *" postgres "* ]] && own=1
  SERVICES=$(IFS=,; echo "${services[*]}") DEV_OWN_DATABASE=$own exec tests/with-services.sh bash -c "$run" "$bin" "$@"
fi
exec bash -c "$run" "$bin" "$@"
