#!/usr/bin/env bash
# The browser tests, as `make test` runs them: the web client and the dev console in headless
# Debian Chromium (driven by playwright-core) against the real dev server binary
# (target/debug/devhive-realtime). Installs chromium with apt-get when it is missing and this
# runs as root, the client's dev dependencies from package-lock.json, builds the client, runs
# node --test on clients/web/e2e, then prints one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
summary() { echo "browser: $1 passed, $2 failed"; }
chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "browser: installing Debian's chromium (apt-get)" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >&2
  else
    echo "browser: $chromium is missing; install it with: sudo apt-get install --no-install-recommends chromium (or set CHROMIUM)" >&2
    summary 0 1
    exit 2
  fi
fi
[ -x target/debug/devhive-realtime ] || { echo "browser: target/debug/devhive-realtime is missing: run cargo build first" >&2; summary 0 1; exit 2; }
command -v npm >/dev/null || { echo "browser: npm is needed (Node.js 20 or later)" >&2; summary 0 1; exit 2; }
mkdir -p target
(
  cd clients/web
  [ -d node_modules ] && [ node_modules/.package-lock.json -nt package-lock.json ] || npm ci --no-audit --no-fund --loglevel=error
  npm run build --silent
) >&2
# One file at a time: the tests shorten the server's limits to seconds and must not compete
# for the CPU with each other.
status=0
CHROMIUM="$chromium" node --test --test-concurrency=1 --test-timeout=120000 clients/web/e2e/*.test.mjs 2>&1 \
  | tee target/browser-test.log || status=$?
pass=$(awk '/^# pass /{print $3}' target/browser-test.log)
fail=$(awk '/^# fail /{print $3}' target/browser-test.log)
summary "${pass:-0}" "${fail:-1}"
[ "$status" = 0 ] && [ "${fail:-1}" = 0 ] && [ "${pass:-0}" -gt 0 ]
