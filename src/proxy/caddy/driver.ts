/**
 * Caddy (2.6+) as a ProxyDriver. The user's Caddyfile imports one handoff-owned file per routed
 * service inside its reverse_proxy block (`import /etc/caddy/handoff/app.upstreams`), uploaded as a
 * seed (`to app:8080`) and rewritten by handoff with the replicas' IPs; each change is applied with
 * POST /load of the Caddyfile on the admin unix socket (reached over SSH streamlocal forwarding):
 * live when it returns, all-or-nothing when refused. See upstreams/gate.ts for the drain.
 */
import { posix } from 'node:path';
import type { ComposeService } from '../../model/compose.js';
import { throwawayCheckCommand } from '../../commands/proxy.js';
import { DOCKER_COMMAND_MS } from '../../support/timeouts.js';
import { imageNames, type ProxyDriver, type ReleaseView } from '../driver.js';
import { degradedGate } from '../gate.js';
import { checkMounts, containerPathOfRelease, hostPathInMount, releasePathInMount } from '../mounts.js';
import { openUpstreamGate, type SeedFile, type UpstreamSetup } from '../upstreams/open.js';
import { adminCall, loadCaddyfile } from './admin.js';
import { caddyfileFacts, parseCaddySeed, renderCaddyUpstreams, servicesNamed } from './config.js';

/** The Caddyfile among the release's files: the one the proxy mounts (as a file, or in a mounted directory), else any. */
export function caddyConfigPath(paths: readonly string[], proxy: ComposeService | undefined, composeDir: string): string | undefined {
  const named = paths.filter((p) => posix.basename(p) === 'Caddyfile');
  for (const v of proxy?.volumes ?? []) {
    if (v.type !== 'bind' || !v.source || v.source.startsWith('/') || v.source.startsWith('~')) continue;
    const rel = posix.normalize(posix.join(composeDir, v.source));
    const hit = paths.find((p) => p === rel && v.target.endsWith('Caddyfile')) ?? named.find((p) => p.startsWith(`${rel}/`));
    if (hit) return hit;
  }
  return named[0];
}

/** Where the proxy sees its Caddyfile (its mount), else Caddy's default path. */
function caddyfileInContainer(view: ReleaseView, cfgPath: string): string {
  return containerPathOfRelease(view.proxy, cfgPath, view.composeDir) ?? '/etc/caddy/Caddyfile';
}

/** The seeds the Caddyfile imports, what it routes, and what the gate needs that it lacks. Reads the release's files. */
export async function caddySetup(view: ReleaseView, cfgPath: string, cfgText: string): Promise<UpstreamSetup> {
  const facts = caddyfileFacts(cfgText);
  const names = view.model.services.map((s) => s.name);
  const problems: string[] = [];
  const cfgDir = posix.dirname(caddyfileInContainer(view, cfgPath));
  const name = posix.basename(cfgPath);
  if (!facts.adminSocket) {
    problems.push(
      `${facts.adminOther ? `${name} line ${facts.adminOther.line} "${facts.adminOther.text}"` : `${name} has no admin unix socket`}: handoff applies each change through Caddy's admin API on a unix socket; put "admin unix//run/caddy-admin/admin.sock|0222" in the global options block at the top ({ ... }; Caddy before 2.8: without "|0222") and mount its directory (e.g. ./caddy-admin:/run/caddy-admin)`,
    );
  } else {
    const where = hostPathInMount(view.proxy, facts.adminSocket, '/');
    if ('reason' in where) problems.push(where.reason);
  }
  const seeds: SeedFile[] = [];
  for (const imp of facts.imports) {
    const abs = posix.isAbsolute(imp.path);
    const containerPath = abs ? imp.path : posix.join(cfgDir, imp.path);
    const rel = releasePathInMount(view.proxy, containerPath, view.composeDir);
    const text = rel ? await view.read(rel.path) : undefined;
    const seed = text === undefined ? undefined : parseCaddySeed(text, names);
    if (!seed || !rel) continue;
    const at = `${name} line ${imp.line} (import ${imp.path})`;
    if ('error' in seed) problems.push(`${at}: ${rel.path} ${seed.error}`);
    else if (!abs)
      problems.push(
        `${at}: write the import with an absolute path (POST /load has no file name to resolve a relative one against): import ${containerPath}`,
      );
    else if (rel.fileMount)
      problems.push(
        `${at}: ${rel.path} is bind-mounted as a single file, which keeps its old content when handoff replaces it: mount its directory`,
      );
    else seeds.push({ ...seed, releasePath: rel.path, containerPath, render: (ips) => renderCaddyUpstreams(seed, ips) });
  }
  for (const u of facts.upstreams) {
    const [svc] = servicesNamed([u.address], names);
    if (!svc || svc === view.proxy.name) continue;
    const dir = posix.join(posix.dirname(cfgPath), 'handoff');
    problems.push(
      `${name} line ${u.line} names service ${svc} directly (${u.address}): Docker's DNS keeps listing the old replica until it stops, so handoff cannot drain it. Replace it with "import ${cfgDir}/handoff/${svc}.upstreams" inside the reverse_proxy block, and upload ${dir}/${svc}.upstreams containing "to ${u.address.replace(/^[a-z]+:\/\//, '')}"`,
    );
  }
  if ((seeds.length || facts.upstreams.length) && !facts.transport) {
    problems.push(
      `${name} has no "transport http { keepalive 2s }" in its reverse_proxy block: without an explicit transport Caddy keeps idle connections to a removed replica open for minutes, and the drain could not tell when its requests are done`,
    );
  }
  const routed = [
    ...new Set([
      ...seeds.map((s) => s.service),
      ...servicesNamed(
        facts.upstreams.map((u) => u.address),
        names,
      ),
    ]),
  ];
  const routes = routed.filter((s) => s !== view.proxy.name);
  // A Caddy that routes no Compose service (a static site) needs nothing of handoff.
  return { seeds, routed: routes, problems: routes.length ? problems : [] };
}

