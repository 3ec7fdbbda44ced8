#!/usr/bin/env bash
# nginx 1.22: take a replica out of an included upstream file while a /slow request is in flight on
# it: nginx -t, nginx -s reload, then watch the worker PIDs (old ones must stay until their
# request is done, then exit) and the proxy's ESTABLISHED sockets in the old replica's namespace.
# Usage: nginx-drain.sh [extra http-level lines...]   e.g. nginx-drain.sh 'worker_shutdown_timeout 1s;'
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
trap lab_cleanup EXIT
lab_net
lab_app lab-app1 10.231.7.11
lab_app lab-app2 10.231.7.12
lab_app lab-app3 10.231.7.13
lab_nginx "$@"
lab_log "$("$DOCKER" exec lab-nginx nginx -v 2>&1), upstream app = app1 app2"
for _ in 1 2 3 4 5 6; do curl -s --max-time 5 -o /dev/null http://127.0.0.1:18081/; done
old="$(nginx_workers)"
lab_log "workers: $old; idle upstream keep-alive: proxy->app1 $(estab lab-app1 $LAB_PROXY_IP 8080), proxy->app2 $(estab lab-app2 $LAB_PROXY_IP 8080)"

for i in 1 2; do
  ( t0=$(now_ms); out="$(curl -s --max-time 20 -D - -o /dev/null -w 'code=%{http_code}' 'http://127.0.0.1:18081/slow?ms=3000')"
    echo "slow#$i $(grep -i '^x-served-by' <<<"$out" | tr -d '\r') $(tail -1 <<<"$out") in $(( $(now_ms) - t0 )) ms" >"$LAB_TMP/slow$i" ) &
done
sleep 0.5
lab_log "in flight: proxy->app1 $(estab lab-app1 $LAB_PROXY_IP 8080)"

nginx_render_upstreams 10.231.7.12:8080 10.231.7.13:8080
t0=$(now_ms)
"$DOCKER" exec lab-nginx nginx -t -c /etc/nginx/lab/nginx.conf 2>&1 | sed 's/^/  nginx -t: /' >&2
"$DOCKER" exec lab-nginx nginx -s reload -c /etc/nginx/lab/nginx.conf; rc=$?
lab_log "nginx -s reload exit $rc after $(( $(now_ms) - t0 )) ms"

for _ in $(seq 1 40); do  # bounded: 40 x ~0.25 s
  lab_log "t+$(( $(now_ms) - t0 )) ms: workers $(nginx_workers)| shutting down: $(nginx_shutting)| proxy->app1 ESTABLISHED $(estab lab-app1 $LAB_PROXY_IP 8080)"
  still=0
  for p in $old; do "$DOCKER" exec lab-nginx kill -0 "$p" 2>/dev/null && still=1; done
  [ -s "$LAB_TMP/slow1" ] && [ -s "$LAB_TMP/slow2" ] && [ "$still" = 0 ] && break
  sleep 0.25
done
wait
cat "$LAB_TMP"/slow1 "$LAB_TMP"/slow2
lab_log "after: old workers ($old) alive: $(for p in $old; do "$DOCKER" exec lab-nginx kill -0 "$p" 2>/dev/null && printf '%s ' "$p"; done)none else; proxy->app1 $(estab lab-app1 $LAB_PROXY_IP 8080)"
lab_log "new requests go to: $(for _ in 1 2 3 4; do curl -s --max-time 5 http://127.0.0.1:18081/ | sed 's/.*host=//'; done | tr '\n' ' ')"
lab_log "master log:"; "$DOCKER" logs lab-nginx 2>&1 | tail -12 >&2
