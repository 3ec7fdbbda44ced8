/**
 * Pure helpers over the user's haproxy.cfg and the proxy's Compose service: where the Runtime API
 * socket is, which Compose services the proxy routes to, and how the action reaches that socket
 * from the host (a bind-mounted Unix socket, or a published TCP port).
 */
import path from 'node:path';
import type { ComposeService } from '../../model/compose.js';
import { hostPathInMount } from '../mounts.js';

export type StatsSocket = { kind: 'unix'; path: string; admin: boolean } | { kind: 'tcp'; host: string; port: number; admin: boolean };

export type RuntimeApiLocation =
  | { kind: 'unix'; hostPath: string }
  | { kind: 'tcp'; host: string; port: number }
  /** No way in from the host: the rollout runs degraded (retries and health checks only). */
  | { kind: 'none'; reason: string };

export interface ProxyServer {
  /** The backend or listen section holding the line. */
  backend: string;
  keyword: 'server' | 'server-template';
  /** Server name, or the server-template prefix. */
  name: string;
  /** Host part of the address (a Compose service name when it is one). */
  host: string;
  port?: number;
}

interface CfgLine {
  section: string;
  sectionName: string;
  words: string[];
}

/** Tokenise: drop comments, track `global` / `defaults` / `backend x` / `listen x`... sections. */
function cfgLines(cfgText: string): CfgLine[] {
  const out: CfgLine[] = [];
  let section = '';
  let sectionName = '';
  for (const raw of cfgText.split('\n')) {
    const line = raw.replace(/(^|\s)#.*$/, '').trim();
    if (line === '') continue;
    const words = line.split(/\s+/);
    const first = words[0]!;
    if (/^(global|defaults|frontend|backend|listen|resolvers|peers|userlist|program|http-errors|ring|mailers|cache)$/.test(first)) {
      section = first;
      sectionName = words[1] ?? '';
      continue;
    }
    out.push({ section, sectionName, words });
  }
  return out;
}

/**
 * The stats sockets of the `global` section, admin ones first (only `level admin` may use
 * `set server`). Addresses: `/path`, `unix@/path`, `ipv4@host:port`, `host:port`, `:port`.
 */
export function findStatsSockets(cfgText: string): StatsSocket[] {
  const found: StatsSocket[] = [];
  for (const { section, words } of cfgLines(cfgText)) {
    if (section !== 'global' || words[0] !== 'stats' || words[1] !== 'socket' || !words[2]) continue;
    const addr = words[2];
    const levelAt = words.indexOf('level');
    // Newer HAProxy releases default to admin; an explicit level is what we can rely on.
    const admin = levelAt < 0 ? true : words[levelAt + 1] === 'admin';
    const parsed = parseSocketAddress(addr, admin);
    if (parsed) found.push(parsed);
  }
  return found.sort((a, b) => Number(b.admin) - Number(a.admin));
}

/** The admin socket handoff uses, or undefined when the config declares none. */
export function findStatsSocket(cfgText: string): StatsSocket | undefined {
  return findStatsSockets(cfgText)[0];
}

function parseSocketAddress(addr: string, admin: boolean): StatsSocket | undefined {
  if (addr.startsWith('unix@')) return { kind: 'unix', path: addr.slice(5), admin };
  if (addr.startsWith('/')) return { kind: 'unix', path: addr, admin };
  const m = /^(?:(?:ipv4|ipv6|tcp|tcp4|tcp6)@)?(\[[^\]]*\]|[^:]*):(\d+)$/.exec(addr);
  if (m) return { kind: 'tcp', host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]), admin };
  // abns@ (abstract namespace), fd@, sockpair@: nothing the host can open.
  return undefined;
}

/** Every `server` / `server-template` line of the backends and listen sections. */
export function proxyServers(cfgText: string): ProxyServer[] {
  const out: ProxyServer[] = [];
  for (const { section, sectionName, words } of cfgLines(cfgText)) {
    if (section !== 'backend' && section !== 'listen') continue;
    let keyword: ProxyServer['keyword'];
    let addr: string | undefined;
    if (words[0] === 'server') {
      keyword = 'server';
      addr = words[2];
    } else if (words[0] === 'server-template') {
      // server-template <prefix> <num | range> <fqdn>[:<port>]
      keyword = 'server-template';
      addr = words[3];
    } else continue;
    if (!addr || !words[1]) continue;
    const { host, port } = splitHostPort(addr);
    out.push({ backend: sectionName, keyword, name: words[1], host, ...(port !== undefined ? { port } : {}) });
  }
  return out;
}

function splitHostPort(addr: string): { host: string; port?: number } {
  const bare = addr.replace(/^[a-z0-9]+@/, '');
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(bare);
  if (!m) return { host: bare };
  return { host: m[1]!.replace(/^\[|\]$/g, ''), ...(m[2] ? { port: Number(m[2]) } : {}) };
}

/**
 * The Compose services the proxy routes to: those whose name is the host of a server line.
 * Docker's DNS resolves the service name (and `<service>.<network>`) to all its replicas.
 */
