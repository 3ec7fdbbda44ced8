/** Facts about the host, read by src/host.ts in one round trip. */

/**
 * `docker=<server version or error>`, then `compose=v2 <version>` and/or `compose=v1 <version>` for
 * each flavor that works, then `compose=none`. Markers keep the parse independent of whatever the
 * login shell prints around the output; both flavors are looked up (v1 may be kept beside the v2 plugin).
 */
export function hostFactsCommand(): string {
  return [
    'printf "docker=%s\\n" "$(docker version --format "{{.Server.Version}}" 2>&1 | tail -n 1)"',
    'if v=$(docker compose version --short 2>/dev/null); then printf "compose=v2 %s\\n" "$v"; fi',
    'if v=$(docker-compose version --short 2>/dev/null); then printf "compose=v1 %s\\n" "$v"; fi',
    'echo "compose=none"',
  ].join('\n');
}
