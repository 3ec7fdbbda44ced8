#!/usr/bin/env bash
# Caddy 2.6: take a replica out while a /slow request is in flight on it, and watch what a gate
# could poll: GET /reverse_proxy/upstreams (num_requests) and the ESTABLISHED sockets from the
# proxy in the old replica's network namespace (/proc/<pid>/net/tcp).
# Usage: caddy-drain.sh [load|patch] [extra reverse_proxy lines...]
#   load:  re-render the imported upstream file and POST /load the Caddyfile (= `caddy reload`)
#   patch: PATCH /config/apps/http/servers/srv0/routes/0/handle/0/upstreams (path found in /config/)
# e.g. caddy-drain.sh load 'transport http {' 'keepalive 5s' '}'
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
MODE="${1:-load}"; shift || true
trap lab_cleanup EXIT
lab_net
lab_app lab-app1 10.231.7.11
lab_app lab-app2 10.231.7.12
lab_app lab-app3 10.231.7.13
lab_caddy "$@"
lab_log "Caddy $("$DOCKER" exec lab-caddy caddy version), upstreams app1 app2; mode $MODE"

# Warm: keep-alive connections to both replicas.
for _ in 1 2 3 4; do curl -s --max-time 5 -o /dev/null http://127.0.0.1:18080/; done
lab_log "idle: proxy->app1 $(estab lab-app1 $LAB_PROXY_IP 8080), proxy->app2 $(estab lab-app2 $LAB_PROXY_IP 8080)"

# Two slow requests at once: round robin puts one on each replica.
for i in 1 2; do
  ( t0=$(now_ms); out="$(curl -s --max-time 20 -D - -o /dev/null -w 'code=%{http_code}' 'http://127.0.0.1:18080/slow?ms=3000')"
    echo "slow#$i $(grep -i '^x-served-by' <<<"$out" | tr -d '\r') $(tail -1 <<<"$out") in $(( $(now_ms) - t0 )) ms" >"$LAB_TMP/slow$i" ) &
done
sleep 0.5
lab_log "in flight: $(caddy_api GET /reverse_proxy/upstreams)"
lab_log "in flight: proxy->app1 $(estab lab-app1 $LAB_PROXY_IP 8080)"

t0=$(now_ms)
if [ "$MODE" = patch ]; then
  caddy_api PATCH /config/apps/http/servers/srv0/routes/0/handle/0/upstreams \
    '[{"dial":"10.231.7.12:8080"},{"dial":"10.231.7.13:8080"}]'
else
  caddy_render_upstreams 10.231.7.12:8080 10.231.7.13:8080
  caddy_load
fi
lab_log "app1 removed ($MODE returned after $(( $(now_ms) - t0 )) ms)"

for i in $(seq 1 40); do  # 40 x ~0.25 s, bounded
  lab_log "t+$(( $(now_ms) - t0 )) ms: upstreams $(caddy_api GET /reverse_proxy/upstreams) | proxy->app1 ESTABLISHED $(estab lab-app1 $LAB_PROXY_IP 8080)"
  [ -s "$LAB_TMP/slow1" ] && [ -s "$LAB_TMP/slow2" ] && [ "$(estab lab-app1 $LAB_PROXY_IP 8080)" = 0 ] && break
  sleep 0.25
done
wait
cat "$LAB_TMP"/slow1 "$LAB_TMP"/slow2
lab_log "after: app1 sockets: $(estab_list lab-app1 | tr '\n' ' ')"
lab_log "new requests go to: $(for _ in 1 2 3 4; do curl -s --max-time 5 http://127.0.0.1:18080/ | sed 's/.*host=//'; done | tr '\n' ' ')"
