/**
 * A fleet: the hosts one deploy rolls, host by host (or a few at a time), with one release id.
 * Pure: parsing the `hosts` and per-host `fingerprint` inputs, the waves of hosts, the release id
 * shared by every host, and which hosts a failure rolls back. Messages name a host by its line
 * number, never by its name (a host name may come from a secret).
 */
import { releaseId } from './release.js';

export interface FleetHost {
  host: string;
  port: number;
  /** 1-based position in the `hosts` input: how messages and the summary name the host. */
  index: number;
  /** This host's own SHA256 pin (a `host=SHA256:…` line of `fingerprint`, or the one shared fingerprint). */
  fingerprint?: string;
}

/** How the summary and the log name a host: its position and address (`#2 10.0.0.12:22`). */
export function hostLabel(h: Pick<FleetHost, 'host' | 'port' | 'index'>): string {
  return `#${h.index} ${h.host.includes(':') ? `[${h.host}]` : h.host}:${h.port}`;
}

const HOST_NAME = /^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/;

/** `host`, `host:port`, `[v6]` or `[v6]:port`; undefined when it is none of these. */
export function parseHostPort(text: string, defaultPort: number): { host: string; port: number } | undefined {
  const m = /^\[([0-9A-Fa-f:.]+)\](?::(\d{1,5}))?$/.exec(text) ?? /^([^:\s[\]]+)(?::(\d{1,5}))?$/.exec(text);
  if (!m) return undefined;
  const host = m[1]!;
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  if (!text.startsWith('[') && !HOST_NAME.test(host)) return undefined;
  return { host, port };
}

/** The `hosts` input: one `host[:port]` a line (blank and `#` lines skipped), in rollout order, no duplicates. */
export function parseHosts(text: string, defaultPort: number): FleetHost[] {
  const hosts: FleetHost[] = [];
  const seen = new Set<string>();
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const hp = parseHostPort(line, defaultPort);
    if (!hp) throw new Error(`line ${i + 1} is not host or host:port (one host a line, e.g. 10.0.0.11 or web2.example.com:2222)`);
    const key = `${hp.host.toLowerCase()}:${hp.port}`;
    if (seen.has(key)) throw new Error(`line ${i + 1} repeats a host listed above: list each host once`);
    seen.add(key);
    hosts.push({ ...hp, index: hosts.length + 1 });
  }
  if (hosts.length === 0) throw new Error('lists no host: one host[:port] a line');
  return hosts;
}

/**
 * The `fingerprint` input of a fleet: one fingerprint for every host (they share a host key), or
 * `host[:port]=SHA256:…` lines, each naming a listed host (the port defaults as in `hosts`).
 * Returns the hosts with their pins; a host without one must be covered by known_hosts.
 */
export function assignFingerprints(hosts: FleetHost[], text: string | undefined, defaultPort: number): FleetHost[] {
  const lines = (text ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  if (lines.length === 0) return hosts;
  if (lines.length === 1 && !lines[0]!.includes('=')) return hosts.map((h) => ({ ...h, fingerprint: lines[0]! }));
  const pins = new Map<string, string>();
  for (const [i, line] of lines.entries()) {
    const eq = line.indexOf('=');
    const hp = eq > 0 ? parseHostPort(line.slice(0, eq).trim(), defaultPort) : undefined;
    if (!hp) throw new Error(`line ${i + 1} is not host[:port]=SHA256:… (with several hosts, each fingerprint names its host)`);
    const key = `${hp.host.toLowerCase()}:${hp.port}`;
    if (!hosts.some((h) => `${h.host.toLowerCase()}:${h.port}` === key))
      throw new Error(`line ${i + 1} names a host that is not in 'hosts' (same name and port as listed there)`);
    pins.set(key, line.slice(eq + 1).trim());
  }
  return hosts.map((h) => {
    const fp = pins.get(`${h.host.toLowerCase()}:${h.port}`);
    return fp ? { ...h, fingerprint: fp } : h;
  });
}

/** The hosts in waves of `parallelism`, in their listed order: a wave is rolled at once, the next after it. */
export function hostWaves<T>(hosts: T[], parallelism: number): T[][] {
  const size = Math.max(1, Math.floor(parallelism));
  const waves: T[][] = [];
  for (let i = 0; i < hosts.length; i += size) waves.push(hosts.slice(i, i + size));
  return waves;
}

/**
 * A release id no release in `takenIds` has (the next second's when taken). A fleet passes every
 * host's ids, so the one id is free on each and every host's release dir has the same name.
 */
export function freeReleaseId(sha: string, takenIds: Iterable<string>, now: number): string {
  const ids = new Set(takenIds);
  let t = now;
  let id = releaseId(new Date(t), sha);
  while (ids.has(id)) id = releaseId(new Date((t += 1000)), sha);
  return id;
}

/** How a host's rollout went in a fleet deploy. */
export type HostRollResult = 'rolled' | 'failed' | 'not-reached';

/**
 * The hosts a failure sends back to their previous release: the ones whose rollout completed (the
 * failed host rolls itself back through its own failure handling, and hosts not reached never changed).
 * Only with failure_action `rollback`; `pause` and `continue` leave every host as the deploy left it.
 */
export function hostsToRollBack<T extends { result: HostRollResult }>(hosts: T[], failureAction: 'rollback' | 'pause' | 'continue'): T[] {
  if (failureAction !== 'rollback') return [];
  if (!hosts.some((h) => h.result === 'failed')) return [];
  return hosts.filter((h) => h.result === 'rolled');
}

/** A rollback must return every host to the same release: the targets each host picked, checked before any change. */
export function commonRollbackTarget(targets: Array<string | undefined>): string {
  const distinct = [...new Set(targets)];
  if (distinct.length === 1 && distinct[0]) return distinct[0];
  const listed = targets.map((t, i) => `#${i + 1}: ${t ?? 'none'}`).join(', ');
  throw new Error(
    `the hosts would roll back to different releases (${listed}): name one with the 'release' input (a release id every host has)`,
  );
}
