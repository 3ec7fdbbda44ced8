#!/usr/bin/env bash
# handoff test bench: one machine, everything an end-to-end test needs. Idempotent; run as root.
#   - Debian packages: docker.io, docker-compose (v1), the Compose v2 plugin (from trixie), openssh-server, haproxy,
#     caddy, nginx (their binaries go into the proxy images; never run as host services), busybox-static, ...
#   - dockerd (started in the background if `docker info` fails; log /var/log/handoff-dockerd.log)
#   - user `deploy` (docker group) reachable by key on sshd 127.0.0.1:2222, jump sshd 127.0.0.1:2223
#   - keys, known_hosts files and facts in <repo>/.bench/ (bench.json, bench.env)
#   - podman 4.3 (bookworm) with its Docker-compatible API socket (scripts/bench/podman.sh)
#   - offline test images: handoff-test-app:{base,v1,v2}, handoff-test-haproxy:latest, handoff-test-caddy:latest,
#     handoff-test-nginx:latest
# Usage: sudo scripts/bench/setup.sh [--force-images]
set -euo pipefail
# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

T0=$(date +%s%N)
FORCE_IMAGES=0
for a in "$@"; do
  case "$a" in
    --force-images) FORCE_IMAGES=1 ;;
    *) bench_die "usage: $0 [--force-images]" ;;
  esac
done

if [ "$(id -u)" != 0 ]; then
  # Not root: go through passwordless sudo if there is one (keeping PATH: it picks the node binary).
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    exec sudo -n --preserve-env=PATH,BENCH_NODE bash "$BENCH_SCRIPT_DIR/setup.sh" "$@"
  fi
  bench_die "run as root (sudo $0)"
fi

SSH_PORT=2222
JUMP_PORT=2223
DEPLOY=deploy
DEPLOY_HOME=/home/deploy
# sshd state (host keys, configs, pid files, logs) lives outside the repo, like the ports it serves
# are machine-wide: a `chmod -R a+r .bench` (CI does one) must not make sshd refuse its host keys
# ("bad permissions"). .bench/sshd is a symlink to it (chmod -R does not follow it).
SSHD_DIR=/var/lib/handoff-bench/sshd
OWNER="$(bench_repo_owner)"

mkdir -p "$BENCH_DIR" "$BENCH_IMAGES_DIR"
chown "$OWNER" "$BENCH_DIR" "$BENCH_IMAGES_DIR"
# One setup at a time (tests may call it concurrently).
# (Daemons started below get `9>&-` so they do not inherit the lock.)
exec 9>"$BENCH_DIR/.setup.lock"
flock -w 600 9 || bench_die "another setup.sh holds $BENCH_DIR/setup.lock"

# ---- 1. packages ------------------------------------------------------------------------------
PACKAGES=(docker-compose openssh-server openssh-client haproxy busybox-static iproute2 procps curl socat
  ca-certificates util-linux docker-registry apache2-utils caddy nginx)
# Debian's engine, unless one is already installed (e.g. docker-ce on a CI runner: docker.io and
# containerd would conflict with containerd.io).
if ! command -v dockerd >/dev/null; then PACKAGES+=(docker.io containerd runc iptables); fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  bench_log "installing: ${missing[*]}"
  # Keep maintainer scripts from starting services (ssh on :22, haproxy, caddy, nginx, docker): we
  # start our own.
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    created_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$created_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi
# Caddy and nginx are installed only for their binaries (copied into the proxy images). Under systemd
# their packages enable units that would listen on :80 and :2019 at the next boot (and start them now
# if a policy-rc.d did not stop that): stop and disable them. Without systemd, stop a host daemon
# started some other way (matched by binary path and mount namespace, not by name alone).
for svc in caddy nginx; do
  if [ -d /run/systemd/system ] && systemctl is-enabled --quiet "$svc" 2>/dev/null; then
    bench_log "disabling the host $svc service (the bench runs $svc in containers only)"
    systemctl disable --now "$svc" >/dev/null 2>&1 || true
  fi
