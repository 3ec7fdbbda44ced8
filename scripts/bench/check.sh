#!/usr/bin/env bash
# Smoke check of the bench (after scripts/bench/setup.sh), ~20 s. Exercises, as the deploy user over
# SSH: a Compose v1 project with 2 app replicas (wget healthcheck) behind the HAProxy image (Docker
# DNS, server-template), a hitless master-worker reload (docker kill -s USR2), the HAProxy admin
# socket reached through OpenSSH stream-local forwarding, a graceful app stop. Cleans up after itself.
set -euo pipefail
# shellcheck source=lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
[ -s "$BENCH_DIR/bench.env" ] || bench_die "no $BENCH_DIR/bench.env: run scripts/bench/setup.sh first"
# shellcheck disable=SC1091
. "$BENCH_DIR/bench.env"

P="handoffcheck$$"
REMOTE_DIR="/home/$BENCH_USER/$P"
SOCK="$(mktemp -u /tmp/handoff-check-admin.XXXXXX).sock"
SSH_BASE=(ssh -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o LogLevel=ERROR
  -o UserKnownHostsFile="$BENCH_KNOWN_HOSTS" -i "$BENCH_KEY_ED25519" -p "$BENCH_PORT")
SSH=("${SSH_BASE[@]}" "$BENCH_USER@$BENCH_HOST")
FWD_PID=""

cleanup() {
  [ -n "$FWD_PID" ] && kill "$FWD_PID" 2>/dev/null || true
  rm -f "$SOCK"
  "${SSH[@]}" "cd $REMOTE_DIR 2>/dev/null && $BENCH_COMPOSE_COMMAND -p $P down -v -t 5 >/dev/null 2>&1; rm -rf $REMOTE_DIR" || true
}
trap cleanup EXIT

"${SSH[@]}" "mkdir -p $REMOTE_DIR/haproxy $REMOTE_DIR/run && cat >$REMOTE_DIR/docker-compose.yml" <<EOF
version: "2.4"
services:
  app:
    image: $BENCH_IMAGE_APP_V1
    scale: 2
    stop_signal: SIGTERM
    stop_grace_period: 15s
    healthcheck:
      test: ["CMD", "wget", "-qO-", "http://127.0.0.1:8080/health"]
      interval: 1s
      timeout: 2s
      retries: 3
      start_period: 5s
  proxy:
    image: $BENCH_IMAGE_HAPROXY
    stop_signal: SIGUSR1
    ports: ["127.0.0.1::8080"]
    volumes:
      - ./haproxy:/usr/local/etc/haproxy:ro
      - ./run:/run/haproxy
    healthcheck:
      test: ["CMD-SHELL", "wget -qO- http://127.0.0.1:8080/ >/dev/null"]
      interval: 1s
      retries: 10
EOF
"${SSH[@]}" "cat >$REMOTE_DIR/haproxy/haproxy.cfg" <<'EOF'
global
    log stdout format raw local0
    stats socket /run/haproxy/admin.sock mode 666 level admin expose-fd listeners
resolvers docker
    nameserver dns 127.0.0.11:53
    hold valid 1s
defaults
    mode http
    log global
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    default-server init-addr none resolvers docker check inter 500ms
frontend web
    bind :8080
    default_backend app
backend app
    balance roundrobin
    option httpchk GET /health
    server-template app 4 app:8080
EOF

"${SSH[@]}" "cd $REMOTE_DIR && $BENCH_COMPOSE_COMMAND -p $P up -d" >/dev/null 2>&1 || bench_die "docker-compose up failed"
proxy_id="$("${SSH[@]}" "cd $REMOTE_DIR && $BENCH_COMPOSE_COMMAND -p $P ps -q proxy")"
port="$(docker port "$proxy_id" 8080/tcp | head -1 | sed 's/.*://')"

# Wait (wall clock, 30 s) until both replicas are healthy and the proxy spreads requests over them.
deadline=$(( $(date +%s) + 30 ))
hosts=""
while :; do
  hosts="$(for _ in 1 2 3 4 5 6; do curl -fsS --max-time 2 "http://127.0.0.1:$port/" 2>/dev/null | sed 's/.*host=//'; done | sort -u | tr '\n' ' ')"
  healthy="$(docker ps --filter "label=com.docker.compose.project=$P" --filter health=healthy -q | wc -l)"
  [ "$(wc -w <<<"$hosts")" -ge 2 ] && [ "$healthy" -ge 3 ] && break
  [ "$(date +%s)" -lt "$deadline" ] || bench_die "proxy did not reach 2 healthy replicas (hosts: '$hosts', healthy: $healthy)"
  sleep 0.5
done
bench_log "compose v1 + haproxy: ok (replicas answering through 127.0.0.1:$port: $hosts)"

# Hitless reload while a client hammers the proxy.
fails=0
( for _ in $(seq 1 60); do curl -fsS --max-time 3 "http://127.0.0.1:$port/" >/dev/null || echo x; done ) >"$SOCK.fails" &
loader=$!
sleep 0.3
docker kill -s USR2 "$proxy_id" >/dev/null
wait "$loader"
fails="$(wc -l <"$SOCK.fails")"; rm -f "$SOCK.fails"
[ "$fails" = 0 ] || bench_die "$fails failed request(s) across an haproxy USR2 reload"
bench_log "haproxy USR2 reload: ok (60 requests, 0 failed)"

# Admin socket through stream-local forwarding (OpenSSH default AllowStreamLocalForwarding yes).
"${SSH_BASE[@]}" -N -o ExitOnForwardFailure=yes -L "$SOCK:$REMOTE_DIR/run/admin.sock" "$BENCH_USER@$BENCH_HOST" &
FWD_PID=$!
for _ in $(seq 1 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
stat_out="$(echo "show servers state app" | socat -t 2 - "UNIX-CONNECT:$SOCK")" || bench_die "admin socket via ssh -L failed"
grep -q 'app1' <<<"$stat_out" || bench_die "unexpected 'show servers state' output: $stat_out"
bench_log "admin socket via ssh stream-local forwarding: ok"

# Graceful stop of one replica by id.
app_id="$("${SSH[@]}" "cd $REMOTE_DIR && $BENCH_COMPOSE_COMMAND -p $P ps -q app" | head -1)"
docker stop -t 15 "$app_id" >/dev/null
code="$(docker inspect -f '{{.State.ExitCode}}' "$app_id")"
[ "$code" = 0 ] || bench_die "app replica exited $code on SIGTERM"
bench_log "graceful app stop: ok (exit 0)"
bench_log "check passed"
