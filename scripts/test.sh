#!/usr/bin/env bash
# The whole suite, from a fresh Debian machine: npm packages, the bench (Docker engine,
# docker-compose, sshd, test images), typecheck, lint, dist check, then unit and end-to-end tests on Node 24.
set -euo pipefail
cd "$(dirname "$0")/.."
node24=$(bash scripts/ensure-node.sh)
export PATH="$PWD/node_modules/.bin:$PATH"
bash scripts/bench/setup.sh
tsc --noEmit -p .
# eslint (typescript-eslint; in src/ at most 60 lines per function, complexity 20) and prettier.
npm run --silent lint
# The end-to-end tests drive dist/: make sure it is what src/ builds.
bash scripts/check-dist.sh
"$node24" --import tsx --test --test-concurrency=1 --test-timeout=600000 \
  'test/unit/**/*.test.ts' 'test/e2e/**/*.test.ts'