done
for exe in /usr/sbin/nginx /usr/bin/caddy; do
  for pid in $(pgrep -x "$(basename "$exe")" 2>/dev/null || true); do
    # Host processes only: the bench's proxy containers run the same binaries in their own mount
    # namespace.
    [ "$(readlink "/proc/$pid/ns/mnt" 2>/dev/null)" = "$(readlink /proc/self/ns/mnt)" ] || continue
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$exe" ] || continue
    bench_log "stopping a host $(basename "$exe") (pid $pid)"
    kill "$pid" 2>/dev/null || true
  done
done

# ---- 1b. Compose v2 -------------------------------------------------------------------------
# Hosts installed today run the v2 plugin (`docker compose`); bookworm has only v1. Debian trixie's
# docker-compose package holds the v2 plugin and needs only libc6 >= 2.34 (bookworm has 2.36). The
# trixie suite is added with pin priority 50, so nothing upgrades from it by itself, and only the
# plugin is taken from the package (dpkg -x): bookworm's v1 `docker-compose` stays for the v1 tests.
COMPOSE_PLUGIN=/usr/libexec/docker/cli-plugins/docker-compose
if ! "$COMPOSE_PLUGIN" version >/dev/null 2>&1; then
  bench_log "installing the Compose v2 plugin from Debian trixie (pinned at priority 50)"
  if [ ! -f /etc/apt/sources.list.d/handoff-trixie.sources ]; then
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      >/etc/apt/sources.list.d/handoff-trixie.sources
  fi
  printf 'Package: *\nPin: release n=trixie\nPin-Priority: 50\n' >/etc/apt/preferences.d/handoff-trixie
  apt-get update -qq
  tmp="$(mktemp -d)"
  (cd "$tmp" && apt-get download -qq docker-compose/trixie 2>/dev/null) || bench_die "apt-get download docker-compose/trixie failed"
  dpkg -x "$tmp"/docker-compose_*.deb "$tmp/x"
  install -D -m 0755 "$tmp/x/usr/libexec/docker/cli-plugins/docker-compose" "$COMPOSE_PLUGIN"
  rm -rf "$tmp"
  "$COMPOSE_PLUGIN" version >/dev/null || bench_die "the Compose v2 plugin does not run"
fi

# ---- 2. dockerd -------------------------------------------------------------------------------
if ! DOCKER="$(bench_docker_client)"; then
  if ! pgrep -x dockerd >/dev/null; then
    bench_log "starting dockerd (log /var/log/handoff-dockerd.log)"
    # 9>&-: the daemon must not inherit (and hold forever) the setup lock.
    setsid nohup /usr/sbin/dockerd >>/var/log/handoff-dockerd.log 2>&1 </dev/null 9>&- &
  fi
  for _ in $(seq 1 120); do
    DOCKER="$(bench_docker_client)" && break
    sleep 0.5
  done
  [ -n "${DOCKER:-}" ] || bench_die "dockerd did not answer within 60 s; see /var/log/handoff-dockerd.log"
fi
DOCKER_SERVER="$("$DOCKER" version --format '{{.Server.Version}}')"
COMPOSE_V1_VERSION="$(docker-compose version --short 2>/dev/null)" || bench_die "docker-compose (v1) version failed"
COMPOSE_V1_VERSION="${COMPOSE_V1_VERSION#v}"
COMPOSE_VERSION="$("$DOCKER" compose version --short 2>/dev/null)" || bench_die "docker compose (v2) version failed"
COMPOSE_VERSION="${COMPOSE_VERSION#v}"

# ---- 3. deploy user ---------------------------------------------------------------------------
if ! id "$DEPLOY" >/dev/null 2>&1; then
  useradd -m -d "$DEPLOY_HOME" -s /bin/bash -G docker "$DEPLOY"
fi
id -nG "$DEPLOY" | tr ' ' '\n' | grep -qx docker || usermod -aG docker "$DEPLOY"
# useradd leaves the account locked ('!'); sshd with UsePAM no refuses locked accounts.
if [ "$(getent shadow "$DEPLOY" | cut -d: -f2)" != '*' ]; then usermod -p '*' "$DEPLOY"; fi

