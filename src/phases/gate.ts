/**
 * The proxy of a deploy: which service and driver (the `proxy` and `proxy_service` inputs), the
 * release's files as the driver reads them, and the gate the driver opens (degraded without one).
 */
import { posix } from 'node:path';
import type { ComposeModel, ComposeService } from '../model/compose.js';
import type { Inputs } from '../action/inputs.js';
import { DRIVERS } from '../proxy/drivers.js';
import { selectProxy, type ConfigChange, type OpenedProxy, type ProxyDriver, type ProxyHost, type ReleaseView } from '../proxy/driver.js';
import { degradedGate } from '../proxy/gate.js';
import { withRelativeSources } from '../proxy/mounts.js';
import type { ReleaseFile } from '../action/workspace.js';
import type { Session } from './session.js';

export interface SelectedProxy {
  service: ComposeService;
  driver: ProxyDriver;
}

/** The proxy service and its driver, as the inputs say (undefined: no proxy, or `proxy: none`). */
export function selectedProxy(inputs: Pick<Inputs, 'proxy' | 'proxyService'>, model: ComposeModel): SelectedProxy | undefined {
  return selectProxy(model.services, inputs.proxy, inputs.proxyService, DRIVERS);
}

/** The workspace's files, before anything is uploaded. */
export function localView(model: ComposeModel, proxy: ComposeService, composeFile: string, files: readonly ReleaseFile[]): ReleaseView {
  return {
    model,
    proxy,
    composeDir: posix.dirname(composeFile),
    paths: files.map((f) => f.path),
    read: async (p) => files.find((f) => f.path === p)?.data.toString('utf8'),
  };
}

/** A release's files in its directory on the host. */
export function hostView(
  s: Pick<Session, 'remote' | 'remoteDir'>,
  model: ComposeModel,
  proxy: ComposeService,
  release: { id: string; composeFiles: readonly string[]; files: readonly string[] },
): ReleaseView {
  const root = posix.join(s.remoteDir, 'releases', release.id);
  const composeDir = posix.dirname(release.composeFiles[0]!);
  return {
    model,
    // The model read on the host has absolute bind-mount sources (under app/): relative again, as in the files.
    proxy: withRelativeSources(proxy, posix.join(s.remoteDir, 'app', composeDir)),
    composeDir,
    paths: release.files,
    read: (p) => s.remote.readFile(posix.join(root, p)),
  };
}

export function proxyHost(s: Session, releaseId: string): ProxyHost {
  return {
    remote: s.remote,
    project: s.inputs.project,
    remoteDir: s.remoteDir,
    releaseDir: posix.join(s.remoteDir, 'releases', releaseId),
    log: s.log,
    timeline: s.timeline,
    drainTimeoutMs: s.inputs.drainTimeoutMs,
    ...(s.inputs.haproxySocket ? { haproxySocket: s.inputs.haproxySocket } : {}),
  };
}

export interface ProxyRouteOpened extends OpenedProxy {
  proxyService?: string;
  kind?: string;
}

/**
 * The gate for the proxy of this release (opened before the release is activated: the live files
 * are still the previous release's). Degraded without a proxy, or when its driver says so.
 */
export async function openProxy(
  s: Session,
  model: ComposeModel,
  release: { id: string; composeFiles: readonly string[]; files: readonly string[] },
  change: ConfigChange,
): Promise<ProxyRouteOpened> {
  s.roundTrips?.enter('open proxy');
  const selected = selectedProxy(s.inputs, model);
  if (!selected) {
    s.report.warnings.push(
      s.inputs.proxy === 'none'
        ? 'proxy: none: replicas are not drained through a proxy; requests may be lost during the rollout.'
        : 'No proxy service found (HAProxy, Caddy or nginx): replicas are not drained through a proxy; requests may be lost during the rollout.',
    );
    return { gate: degradedGate };
  }
  const view = hostView(s, model, selected.service, release);
  const opened = await selected.driver.open(proxyHost(s, release.id), view, change);
  if (opened.degraded) s.report.warnings.push(opened.degraded);
  return { ...opened, proxyService: selected.service.name, kind: selected.driver.kind };
}
