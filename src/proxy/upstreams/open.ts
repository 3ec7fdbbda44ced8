/**
 * Opening the upstream-file gate of a deploy (Caddy, nginx), shared by both drivers: the running
 * proxy container, the replicas it routes to now, the files as they are before the release is
 * activated, and the step before the rollout that writes the lists back (activation copied the
 * uploaded seeds over them) and applies them when the running proxy does not have them yet: the
 * first deploy's proxy resolved the service name through Docker's DNS (the seed), and from the next
 * deploy on it lists replicas by IP.
 */
import { posix } from 'node:path';
import { listProjectContainers, replicaIp, type ContainerInfo } from '../../engine/docker/containers.js';
import { degradedGate } from '../gate.js';
import type { ConfigChange, OpenedProxy, ProxyHost, ReleaseView } from '../driver.js';
import { UpstreamGate, type ManagedUpstream, type UpstreamApplier } from './gate.js';

/** An upstream file the user uploaded for one service (its seed), where the release and the proxy see it. */
export interface SeedFile {
  service: string;
  port: number;
  /** nginx: the upstream block's name (what proxy_pass names). */
  upstream?: string;
  /** Release-relative path (the same path under app/ on the host). */
  releasePath: string;
  containerPath: string;
  render(ips: readonly string[]): string;
}

/** What a driver found in the release's config: the seeds it manages, what it routes, what is missing. */
export interface UpstreamSetup {
  seeds: SeedFile[];
  routed: string[];
  /** Each names the line to add; any of them makes the gate degraded. */
  problems: string[];
  /** Lines to add so that a config change loses nothing either (shown as warnings when the gate drains). */
  advice?: string[];
}

export interface UpstreamDriverHooks {
  label: string;
  /** The applier for the running proxy container (and a check that it can be reached, e.g. Caddy's admin socket). */
  applier(proxy: ContainerInfo): Promise<UpstreamApplier>;
}

/** The gate over the running proxy container, listing the replicas that serve now. */
async function gateFor(
  host: ProxyHost,
  setup: UpstreamSetup,
  hooks: UpstreamDriverHooks,
  proxy: ContainerInfo,
  containers: ContainerInfo[],
): Promise<UpstreamGate> {
  const networks = Object.keys(proxy.ips);
  const current = new Map(
    setup.seeds.map((s) => [s.service, containers.filter((c) => c.service === s.service && serving(c)).map((c) => replicaIp(c, networks))]),
  );
  const upstreams: ManagedUpstream[] = setup.seeds.map((s) => ({
    service: s.service,
    port: s.port,
    hostPath: posix.join(host.remoteDir, 'app', s.releasePath),
    render: s.render,
  }));
  return new UpstreamGate({
    remote: host.remote,
    label: hooks.label,
    proxy: { id: proxy.id, name: proxy.name, ips: Object.values(proxy.ips) },
    upstreams,
    current,
    applier: await hooks.applier(proxy),
    drainTimeoutMs: host.drainTimeoutMs,
    log: host.log,
    timeline: host.timeline,
  });
}

/** A replica the proxy routes to now: running, and healthy (or without a healthcheck). */
function serving(c: ContainerInfo): boolean {
  return c.state === 'running' && (c.health === 'healthy' || c.health === 'none');
}

export async function openUpstreamGate(
  host: ProxyHost,
  view: ReleaseView,
  change: ConfigChange,
  setup: UpstreamSetup,
  hooks: UpstreamDriverHooks,
): Promise<OpenedProxy> {
  if (setup.problems.length)
    return {
      gate: degradedGate,
      degraded: `${hooks.label} cannot drain replicas with this config (${setup.problems.join('; ')}): the rollout relies on retries and health checks only, and requests may be lost.`,
    };
  const containers = await listProjectContainers(host.remote, host.project);
  const proxies = containers.filter((c) => c.service === view.proxy.name && c.state === 'running');
  if (setup.seeds.length === 0) return { gate: degradedGate };
  if (proxies.length === 0) {
    // A first deploy: the proxy starts on the seeds (the service names through Docker's DNS). Once
    // the rollout is done, the files list the replicas by IP, applied while no deploy is under way:
    // a later deploy then needs no config change before its first batch.
    host.log.info(`the proxy (${view.proxy.name}) is not running yet: nothing to drain in this deploy`);
    const after = async () => {
      const now = await listProjectContainers(host.remote, host.project);
      const proxy = now.find((c) => c.service === view.proxy.name && c.state === 'running');
      if (!proxy) return;
      const gate = await gateFor(host, setup, hooks, proxy, now);
      await gate.sync('the replicas listed by IP');
      host.timeline.add('proxy-reload', { service: view.proxy.name, container: proxy.name, detail: 'the replicas listed by IP' });
      host.log.info(`${hooks.label}: ${proxy.name} now lists the replicas by IP (from the seeds)`);
    };
    return { gate: degradedGate, after };
  }
  if (proxies.length > 1) host.log.warning(`${proxies.length} ${view.proxy.name} containers run: handoff drives ${proxies[0]!.name} only`);
  const proxy = proxies[0]!;
  for (const a of setup.advice ?? []) host.log.warning(a);
  // What the proxy was last given (the release is not activated yet).
  const previous = new Map<string, string | undefined>();
  for (const s of setup.seeds) {
    const path = posix.join(host.remoteDir, 'app', s.releasePath);
    previous.set(path, await host.remote.readFile(path));
  }
  const gate = await gateFor(host, setup, hooks, proxy, containers);
  const before = async () => {
    const stale = [...gate.rendered()].some(([p, text]) => previous.get(p) !== text);
    if (change.proxyAction === 'keep' && (stale || change.changed)) {
      const why = change.changed ? 'the release changes its config' : 'the replicas listed by IP';
      await gate.sync(why);
      host.timeline.add('proxy-reload', { service: view.proxy.name, container: proxy.name, detail: why });
      host.log.info(`${hooks.label}: applied to ${proxy.name} before the rollout (${why})`);
    } else {
      // Activation copied the uploaded seeds back: the files say again what the proxy already runs.
      await gate.activated();
    }
  };
  return { gate, before };
}