# ---- 4. keys ----------------------------------------------------------------------------------
mkdir -p "$SSHD_DIR"
chmod 0700 "$(dirname "$SSHD_DIR")" "$SSHD_DIR"
if [ -d "$BENCH_DIR/sshd" ] && [ ! -L "$BENCH_DIR/sshd" ]; then
  # Earlier layout: host keys were in .bench/sshd. Keep them (known_hosts stay valid).
  for f in "$BENCH_DIR"/sshd/*_key "$BENCH_DIR"/sshd/*_key.pub; do
    [ -e "$f" ] && [ ! -e "$SSHD_DIR/$(basename "$f")" ] && cp -p "$f" "$SSHD_DIR/"
  done
  rm -rf "$BENCH_DIR/sshd"
fi
[ "$(readlink "$BENCH_DIR/sshd" 2>/dev/null)" = "$SSHD_DIR" ] || { rm -f "$BENCH_DIR/sshd"; ln -s "$SSHD_DIR" "$BENCH_DIR/sshd"; }
for t in ed25519 ecdsa rsa; do
  [ -s "$SSHD_DIR/ssh_host_${t}_key" ] || ssh-keygen -q -t "$t" -N '' -C "handoff-bench-host" -f "$SSHD_DIR/ssh_host_${t}_key"
done
[ -s "$SSHD_DIR/jump_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -C "handoff-bench-jump" -f "$SSHD_DIR/jump_host_ed25519_key"

newkey() { # file, ssh-keygen args...
  local f="$BENCH_DIR/$1"; shift
  [ -s "$f" ] && [ -s "$f.pub" ] && return 0
  rm -f "$f" "$f.pub"
  ssh-keygen -q "$@" -C "handoff-bench-$(basename "$f")" -f "$f"
}
newkey id_ed25519 -t ed25519 -N ''
if [ ! -s "$BENCH_DIR/passphrase" ] || [ ! -s "$BENCH_DIR/id_ed25519_enc" ]; then
  rm -f "$BENCH_DIR/id_ed25519_enc" "$BENCH_DIR/id_ed25519_enc.pub"
  head -c 18 /dev/urandom | base64 | tr '+/' '-_' >"$BENCH_DIR/passphrase.tmp"
  mv "$BENCH_DIR/passphrase.tmp" "$BENCH_DIR/passphrase"
fi
newkey id_ed25519_enc -t ed25519 -N "$(cat "$BENCH_DIR/passphrase")"
newkey id_ecdsa -t ecdsa -b 256 -N ''
newkey id_rsa -t rsa -b 3072 -m PEM -N ''
if [ ! -s "$BENCH_DIR/id_pkcs8" ] || [ ! -s "$BENCH_DIR/id_pkcs8.pub" ]; then
  rm -f "$BENCH_DIR/id_pkcs8" "$BENCH_DIR/id_pkcs8.pub"
  ssh-keygen -q -t rsa -b 2048 -N '' -C handoff-bench-id_pkcs8 -f "$BENCH_DIR/id_pkcs8.tmp"
  # Convert the private key to unencrypted PKCS#8 PEM ("BEGIN PRIVATE KEY").
  ssh-keygen -q -p -N '' -m PKCS8 -f "$BENCH_DIR/id_pkcs8.tmp" >/dev/null
  if ! head -1 "$BENCH_DIR/id_pkcs8.tmp" | grep -q 'BEGIN PRIVATE KEY'; then
    bench_die "id_pkcs8 conversion did not produce a PKCS#8 key"
  fi
  mv "$BENCH_DIR/id_pkcs8.tmp.pub" "$BENCH_DIR/id_pkcs8.pub"
  mv "$BENCH_DIR/id_pkcs8.tmp" "$BENCH_DIR/id_pkcs8"
fi
newkey wrong_key -t ed25519 -N ''
for k in id_ed25519 id_ed25519_enc id_ecdsa id_rsa id_pkcs8 wrong_key; do
  chown "$OWNER" "$BENCH_DIR/$k" "$BENCH_DIR/$k.pub"
  chmod 0600 "$BENCH_DIR/$k"
  chmod 0644 "$BENCH_DIR/$k.pub"
done
chown "$OWNER" "$BENCH_DIR/passphrase"
chmod 0600 "$BENCH_DIR/passphrase"

# authorized_keys: every client key but wrong_key. Lines already there (another checkout's keys) are
# kept; this checkout's wrong_key is removed if present.
install -d -o "$DEPLOY" -g "$DEPLOY" -m 0700 "$DEPLOY_HOME/.ssh"
AUTH="$DEPLOY_HOME/.ssh/authorized_keys"
wrong="$(cut -d' ' -f2 "$BENCH_DIR/wrong_key.pub")"
want="$( { [ -f "$AUTH" ] && cat "$AUTH"; cat "$BENCH_DIR"/{id_ed25519,id_ed25519_enc,id_ecdsa,id_rsa,id_pkcs8}.pub; } \
  | awk -v w="$wrong" 'NF && $2 != w && !seen[$2]++')"
if [ ! -f "$AUTH" ] || [ "$(cat "$AUTH")" != "$want" ]; then
  printf '%s\n' "$want" >"$AUTH.tmp"
  mv "$AUTH.tmp" "$AUTH"
fi
chown "$DEPLOY:$DEPLOY" "$AUTH"
chmod 0600 "$AUTH"

# ---- 5. sshd ----------------------------------------------------------------------------------
mkdir -p /run/sshd
chmod 0755 /run/sshd

sshd_config() { # port, hostkey...
  local port="$1" name="$2"; shift 2
  echo "# handoff bench sshd ($name), written by scripts/bench/setup.sh"
  echo "Port $port"
  echo "ListenAddress 127.0.0.1"
  local k; for k in "$@"; do echo "HostKey $k"; done
  cat <<EOF
PidFile $SSHD_DIR/sshd-$name.pid
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin no
AuthorizedKeysFile /home/deploy/.ssh/authorized_keys
StrictModes yes
AllowUsers deploy
LogLevel VERBOSE
Subsystem sftp /usr/lib/openssh/sftp-server
EOF
}

listening() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; }
# PIDs listening on 127.0.0.1:$1 whose command line names sshd config $2.
bench_sshd_pids() {
  local p
  for p in $(ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
    tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q "sshd.* -f [^ ]*/$2 " && echo "$p"
  done
  return 0
}

