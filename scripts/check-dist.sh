#!/usr/bin/env bash
# Fails when the committed dist/ is not what src/ builds to.
set -euo pipefail
cd "$(dirname "$0")/.."
before=$(mktemp -d)
cp -a dist "$before/dist" 2>/dev/null || mkdir -p "$before/dist"
bash scripts/build.sh
if ! diff -r -q "$before/dist" dist >/dev/null; then
  echo "dist/ differs from a fresh build of src/:" >&2
  diff -r -q "$before/dist" dist >&2 || true
  echo "Run 'npm run build' and commit dist/." >&2
  rm -rf "$before"
  exit 1
fi
rm -rf "$before"
echo "dist/ matches src/"
