#!/usr/bin/env bash
# The recommended gates, end to end, with the reference configs examples/caddy/Caddyfile and
# examples/nginx/nginx.conf: replace replica app1 by app3 while a /slow request is in flight on app1,
# and wait for the completion condition (no ESTABLISHED socket from the proxy in app1's network
# namespace, twice, 1 s apart). Caddy is driven as the deploy user through SSH streamlocal
# forwarding to its admin socket, as handoff would.
# Usage: examples-check.sh [caddy|nginx|both]
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
WHICH="${1:-both}"
[ -s "$BENCH_DIR/bench.env" ] || bench_die "no $BENCH_DIR/bench.env: run scripts/bench/setup.sh first"
# shellcheck disable=SC1091
. "$BENCH_DIR/bench.env"
FWD_PID=""
trap '[ -n "$FWD_PID" ] && kill "$FWD_PID" 2>/dev/null; lab_cleanup' EXIT
lab_net
chmod 0755 "$LAB_TMP"
lab_app lab-app1 10.231.7.11
lab_app lab-app2 10.231.7.12
lab_app lab-app3 10.231.7.13

# Completion: the proxy has no ESTABLISHED connection left in the old replica's namespace, seen
# twice 1 s apart. Prints the ms it took; fails after $2 s.
wait_closed() { # container, timeout s
  local t0 zero=0
  t0=$(now_ms)
  while [ $(( $(now_ms) - t0 )) -lt $(( $2 * 1000 )) ]; do
    if [ "$(estab "$1" "$LAB_PROXY_IP" 8080)" = 0 ]; then zero=$((zero + 1)); else zero=0; fi
    [ "$zero" -ge 2 ] && { echo $(( $(now_ms) - t0 )); return 0; }
    sleep 1
  done
  return 1
}

SLOW_PIDS=()
slow_pair() { # port: two /slow?ms=3000 at once (round robin: one per replica)
  local i
  SLOW_PIDS=()
  for i in 1 2; do
    ( out="$(curl -s --max-time 20 -D - -o /dev/null -w 'code=%{http_code}' "http://127.0.0.1:$1/slow?ms=3000")"
      echo "$(grep -i '^x-served-by' <<<"$out" | tr -d '\r' | sed 's/.*: //') $(tail -1 <<<"$out") done at $(date +%H:%M:%S.%3N)" >"$LAB_TMP/slow$i" ) &
    SLOW_PIDS+=($!)
  done
  sleep 0.5
}

check_caddy() {
  local d="$LAB_TMP/caddy" sock="$LAB_TMP/fwd.sock" ms out
  mkdir -p "$d/handoff" "$LAB_TMP/caddy-admin"
  cp "$BENCH_REPO/examples/caddy/Caddyfile" "$d/Caddyfile"
  printf 'to 10.231.7.11:8080 10.231.7.12:8080\n' >"$d/handoff/app.upstreams"
  chown "$(id -u "$BENCH_USER")" "$LAB_TMP/caddy-admin"; chmod 0700 "$LAB_TMP/caddy-admin"
  lab_run lab-caddy "$LAB_PROXY_IP" -p 127.0.0.1:18080:8080 -v "$d:/etc/caddy:ro" -v "$LAB_TMP/caddy-admin:/run/caddy-admin" \
    "$BENCH_CADDY_NEW_IMAGE" sh -c 'umask 0000 && exec caddy run --config /etc/caddy/Caddyfile --adapter caddyfile'
  for _ in $(seq 1 50); do curl -fs --max-time 2 -o /dev/null http://127.0.0.1:18080/ && break; sleep 0.1; done
  out="$("$DOCKER" exec lab-caddy caddy validate --config /etc/caddy/Caddyfile --adapter caddyfile 2>&1 | tail -1)"
  lab_log "caddy: validate: $out"
  # The deploy user's view: an SSH streamlocal forward to the admin socket.
  ssh -o BatchMode=yes -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o LogLevel=ERROR -o ExitOnForwardFailure=yes \
    -o UserKnownHostsFile="$BENCH_KNOWN_HOSTS" -i "$BENCH_KEY_ED25519" -p "$BENCH_PORT" -N \
    -L "$sock:$LAB_TMP/caddy-admin/admin.sock" "$BENCH_USER@$BENCH_HOST" &
  FWD_PID=$!
  for _ in $(seq 1 50); do [ -S "$sock" ] && break; sleep 0.1; done
  lab_log "caddy: upstreams (as $BENCH_USER, forwarded): $(curl -sS --max-time 10 --unix-socket "$sock" -H 'Host: ' http://caddy/reverse_proxy/upstreams)"
  for _ in 1 2 3 4; do curl -s --max-time 5 -o /dev/null http://127.0.0.1:18080/; done
  slow_pair 18080
  lab_log "caddy: in flight: proxy->app1 $(estab lab-app1 $LAB_PROXY_IP 8080)"
  printf 'to 10.231.7.12:8080 10.231.7.13:8080\n' >"$d/handoff/app.upstreams.tmp"
  mv -f "$d/handoff/app.upstreams.tmp" "$d/handoff/app.upstreams"
  out="$(curl -sS --max-time 30 --unix-socket "$sock" -H 'Host: ' -X POST -H 'Content-Type: text/caddyfile' \
    --data-binary "@$d/Caddyfile" -o /dev/null -w '%{http_code}' http://caddy/load)"
  lab_log "caddy: app1 -> app3: POST /load HTTP $out at $(date +%H:%M:%S.%3N)"
  ms="$(wait_closed lab-app1 30)" || bench_die "caddy: app1 still has connections from the proxy after 30 s"
  lab_log "caddy: completion condition met $ms ms after the change, at $(date +%H:%M:%S.%3N)"
  wait "${SLOW_PIDS[@]}"
  lab_log "caddy: slow requests: $(cat "$LAB_TMP/slow1") | $(cat "$LAB_TMP/slow2")"
  lab_log "caddy: now serving: $(for _ in 1 2 3 4; do curl -s --max-time 5 http://127.0.0.1:18080/ | sed 's/.*host=//'; done | tr '\n' ' ')"
  kill "$FWD_PID" 2>/dev/null; FWD_PID=""
  "$DOCKER" rm -f lab-caddy >/dev/null
}

