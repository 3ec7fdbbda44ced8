#!/usr/bin/env bash
# Extra hosts on the bench, for tests that deploy to more than one machine (fleets, a multi-node
# swarm). Each host is a network namespace and a mount namespace of this machine with its own
# dockerd (own data root, own containerd, own /run), its own sshd on <ip>:22 and its own home for
# the deploy user (release store, lock, docker config): to handoff it is another machine.
#   hosts.sh up [NAME...]      start hosts (default: h1 h2); idempotent. hN gets 10.78.0.(10+N).
#   hosts.sh load IMAGE...     copy images from the bench engine into every running host
#   hosts.sh down [NAME...]    stop hosts and remove their namespaces (data kept)
# The hosts sit on the bridge hoff-hosts0 (10.78.0.1/24) in the root namespace: nothing outside this
# machine can reach them, and they reach nothing outside. Each engine's socket is also at
# /var/lib/handoff-hosts/<name>/docker.sock (a unix socket is a file: the root namespace can use it).
# Facts go to <repo>/.bench/hosts.json.
set -euo pipefail
# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

[ "$(id -u)" = 0 ] || bench_die "hosts.sh: run as root"
ROOT=/var/lib/handoff-hosts
BRIDGE=hoff-hosts0
SUBNET_PREFIX=10.78.0
DEPLOY=deploy
DEPLOY_HOME=/home/deploy
SSHD_DIR=/var/lib/handoff-bench/sshd
HOST_IMAGES=("$BENCH_APP_REPO:base" "$BENCH_APP_REPO:v1" "$BENCH_APP_REPO:v2" "$BENCH_HAPROXY_IMAGE")

host_ip() { # hN -> 10.78.0.(10+N)
  [[ "$1" =~ ^h([1-9][0-9]?)$ ]] || bench_die "hosts.sh: host names are h1..h99 (got '$1')"
  echo "$SUBNET_PREFIX.$((10 + BASH_REMATCH[1]))"
}
host_docker() { local n="$1"; shift; DOCKER_HOST="unix://$ROOT/$n/docker.sock" docker "$@"; }
engine_up() { host_docker "$1" version --format '{{.Server.Version}}' >/dev/null 2>&1; }
sshd_up() { ip netns exec "hoff-$1" ss -Hltn "sport = :22" 2>/dev/null | grep -q .; }

ensure_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    ip link add "$BRIDGE" type bridge
    ip addr add "$SUBNET_PREFIX.1/24" dev "$BRIDGE"
  fi
  ip link set "$BRIDGE" up
  # Docker's FORWARD policy is DROP and bridged frames go through iptables: let the hosts talk to
  # each other (a swarm's gossip and overlay traffic), and nothing else.
  iptables -C DOCKER-USER -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT 2>/dev/null \
    || iptables -I DOCKER-USER -i "$BRIDGE" -o "$BRIDGE" -j ACCEPT
}

ensure_netns() { # name ip
  local n="$1" ip="$2" ns="hoff-$1"
  ip netns list | grep -qw "$ns" || ip netns add "$ns"
  if ! ip -n "$ns" link show eth0 >/dev/null 2>&1; then
    ip link del "hoff-$n" 2>/dev/null || true
    ip link add "hoff-$n" type veth peer name eth0 netns "$ns"
    ip link set "hoff-$n" master "$BRIDGE" up
    ip -n "$ns" addr add "$ip/24" dev eth0
  fi
  ip -n "$ns" link set lo up
  ip -n "$ns" link set eth0 up
  ip -n "$ns" route replace default via "$SUBNET_PREFIX.1"
}