async function setupOf(view: ReleaseView, cfgText: string): Promise<UpstreamSetup> {
  const cfgPath = caddyConfigPath(view.paths, view.proxy, view.composeDir);
  return caddySetup(view, cfgPath ?? 'Caddyfile', cfgText);
}

export const caddyDriver: ProxyDriver = {
  kind: 'caddy',
  label: 'Caddy',
  matchesImage: (image) => imageNames(image, 'caddy'),
  configPath: caddyConfigPath,
  missingConfigHint: (proxy) =>
    `service ${proxy.name} runs Caddy but no Caddyfile is in the uploaded files: add its config directory to the 'files' input`,
  routedServices: async (view, cfgText) => (await setupOf(view, cfgText)).routed,
  requirements: async (view, cfgText) => (await setupOf(view, cfgText)).problems,
  async checkConfig(host, view, cfgPath) {
    const mounts = checkMounts(view.proxy, view.composeDir, host.releaseDir, view.paths);
    let target = caddyfileInContainer(view, cfgPath);
    if (!containerPathOfRelease(view.proxy, cfgPath, view.composeDir)) {
      target = '/etc/caddy/Caddyfile';
      mounts.push({ source: posix.join(host.releaseDir, posix.dirname(cfgPath)), target: '/etc/caddy' });
    }
    const cmd = throwawayCheckCommand(view.proxy.image ?? '', 'caddy', mounts, ['validate', '--config', target, '--adapter', 'caddyfile']);
    const r = await host.remote.exec(cmd, { timeoutMs: DOCKER_COMMAND_MS, check: false });
    if (r.code !== 0) throw new Error(`Caddy rejects ${cfgPath}:\n${tail(r.stdout + r.stderr)}`);
  },
  async open(host, view, change) {
    if (!change.next) return { gate: degradedGate, degraded: `No Caddyfile found for service ${view.proxy.name}.` };
    const cfgPath = caddyConfigPath(view.paths, view.proxy, view.composeDir)!;
    const setup = await caddySetup(view, cfgPath, change.next);
    const socket = caddyfileFacts(change.next).adminSocket;
    const projectDir = posix.join(host.remoteDir, 'app', view.composeDir);
    const where = socket ? hostPathInMount(view.proxy, socket, projectDir) : undefined;
    const liveCaddyfile = posix.join(host.remoteDir, 'app', cfgPath);
    return openUpstreamGate(host, view, change, setup, {
      label: 'Caddy',
      async applier() {
        if (!where || 'reason' in where) throw new Error(`Caddy's admin socket cannot be reached from the host`);
        const open = () => host.remote.openUnixSocket(where.hostPath);
        try {
          const a = await adminCall(open, 'GET', '/config/');
          if (a.status !== 200) throw new Error(`HTTP ${a.status}: ${a.body.slice(0, 200)}`);
        } catch (e) {
          throw new Error(
            `Caddy's admin API does not answer on ${where.hostPath} (${(e as Error).message}). The socket must be writable by the SSH user: on Caddy 2.8 and later give it a mode in the admin line ("admin unix//run/caddy-admin/admin.sock|0222"; Caddy makes it 0200 otherwise, whatever the umask); on older Caddy start it with "umask 0000" (e.g. command: ["sh", "-c", "umask 0000 && exec caddy run --config /etc/caddy/Caddyfile --adapter caddyfile"]). Keep its directory 0700, owned by the deploy user`,
            { cause: e },
          );
        }
        return {
          async apply() {
            const text = await host.remote.readFile(liveCaddyfile);
            if (text === undefined) throw new Error(`${liveCaddyfile} is missing on the host`);
            await loadCaddyfile(open, text);
          },
        };
      },
    });
  },
};

function tail(s: string): string {
  return s.trim().split('\n').slice(-15).join('\n');
}
