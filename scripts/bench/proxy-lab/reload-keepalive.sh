#!/usr/bin/env bash
# Client keep-alive connections at reload: 8 keep-alive clients (ka-client.mjs, 20 ms idle gap
# between requests) against the proxy while it reloads N times, ~1 s apart, alternating between two
# upstream lists. Counts client errors, and how many were on a reused (idle keep-alive) connection.
# Usage: reload-keepalive.sh nginx|caddy [reloads=10] [extra config lines...]
#   nginx: `nginx -s reload` (extra lines go to the http block)
#   caddy: re-render the imported upstream file + POST /load (extra lines go to reverse_proxy);
#          CADDY_APPLY=patch: PATCH .../handle/0/upstreams through the API instead
#   reloads=0 is the control run (same load, no reload).
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
PROXY="${1:?nginx|caddy}"; RELOADS="${2:-10}"; shift 2 || shift $#
trap lab_cleanup EXIT
lab_net
lab_app lab-app1 10.231.7.11
lab_app lab-app2 10.231.7.12
case "$PROXY" in
  nginx) lab_nginx "$@"; PORT=18081 ;;
  caddy) lab_caddy "$@"; PORT=18080 ;;
  *) bench_die "usage: $0 nginx|caddy [reloads] [extra lines...]" ;;
esac
DURATION=$(( RELOADS * 1000 + 3000 ))
node "$LAB_DIR/ka-client.mjs" "http://127.0.0.1:$PORT/" 8 "$DURATION" 40000 20 >"$LAB_TMP/ka.json" &
client=$!
sleep 1
for i in $(seq 1 "$RELOADS"); do
  if [ $((i % 2)) = 1 ]; then a=(10.231.7.12:8080 10.231.7.11:8080); else a=(10.231.7.11:8080 10.231.7.12:8080); fi
  if [ "$PROXY" = nginx ]; then
    nginx_render_upstreams "${a[@]}"
    "$DOCKER" exec lab-nginx nginx -s reload -c /etc/nginx/lab/nginx.conf 2>/dev/null || lab_log "reload $i failed"
  elif [ "${CADDY_APPLY:-load}" = patch ]; then
    caddy_api PATCH /config/apps/http/servers/srv0/routes/0/handle/0/upstreams \
      "[{\"dial\":\"${a[0]}\"},{\"dial\":\"${a[1]}\"}]" >/dev/null || lab_log "patch $i failed"
  else
    caddy_render_upstreams "${a[@]}"
    caddy_load >/dev/null || lab_log "load $i failed"
  fi
  sleep 1
done
wait "$client"
lab_log "$PROXY${CADDY_APPLY:+ ($CADDY_APPLY)}, $RELOADS reloads, extra: ${*:-(none)}: $(cat "$LAB_TMP/ka.json")"