# The host's files: sshd config and keys, the deploy user's home with the bench's authorized keys.
prepare_files() { # name ip
  local n="$1" ip="$2" d="$ROOT/$1"
  mkdir -p "$d/home" "$d/tmp" "$d/etc-docker" "$d/docker"
  chmod 0700 "$ROOT" "$d"
  chmod 1777 "$d/tmp"
  [ -s "$d/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C "handoff-bench-$n" -f "$d/ssh_host_ed25519_key"
  chown "$DEPLOY:$DEPLOY" "$d/home"
  chmod 0755 "$d/home"
  install -d -o "$DEPLOY" -g "$DEPLOY" -m 0700 "$d/home/.ssh"
  install -o "$DEPLOY" -g "$DEPLOY" -m 0600 "$DEPLOY_HOME/.ssh/authorized_keys" "$d/home/.ssh/authorized_keys"
  cat >"$d/sshd.conf" <<EOF
# handoff bench host $n, written by scripts/bench/hosts.sh
ListenAddress $ip:22
HostKey $d/ssh_host_ed25519_key
PidFile /run/sshd.pid
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
AuthorizedKeysFile $DEPLOY_HOME/.ssh/authorized_keys
StrictModes yes
AllowUsers $DEPLOY
LogLevel VERBOSE
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
  /usr/sbin/sshd -t -f "$d/sshd.conf" || bench_die "sshd -t rejected $d/sshd.conf"
}

# Inside the host's namespaces: a private /run (its own containerd, docker.sock, sshd pid), the host's
# own home, /tmp and /etc/docker over the shared ones; then dockerd and sshd.
# (`ip netns exec` would mount a fresh /sys and lose the cgroup mounts under it: this keeps them.)
HOST_INIT='set -e
d=$1
hostname "$2"
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/sshd /run/cgroup-keep
mount --rbind /sys/fs/cgroup /run/cgroup-keep
mount -t sysfs sysfs /sys
mount --move /run/cgroup-keep /sys/fs/cgroup
rmdir /run/cgroup-keep 2>/dev/null || true
mount --bind "$d/home" /home/deploy
mount --bind "$d/tmp" /tmp
mount --bind "$d/etc-docker" /etc/docker
rm -f "$d/docker.sock"
setsid nohup /usr/sbin/dockerd --data-root "$d/docker" -H unix:///var/run/docker.sock -H "unix://$d/docker.sock" \
  --pidfile /run/docker.pid >>"$d/dockerd.log" 2>&1 </dev/null &
echo $! >"$d/dockerd.pid"
/usr/sbin/sshd -f "$d/sshd.conf" -E "$d/sshd.log"
'

start_host() { # name
  local n="$1" ip d="$ROOT/$1"
  ip="$(host_ip "$n")"
  ensure_netns "$n" "$ip"
  prepare_files "$n" "$ip"
  if engine_up "$n" && sshd_up "$n"; then return 0; fi
  stop_processes "$n"
  bench_log "starting host $n ($ip): dockerd and sshd in netns hoff-$n (logs in $d)"
  # 8>&- 9>&-: the daemons must not hold this script's lock or setup.sh's.
  nsenter --net="/run/netns/hoff-$n" unshare --mount --uts --propagation private sh -c "$HOST_INIT" host-init "$d" "$n" 8>&- 9>&-
  for _ in $(seq 1 120); do engine_up "$n" && break; sleep 0.5; done
  engine_up "$n" || bench_die "host $n: dockerd did not answer within 60 s; see $d/dockerd.log"
  for _ in $(seq 1 50); do sshd_up "$n" && break; sleep 0.1; done
  sshd_up "$n" || bench_die "host $n: sshd is not listening on $ip:22; see $d/sshd.log"
}

# Processes whose network namespace is the host's (its dockerd, containerd, sshd, containers' shims).
netns_pids() { ip netns pids "hoff-$1" 2>/dev/null || true; }

stop_processes() { # name
  local n="$1" pids
  pids="$(netns_pids "$n")"
  [ -n "$pids" ] || return 0
  if [ -s "$ROOT/$n/dockerd.pid" ] && kill -0 "$(cat "$ROOT/$n/dockerd.pid")" 2>/dev/null; then
    kill "$(cat "$ROOT/$n/dockerd.pid")" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$(cat "$ROOT/$n/dockerd.pid")" 2>/dev/null || break; sleep 0.1; done
  fi
  # shellcheck disable=SC2046
  kill $(netns_pids "$n") 2>/dev/null || true
  sleep 0.5
  # shellcheck disable=SC2046
  kill -9 $(netns_pids "$n") 2>/dev/null || true
}

# Copy images from the bench engine into the host's engine when its copy is missing or differs.
load_images() { # name image...
  local n="$1" want=() img id; shift
  for img in "$@"; do
    id="$(docker image inspect --format '{{.Id}}' "$img" 2>/dev/null)" || bench_die "hosts.sh: no image $img on the bench engine"
    [ "$(host_docker "$n" image inspect --format '{{.Id}}' "$img" 2>/dev/null || true)" = "$id" ] || want+=("$img")
  done
  [ ${#want[@]} -gt 0 ] || return 0
  bench_log "host $n: loading ${want[*]}"
  docker save "${want[@]}" | host_docker "$n" load -q >/dev/null
}

write_facts() {
  local out="$BENCH_DIR/hosts.json" first=1 n ip d fp
  {
    echo '['
    for d in "$ROOT"/h*; do
      n="$(basename "$d")"
      ip netns list | grep -qw "hoff-$n" && engine_up "$n" || continue
      ip="$(host_ip "$n")"
      printf '%s %s\n' "$ip" "$(cut -d' ' -f1,2 "$d/ssh_host_ed25519_key.pub")" >"$BENCH_DIR/known_hosts_$n"
      chown "$(bench_repo_owner)" "$BENCH_DIR/known_hosts_$n"
      fp="$(ssh-keygen -l -f "$d/ssh_host_ed25519_key.pub" | awk '{print $2}')"
      [ "$first" = 1 ] || echo ','
      first=0
      printf '  {"name": "%s", "host": "%s", "port": 22, "user": "%s", "fingerprint": "%s", "knownHosts": "%s", "dockerHost": "unix://%s/docker.sock"}' \
        "$n" "$ip" "$DEPLOY" "$fp" "$BENCH_DIR/known_hosts_$n" "$d"
    done
    printf '\n]\n'
  } >"$out.tmp"
  mv "$out.tmp" "$out"
  chown "$(bench_repo_owner)" "$out"
}

check_ssh() { # name
  local n="$1" ip
  ip="$(host_ip "$n")"
  ssh -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=10 -o LogLevel=ERROR \
    -i "$BENCH_DIR/id_ed25519" -o UserKnownHostsFile="$BENCH_DIR/known_hosts_$n" "$DEPLOY@$ip" \
    'test "$(docker info --format "{{.DockerRootDir}}")" = '"$ROOT/$n/docker" \
    || bench_die "host $n: ssh $DEPLOY@$ip did not reach the host's own engine"
}

cmd="${1:-up}"
[ $# -gt 0 ] && shift
mkdir -p "$ROOT" "$BENCH_DIR"
exec 8>"$ROOT/.lock"
flock -w 600 8 || bench_die "hosts.sh: another run holds $ROOT/.lock"
case "$cmd" in
  up)
    names=("$@")
    [ ${#names[@]} -gt 0 ] || names=(h1 h2)
    ensure_bridge
    for n in "${names[@]}"; do start_host "$n"; done
    for n in "${names[@]}"; do load_images "$n" "${HOST_IMAGES[@]}"; done
    write_facts
    for n in "${names[@]}"; do check_ssh "$n"; done
    bench_log "hosts up: ${names[*]} (facts in $BENCH_DIR/hosts.json)"
    ;;
  load)
    [ $# -gt 0 ] || bench_die "usage: hosts.sh load IMAGE..."
    for d in "$ROOT"/h*; do
      n="$(basename "$d")"
      engine_up "$n" && load_images "$n" "$@"
    done
    ;;
  down)
    names=("$@")
    if [ ${#names[@]} -eq 0 ]; then for d in "$ROOT"/h*; do [ -d "$d" ] && names+=("$(basename "$d")"); done; fi
    for n in "${names[@]}"; do
      stop_processes "$n"
      ip netns del "hoff-$n" 2>/dev/null || true
      ip link del "hoff-$n" 2>/dev/null || true
    done
    write_facts
    ;;
  *) bench_die "usage: hosts.sh up|load|down [...]" ;;
esac
