#!/usr/bin/env bash
# realtime-client is what HTTP handlers link to publish: its normal dependency tree stays small
# (at most 120 packages) and free of the database, DynamoDB and JWT stacks.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$(cargo tree --locked -p realtime-client -e normal --prefix none)
packages=$(sed 's/ (\*)$//; s/ (proc-macro)$//' <<<"$tree" | sort -u | wc -l)
lines=$(sort -u <<<"$tree" | wc -l)
banned=$(grep -E '^(sqlx|aws-sdk-dynamodb|jsonwebtoken) ' <<<"$tree" | sort -u || true)
echo "client-deps: realtime-client links $packages packages (cargo tree lines, deduplicated: $lines); limit 120"
if [ -n "$banned" ]; then echo "client-deps: must not link: $banned" >&2; echo "client-deps: 0 passed, 1 failed"; exit 1; fi
if [ "$packages" -gt 120 ]; then echo "client-deps: 0 passed, 1 failed"; exit 1; fi
echo "client-deps: 1 passed, 0 failed"
