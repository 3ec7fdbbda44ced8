/**
 * The proxy config of a release: validated in a throwaway container before it can reach the running
 * proxy, and reloaded hitlessly before the rollout (a reload loses runtime state, so never during it).
 */
import { posix } from 'node:path';
import type { Duplex } from 'node:stream';
import type { ComposeModel } from '../model/compose.js';
import { listProjectContainers } from '../engine/docker/containers.js';
import { findProxyService, findServerStateFile } from '../proxy/haproxy/config.js';
import { checkConfig, reload } from '../proxy/haproxy/reload.js';
import { phase } from '../support/log.js';
import type { Plan } from '../model/plan.js';
import type { Release } from './release.js';
import type { Session } from './session.js';
import { proxyConfigPath } from './validate.js';

export interface ProxyConfig {
  /** The release's config text, and the live one in app/ (undefined: none). */
  next?: string;
  live?: string;
  changed: boolean;
}

export async function checkProxyConfig(s: Session, release: Release, model: ComposeModel): Promise<ProxyConfig> {
  const { inputs, remote, remoteDir, log } = s;
  const proxy = findProxyService(model.services, inputs.proxyService);
  const cfgPath = proxyConfigPath(release.manifest.files, proxy, posix.dirname(release.composeFiles[0]!));
  const cfgRel = cfgPath ? posix.join(remoteDir, 'releases', release.id, cfgPath) : undefined;
  const next = cfgRel ? await remote.readFile(cfgRel) : undefined;
  const live = cfgPath ? await remote.readFile(posix.join(remoteDir, 'app', cfgPath)) : undefined;
  const changed = !!next && next !== live;
  const proxyImage = proxy?.image;
  if (changed && proxyImage && cfgRel) {
    await phase('Proxy config', async () => {
      await checkConfig(remote, proxyImage, posix.dirname(cfgRel), posix.basename(cfgRel));
      log.info('the new HAProxy config is valid');
    });
  }
  return { ...(next !== undefined ? { next } : {}), ...(live !== undefined ? { live } : {}), changed };
}

/** Reload the running proxy when only its config changed (a recreated proxy reads the new one anyway). */
export async function reloadProxyIfChanged(
  s: Session,
  cfg: ProxyConfig,
  plan: Plan,
  proxyService: string | undefined,
  opener: (() => Promise<Duplex>) | undefined,
): Promise<void> {
  const proxyPlan = plan.services.find((p) => p.service === proxyService);
  if (!cfg.changed || cfg.live === undefined || !proxyPlan || proxyPlan.action !== 'keep') return;
  const running = (await listProjectContainers(s.remote, s.inputs.project)).filter(
    (c) => c.service === proxyService && c.state === 'running',
  );
  for (const c of running) {
    await reload(s.remote, c.id, { opener, stateFile: cfg.next ? findServerStateFile(cfg.next) : undefined, log: s.log });
    s.timeline.add('proxy-reload', { service: proxyService, container: c.name });
    s.log.info(`reloaded HAProxy in ${c.name}`);
  }
}
