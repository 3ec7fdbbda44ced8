/**
 * HAProxy as a ProxyDriver: the config is the `.cfg` the proxy mounts, routing follows its server
 * lines, a changed config is checked with `haproxy -c` and reloaded (SIGUSR2) before the rollout, and
 * the gate drains through the Runtime API when the host can reach it (else degraded, with a warning).
 */
import { posix } from 'node:path';
import type { Duplex } from 'node:stream';
import type { ComposeService } from '../../model/compose.js';
import { listProjectContainers } from '../../engine/docker/containers.js';
import { degradedGate } from '../gate.js';
import type { ConfigChange, OpenedProxy, ProxyDriver, ProxyHost, ReleaseView } from '../driver.js';
import { findServerStateFile, locateRuntimeApi, routedServices } from './config.js';
import { HaproxyGate } from './drain.js';
import { checkConfig, reload } from './reload.js';

/**
 * The HAProxy config among the release's files: the `.cfg` the proxy service bind-mounts (a file, or
 * haproxy.cfg / any .cfg inside a mounted directory), else the first haproxy*.cfg uploaded.
 */
export function haproxyConfigPath(paths: readonly string[], proxy: ComposeService | undefined, composeDir: string): string | undefined {
  const cfgs = paths.filter((p) => p.endsWith('.cfg'));
  for (const v of proxy?.volumes ?? []) {
    if (v.type !== 'bind' || !v.source || v.source.startsWith('/') || v.source.startsWith('~')) continue;
    const rel = posix.normalize(posix.join(composeDir, v.source));
    const inside = cfgs.filter((p) => p === rel || p.startsWith(`${rel}/`));
    const hit = inside.find((p) => p === rel) ?? inside.find((p) => p.endsWith('/haproxy.cfg')) ?? inside[0];
    if (hit) return hit;
  }
  return cfgs.find((p) => /haproxy[^/]*\.cfg$/i.test(p));
}

export const haproxyDriver: ProxyDriver = {
  kind: 'haproxy',
  label: 'HAProxy',
  matchesImage: (image) => /haproxy/i.test(image),
  configPath: haproxyConfigPath,
  missingConfigHint: (proxy) =>
    `service ${proxy.name} runs HAProxy but no haproxy.cfg is in the uploaded files: add its config directory to the 'files' input`,
  routedServices: async (view, cfgText) =>
    routedServices(
      cfgText,
      view.model.services.map((s) => s.name),
    ),
  // Without a reachable Runtime API HAProxy still runs degraded with a warning (its behaviour since
  // before the drivers): the reasons are found on the host, in open().
  requirements: async () => [],
  async checkConfig(host, _view, cfgPath) {
    const file = posix.join(host.releaseDir, cfgPath);
    await checkConfig(host.remote, _view.proxy.image ?? '', posix.dirname(file), posix.basename(file));
  },
  open: openHaproxy,
};

/** The Runtime API gate when the host can reach it; the reload of a changed config before the rollout. */
async function openHaproxy(host: ProxyHost, view: ReleaseView, change: ConfigChange): Promise<OpenedProxy> {
  const proxy = view.proxy;
  if (!change.next)
    return {
      gate: degradedGate,
      degraded: `No HAProxy config found for service ${proxy.name}: replicas are not drained through a proxy; requests may be lost during the rollout.`,
    };
  const projectDir = posix.join(host.remoteDir, 'app', view.composeDir);
  let where = locateRuntimeApi(proxy, change.next, projectDir);
  if (host.haproxySocket) {
    const v = host.haproxySocket;
    where = v.startsWith('tcp:')
      ? { kind: 'tcp', host: '127.0.0.1', port: Number(v.slice(4)) }
      : { kind: 'unix', hostPath: posix.resolve(projectDir, v) };
  }
  const loc = where;
  const opener =
    loc.kind === 'none'
      ? undefined
      : () => (loc.kind === 'unix' ? host.remote.openUnixSocket(loc.hostPath) : host.remote.openTcp(loc.host, loc.port));
  // Made now (no I/O) so `before` can reach its connection; used only when the proxy runs.
  const gate = opener
    ? new HaproxyGate({ opener, drainTimeoutMs: host.drainTimeoutMs, log: host.log, timeline: host.timeline })
    : undefined;
  const before = async () => {
    await reloadIfChanged(host, change, proxy.name, opener);
    // A reloaded HAProxy answers through a new worker: a connection kept open would still reach the old one.
    gate?.api.close();
  };
  if (loc.kind === 'none' || !gate) {
    return {
      gate: degradedGate,
      before,
      degraded: `HAProxy's Runtime API is not reachable (${loc.kind === 'none' ? loc.reason : ''}): the rollout relies on retries and health checks only, and requests may be lost.`,
    };
  }
  // Nothing serves before the proxy runs (a first deploy): there is nothing to drain or wait on.
  const running = (await listProjectContainers(host.remote, host.project)).some((c) => c.service === proxy.name && c.state === 'running');
  if (!running) {
    host.log.info(`the proxy (${proxy.name}) is not running yet: nothing to drain in this deploy`);
    return { gate: degradedGate, before };
  }
  return { gate, before };
}

/** Reload the running proxy when only its config changed (a recreated proxy reads the new one anyway). */
export async function reloadIfChanged(
  host: ProxyHost,
  change: ConfigChange,
  proxyService: string,
  opener: (() => Promise<Duplex>) | undefined,
) {
  if (!change.changed || change.live === undefined || change.proxyAction !== 'keep') return;
  const running = (await listProjectContainers(host.remote, host.project)).filter(
    (c) => c.service === proxyService && c.state === 'running',
  );
  for (const c of running) {
    await reload(host.remote, c.id, { opener, stateFile: change.next ? findServerStateFile(change.next) : undefined, log: host.log });
    host.timeline.add('proxy-reload', { service: proxyService, container: c.name });
    host.log.info(`reloaded HAProxy in ${c.name}`);
  }
}
