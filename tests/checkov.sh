#!/usr/bin/env bash
# checkov over template.yaml: every finding must be one docs/security-scan.md's
# table justifies (by check id). checkov pins a boto3 that conflicts with the SAM CLI's, so it
# lives in a venv of its own (.venv-checkov, created on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-checkov
version=3.3.30
if ! "$venv/bin/checkov" --version 2>/dev/null | grep -qx "$version"; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q "checkov==$version"
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$venv/bin/checkov" -f template.yaml --quiet --compact --skip-download -o json >"$out" || true
python3 - "$out" <<'PY'
import json, re, sys
report = json.load(open(sys.argv[1]))
reports = report if isinstance(report, list) else [report]
failed = [(c["check_id"], c["resource"]) for r in reports for c in r["results"]["failed_checks"]]
passed = sum(r["summary"]["passed"] for r in reports)
section = open("docs/security-scan.md").read()
justified = set(re.findall(r"^\| (CKV\w+) ", section, re.M))
unjustified = sorted({(c, r) for c, r in failed if c not in justified})
for check, resource in unjustified:
    print(f"checkov: {check} on {resource} is not justified in docs/security-scan.md", file=sys.stderr)
stale = sorted(justified - {c for c, _ in failed})
for check in stale:
    print(f"checkov: docs/security-scan.md justifies {check}, which no longer fails: remove its row", file=sys.stderr)
bad = bool(unjustified or stale)
print(f"checkov {report['summary']['checkov_version'] if isinstance(report, dict) else ''}: "
      f"{passed} checks pass, {len(failed)} findings, each justified in docs/security-scan.md"
      if not bad else "checkov: findings and docs/security-scan.md disagree (above)")
print(f"checkov: {0 if bad else 1} passed, {1 if bad else 0} failed")
sys.exit(1 if bad else 0)
PY
