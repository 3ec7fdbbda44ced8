#!/usr/bin/env bash
# Caddy 2.6: what `caddy validate --adapter caddyfile` (run inside the proxy container) and
# POST /load (text/caddyfile) say about a bad Caddyfile, and whether the running config survives.
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
trap lab_cleanup EXIT
lab_net
lab_app lab-app1 10.231.7.11
lab_app lab-app2 10.231.7.12
lab_caddy
C="$LAB_TMP/caddy/candidate.Caddyfile"
UP="$LAB_TMP/caddy/handoff/candidate.upstreams"
before="$(caddy_api GET /config/ | sha256sum | cut -c1-12)"

try() { # label, upstream line, extra reverse_proxy line, site-level line
  printf '%s\n' "$2" >"$UP"
  printf '{\n\tadmin unix//run/caddy-admin/admin.sock\n}\n:8080 {\n%s\n\treverse_proxy {\n\t\timport /etc/caddy/handoff/candidate.upstreams\n%s\n\t}\n}\n' \
    "$4" "$3" >"$C"
  local out rc code body
  lab_log "---- $1"
  out="$("$DOCKER" exec lab-caddy caddy validate --config /etc/caddy/candidate.Caddyfile --adapter caddyfile 2>&1)"; rc=$?
  lab_log "caddy validate exit $rc: $(grep -v '"level":"info"' <<<"$out" | tail -2 | tr '\n' '|')"
  body="$(curl -sS --max-time 30 --unix-socket "$LAB_TMP/caddy-admin/admin.sock" -H 'Host: ' -X POST \
    -H 'Content-Type: text/caddyfile' --data-binary "@$C" -w ' HTTP %{http_code}' http://caddy/load)"
  lab_log "POST /load: $body"
  lab_log "running config $(caddy_api GET /config/ | sha256sum | cut -c1-12) (before: $before); serving: $(curl -s --max-time 5 http://127.0.0.1:18080/)"
}
set +e
try "unknown subdirective" 'to 10.231.7.11:8080' '		lb_try_durations 5s' ''
try "unknown directive" 'to 10.231.7.11:8080' '' '	reverse_proxyy 10.231.7.11:8080'
try "bad upstream port" 'to 10.231.7.11:notaport' '' ''
try "missing closing brace" 'to 10.231.7.11:8080' '		transport http {' ''
try "imported file missing" 'to 10.231.7.11:8080' '		import /etc/caddy/handoff/nope.upstreams' ''
try "upstream that does not answer (valid: Caddy does not dial at load)" 'to 10.231.7.99:8080' '' ''
try "valid: app2 only" 'to 10.231.7.12:8080' '' ''
