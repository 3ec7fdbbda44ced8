#!/usr/bin/env bash
# The Podman part of the bench (issue #17), run by setup.sh after the Docker images exist. Idempotent;
# root. What it sets up, and why (docs/podman-on-the-bench.md has the evidence):
#   - bookworm's podman 4.3 with netavark and aardvark-dns (never podman-docker: it replaces
#     /usr/bin/docker, which the Docker bench needs)
#   - /etc/containers/containers.conf: runc (crun refuses this VM's hybrid cgroups), rlimits the VM
#     allows (rootful Podman sets RLIMIT_NOFILE/NPROC in every container; raising them fails here),
#     events in a file (no journald)
#   - Podman's Docker-compatible API socket at /run/podman/podman.sock (`podman system service`),
#     group `podman` (the deploy user is in it), like the docker group for docker.sock
#   - the healthcheck ticker (podman-health-ticker.mjs): systemd's timers, which this VM lacks
#   - the test images in Podman's storage (docker save | podman load: same image IDs)
set -euo pipefail
# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

PODMAN_SOCK=/run/podman/podman.sock
PODMAN_LOG=/var/log/handoff-podman.log
TICKER_PID=/var/lib/handoff-bench/podman-health-ticker.pid
SERVICE_PID=/var/lib/handoff-bench/podman-service.pid
running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
DEPLOY="${1:-deploy}"

# ---- packages -------------------------------------------------------------------------------
pkgs=(podman netavark aardvark-dns slirp4netns uidmap fuse-overlayfs catatonit)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  bench_log "installing: ${missing[*]} (bookworm)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
fi
dpkg-query -W -f='${Status}' podman-docker 2>/dev/null | grep -q '^install ok installed$' \
  && bench_die "podman-docker is installed: it replaces /usr/bin/docker, which the Docker bench needs (apt-get remove podman-docker)"

# ---- containers.conf ------------------------------------------------------------------------
nofile="$(ulimit -Hn)"
nproc="$(ulimit -Hu)"
# Podman lowers its own RLIMIT_NPROC to 32768: a container may not get more.
if [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; then nproc=32768; fi
[ "$nofile" = unlimited ] && nofile=1048576
conf=/etc/containers/containers.conf
want="# Written by handoff's scripts/bench/podman.sh (docs/podman-on-the-bench.md).
[containers]
default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]
[engine]
events_logger = \"file\"
runtime = \"runc\""
if [ -f "$conf" ] && ! grep -q "handoff's scripts/bench/podman.sh" "$conf"; then
  bench_die "$conf exists and is not the bench's: move it away or merge: $want"
fi
if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
  mkdir -p /etc/containers
  printf '%s\n' "$want" >"$conf"
  # A running service keeps the old settings: restart the one this script started.
  if running "$SERVICE_PID"; then kill "$(cat "$SERVICE_PID")"; sleep 1; fi
fi

# ---- the API socket -------------------------------------------------------------------------
getent group podman >/dev/null || groupadd --system podman
id -nG "$DEPLOY" | tr ' ' '\n' | grep -qx podman || usermod -aG podman "$DEPLOY"
answers() { DOCKER_HOST="unix://$PODMAN_SOCK" docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
# A service (or ticker) started from a checkout that was removed since runs in a deleted directory,
# and conmon then fails every container start ("Failed to get working directory"): restart it.
cwd_gone() { running "$1" && readlink "/proc/$(cat "$1")/cwd" | grep -q ' (deleted)$'; }
for pidfile in "$SERVICE_PID" "$TICKER_PID"; do
  if cwd_gone "$pidfile"; then
    bench_log "restarting $(basename "$pidfile" .pid): its working directory was removed"
    kill "$(cat "$pidfile")"
    sleep 1
  fi
done
if ! answers; then
  mkdir -p /run/podman
  if ! running "$SERVICE_PID"; then
    bench_log "starting podman system service (log $PODMAN_LOG)"
    rm -f "$PODMAN_SOCK"
    mkdir -p "$(dirname "$SERVICE_PID")"
    # 9>&-: the service must not inherit (and hold forever) the setup lock.
    # From /: a service keeps its working directory for good, and conmon needs it to exist.
    (cd / && exec setsid nohup podman system service --time=0 "unix://$PODMAN_SOCK" >>"$PODMAN_LOG" 2>&1 </dev/null 9>&-) &
    echo $! >"$SERVICE_PID"
  fi
  for _ in $(seq 1 60); do answers && break; sleep 0.5; done
  answers || bench_die "podman's API socket did not answer within 30 s; see $PODMAN_LOG"
fi
chgrp podman /run/podman "$PODMAN_SOCK"
chmod 0750 /run/podman
chmod 0660 "$PODMAN_SOCK"
su -s /bin/sh "$DEPLOY" -c "DOCKER_HOST=unix://$PODMAN_SOCK docker version --format '{{.Server.Version}}'" >/dev/null \
  || bench_die "user $DEPLOY cannot reach $PODMAN_SOCK"

# ---- healthchecks (systemd's timers) ------------------------------------------------------------
if [ -d /run/systemd/system ]; then
  bench_log "systemd is PID 1: Podman's own healthcheck timers run, no ticker"
elif ! running "$TICKER_PID"; then
  node="$(bench_host_node)" || bench_die "no node for the healthcheck ticker"
  ticker="$(cd "$BENCH_SCRIPT_DIR" && pwd)/podman-health-ticker.mjs"
  (cd / && exec setsid nohup "$node" "$ticker" "$PODMAN_SOCK" >>/var/log/handoff-podman-ticker.log 2>&1 </dev/null 9>&-) &
  echo $! >"$TICKER_PID"
  bench_log "started the healthcheck ticker (pid $(cat "$TICKER_PID"))"
fi

# ---- images -----------------------------------------------------------------------------------
DOCKER="$(bench_docker_client)" || bench_die "no docker client reaches dockerd"
for img in "$BENCH_APP_REPO:v1" "$BENCH_APP_REPO:v2" "$BENCH_HAPROXY_IMAGE"; do
  id="$(env -u DOCKER_HOST "$DOCKER" image inspect --format '{{.Id}}' "$img")"
  have="$(podman image inspect --format '{{.Id}}' "localhost/$img" 2>/dev/null || true)"
  if [ "sha256:$have" != "$id" ] && [ "$have" != "$id" ]; then
    bench_log "loading $img into Podman"
    env -u DOCKER_HOST "$DOCKER" save "$img" | podman load -q >/dev/null
  fi
done
