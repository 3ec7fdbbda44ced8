# shellcheck shell=bash
# Shared helpers of the proxy lab scripts (sourced). Everything they create is named lab-*; the
# lab network is 10.231.7.0/24 (outside Docker's default address pools, so no clash with the
# networks tests create). Traffic goes only to 127.0.0.1 and to these containers.
set -euo pipefail
LAB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../lib.sh
. "$LAB_DIR/../lib.sh"
DOCKER="$(bench_docker_client)" || bench_die "no docker client can reach the daemon"
LAB_NET=lab-net
LAB_SUBNET=10.231.7.0/24
LAB_PROXY_IP=10.231.7.2
LAB_APP_IMAGE="$BENCH_APP_REPO:v1"
LAB_TMP="${LAB_TMP:-/tmp/lab-proxy.$$}"
LAB_CONTAINERS=()

lab_log() { printf '[lab %s] %s\n' "$(date +%H:%M:%S.%3N)" "$*" >&2; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

lab_cleanup() {
  local c
  for c in "${LAB_CONTAINERS[@]}"; do "$DOCKER" rm -f "$c" >/dev/null 2>&1 || true; done
  "$DOCKER" network rm "$LAB_NET" >/dev/null 2>&1 || true
  rm -rf "$LAB_TMP"
}

lab_net() {
  "$DOCKER" network inspect "$LAB_NET" >/dev/null 2>&1 || "$DOCKER" network create --subnet "$LAB_SUBNET" "$LAB_NET" >/dev/null
  mkdir -p "$LAB_TMP"
}

# lab_run NAME IP [docker run args...] -- IMAGE [cmd...]
lab_run() {
  local name="$1" ip="$2"; shift 2
  "$DOCKER" rm -f "$name" >/dev/null 2>&1 || true
  LAB_CONTAINERS+=("$name")
  "$DOCKER" run -d --name "$name" --hostname "$name" --network "$LAB_NET" --ip "$ip" "$@" >/dev/null
}

# lab_app NAME IP [env...]: an app replica (handoff-test-app:v1), waits until it answers.
lab_app() {
  local name="$1" ip="$2" e args=(); shift 2
  for e in "$@"; do args+=(-e "$e"); done
  lab_run "$name" "$ip" "${args[@]}" "$LAB_APP_IMAGE"
  for _ in $(seq 1 50); do
    "$DOCKER" exec "$name" wget -qO- http://127.0.0.1:8080/health >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  bench_die "$name did not answer"
}

# IPv4 address as it appears in /proc/net/tcp (little-endian hex), and in tcp6 (v4-mapped).
hex_ip4() { local IFS=.; set -- $1; printf '%02X%02X%02X%02X' "$4" "$3" "$2" "$1"; }

# estab CONTAINER PEER_IP PORT: ESTABLISHED TCP sockets in CONTAINER's network namespace whose local
# port is PORT and whose peer is PEER_IP. Read on the host through /proc/<pid>/net/tcp{,6} (no tool
# needed in the container; works as a non-root member of the docker group too).
estab() {
  local pid peer port
  pid="$("$DOCKER" inspect -f '{{.State.Pid}}' "$1")"
  peer="$(hex_ip4 "$2")"
  port="$(printf '%04X' "$3")"
  cat "/proc/$pid/net/tcp" "/proc/$pid/net/tcp6" 2>/dev/null | awk -v p="$peer" -v port="$port" '
    $4 == "01" {
      split($2, l, ":"); split($3, r, ":")
      ra = r[1]; if (length(ra) == 32) ra = substr(ra, 25, 8)   # tcp6: ::ffff:a.b.c.d
      if (l[2] == port && ra == p) n++
    }
    END { print n + 0 }'
}

# Every ESTABLISHED socket in CONTAINER's namespace, as "local -> peer" (decoded), for the report.
estab_list() {
  local pid _sl l r st _rest
  pid="$("$DOCKER" inspect -f '{{.State.Pid}}' "$1")"
  dec() { local h="${1%:*}" p="${1#*:}"; printf '%d.%d.%d.%d:%d' "0x${h:6:2}" "0x${h:4:2}" "0x${h:2:2}" "0x${h:0:2}" "0x$p"; }
  while read -r _sl l r st _rest; do
    [ "$st" = 01 ] || continue
    printf '%s -> %s\n' "$(dec "$l")" "$(dec "$r")"
  done <"/proc/$pid/net/tcp"
}

# ---- Caddy ------------------------------------------------------------------------------------
# The admin API listens on a unix socket in a host directory mounted into the container (what
# handoff reaches through SSH streamlocal forwarding). Over a unix socket Caddy 2.6 accepts only
# an empty Host header: "Host: " (or HTTP/1.0 without Host); "Host: localhost" gets
# {"error":"host not allowed: localhost"}.
caddy_api() { # METHOD PATH [BODY]
  local m="$1" p="$2"
  if [ $# -ge 3 ]; then
    curl -sS --max-time 30 --unix-socket "$LAB_TMP/caddy-admin/admin.sock" -H 'Host: ' -X "$m" \
      -H 'Content-Type: application/json' --data-binary "$3" "http://caddy$p"
  else
    curl -sS --max-time 30 --unix-socket "$LAB_TMP/caddy-admin/admin.sock" -H 'Host: ' -X "$m" "http://caddy$p"
  fi
}

# lab_caddy [extra reverse_proxy lines...]: Caddy on $LAB_PROXY_IP, published on 127.0.0.1:18080,
# Caddyfile in $LAB_TMP/caddy (mounted on /etc/caddy), upstreams in the imported file
# $LAB_TMP/caddy/handoff/app.upstreams (one `to` line), admin socket in $LAB_TMP/caddy-admin.
lab_caddy() {
  local extra="" l
  for l in "$@"; do extra+="		$l"$'\n'; done
  mkdir -p "$LAB_TMP/caddy/handoff" "$LAB_TMP/caddy-admin"
  chmod 0700 "$LAB_TMP/caddy-admin"
  [ -f "$LAB_TMP/caddy/handoff/app.upstreams" ] || printf 'to 10.231.7.11:8080 10.231.7.12:8080\n' >"$LAB_TMP/caddy/handoff/app.upstreams"
  cat >"$LAB_TMP/caddy/Caddyfile" <<CADDYFILE
{
	admin unix//run/caddy-admin/admin.sock
}
:8080 {
	reverse_proxy {
		import /etc/caddy/handoff/app.upstreams
		lb_policy round_robin
		lb_try_duration 5s
		lb_try_interval 250ms
$extra	}
}
CADDYFILE
  # umask 0000: the socket is created 0777; access is controlled by the 0700 directory instead
  # (a root-owned 0755 socket refuses the deploy user: "connect to ... failed: Permission denied").
  lab_run lab-caddy "$LAB_PROXY_IP" -p 127.0.0.1:18080:8080 -v "$LAB_TMP/caddy:/etc/caddy" \
    -v "$LAB_TMP/caddy-admin:/run/caddy-admin" "$BENCH_CADDY_IMAGE" \
    sh -c 'umask 0000 && exec caddy run --config /etc/caddy/Caddyfile --adapter caddyfile'
  for _ in $(seq 1 50); do
    [ -S "$LAB_TMP/caddy-admin/admin.sock" ] && caddy_api GET /config/ >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  "$DOCKER" logs lab-caddy >&2
  bench_die "lab-caddy did not start"
}

# Replace the upstream list, write-temp-then-rename (what handoff would do).
caddy_render_upstreams() {
  local f="$LAB_TMP/caddy/handoff/app.upstreams"
  printf 'to %s\n' "$*" >"$f.tmp"
  mv -f "$f.tmp" "$f"
}

# Apply the Caddyfile on disk through the admin API (what `caddy reload` does): POST /load.
caddy_load() {
  curl -sS --max-time 30 --unix-socket "$LAB_TMP/caddy-admin/admin.sock" -H 'Host: ' -X POST \
    -H 'Content-Type: text/caddyfile' --data-binary "@$LAB_TMP/caddy/Caddyfile" http://caddy/load
}

# ---- nginx ------------------------------------------------------------------------------------
# lab_nginx [extra http-level lines...]: nginx on $LAB_PROXY_IP, published on 127.0.0.1:18081,
# nginx.conf in $LAB_TMP/nginx (mounted on /etc/nginx/lab), upstream block in the included file
# $LAB_TMP/nginx/handoff/upstreams/app.conf.
lab_nginx() {
  local extra="" l
  for l in "$@"; do extra+="    $l"$'\n'; done
  mkdir -p "$LAB_TMP/nginx/handoff/upstreams"
  [ -f "$LAB_TMP/nginx/handoff/upstreams/app.conf" ] || nginx_render_upstreams 10.231.7.11:8080 10.231.7.12:8080
  cat >"$LAB_TMP/nginx/nginx.conf" <<NGINXCONF
user www-data;
worker_processes 2;
pid /run/nginx.pid;
error_log stderr notice;
events { worker_connections 512; }
http {
    access_log off;
    include /etc/nginx/lab/handoff/upstreams/*.conf;
$extra    server {
        listen 8080;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 3;
            proxy_next_upstream_timeout 10s;
        }
    }
}
NGINXCONF
  lab_run lab-nginx "$LAB_PROXY_IP" -p 127.0.0.1:18081:8080 -v "$LAB_TMP/nginx:/etc/nginx/lab" \
    "$BENCH_NGINX_IMAGE" nginx -c /etc/nginx/lab/nginx.conf -g 'daemon off;'
  for _ in $(seq 1 50); do
    curl -fsS --max-time 2 http://127.0.0.1:18081/ >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  "$DOCKER" logs lab-nginx >&2
  bench_die "lab-nginx did not start"
}

nginx_render_upstreams() {
  local f="$LAB_TMP/nginx/handoff/upstreams/app.conf" a
  {
    echo "upstream app {"
    for a in "$@"; do echo "    server $a max_fails=0;"; done
    echo "    keepalive 16;"
    echo "}"
  } >"$f.tmp"
  mv -f "$f.tmp" "$f"
}

# Worker PIDs (children of the master, PID 1) as seen inside the container.
nginx_workers() { "$DOCKER" exec lab-nginx sh -c "ps -o pid,ppid,args | awk '\$2 == 1 && /worker process/ { print \$1 }'" | sort -n | tr '\n' ' '; }
nginx_shutting() { "$DOCKER" exec lab-nginx sh -c "ps -o pid,args | awk '/is shutting down/ && !/awk/ { print \$1 }'" | tr '\n' ' '; }