ensure_sshd() { # name, port, hostkey...
  local name="$1" port="$2"; shift 2
  local cfg="$SSHD_DIR/sshd-$name.conf" pidf="$SSHD_DIR/sshd-$name.pid" new pid="" changed=0
  new="$(sshd_config "$port" "$name" "$@")"
  if [ ! -f "$cfg" ] || [ "$(cat "$cfg")" != "$new" ]; then
    printf '%s\n' "$new" >"$cfg.tmp"
    /usr/sbin/sshd -t -f "$cfg.tmp" || bench_die "sshd -t rejected $cfg.tmp"
    mv "$cfg.tmp" "$cfg"
    changed=1
  fi
  pid="$(bench_sshd_pids "$port" "sshd-$name.conf" | head -1)"
  if [ -n "$pid" ]; then
    # (sshd rewrites its title: "sshd: /usr/sbin/sshd -f <cfg> -E <log> [listener] ...")
    [ "$changed" = 0 ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "-f $cfg -E " && return 0
    # Only the listener: sessions in progress are separate processes and carry on.
    bench_log "restarting sshd-$name (config changed)"
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  if listening "$port"; then bench_die "127.0.0.1:$port is taken by a process that is not the bench sshd-$name"; fi
  /usr/sbin/sshd -t -f "$cfg" || bench_die "sshd -t rejected $cfg"
  /usr/sbin/sshd -f "$cfg" -E "$SSHD_DIR/sshd-$name.log" 9>&-
  for _ in $(seq 1 50); do listening "$port" && break; sleep 0.1; done
  listening "$port" || bench_die "sshd-$name is not listening on 127.0.0.1:$port; see $SSHD_DIR/sshd-$name.log"
  bench_log "sshd-$name listening on 127.0.0.1:$port"
}
ensure_sshd main "$SSH_PORT" "$SSHD_DIR/ssh_host_ed25519_key" "$SSHD_DIR/ssh_host_ecdsa_key" "$SSHD_DIR/ssh_host_rsa_key"
ensure_sshd jump "$JUMP_PORT" "$SSHD_DIR/jump_host_ed25519_key"

# ---- 6. known_hosts, fingerprints, bench.json / bench.env -------------------------------------
write_if_changed() { # file (content on stdin)
  local tmp="$1.tmp.$$"
  cat >"$tmp"
  if [ -f "$1" ] && cmp -s "$tmp" "$1"; then rm -f "$tmp"; else mv "$tmp" "$1"; fi
  chown "$OWNER" "$1"
  chmod 0644 "$1"
}
for t in ed25519 ecdsa rsa; do
  printf '[127.0.0.1]:%s %s\n' "$SSH_PORT" "$(cut -d' ' -f1,2 "$SSHD_DIR/ssh_host_${t}_key.pub")"
done | write_if_changed "$BENCH_DIR/known_hosts"
printf '[127.0.0.1]:%s %s\n' "$JUMP_PORT" "$(cut -d' ' -f1,2 "$SSHD_DIR/jump_host_ed25519_key.pub")" \
  | write_if_changed "$BENCH_DIR/jump_known_hosts"
if [ ! -s "$BENCH_DIR/known_hosts_hashed" ] || [ "$BENCH_DIR/known_hosts" -nt "$BENCH_DIR/known_hosts_hashed" ]; then
  cp "$BENCH_DIR/known_hosts" "$BENCH_DIR/known_hosts_hashed.tmp"
  ssh-keygen -q -H -f "$BENCH_DIR/known_hosts_hashed.tmp" >/dev/null 2>&1
  rm -f "$BENCH_DIR/known_hosts_hashed.tmp.old"
  write_if_changed "$BENCH_DIR/known_hosts_hashed" <"$BENCH_DIR/known_hosts_hashed.tmp"
  rm -f "$BENCH_DIR/known_hosts_hashed.tmp"
fi
FP="$(ssh-keygen -l -f "$SSHD_DIR/ssh_host_ed25519_key.pub" | awk '{print $2}')"
JUMP_FP="$(ssh-keygen -l -f "$SSHD_DIR/jump_host_ed25519_key.pub" | awk '{print $2}')"

BENCH_DIR="$BENCH_DIR" SSH_PORT="$SSH_PORT" JUMP_PORT="$JUMP_PORT" DEPLOY="$DEPLOY" FP="$FP" \
JUMP_FP="$JUMP_FP" DOCKER="$DOCKER" COMPOSE_VERSION="$COMPOSE_VERSION" COMPOSE_V1_VERSION="$COMPOSE_V1_VERSION" DOCKER_SERVER="$DOCKER_SERVER" SCRIPT_DIR="$BENCH_SCRIPT_DIR" \
APP_REPO="$BENCH_APP_REPO" HAPROXY_IMAGE="$BENCH_HAPROXY_IMAGE" CADDY_IMAGE="$BENCH_CADDY_IMAGE" \
NGINX_IMAGE="$BENCH_NGINX_IMAGE" node -e '
const fs = require("fs");
const e = process.env, d = e.BENCH_DIR;
const b = {
  host: "127.0.0.1",
  port: Number(e.SSH_PORT),
  jumpPort: Number(e.JUMP_PORT),
  user: e.DEPLOY,
  keys: {
    ed25519: d + "/id_ed25519",
    ed25519_enc: d + "/id_ed25519_enc",
    ecdsa: d + "/id_ecdsa",
    rsa: d + "/id_rsa",
    pkcs8: d + "/id_pkcs8",
    wrong: d + "/wrong_key",
  },
  passphrase: fs.readFileSync(d + "/passphrase", "utf8").trim(),
  knownHosts: d + "/known_hosts",
  knownHostsHashed: d + "/known_hosts_hashed",
  jumpKnownHosts: d + "/jump_known_hosts",
  fingerprint: e.FP,
  jumpFingerprint: e.JUMP_FP,
  // handoff drives v2 (compose: auto picks it); v1 stays for the v1 pass and the upgrade test.
  composeCommand: "docker compose",
  composeVersion: e.COMPOSE_VERSION,
  composeV1Command: "docker-compose",
  composeV1Version: e.COMPOSE_V1_VERSION,
  dockerVersion: e.DOCKER_SERVER,
  dockerCommand: e.DOCKER,
  images: {
    appBase: e.APP_REPO + ":base",
    appV1: e.APP_REPO + ":v1",
    appV2: e.APP_REPO + ":v2",
    haproxy: e.HAPROXY_IMAGE,
    caddy: e.CADDY_IMAGE,
    nginx: e.NGINX_IMAGE,
  },
  makeAppImage: e.SCRIPT_DIR + "/make-app-image.sh",
  dir: d,
};
process.stdout.write(JSON.stringify(b, null, 2) + "\n");
' | write_if_changed "$BENCH_DIR/bench.json"

{
  echo "# handoff bench facts (same as bench.json), written by scripts/bench/setup.sh"
  printf 'export BENCH_DIR=%q\n' "$BENCH_DIR"
  printf 'export BENCH_HOST=%q\n' 127.0.0.1
  printf 'export BENCH_PORT=%q\n' "$SSH_PORT"
  printf 'export BENCH_JUMP_PORT=%q\n' "$JUMP_PORT"
  printf 'export BENCH_USER=%q\n' "$DEPLOY"
  printf 'export BENCH_KEY_ED25519=%q\n' "$BENCH_DIR/id_ed25519"
  printf 'export BENCH_KEY_ED25519_ENC=%q\n' "$BENCH_DIR/id_ed25519_enc"
  printf 'export BENCH_KEY_ECDSA=%q\n' "$BENCH_DIR/id_ecdsa"
  printf 'export BENCH_KEY_RSA=%q\n' "$BENCH_DIR/id_rsa"
  printf 'export BENCH_KEY_PKCS8=%q\n' "$BENCH_DIR/id_pkcs8"
  printf 'export BENCH_KEY_WRONG=%q\n' "$BENCH_DIR/wrong_key"
  printf 'export BENCH_PASSPHRASE=%q\n' "$(cat "$BENCH_DIR/passphrase")"
  printf 'export BENCH_KNOWN_HOSTS=%q\n' "$BENCH_DIR/known_hosts"
  printf 'export BENCH_KNOWN_HOSTS_HASHED=%q\n' "$BENCH_DIR/known_hosts_hashed"
  printf 'export BENCH_JUMP_KNOWN_HOSTS=%q\n' "$BENCH_DIR/jump_known_hosts"
  printf 'export BENCH_FINGERPRINT=%q\n' "$FP"
  printf 'export BENCH_JUMP_FINGERPRINT=%q\n' "$JUMP_FP"
  printf 'export BENCH_COMPOSE_COMMAND=%q\n' 'docker compose'
  printf 'export BENCH_COMPOSE_VERSION=%q\n' "$COMPOSE_VERSION"
  printf 'export BENCH_COMPOSE_V1_COMMAND=%q\n' docker-compose
  printf 'export BENCH_COMPOSE_V1_VERSION=%q\n' "$COMPOSE_V1_VERSION"
  printf 'export BENCH_DOCKER_COMMAND=%q\n' "$DOCKER"
  printf 'export BENCH_IMAGE_APP_BASE=%q\n' "$BENCH_APP_REPO:base"
  printf 'export BENCH_IMAGE_APP_V1=%q\n' "$BENCH_APP_REPO:v1"
  printf 'export BENCH_IMAGE_APP_V2=%q\n' "$BENCH_APP_REPO:v2"
  printf 'export BENCH_IMAGE_HAPROXY=%q\n' "$BENCH_HAPROXY_IMAGE"
  printf 'export BENCH_IMAGE_CADDY=%q\n' "$BENCH_CADDY_IMAGE"
  printf 'export BENCH_IMAGE_NGINX=%q\n' "$BENCH_NGINX_IMAGE"
  printf 'export BENCH_MAKE_APP_IMAGE=%q\n' "$BENCH_SCRIPT_DIR/make-app-image.sh"
} | write_if_changed "$BENCH_DIR/bench.env"

# SSH check: deploy can log in by key and run docker; the jump host forwards; wrong_key is refused.
SSH_OPTS=(-o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o ConnectTimeout=10 -o LogLevel=ERROR)
ssh "${SSH_OPTS[@]}" -p "$SSH_PORT" -i "$BENCH_DIR/id_ed25519" -o UserKnownHostsFile="$BENCH_DIR/known_hosts" \
  "$DEPLOY@127.0.0.1" docker ps >/dev/null || bench_die "ssh deploy@127.0.0.1:$SSH_PORT docker ps failed"
ssh "${SSH_OPTS[@]}" -p "$SSH_PORT" -i "$BENCH_DIR/id_ed25519" -o UserKnownHostsFile="$BENCH_DIR/known_hosts" \
  -o ProxyCommand="ssh ${SSH_OPTS[*]} -p $JUMP_PORT -i $BENCH_DIR/id_ed25519 -o UserKnownHostsFile=$BENCH_DIR/jump_known_hosts -W %h:%p $DEPLOY@127.0.0.1" \
  "$DEPLOY@127.0.0.1" true || bench_die "ssh through the jump host 127.0.0.1:$JUMP_PORT failed"
if ssh "${SSH_OPTS[@]}" -p "$SSH_PORT" -i "$BENCH_DIR/wrong_key" -o UserKnownHostsFile="$BENCH_DIR/known_hosts" \
  "$DEPLOY@127.0.0.1" true 2>/dev/null; then bench_die "wrong_key was accepted"; fi

# ---- 7. images --------------------------------------------------------------------------------
if [ "$FORCE_IMAGES" = 1 ]; then
  bash "$BENCH_SCRIPT_DIR/build-images.sh" all --force
else
  bash "$BENCH_SCRIPT_DIR/build-images.sh" all
fi
chown "$OWNER" "$BENCH_APP_TAR" "$BENCH_APP_INPUTS" 2>/dev/null || true

# ---- 7b. Podman (issue #17) -------------------------------------------------------------------
# bookworm's podman 4.3 beside Docker, its Docker-compatible API socket for the deploy user, a
# healthcheck ticker where systemd is missing, and the test images in its storage.
bash "$BENCH_SCRIPT_DIR/podman.sh" "$DEPLOY"
PODMAN_SERVER="$(DOCKER_HOST=unix:///run/podman/podman.sock "$DOCKER" version --format '{{.Server.Version}}')"
# ---- 7b. swarm -------------------------------------------------------------------------------
# A single-node swarm on the same engine for the Swarm target's test (loopback, own address pool).
bash "$BENCH_SCRIPT_DIR/swarm.sh"
# ---- 7c. extra hosts -----------------------------------------------------------------------
# Two more machines for fleet and multi-node tests: h1, h2, each a network and mount namespace with
# its own dockerd and sshd (scripts/bench/hosts.sh; facts in .bench/hosts.json).
bash "$BENCH_SCRIPT_DIR/hosts.sh" up

# ---- 8. summary -------------------------------------------------------------------------------
ms=$(( ($(date +%s%N) - T0) / 1000000 ))
cat >&2 <<EOF
[bench] ready in ${ms} ms
  docker:    $DOCKER (server $DOCKER_SERVER)
  compose:   v2 $COMPOSE_VERSION (\`docker compose\`, what handoff picks by default), v1 $COMPOSE_V1_VERSION (\`docker-compose\`)
  podman:    $PODMAN_SERVER (rootful, unix:///run/podman/podman.sock, group podman; \`engine: podman\`)
  ssh:       deploy@127.0.0.1:$SSH_PORT ($FP), jump 127.0.0.1:$JUMP_PORT ($JUMP_FP)
  hosts:     deploy@10.78.0.11 (h1), deploy@10.78.0.12 (h2): own engines and sshd (.bench/hosts.json)
  images:    $BENCH_APP_REPO:{base,v1,v2}, $BENCH_HAPROXY_IMAGE, $BENCH_CADDY_IMAGE, $BENCH_NGINX_IMAGE
  new image: scripts/bench/make-app-image.sh $BENCH_APP_REPO:v3 v3
  facts:     $BENCH_DIR/bench.json, $BENCH_DIR/bench.env
EOF
