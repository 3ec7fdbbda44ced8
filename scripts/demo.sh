#!/usr/bin/env bash
# README quick start, command one: everything from a fresh Debian machine (npm packages, Docker
# engine, docker-compose, sshd, test images), then a real deploy of the sample stack through dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
node24=$(bash scripts/ensure-node.sh)
bash scripts/bench/setup.sh
"$node24" --import tsx scripts/demo.ts
