#!/usr/bin/env bash
# The bench's engine as a single-node swarm (test/e2e/swarm.test.ts). Idempotent; run as root.
# On 127.0.0.1 only (nothing listens outside), and overlay networks from 10.231.0.0/16, away from the
# 172.16/12 and 192.168/16 subnets Compose projects of the other tests take. Compose projects keep
# running as before in swarm mode (docs/swarm-on-the-bench.md).
set -euo pipefail
state=$(docker info --format '{{.Swarm.LocalNodeState}}')
case "$state" in
  active) exit 0 ;;
  inactive) ;;
  *) echo "swarm.sh: the engine's swarm state is '$state'; leave it first (docker swarm leave --force)" >&2; exit 1 ;;
esac
docker swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377 \
  --default-addr-pool 10.231.0.0/16 --default-addr-pool-mask-length 24 >/dev/null
echo "swarm.sh: the engine is now a single-node swarm manager (127.0.0.1:2377)"