check_nginx() {
  local d="$LAB_TMP/nginx" h="$LAB_TMP/nginx-handoff/upstreams" ms out before after
  mkdir -p "$d" "$h"
  cp "$BENCH_REPO/examples/nginx/nginx.conf" "$d/nginx.conf"
  printf 'upstream app {\n    server 10.231.7.11:8080;\n    server 10.231.7.12:8080;\n    keepalive 16;\n}\n' >"$h/app.conf"
  lab_run lab-nginx "$LAB_PROXY_IP" -p 127.0.0.1:18081:8080 -v "$d:/etc/nginx/ex:ro" -v "$LAB_TMP/nginx-handoff:/etc/nginx/handoff:ro" \
    "$BENCH_NGINX_NEW_IMAGE" nginx -c /etc/nginx/ex/nginx.conf -g 'daemon off;'
  for _ in $(seq 1 50); do curl -fs --max-time 2 -o /dev/null http://127.0.0.1:18081/ && break; sleep 0.1; done
  for _ in 1 2 3 4; do curl -s --max-time 5 -o /dev/null http://127.0.0.1:18081/; done
  # Worker PIDs from the host (docker top: no ps needed in the image).
  workers() { "$DOCKER" top lab-nginx -eo pid,args | awk '/worker process/ { print $1 }' | sort -n | tr '\n' ' '; }
  before="$(workers)"
  slow_pair 18081
  lab_log "nginx: in flight: proxy->app1 $(estab lab-app1 $LAB_PROXY_IP 8080); workers $before"
  printf 'upstream app {\n    server 10.231.7.12:8080;\n    server 10.231.7.13:8080;\n    keepalive 16;\n}\n' >"$h/app.conf.tmp"
  mv -f "$h/app.conf.tmp" "$h/app.conf"
  out="$("$DOCKER" exec lab-nginx nginx -t -c /etc/nginx/ex/nginx.conf 2>&1 | tail -1)"
  lab_log "nginx: nginx -t: $out"
  "$DOCKER" exec lab-nginx nginx -s reload -c /etc/nginx/ex/nginx.conf 2>/dev/null
  lab_log "nginx: app1 -> app3: nginx -s reload exit $? at $(date +%H:%M:%S.%3N)"
  for _ in $(seq 1 20); do
    after="$(workers)"
    [ -n "$(comm -13 <(tr ' ' '\n' <<<"$before" | sort) <(tr ' ' '\n' <<<"$after" | sort) | grep .)" ] && break
    sleep 0.25
  done
  lab_log "nginx: workers after reload: $after(new ones present: the reload took)"
  ms="$(wait_closed lab-app1 30)" || bench_die "nginx: app1 still has connections from the proxy after 30 s"
  lab_log "nginx: completion condition met $ms ms after the reload, at $(date +%H:%M:%S.%3N); workers now $(workers)"
  wait "${SLOW_PIDS[@]}"
  lab_log "nginx: slow requests: $(cat "$LAB_TMP/slow1") | $(cat "$LAB_TMP/slow2")"
  lab_log "nginx: now serving: $(for _ in 1 2 3 4; do curl -s --max-time 5 http://127.0.0.1:18081/ | sed 's/.*host=//'; done | tr '\n' ' ')"
  "$DOCKER" rm -f lab-nginx >/dev/null
}

case "$WHICH" in
  caddy) check_caddy ;;
  nginx) check_nginx ;;
  both) check_caddy; check_nginx ;;
  *) bench_die "usage: $0 [caddy|nginx|both]" ;;
esac
