/**
 * nginx (open source, 1.22+) as a ProxyDriver. The user's nginx.conf includes handoff's upstream
 * files (`include /etc/nginx/handoff/upstreams/*.conf;` in http {}), uploaded as seeds
 * (`upstream app { server app:8080; ... }`) and rewritten by handoff with the replicas' IPs (nginx
 * resolves names only at load); each change is `nginx -t`, then `nginx -s reload` in the running
 * container, proven by new worker processes (a reload the master refuses leaves the old ones). The
 * old workers finish their requests; the drain waits on the old replica's connections
 * (upstreams/gate.ts).
 */
import { posix } from 'node:path';
import type { ComposeService } from '../../model/compose.js';
import type { Remote } from '../../host/remote.js';
import { containerLogsSinceCommand, hostTimeCommand } from '../../commands/docker.js';
import {
  awaitProcessesGoneCommand,
  containerProcessesCommand,
  execInContainerCommand,
  freshDirCommand,
  removeTreeCommand,
  throwawayCheckCommand,
} from '../../commands/proxy.js';
import { sleep } from '../../support/time.js';
import { DOCKER_COMMAND_MS, INSTANT_COMMAND_MS, QUICK_COMMAND_MS } from '../../support/timeouts.js';
import { imageNames, type ProxyDriver, type ReleaseView } from '../driver.js';
import { degradedGate } from '../gate.js';
import { checkMounts, containerPathOfRelease, releasePathInMount } from '../mounts.js';
import { openUpstreamGate, type SeedFile, type UpstreamSetup } from '../upstreams/open.js';
import type { UpstreamApplier } from '../upstreams/gate.js';
import { matchesInclude, nginxConfFacts, oldWorkerHoldMs, parseNginxSeed, reloadAdvice, renderNginxUpstreams } from './config.js';
import { servicesNamed } from '../caddy/config.js';

export function nginxConfigPath(paths: readonly string[], proxy: ComposeService | undefined, composeDir: string): string | undefined {
  const named = paths.filter((p) => posix.basename(p) === 'nginx.conf');
  for (const v of proxy?.volumes ?? []) {
    if (v.type !== 'bind' || !v.source || v.source.startsWith('/') || v.source.startsWith('~')) continue;
    const rel = posix.normalize(posix.join(composeDir, v.source));
    const hit = paths.find((p) => p === rel && v.target.endsWith('.conf')) ?? named.find((p) => p.startsWith(`${rel}/`));
    if (hit) return hit;
  }
  return named[0];
}

function confInContainer(view: ReleaseView, cfgPath: string): string {
  return containerPathOfRelease(view.proxy, cfgPath, view.composeDir) ?? '/etc/nginx/nginx.conf';
}

/** The release files an include line reaches (its pattern resolved against the config's directory). */
function includedFiles(
  view: ReleaseView,
  pattern: string,
  confDir: string,
): Array<{ path: string; containerPath: string; fileMount: boolean }> {
  const full = posix.isAbsolute(pattern) ? pattern : posix.join(confDir, pattern);
  const out: Array<{ path: string; containerPath: string; fileMount: boolean }> = [];
  for (const p of view.paths) {
    const c = containerPathOfRelease(view.proxy, p, view.composeDir);
    if (!c || !matchesInclude(full, c)) continue;
    const rel = releasePathInMount(view.proxy, c, view.composeDir);
    out.push({ path: p, containerPath: c, fileMount: rel?.fileMount ?? false });
  }
  return out;
}

