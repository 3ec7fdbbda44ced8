#!/usr/bin/env bash
# A two-node swarm on the bench, for the multi-node Swarm test (test/e2e/swarm-nodes.test.ts): host
# h3 (10.78.0.13) is the manager, h4 (10.78.0.14) a worker; both are hosts.sh hosts (own network
# namespace, dockerd and sshd). Idempotent: a node already in this swarm is left as it is; one in
# another swarm (or a stale one) leaves it and joins again.
# The swarm's address pool (10.93.0.0/16) is away from the bench swarm's (10.231/16) and the hosts'
# bridge (10.78.0/24).
#   swarm-nodes.sh up     hosts up (hosts.sh up h3 h4), swarm initialised on h3, h4 joined
#   swarm-nodes.sh down   h4 and h3 leave the swarm (the hosts keep running)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$here/lib.sh"

[ "$(id -u)" = 0 ] || bench_die "swarm-nodes.sh: run as root"
ROOT=/var/lib/handoff-hosts
MANAGER=h3 MANAGER_IP=10.78.0.13
WORKER=h4 WORKER_IP=10.78.0.14
POOL=10.93.0.0/16

node_docker() { local n="$1"; shift; DOCKER_HOST="unix://$ROOT/$n/docker.sock" docker "$@"; }
swarm_state() { node_docker "$1" info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}} {{if .Swarm.Cluster}}{{.Swarm.Cluster.ID}}{{end}}' 2>/dev/null || true; }

up() {
  bash "$here/hosts.sh" up "$MANAGER" "$WORKER"
  local m w token id
  m="$(swarm_state "$MANAGER")"
  if [ "${m%% *}" != active ] || [ "$(echo "$m" | cut -d' ' -f2)" != true ]; then
    node_docker "$MANAGER" swarm leave --force >/dev/null 2>&1 || true
    bench_log "swarm-nodes: docker swarm init on $MANAGER ($MANAGER_IP), address pool $POOL"
    node_docker "$MANAGER" swarm init --advertise-addr "$MANAGER_IP" --listen-addr "$MANAGER_IP:2377" \
      --default-addr-pool "$POOL" --default-addr-pool-mask-length 24 >/dev/null
    m="$(swarm_state "$MANAGER")"
  fi
  # A worker knows no cluster ID: it is in this swarm when the manager lists its node ID.
  w="$(node_docker "$WORKER" info --format '{{.Swarm.LocalNodeState}} {{.Swarm.NodeID}}' 2>/dev/null || true)"
  if [ "${w%% *}" != active ] || ! node_docker "$MANAGER" node ls -q | grep -qx "${w#* }"; then
    node_docker "$WORKER" swarm leave --force >/dev/null 2>&1 || true
    token="$(node_docker "$MANAGER" swarm join-token -q worker)"
    bench_log "swarm-nodes: $WORKER joins the swarm of $MANAGER"
    node_docker "$WORKER" swarm join --token "$token" --advertise-addr "$WORKER_IP" "$MANAGER_IP:2377" >/dev/null
  fi
  # Nodes a previous run left behind (h4 joined again gets a new node ID): drop them.
  w="$(node_docker "$WORKER" info --format '{{.Swarm.NodeID}}')"
  for id in $(node_docker "$MANAGER" node ls --filter role=worker -q); do
    [ "$id" = "$w" ] || node_docker "$MANAGER" node rm --force "$id" >/dev/null 2>&1 || true
  done
  for _ in $(seq 1 60); do
    [ "$(node_docker "$MANAGER" node ls --format '{{.Hostname}} {{.Status}} {{.Availability}}' | grep -c ' Ready Active$')" = 2 ] && break
    sleep 0.5
  done
  node_docker "$MANAGER" node ls --format '{{.Hostname}} {{.Status}} {{.Availability}}' | grep -q "^$WORKER Ready Active$" \
    || bench_die "swarm-nodes: $WORKER is not a ready node of $MANAGER's swarm: $(node_docker "$MANAGER" node ls 2>&1)"
  bench_log "swarm-nodes: $MANAGER (manager) and $WORKER (worker) are up"
}

case "${1:-up}" in
  up) up ;;
  down)
    node_docker "$WORKER" swarm leave --force >/dev/null 2>&1 || true
    node_docker "$MANAGER" swarm leave --force >/dev/null 2>&1 || true
    ;;
  *) bench_die "usage: swarm-nodes.sh up|down" ;;
esac
