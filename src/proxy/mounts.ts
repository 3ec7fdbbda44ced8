/**
 * Where a path inside the proxy's container is on the host: the proxy's control sockets (HAProxy's
 * Runtime API, Caddy's admin socket) are reached through SSH on the host, so they must sit in a
 * bind-mounted directory. Pure.
 */
import path from 'node:path';
import type { ComposeService } from '../model/compose.js';

/** /var/run is a link to /run in the images proxies ship in. */
function canonicalRun(p: string): string {
  return p.replace(/^\/var\/run(?=\/|$)/, '/run');
}

/**
 * The host path of `containerPath` through the service's deepest bind mount that holds it, or why
 * there is none. Relative mount sources resolve against the Compose project directory on the host.
 */
export function hostPathInMount(
  service: Pick<ComposeService, 'name' | 'volumes'>,
  containerPath: string,
  projectDirOnHost: string,
): { hostPath: string } | { reason: string } {
  const target = canonicalRun(path.posix.normalize(containerPath));
  let best: { source: string; target: string } | undefined;
  for (const v of service.volumes) {
    if (v.type !== 'bind' || !v.source) continue;
    const t = canonicalRun(path.posix.normalize(v.target)).replace(/\/+$/, '');
    if ((target === t || target.startsWith(`${t}/`)) && (!best || t.length > best.target.length)) best = { source: v.source, target: t };
  }
  if (!best) {
    return {
      reason: `the admin socket ${containerPath} is not inside a bind mount of service "${service.name}": mount its directory from the host (e.g. ./run:${path.posix.dirname(containerPath)})`,
    };
  }
  if (best.source.startsWith('~')) {
    return {
      reason: `the bind mount source ${best.source} of service "${service.name}" starts with ~: use a path relative to the Compose file`,
    };
  }
  const hostDir = path.posix.resolve(projectDirOnHost, best.source);
  return { hostPath: path.posix.join(hostDir, target.slice(best.target.length)) };
}
