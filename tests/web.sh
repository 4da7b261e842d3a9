#!/usr/bin/env bash
# The browser client's build (with its size gate) and unit tests, as `make test` runs them:
# installs its dev dependencies from package-lock.json, then prints one summary line.
set -euo pipefail
cd "$(dirname "$0")/../clients/web"
command -v npm >/dev/null || { echo "web: npm is needed (Node.js 18 or later)" >&2; exit 2; }
[ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error
npm test 2>&1 | tee ../../target/web-test.log
pass=$(awk '/^# pass /{print $3}' ../../target/web-test.log)
fail=$(awk '/^# fail /{print $3}' ../../target/web-test.log)
echo "web: ${pass:-0} passed, ${fail:-1} failed"
[ "${fail:-1}" = 0 ] && [ "${pass:-0}" -gt 0 ]