export async function nginxSetup(view: ReleaseView, cfgPath: string, cfgText: string): Promise<UpstreamSetup> {
  const facts = nginxConfFacts(cfgText);
  const names = view.model.services.map((s) => s.name);
  const name = posix.basename(cfgPath);
  const confDir = posix.dirname(confInContainer(view, cfgPath));
  const problems: string[] = [];
  const seeds: SeedFile[] = [];
  for (const inc of facts.includes) {
    for (const f of includedFiles(view, inc.path, confDir)) {
      const text = await view.read(f.path);
      const seed = text === undefined ? undefined : parseNginxSeed(text, names);
      if (!seed) continue;
      const at = `${name} line ${inc.line} (include ${inc.path})`;
      if ('error' in seed) problems.push(`${at}: ${f.path}: ${seed.error}`);
      else if (f.fileMount)
        problems.push(
          `${at}: ${f.path} is bind-mounted as a single file, which keeps its old content when handoff replaces it: mount its directory`,
        );
      else seeds.push({ ...seed, releasePath: f.path, containerPath: f.containerPath, render: (ips) => renderNginxUpstreams(seed, ips) });
    }
  }
  const upstreamNames = new Set(seeds.map((s) => s.upstream));
  const direct = [
    ...facts.proxyPasses
      .filter((p) => !upstreamNames.has(p.host) || p.port !== undefined)
      .map((p) => ({ line: p.line, address: p.port ? `${p.host}:${p.port}` : p.host, what: 'proxy_pass' })),
    ...facts.upstreamServers.map((u) => ({ line: u.line, address: u.address, what: 'server' })),
  ];
  const routedDirect: string[] = [];
  for (const d of direct) {
    const [svc] = servicesNamed([d.address], names);
    if (!svc || svc === view.proxy.name) continue;
    routedDirect.push(svc);
    const dir = posix.join(posix.dirname(cfgPath), 'handoff', 'upstreams');
    problems.push(
      `${name} line ${d.line} names service ${svc} directly (${d.what} ${d.address}): nginx resolves it once, at load, so handoff cannot take the old replica out. Add "include ${confDir}/handoff/upstreams/*.conf;" in http {}, upload ${dir}/${svc}.conf containing "upstream ${svc} { server ${svc}:<port>; }", and proxy_pass http://${svc};`,
    );
  }
  const routed = [...new Set([...seeds.map((s) => s.service), ...routedDirect])];
  const advice = seeds.length ? [reloadAdvice(facts, name)].filter((a) => a !== undefined) : [];
  return { seeds, routed, problems, advice };
}

async function setupOf(view: ReleaseView, cfgText: string): Promise<UpstreamSetup> {
  return nginxSetup(view, nginxConfigPath(view.paths, view.proxy, view.composeDir) ?? 'nginx.conf', cfgText);
}

/**
 * PIDs of the worker processes (`docker top` lines): those taking new connections, or with
 * `shuttingDown` every worker, those of an older config that still finish their connections too. Pure.
 */
export function workerPids(top: string, shuttingDown = false): number[] {
  const out: number[] = [];
  for (const line of top.split('\n')) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (m && /nginx: worker process/.test(m[2]!) && (shuttingDown || !/is shutting down/.test(m[2]!))) out.push(Number(m[1]));
  }
  return out;
}

async function topOf(remote: Remote, containerId: string): Promise<string> {
  return (await remote.exec(containerProcessesCommand(containerId), { timeoutMs: QUICK_COMMAND_MS })).stdout;
}

/**
 * Until none of `workers` runs any more, or the deadline (false). nginx's old workers exit once the
 * requests they carry are answered and the client keep-alive connections they hold are closed
 * (at once, or after `keepalive_min_timeout`, during which they answer one more request on each
 * with the previous upstream list and "Connection: close").
 */
export async function waitWorkersGone(
  remote: Remote,
  containerId: string,
  workers: ReadonlySet<number>,
  deadline: number,
  pollMs = 200,
): Promise<boolean> {
  if (workers.size === 0) return true;
  const ms = Math.max(0, deadline - Date.now());
  // The host polls `docker top`; the exec's own limit leaves it time to say "still there".
  const r = await remote.exec(awaitProcessesGoneCommand(containerId, [...workers], ms, pollMs), {
    timeoutMs: ms + QUICK_COMMAND_MS,
    check: false,
  });
  return r.code === 0;
}

/**
 * nginx -t, note the workers, nginx -s reload, then new workers within 10 s; else the master's
 * [emerg] lines. Returns every worker of the configs before this one (see waitWorkersGone).
 */
export async function reloadNginx(remote: Remote, containerId: string, conf: string, pollMs = 200): Promise<Set<number>> {
  const t = await remote.exec(execInContainerCommand(containerId, ['nginx', '-t', '-c', conf]), {
    timeoutMs: QUICK_COMMAND_MS,
    check: false,
  });
  if (t.code !== 0) throw new Error(`nginx rejects the config (nginx -t):\n${tail(t.stdout + t.stderr)}`);
  const before = await topOf(remote, containerId);
  const old = new Set(workerPids(before));
  const since = (await remote.exec(hostTimeCommand(), { timeoutMs: INSTANT_COMMAND_MS })).stdout.trim();
  const r = await remote.exec(execInContainerCommand(containerId, ['nginx', '-s', 'reload', '-c', conf]), {
    timeoutMs: QUICK_COMMAND_MS,
    check: false,
  });
  if (r.code !== 0) throw new Error(`nginx refuses the reload:\n${tail(r.stdout + r.stderr)}`);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const now = workerPids(await topOf(remote, containerId));
    if (now.some((p) => !old.has(p))) return new Set(workerPids(before, true));
    if (Date.now() >= deadline) break;
    await sleep(pollMs);
  }
  const logs = await remote.exec(containerLogsSinceCommand(containerId, since), { timeoutMs: QUICK_COMMAND_MS, check: false });
  const emerg = (logs.stdout + logs.stderr).split('\n').filter((l) => /\[(emerg|alert|crit)\]/.test(l));
  throw new Error(
    `nginx did not start new workers after the reload; it keeps the previous config:\n${emerg.slice(-10).join('\n') || tail(logs.stdout)}`,
  );
}

