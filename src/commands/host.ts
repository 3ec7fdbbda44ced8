/** Facts about the host, read by src/host/host.ts in one round trip. */
import { shq } from './quote.js';
import { resolveRemoteDirCommand } from './release-store.js';

/** Between the facts and the remote dir in hostSetupCommand's output. */
export const REMOTE_DIR_MARK = '--- handoff remote_dir';

/** Where a Podman API socket is looked for: the SSH user's own (rootless), then the system one (rootful). */
export const PODMAN_SOCKETS = ['${XDG_RUNTIME_DIR:-/run/user/$(id -u)}/podman/podman.sock', '/run/podman/podman.sock'];

/**
 * `docker=<server version or error>` and `server=<component names>` for the docker CLI's default
 * endpoint (engine auto or docker), `podman=<socket> <version>` or `podman-error=<socket> <error>` for
 * each Podman API socket that exists (engine auto or podman; only `podmanSocket` when given), then `compose=v2 <version>` and/or
 * `compose=v1 <version>` for each flavor that works, then `compose=none`. Markers keep the parse
 * independent of whatever the login shell prints around the output; both flavors are looked up (v1
 * may be kept beside the v2 plugin).
 */
export function hostFactsCommand(engine: 'auto' | 'docker' | 'podman' = 'docker', podmanSocket?: string): string {
  const lines: string[] = [];
  if (engine !== 'podman') {
    lines.push(
      'printf "docker=%s\\n" "$(docker version --format "{{.Server.Version}}" 2>&1 | tail -n 1)"',
      'printf "server=%s\\n" "$(docker version --format "{{range .Server.Components}}{{.Name}};{{end}}" 2>/dev/null | tail -n 1)"',
    );
  }
  if (engine !== 'docker') {
    // The Docker-compatible API of Podman (`podman system service`, podman.socket): the same docker
    // CLI and Compose v2 drive it through DOCKER_HOST.
    lines.push(
      `for s in ${podmanSocket ? shq(podmanSocket) : PODMAN_SOCKETS.map((s) => `"${s}"`).join(' ')}; do`,
      '  [ -S "$s" ] || continue',
      '  if v=$(DOCKER_HOST="unix://$s" docker version --format "{{.Server.Version}}" 2>&1); then printf "podman=%s %s\\n" "$s" "$(printf %s "$v" | tail -n 1)"',
      '  else printf "podman-error=%s %s\\n" "$s" "$(printf %s "$v" | tail -n 1)"; fi',
      'done',
    );
  }
  lines.push(
    'if v=$(docker compose version --short 2>/dev/null); then printf "compose=v2 %s\\n" "$v"; fi',
    'if v=$(docker-compose version --short 2>/dev/null); then printf "compose=v1 %s\\n" "$v"; fi',
    'echo "compose=none"',
  );
  return lines.join('\n');
}

/**
 * What a deploy needs first, in one round trip: hostFactsCommand's lines, then REMOTE_DIR_MARK and
 * resolveRemoteDirCommand's output. Its exit code is the remote dir's (the facts never fail).
 */
export function hostSetupCommand(engine: 'auto' | 'docker' | 'podman', podmanSocket: string | undefined, remoteDirInput: string): string {
  return `${hostFactsCommand(engine, podmanSocket)}\nprintf '%s\\n' ${shq(REMOTE_DIR_MARK)}\n${resolveRemoteDirCommand(remoteDirInput)}`;
}
