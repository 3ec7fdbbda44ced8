#!/usr/bin/env bash
# Bundle src/ into dist/ with ncc: dist/main (the action) and dist/post (lock release).
# ssh2's optional native modules are left out so the bundle is the same on every machine
# and always takes ssh2's pure-JavaScript path.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=node_modules/.bin
# Built beside dist/ and swapped in at the end, so a test running the action meanwhile finds a
# whole bundle (the old or the new) instead of an empty folder.
out=$(mktemp -d "$PWD/.dist-build.XXXXXX")
trap 'rm -rf "$out"' EXIT
"$bin/ncc" build src/action/index.ts -o "$out/main" --license licenses.txt -q
"$bin/ncc" build src/action/post.ts -o "$out/post" --license licenses.txt -q
"$bin/ncc" build src/probe/worker.ts -o "$out/probe-worker" --license licenses.txt -q
find "$out" -name '*.node' -delete
find "$out" -name '*.exe' -delete
find "$out" -type d -empty -delete
chmod 755 "$out"
rm -rf dist.old
[ ! -e dist ] || mv dist dist.old
mv "$out" dist
rm -rf dist.old
