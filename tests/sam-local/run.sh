#!/usr/bin/env bash
# make sam-local: every function's arm64 artifact (target/lambda/<fn>/bootstrap, from make build)
# in a Lambda container under `sam local`, against DynamoDB Local, Postgres and a dev server's
# Management API. Sets up its own dockerd, binfmt registration and images (tests/sam-local/lib.sh)
# and undoes them however it ends; tests/sam-local/checks.sh prints one line per function.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/sam-local/lib.sh
source tests/sam-local/lib.sh

sl_prerequisites
functions=(connect disconnect subscribe status broadcaster sweeper relay)
for f in "${functions[@]}"; do
  [ -x "target/lambda/$f/bootstrap" ] || sl_die "target/lambda/$f/bootstrap is missing: run make build first"
done
[ -x target/debug/devhive-realtime ] || sl_die "target/debug/devhive-realtime (the dev server) is missing: run cargo build --workspace --locked first (make test does)"
[ -x .venv/bin/sam ] || sl_die ".venv/bin/sam is missing: make builds the tool venv (make build does)"

teardown() {
  local status=$?
  sl_dockerd_down
  sl_binfmt_down
  exit $status
}
trap teardown EXIT
trap 'exit 130' INT TERM

started=$SECONDS
sl_install
sl_binfmt_up
sl_dockerd_up
sl_images
SL_TEMPLATE="$SL_DIR/template.yaml"
.venv/bin/python tests/sam-local/local-template.py template.yaml "$SL_TEMPLATE" >/dev/null
SL_GATEWAY=$(sl_gateway)
echo "sam-local: set up in $((SECONDS - started)) s (dockerd, binfmt, images; bridge $SL_GATEWAY)" >&2
export SL_GATEWAY SL_TEMPLATE SAM_CLI_TELEMETRY=0
PG_LISTEN=$SL_GATEWAY tests/with-services.sh tests/sam-local/checks.sh
