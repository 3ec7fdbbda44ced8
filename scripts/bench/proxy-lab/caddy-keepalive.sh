#!/usr/bin/env bash
# Caddy 2.6: does a config change (removing a replica) close the proxy's idle keep-alive
# connections to it, and how long do they stay ESTABLISHED otherwise?
# Usage: caddy-keepalive.sh [seconds to watch, default 20] [extra reverse_proxy lines...]
#   caddy-keepalive.sh 20                                        (Caddy's default transport)
#   caddy-keepalive.sh 20 'transport http {' 'keepalive 3s' '}'  (idle timeout 3 s)
#   caddy-keepalive.sh 20 'transport http {' 'keepalive off' '}' (no upstream keep-alive)
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
WATCH="${1:-20}"; shift || true
trap lab_cleanup EXIT
lab_net
lab_app lab-app1 10.231.7.11
lab_app lab-app2 10.231.7.12
lab_caddy "$@"
lab_log "extra reverse_proxy lines: ${*:-(none)}"
# 6 concurrent requests: several idle connections per replica afterwards.
for _ in 1 2 3 4 5 6; do curl -s --max-time 5 -o /dev/null 'http://127.0.0.1:18080/slow?ms=200' & done
wait
lab_log "idle after warm-up: proxy->app1 $(estab lab-app1 $LAB_PROXY_IP 8080), proxy->app2 $(estab lab-app2 $LAB_PROXY_IP 8080)"
sleep 1
lab_log "1 s later:          proxy->app1 $(estab lab-app1 $LAB_PROXY_IP 8080)"
caddy_render_upstreams 10.231.7.12:8080
t0=$(now_ms)
caddy_load
lab_log "app1 removed (POST /load)"
last=""
while [ $(( $(now_ms) - t0 )) -lt $(( WATCH * 1000 )) ]; do
  n="$(estab lab-app1 $LAB_PROXY_IP 8080)"
  [ "$n" != "$last" ] && lab_log "t+$(( $(now_ms) - t0 )) ms: proxy->app1 ESTABLISHED $n"
  last="$n"
  [ "$n" = 0 ] && break
  sleep 0.2
done
[ "$last" = 0 ] || lab_log "still $last after ${WATCH} s"
