#!/usr/bin/env bash
# Caddy 2.6 workaround for "a removed upstream's num_requests disappears at once": keep the old
# replica referenced by a second reverse_proxy behind a matcher that never matches
# (`@handoff_drain expression false`), so its entry in /reverse_proxy/upstreams (a global pool keyed
# by address) survives the config change and counts the in-flight requests down to 0.
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
trap lab_cleanup EXIT
lab_net
lab_app lab-app1 10.231.7.11
lab_app lab-app2 10.231.7.12
lab_app lab-app3 10.231.7.13
lab_caddy
D="$LAB_TMP/caddy/handoff/app.draining"
printf 'to 127.0.0.1:9\n' >"$D"   # placeholder: a reverse_proxy needs an upstream; never dialed
cat >"$LAB_TMP/caddy/Caddyfile" <<'CADDYFILE'
{
	admin unix//run/caddy-admin/admin.sock
}
:8080 {
	@handoff_drain expression false
	reverse_proxy @handoff_drain {
		import /etc/caddy/handoff/app.draining
	}
	reverse_proxy {
		import /etc/caddy/handoff/app.upstreams
		lb_try_duration 5s
		lb_try_interval 250ms
		transport http {
			keepalive 2s
		}
	}
}
CADDYFILE
lab_log "POST /load: $(caddy_load)"
lab_log "upstreams: $(caddy_api GET /reverse_proxy/upstreams)"
for i in 1 2; do
  ( out="$(curl -s --max-time 20 -D - -o /dev/null -w 'code=%{http_code}' 'http://127.0.0.1:18080/slow?ms=3000')"
    echo "slow#$i $(grep -i '^x-served-by' <<<"$out" | tr -d '\r') $(tail -1 <<<"$out")" >"$LAB_TMP/slow$i" ) &
done
sleep 0.5
caddy_render_upstreams 10.231.7.12:8080 10.231.7.13:8080
printf 'to 10.231.7.11:8080\n' >"$D.tmp"; mv -f "$D.tmp" "$D"
t0=$(now_ms)
caddy_load
lab_log "app1 moved to the never-matching drain handler"
for _ in $(seq 1 20); do
  u="$(caddy_api GET /reverse_proxy/upstreams)"
  lab_log "t+$(( $(now_ms) - t0 )) ms: $u | proxy->app1 $(estab lab-app1 $LAB_PROXY_IP 8080)"
  grep -q '"10.231.7.11:8080","num_requests":0' <<<"$u" && break
  sleep 0.25
done
wait
cat "$LAB_TMP"/slow1 "$LAB_TMP"/slow2
printf 'to 127.0.0.1:9\n' >"$D.tmp"; mv -f "$D.tmp" "$D"
caddy_load
lab_log "drain handler emptied: $(caddy_api GET /reverse_proxy/upstreams)"
lab_log "requests: $(for _ in 1 2 3 4; do curl -s --max-time 5 http://127.0.0.1:18080/ | sed 's/.*host=//'; done | tr '\n' ' ')"