export const nginxDriver: ProxyDriver = {
  kind: 'nginx',
  label: 'nginx',
  matchesImage: (image) => imageNames(image, 'nginx'),
  configPath: nginxConfigPath,
  missingConfigHint: (proxy) =>
    `service ${proxy.name} runs nginx but no nginx.conf is in the uploaded files: add its config directory to the 'files' input`,
  routedServices: async (view, cfgText) => (await setupOf(view, cfgText)).routed,
  requirements: async (view, cfgText) => (await setupOf(view, cfgText)).problems,
  async checkConfig(host, view, cfgPath) {
    const text = (await view.read(cfgPath)) ?? '';
    const setup = await nginxSetup(view, cfgPath, text);
    const mounts = checkMounts(view.proxy, view.composeDir, host.releaseDir, view.paths);
    let conf = confInContainer(view, cfgPath);
    if (!containerPathOfRelease(view.proxy, cfgPath, view.composeDir)) {
      conf = '/etc/nginx/nginx.conf';
      mounts.push({ source: posix.join(host.releaseDir, cfgPath), target: conf });
    }
    // The seeds name services, which a container without a network cannot resolve: each is checked
    // as rendered with a placeholder address instead (nginx -t does not connect to upstreams).
    const dir = posix.join(host.remoteDir, `.proxy-check-${posix.basename(host.releaseDir)}`);
    await host.remote.exec(freshDirCommand(dir), { timeoutMs: QUICK_COMMAND_MS });
    try {
      for (const [i, seed] of setup.seeds.entries()) {
        const file = posix.join(dir, `${i}.conf`);
        await host.remote.writeFile(file, seed.render(['127.0.0.1']), 0o644);
        mounts.push({ source: file, target: seed.containerPath });
      }
      const cmd = throwawayCheckCommand(view.proxy.image ?? '', 'nginx', mounts, ['-t', '-c', conf]);
      const r = await host.remote.exec(cmd, { timeoutMs: DOCKER_COMMAND_MS, check: false });
      if (r.code !== 0) throw new Error(`nginx rejects ${cfgPath}:\n${tail(r.stdout + r.stderr)}`);
    } finally {
      await host.remote.exec(removeTreeCommand(dir), { timeoutMs: QUICK_COMMAND_MS, check: false }).catch(() => {});
    }
  },
  async open(host, view, change) {
    if (!change.next) return { gate: degradedGate, degraded: `No nginx.conf found for service ${view.proxy.name}.` };
    const cfgPath = nginxConfigPath(view.paths, view.proxy, view.composeDir)!;
    const setup = await nginxSetup(view, cfgPath, change.next);
    const conf = confInContainer(view, cfgPath);
    return openUpstreamGate(host, view, change, setup, {
      label: 'nginx',
      applier: async (proxy) => nginxApplier(host.remote, proxy.id, conf, oldWorkerHoldMs(nginxConfFacts(change.next!))),
    });
  },
};

/** A margin over keepalive_min_timeout for the old worker's own timer and the signal's way. */
const HOLD_MARGIN_MS = 1000;

/**
 * Reloads, and knows which workers ran the configs before the last reload. A drain waits until they
 * are gone, or until they can take no new request (keepalive_min_timeout after the reload: past it
 * they have closed the connections they held, and what they still carry is in flight, which the
 * connection count sees), so a websocket on an old worker does not hold every drain up. Without a
 * known keepalive_min_timeout, only their exit (or the drain deadline) tells.
 */
export function nginxApplier(remote: Remote, containerId: string, conf: string, holdMs: number | undefined): UpstreamApplier {
  let previous = new Set<number>();
  let reloadedAt = 0;
  return {
    async apply() {
      previous = await reloadNginx(remote, containerId, conf);
      reloadedAt = Date.now();
    },
    async settled(deadline) {
      const harmless = holdMs === undefined ? deadline : reloadedAt + holdMs + HOLD_MARGIN_MS;
      const gone = await waitWorkersGone(remote, containerId, previous, Math.min(deadline, harmless));
      return gone || (holdMs !== undefined && harmless <= deadline);
    },
  };
}

function tail(s: string): string {
  return s.trim().split('\n').slice(-15).join('\n');
}
