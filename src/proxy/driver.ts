/**
 * One reverse proxy, as handoff drives it: each proxy is a folder (haproxy/, caddy/, nginx/) with a
 * driver implementing this interface. The phases never name a proxy; they ask the driver chosen by
 * the `proxy` input (auto: from the proxy service's image) to recognise the proxy service, find its
 * config among the release's files, say which services it routes (start-first by default), check a
 * changed config in a throwaway container, and open the gate of a deploy (or say why it must be
 * degraded). Without a driver, or when the user allows it, the degraded gate is used.
 */
import type { ComposeModel, ComposeService } from '../model/compose.js';
import type { Remote } from '../host/remote.js';
import type { Timeline } from '../model/timeline.js';
import type { Log } from '../support/log.js';
import type { ProxyGate } from './gate.js';

export type ProxyKind = 'haproxy' | 'caddy' | 'nginx';
/** The `proxy` input. */
export type ProxyChoice = 'auto' | ProxyKind | 'none';

/** A release's files as a driver reads them: locally before connecting, or in the release dir on the host. */
export interface ReleaseView {
  model: ComposeModel;
  /** The proxy's Compose service. */
  proxy: ComposeService;
  /** Directory of the first Compose file, relative to the release root ('.' for the root). */
  composeDir: string;
  /** Every release file, relative to the release root. */
  paths: readonly string[];
  /** A release file's text (undefined when it is not there). */
  read(path: string): Promise<string | undefined>;
}

/** What a driver needs of the deploy to touch the host. */
export interface ProxyHost {
  remote: Remote;
  project: string;
  remoteDir: string;
  /** Where the release being deployed sits on the host (releases/<id>). */
  releaseDir: string;
  log: Log;
  timeline: Timeline;
  drainTimeoutMs: number;
  /** The haproxy_socket input. */
  haproxySocket?: string;
}

/** The running proxy's state before the release is activated, and what the release changes. */
export interface ConfigChange {
  /** The release's config text, and the live one in app/ (undefined: none). */
  next?: string;
  live?: string;
  changed: boolean;
  /** The plan's action for the proxy service (keep: it keeps running, so a changed config must be applied to it). */
  proxyAction?: string;
}

/** The gate of a deploy, and what runs right before the rollout (applying a changed config). */
export interface OpenedProxy {
  gate: ProxyGate;
  /** Brings the running proxy to the release's config, hitlessly; before the first replica changes. */
  before?: () => Promise<void>;
  /** After a successful rollout (a first deploy: the proxy now runs, its files are made to list replicas by IP). */
  after?: () => Promise<void>;
  /** Why the gate does not drain (shown as a warning). */
  degraded?: string;
}

export interface ProxyDriver {
  readonly kind: ProxyKind;
  /** For messages: HAProxy, Caddy, nginx. */
  readonly label: string;
  /** Whether an image reference looks like this proxy (auto selection). */
  matchesImage(image: string): boolean;
  /** The proxy's main config among the release's files (release-relative), if uploaded. */
  configPath(paths: readonly string[], proxy: ComposeService | undefined, composeDir: string): string | undefined;
  /** What to add when the config is not uploaded. */
  missingConfigHint(proxy: ComposeService): string;
  /** The Compose services the proxy routes to (start-first by default). */
  routedServices(view: ReleaseView, cfgText: string): Promise<string[]>;
  /**
   * What the gate needs and the config lacks, each naming the line to add; empty when it can drain.
   * Checked locally before anything on the host changes.
   */
  requirements(view: ReleaseView, cfgText: string): Promise<string[]>;
  /** Validate the release's config (in the release dir on the host) in a throwaway container of the proxy's image. */
  checkConfig(host: ProxyHost, view: ReleaseView, cfgPath: string): Promise<void>;
  /**
   * Called before the release is activated (the live files are still the previous release's): the
   * gate of this deploy, and the step that applies the release's config before the rollout.
   */
  open(host: ProxyHost, view: ReleaseView, change: ConfigChange): Promise<OpenedProxy>;
}

/**
 * Whether an image reference names this proxy: the word (caddy, nginx) in the repository's last
 * path segment, tag and registry left out, so `caddy:2`, `ghcr.io/x/caddy-l4` and `handoff-test-caddy`
 * match and `myapp:caddy-v3` or `caddyfile-linter` do not.
 */
export function imageNames(image: string, word: string): boolean {
  const name =
    image
      .replace(/@.*$/, '')
      .replace(/:[^/]*$/, '')
      .split('/')
      .pop() ?? '';
  return name.toLowerCase().split(/[-_.]/).includes(word);
}

/** The drivers in auto selection order (HAProxy first: the default proxy). */
export function driverFor(kind: ProxyKind, drivers: readonly ProxyDriver[]): ProxyDriver {
  const d = drivers.find((x) => x.kind === kind);
  if (!d) throw new Error(`no driver for proxy ${kind}`);
  return d;
}

/**
 * The proxy service and its driver:
 * - `proxy: none`: no proxy (degraded gate);
 * - `proxy_service` names it: that service, with the chosen driver, or by its image (auto; an image
 *   handoff does not recognise is taken for HAProxy, as before drivers existed);
 * - else the service whose image matches (the chosen driver's, or in auto the first kind with a
 *   match in the order HAProxy, Caddy, nginx). Two of one kind: the user must say which.
 */
export function selectProxy<T extends Pick<ComposeService, 'name' | 'image'>>(
  services: readonly T[],
  choice: ProxyChoice,
  explicitName: string | undefined,
  drivers: readonly ProxyDriver[],
): { service: T; driver: ProxyDriver } | undefined {
  if (choice === 'none') return undefined;
  if (explicitName) {
    const s = services.find((x) => x.name === explicitName);
    if (!s)
      throw new Error(`proxy service "${explicitName}" is not in the Compose files (services: ${services.map((x) => x.name).join(', ')})`);
    if (choice !== 'auto') return { service: s, driver: driverFor(choice, drivers) };
    return { service: s, driver: drivers.find((d) => d.matchesImage(s.image ?? '')) ?? drivers[0]! };
  }
  const order = choice === 'auto' ? drivers : [driverFor(choice, drivers)];
  for (const driver of order) {
    const candidates = services.filter((s) => driver.matchesImage(s.image ?? ''));
    if (candidates.length > 1) {
      throw new Error(
        `several services look like ${driver.label} (${candidates.map((s) => s.name).join(', ')}): name the proxy service with the 'proxy_service' input`,
      );
    }
    if (candidates.length === 1) return { service: candidates[0]!, driver };
  }
  return undefined;
}
