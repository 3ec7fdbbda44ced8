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

/** The service's bind mounts with a source inside the release (relative to the Compose file), as release paths. */
function releaseMounts(service: Pick<ComposeService, 'volumes'>, composeDir: string): Array<{ source: string; target: string }> {
  const out: Array<{ source: string; target: string }> = [];
  for (const v of service.volumes) {
    if (v.type !== 'bind' || !v.source || v.source.startsWith('/') || v.source.startsWith('~')) continue;
    const source = path.posix.normalize(path.posix.join(composeDir, v.source)).replace(/\/+$/, '');
    if (source.startsWith('..')) continue;
    out.push({ source, target: canonicalRun(path.posix.normalize(v.target)).replace(/\/+$/, '') });
  }
  return out;
}

/**
 * The release file (a path relative to the release root) that the container sees at `containerPath`,
 * through the deepest bind mount holding it; `fileMount` when that mount is the file itself (a file
 * replaced by rename stays stale in such a mount). Undefined when no release mount holds it. Pure.
 */
export function releasePathInMount(
  service: Pick<ComposeService, 'volumes'>,
  containerPath: string,
  composeDir: string,
): { path: string; fileMount: boolean } | undefined {
  const target = canonicalRun(path.posix.normalize(containerPath));
  let best: { source: string; target: string } | undefined;
  for (const m of releaseMounts(service, composeDir)) {
    if ((target === m.target || target.startsWith(`${m.target}/`)) && (!best || m.target.length > best.target.length)) best = m;
  }
  if (!best) return undefined;
  const rel = target.slice(best.target.length).replace(/^\//, '');
  return { path: rel ? path.posix.join(best.source, rel) : best.source, fileMount: rel === '' };
}

/** Where the container sees a release file (release-relative path), through the service's bind mounts. Pure. */
export function containerPathOfRelease(
  service: Pick<ComposeService, 'volumes'>,
  releasePath: string,
  composeDir: string,
): string | undefined {
  for (const m of releaseMounts(service, composeDir)) {
    if (releasePath === m.source) return m.target;
    if (releasePath.startsWith(`${m.source}/`)) return path.posix.join(m.target, releasePath.slice(m.source.length + 1));
  }
  return undefined;
}

/** The bind mounts of a throwaway config check: release sources from `releaseDir`, absolute ones as they are. Pure. */
export function checkMounts(
  service: Pick<ComposeService, 'volumes'>,
  composeDir: string,
  releaseDir: string,
  releasePaths: readonly string[],
): Array<{ source: string; target: string }> {
  const out: Array<{ source: string; target: string }> = [];
  for (const m of releaseMounts(service, composeDir)) {
    // Runtime directories (an admin socket's) are not uploaded: nothing to mount.
    if (!releasePaths.some((p) => p === m.source || p.startsWith(`${m.source}/`))) continue;
    out.push({ source: path.posix.join(releaseDir, m.source), target: m.target });
  }
  for (const v of service.volumes) {
    if (v.type === 'bind' && v.source?.startsWith('/')) out.push({ source: v.source, target: v.target });
  }
  return out;
}

/**
 * The service with bind-mount sources under the live project directory made relative to it again:
 * `compose config` (the model read on the host) prints them absolute, under app/, while the drivers
 * map mounts to release files by their relative sources. Pure.
 */
export function withRelativeSources<T extends Pick<ComposeService, 'volumes'>>(service: T, projectDirOnHost: string): T {
  const dir = projectDirOnHost.replace(/\/+$/, '');
  const appRoot = path.posix.dirname(dir);
  const volumes = service.volumes.map((v) => {
    if (v.type !== 'bind' || !v.source?.startsWith('/')) return v;
    const src = path.posix.normalize(v.source);
    // Only paths inside the live app/ tree are release files; others (e.g. /etc/letsencrypt) stay absolute.
    if (src !== dir && !src.startsWith(`${dir}/`) && !src.startsWith(`${appRoot}/`)) return v;
    return { ...v, source: path.posix.relative(dir, src) || '.' };
  });
  return { ...service, volumes };
}
