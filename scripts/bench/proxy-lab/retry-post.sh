#!/usr/bin/env bash
# Retries and POST safety, Caddy 2.6 and nginx 1.22 (config as in lib.sh: Caddy lb_try_duration 5s,
# lb_try_interval 250ms, round_robin; nginx proxy_next_upstream error timeout, tries 3, timeout 10s).
# Upstream lists, each with app1 (healthy) and one bad replica:
#   refuse: a container whose port is closed (app with STARTUP_DELAY: connection refused)
#   drop:   a container that accepts, reads and closes without answering (busybox nc); it counts
#           the connections it got, i.e. how many requests were actually sent to it
#   gone:   an address with no container (stopped replica still listed: no ARP answer)
# 10 POST /echo and 10 GET / through the proxy for each; prints codes, who served, hits on `drop`.
# Usage: retry-post.sh caddy|nginx
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
PROXY="${1:?caddy|nginx}"
trap lab_cleanup EXIT
lab_net
lab_app lab-app1 10.231.7.11
lab_run lab-refuse 10.231.7.14 -e STARTUP_DELAY=600 "$LAB_APP_IMAGE"
# -ll: keep listening; each connection: read the request head for 0.2 s, count it, close.
lab_run lab-drop 10.231.7.15 "$LAB_APP_IMAGE" sh -c \
  'exec nc -ll -p 8080 -e sh -c "timeout 0.2 cat >/dev/null; echo hit >>/tmp/hits"'
case "$PROXY" in
  caddy) lab_caddy; PORT=18080 ;;
  nginx) lab_nginx; PORT=18081 ;;
  *) bench_die "usage: $0 caddy|nginx" ;;
esac
sleep 0.5

apply() {
  if [ "$PROXY" = caddy ]; then caddy_render_upstreams "$@"; caddy_load >/dev/null
  else nginx_render_upstreams "$@"; "$DOCKER" exec lab-nginx nginx -s reload -c /etc/nginx/lab/nginx.conf 2>/dev/null; sleep 0.5; fi
}

run() { # label, bad address
  apply "$2" 10.231.7.11:8080
  "$DOCKER" exec lab-drop sh -c ': >/tmp/hits'
  local m out codes="" served="" t0 maxms=0 ms
  for m in POST GET; do
    codes=""; served=""; maxms=0
    for _ in $(seq 1 10); do
      t0=$(now_ms)
      if [ "$m" = POST ]; then
        out="$(curl -s --max-time 15 -o /dev/null -D - -w 'code=%{http_code}' -X POST --data-binary 'payload' http://127.0.0.1:$PORT/echo)"
      else
        out="$(curl -s --max-time 15 -o /dev/null -D - -w 'code=%{http_code}' http://127.0.0.1:$PORT/)"
      fi
      ms=$(( $(now_ms) - t0 )); [ "$ms" -gt "$maxms" ] && maxms=$ms
      codes+="$(tail -1 <<<"$out" | sed 's/code=//') "
      served+="$( (grep -i "^x-served-by" <<<"$out" || echo -) | tr -d "\r" | sed "s/.*: //;s/lab-//") "
    done
    lab_log "$PROXY $1 $m: codes [$codes] served by [$served] slowest ${maxms} ms; requests that reached lab-drop: $("$DOCKER" exec lab-drop sh -c 'wc -l </tmp/hits')"
    "$DOCKER" exec lab-drop sh -c ': >/tmp/hits'
  done
}
run refuse 10.231.7.14:8080
run drop 10.231.7.15:8080
run gone 10.231.7.19:8080
