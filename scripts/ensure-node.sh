#!/usr/bin/env bash
# Installs the npm dependencies (including Node 24, the runtime GitHub gives the action)
# when they are missing or stale, and prints the path of the Node 24 binary.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x node_modules/.bin/node ] || [ ! -x node_modules/.bin/tsx ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >&2
fi
node_modules/.bin/node -e 'if (+process.versions.node.split(".")[0] < 24) { console.error("node_modules/.bin/node is " + process.version + ", need 24"); process.exit(1) }'
echo "$PWD/node_modules/.bin/node"