export function routedServices(cfgText: string, serviceNames: string[]): string[] {
  // `tasks.<service>`: Swarm's DNS name for every task of a service (the service name may be a virtual IP).
  const hosts = new Set(proxyServers(cfgText).map((s) => s.host.toLowerCase().replace(/^tasks\./, '')));
  return serviceNames.filter((name) => {
    const n = name.toLowerCase();
    for (const h of hosts) if (h === n || h.startsWith(`${n}.`)) return true;
    return false;
  });
}

/** The backends that hold servers for this service (for logs and for reading stats). */
export function backendsForService(cfgText: string, service: string): string[] {
  const n = service.toLowerCase();
  const set = new Set(
    proxyServers(cfgText)
      .filter((s) => s.host.toLowerCase() === n || s.host.toLowerCase().startsWith(`${n}.`))
      .map((s) => s.backend),
  );
  return [...set];
}

/**
 * The proxy service: the one named explicitly, else the one whose image mentions haproxy.
 * Two candidates without an explicit name is an error (the user must say which).
 */
export function findProxyService<T extends Pick<ComposeService, 'name' | 'image'>>(services: T[], explicitName?: string): T | undefined {
  if (explicitName) {
    const s = services.find((x) => x.name === explicitName);
    if (!s)
      throw new Error(`proxy service "${explicitName}" is not in the Compose files (services: ${services.map((x) => x.name).join(', ')})`);
    return s;
  }
  const candidates = services.filter((s) => /haproxy/i.test(s.image ?? ''));
  if (candidates.length > 1) {
    throw new Error(`several services look like HAProxy (${candidates.map((s) => s.name).join(', ')}): name the proxy service explicitly`);
  }
  return candidates[0];
}

/**
 * How the action reaches the Runtime API from the host:
 * - a Unix socket inside a bind-mounted directory: its host path (relative sources resolve
 *   against the Compose project directory on the host);
 * - a TCP socket published on the host: its host address and port.
 */
export function locateRuntimeApi(
  proxy: Pick<ComposeService, 'name' | 'volumes' | 'ports'>,
  cfgText: string,
  projectDirOnHost: string,
): RuntimeApiLocation {
  const sockets = findStatsSockets(cfgText);
  if (sockets.length === 0) {
    return {
      kind: 'none',
      reason: `the HAProxy config has no "stats socket" in its global section: add "stats socket /var/run/haproxy/admin.sock mode 666 level admin" and mount /var/run/haproxy from the host`,
    };
  }
  const reasons: string[] = [];
  for (const sock of sockets) {
    const where = locateSocket(proxy, sock, projectDirOnHost);
    if ('reason' in where) reasons.push(where.reason);
    else return where;
  }
  return { kind: 'none', reason: reasons.join('; ') };
}

/** One `stats socket` line: how the host reaches it, or why it cannot. */
function locateSocket(
  proxy: Pick<ComposeService, 'name' | 'volumes' | 'ports'>,
  sock: StatsSocket,
  projectDirOnHost: string,
): Exclude<RuntimeApiLocation, { kind: 'none' }> | { reason: string } {
  if (!sock.admin) return { reason: `stats socket ${sock.kind === 'unix' ? sock.path : `${sock.host}:${sock.port}`} is not "level admin"` };
  if (sock.kind === 'unix') {
    const mounted = hostPathInMount(proxy, sock.path, projectDirOnHost);
    return 'reason' in mounted ? mounted : { kind: 'unix', hostPath: mounted.hostPath };
  }
  if (sock.host === '127.0.0.1' || sock.host === 'localhost' || sock.host === '::1') {
    return {
      reason: `stats socket ${sock.host}:${sock.port} listens on the container's loopback: publishing it cannot reach it (bind it to 0.0.0.0 or use a Unix socket)`,
    };
  }
  const pub = proxy.ports.find((p) => String(p.target) === String(sock.port) && (p.protocol ?? 'tcp') === 'tcp');
  if (!pub || pub.published === undefined || !/^\d+$/.test(pub.published)) {
    return {
      reason: `stats socket port ${sock.port} is not published on a fixed host port by service "${proxy.name}" (e.g. "127.0.0.1:${sock.port}:${sock.port}")`,
    };
  }
  const host = !pub.hostIp || pub.hostIp === '0.0.0.0' || pub.hostIp === '::' ? '127.0.0.1' : pub.hostIp;
  return { kind: 'tcp', host, port: Number(pub.published) };
}

/**
 * The container path of the server-state file (global `server-state-file`, relative to
 * `server-state-base` when it is not absolute), or undefined when the config keeps no state file.
 */
export function findServerStateFile(cfgText: string): string | undefined {
  let file: string | undefined;
  let base: string | undefined;
  for (const line of cfgLines(cfgText)) {
    if (line.section !== 'global') continue;
    if (line.words[0] === 'server-state-file') file = line.words[1];
    if (line.words[0] === 'server-state-base') base = line.words[1];
  }
  if (!file) return undefined;
  return file.startsWith('/') || !base ? file : path.posix.join(base, file);
}
