#!/usr/bin/env bash
# Bundle src/ into dist/ with ncc: dist/main (the action) and dist/post (lock release).
# ssh2's optional native modules are left out so the bundle is the same on every machine
# and always takes ssh2's pure-JavaScript path.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=node_modules/.bin
rm -rf dist
"$bin/ncc" build src/action/index.ts -o dist/main --license licenses.txt -q
"$bin/ncc" build src/action/post.ts -o dist/post --license licenses.txt -q
"$bin/ncc" build src/probe/worker.ts -o dist/probe-worker --license licenses.txt -q
find dist -name '*.node' -delete
find dist -name '*.exe' -delete
find dist -type d -empty -delete
