#!/usr/bin/env bash
# nginx 1.22: what `nginx -t` and `nginx -s reload` say when the rendered upstream file is wrong,
# where the master's [emerg] line goes, and whether the old workers keep serving.
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
trap lab_cleanup EXIT
lab_net
lab_app lab-app1 10.231.7.11
lab_app lab-app2 10.231.7.12
lab_nginx
before="$(nginx_workers)"
lab_log "workers before: $before"
UP="$LAB_TMP/nginx/handoff/upstreams/app.conf"

try() { # label, upstream file content
  printf '%s\n' "$2" >"$UP.tmp"; mv -f "$UP.tmp" "$UP"
  local since out rc
  lab_log "---- $1"
  out="$("$DOCKER" exec lab-nginx nginx -t -c /etc/nginx/lab/nginx.conf 2>&1)"; rc=$?
  lab_log "nginx -t exit $rc: $(tr '\n' '|' <<<"$out")"
  since="$(date +%s)"
  out="$("$DOCKER" exec lab-nginx nginx -s reload -c /etc/nginx/lab/nginx.conf 2>&1)"; rc=$?
  lab_log "nginx -s reload exit $rc: $(tr '\n' '|' <<<"$out")"
  sleep 0.5
  lab_log "docker logs (master) since the reload: $("$DOCKER" logs --since "$since" lab-nginx 2>&1 | grep -E 'emerg|alert|reconfiguring|start worker' | tr '\n' '|')"
  lab_log "workers now: $(nginx_workers)(before: $before); still serving: $(curl -s --max-time 5 http://127.0.0.1:18081/)"
}
set +e
try "unknown server parameter" $'upstream app {\n    server 10.231.7.11:8080 bogus=1;\n}'
try "host name that does not resolve" $'upstream app {\n    server lab-no-such-host:8080;\n}'
try "missing semicolon" $'upstream app {\n    server 10.231.7.11:8080\n}'
# Parses fine (so nginx -t and the signalling `nginx -s reload` pass) but the master cannot bind it.
try "valid syntax, address the master cannot bind" $'upstream app {\n    server 10.231.7.12:8080;\n}\nserver {\n    listen 10.9.9.9:8081;\n}'
try "valid (app2 only)" $'upstream app {\n    server 10.231.7.12:8080;\n}'
