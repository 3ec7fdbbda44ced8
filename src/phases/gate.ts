/** The proxy gate of a deploy: HAProxy's Runtime API when it can be reached, else degraded. */
import { posix } from 'node:path';
import type { Duplex } from 'node:stream';
import type { ComposeModel } from '../model/compose.js';
import { listProjectContainers } from '../engine/docker/containers.js';
import { findProxyService, locateRuntimeApi } from '../proxy/haproxy/config.js';
import { HaproxyGate } from '../proxy/haproxy/drain.js';
import { degradedGate, type ProxyGate } from '../proxy/gate.js';
import type { Session } from './session.js';

/** The gate for the proxy: HAProxy's Runtime API when it can be reached, else degraded. */
export async function proxyGate(
  s: Session,
  model: ComposeModel,
  cfgText: string | undefined,
): Promise<{ gate: ProxyGate; proxyService?: string; opener?: () => Promise<Duplex> }> {
  const proxy = findProxyService(model.services, s.inputs.proxyService);
  if (!proxy || !cfgText) {
    s.report.warnings.push('No HAProxy service found: replicas are not drained through a proxy; requests may be lost during the rollout.');
    return { gate: degradedGate };
  }
  const projectDir = posix.join(s.remoteDir, 'app', posix.dirname(s.inputs.composeFiles[0]!));
  let where = locateRuntimeApi(proxy, cfgText, projectDir);
  if (s.inputs.haproxySocket) {
    const v = s.inputs.haproxySocket;
    where = v.startsWith('tcp:')
      ? { kind: 'tcp', host: '127.0.0.1', port: Number(v.slice(4)) }
      : { kind: 'unix', hostPath: posix.resolve(projectDir, v) };
  }
  if (where.kind === 'none') {
    s.report.warnings.push(
      `HAProxy's Runtime API is not reachable (${where.reason}): the rollout relies on retries and health checks only, and requests may be lost.`,
    );
    return { gate: degradedGate, proxyService: proxy.name };
  }
  // Nothing serves before the proxy runs (a first deploy): there is nothing to drain or wait on.
  const running = (await listProjectContainers(s.remote, s.inputs.project)).some((c) => c.service === proxy.name && c.state === 'running');
  if (!running) {
    s.log.info(`the proxy (${proxy.name}) is not running yet: nothing to drain in this deploy`);
    return { gate: degradedGate, proxyService: proxy.name };
  }
  const loc = where;
  const opener = () => (loc.kind === 'unix' ? s.remote.openUnixSocket(loc.hostPath) : s.remote.openTcp(loc.host, loc.port));
  return {
    gate: new HaproxyGate({ opener, drainTimeoutMs: s.inputs.drainTimeoutMs, log: s.log, timeline: s.timeline }),
    proxyService: proxy.name,
    opener,
  };
}
