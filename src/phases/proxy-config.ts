/**
 * The proxy config of a release: validated in a throwaway container of the proxy's image before it
 * can reach the running proxy (the driver applies it hitlessly right before the rollout: a reload
 * in the middle of it would lose HAProxy's runtime state).
 */
import { posix } from 'node:path';
import type { ComposeModel } from '../model/compose.js';
import { phase } from '../support/log.js';
import type { ConfigChange } from '../proxy/driver.js';
import type { Release } from './release.js';
import type { Session } from './session.js';
import { hostView, proxyHost, selectedProxy } from './gate.js';

export type ProxyConfig = ConfigChange;

export async function checkProxyConfig(s: Session, release: Release, model: ComposeModel): Promise<ProxyConfig> {
  const { remote, remoteDir, log } = s;
  s.roundTrips?.enter('proxy config');
  const selected = selectedProxy(s.inputs, model);
  if (!selected) return { changed: false };
  const { driver, service } = selected;
  const view = hostView(s, model, service, { id: release.id, composeFiles: release.composeFiles, files: release.manifest.files });
  const cfgPath = driver.configPath(release.manifest.files, view.proxy, view.composeDir);
  // The release's config and the live one, side by side.
  const [next, live] = cfgPath
    ? await Promise.all([
        remote.readFile(posix.join(remoteDir, 'releases', release.id, cfgPath)),
        remote.readFile(posix.join(remoteDir, 'app', cfgPath)),
      ])
    : [undefined, undefined];
  const changed = !!next && next !== live;
  if (changed && service.image && cfgPath) {
    await phase('Proxy config', async () => {
      await driver.checkConfig(proxyHost(s, release.id), view, cfgPath);
      log.info(`the new ${driver.label} config is valid`);
    });
  }
  return { ...(next !== undefined ? { next } : {}), ...(live !== undefined ? { live } : {}), changed };
}
