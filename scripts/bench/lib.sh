# shellcheck shell=bash
# Shared helpers for the handoff test bench scripts (sourced, not run).

BENCH_SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BENCH_REPO="$(cd "$BENCH_SCRIPT_DIR/../.." && pwd)"
BENCH_DIR="$BENCH_REPO/.bench"
BENCH_IMAGES_DIR="$BENCH_DIR/images"
BENCH_APP_TAR="$BENCH_IMAGES_DIR/app-rootfs.tar"
BENCH_APP_INPUTS="$BENCH_IMAGES_DIR/app-rootfs.inputs"
BENCH_APP_REPO="handoff-test-app"
BENCH_HAPROXY_IMAGE="handoff-test-haproxy:latest"
BENCH_CADDY_IMAGE="handoff-test-caddy:latest"
BENCH_NGINX_IMAGE="handoff-test-nginx:latest"
# The newest Caddy and nginx in Debian's archive (sid): what users of the official images run today
# (nginx >= 1.27.4 has keepalive_min_timeout; bookworm's 1.22 and trixie's 1.26 do not).
BENCH_CADDY_NEW_IMAGE="handoff-test-caddy:sid"
BENCH_NGINX_NEW_IMAGE="handoff-test-nginx:sid"
# A private apt state for sid: the machine's own sources never list it, so nothing installs or
# upgrades from it; packages are only downloaded and unpacked into image root filesystems.
BENCH_SID_DIR=/var/lib/handoff-bench/apt-sid
BENCH_LABEL="org.handoff.bench.inputs"

bench_log() { printf '[bench] %s\n' "$*" >&2; }
bench_die() { printf '[bench] ERROR: %s\n' "$*" >&2; exit 1; }

# Pick a docker client that talks to the daemon. /usr/local/bin/docker (a newer CLI that may be
# preinstalled) comes first in PATH; Debian's docker.io installs /usr/bin/docker. Both negotiate the
# API version with the daemon; prefer the one on PATH when it works.
bench_docker_client() {
  local c
  for c in "$(command -v docker 2>/dev/null || true)" /usr/bin/docker /usr/local/bin/docker; do
    [ -n "$c" ] && [ -x "$c" ] || continue
    if "$c" version --format '{{.Server.Version}}' >/dev/null 2>&1; then
      printf '%s\n' "$c"
      return 0
    fi
  done
  return 1
}

# Owner (uid:gid) of the repo: bench files the tests read (client keys, bench.json) belong to them,
# so that a test run as a non-root user (e.g. CI runner after `sudo setup.sh`) can read them.
bench_repo_owner() { stat -c '%u:%g' "$BENCH_REPO"; }

# The node binary baked into the app image: BENCH_NODE if set, else the first `node` on PATH that is
# not under node_modules/ (scripts/test.sh puts node_modules/.bin, with the npm "node" package's
# Node 24, first on PATH; skipping it keeps the image the same however setup.sh is invoked).
bench_host_node() {
  local d
  if [ -n "${BENCH_NODE:-}" ]; then readlink -f "$BENCH_NODE"; return 0; fi
  local IFS=:
  for d in $PATH; do
    case "$d" in *node_modules*|'') continue ;; esac
    if [ -x "$d/node" ]; then readlink -f "$d/node"; return 0; fi
  done
  return 1
}

bench_sid_opts() {
  printf '%s\n' -o Dir::Etc::sourcelist="$BENCH_SID_DIR/sources.list" -o Dir::Etc::sourceparts=- \
    -o Dir::State::Lists="$BENCH_SID_DIR/lists" -o Dir::Cache="$BENCH_SID_DIR/cache"
}
bench_sid_apt() { local o; mapfile -t o < <(bench_sid_opts); apt-get "${o[@]}" "$@"; }

# sid's package lists, refreshed when older than a day.
bench_sid_update() {
  mkdir -p "$BENCH_SID_DIR/lists/partial" "$BENCH_SID_DIR/cache/archives/partial"
  printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main\n' \
    >"$BENCH_SID_DIR/sources.list"
  if [ -z "$(find "$BENCH_SID_DIR/lists" -maxdepth 1 -name '*_Packages*' -mtime -1 2>/dev/null | head -1)" ]; then
    bench_sid_apt update -qq >/dev/null 2>&1 || bench_sid_apt update -qq >/dev/null || bench_die "apt-get update (sid) failed"
  fi
}

# "package version" of each package in sid, one a line.
bench_sid_versions() {
  local o p v
  mapfile -t o < <(bench_sid_opts)
  for p in "$@"; do
    v="$(apt-cache "${o[@]}" madison "$p" 2>/dev/null | awk -F'|' '$3 ~ /sid/ { gsub(/ /, "", $2); print $2; exit }')"
    [ -n "$v" ] || bench_die "no package $p in sid"
    printf '%s %s\n' "$p" "$v"
  done
}

# Download sid's .deb of each package into $1.
bench_sid_download() {
  local dest="$1" p; shift
  mkdir -p "$dest"
  for p in "$@"; do
    (cd "$dest" && bench_sid_apt download -qq "$p/sid" >/dev/null 2>&1) || bench_die "apt-get download $p/sid failed"
  done
}
