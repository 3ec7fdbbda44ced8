/**
 * Pure helpers over the user's Caddyfile and handoff's upstream files (one per routed service):
 * - the Caddyfile: its admin socket (`admin unix//path` in the global options), its `import` lines,
 *   upstreams named directly (`reverse_proxy app:8080`, `to app:8080`: Docker's DNS lists the old
 *   replica until it stops, so handoff cannot drain them), and whether reverse_proxy declares a
 *   transport (without one, idle upstream connections outlive a config change);
 * - an upstream file: the seed the user uploads (`to app:8080`: the service and its port, what
 *   Caddy uses on a first deploy through Docker's DNS) and handoff's rendering of it with the
 *   replicas' IPs (`to 172.18.0.5:8080 172.18.0.6:8080`).
 */

export interface CaddyLine {
  /** 1-based line number. */
  line: number;
  words: string[];
  /** Brace depth at the start of the line. */
  depth: number;
  /** Inside the global options block (the first block, with no site address). */
  global: boolean;
}

export interface CaddyfileFacts {
  /** The admin socket's path in the container, when the admin endpoint is a unix socket. */
  adminSocket?: string;
  /** The admin line as written (e.g. `admin off`, `admin localhost:2019`), when it is not a unix socket. */
  adminOther?: { line: number; text: string };
  imports: Array<{ line: number; path: string }>;
  /** Upstream addresses written in the Caddyfile itself. */
  upstreams: Array<{ line: number; address: string }>;
  /** A reverse_proxy with a `transport` subdirective. */
  transport: boolean;
}

/** Tokenise a Caddyfile: comments dropped, quotes kept together, brace depth tracked. */
export function caddyLines(text: string): CaddyLine[] {
  const out: CaddyLine[] = [];
  let depth = 0;
  let globalOpen = false;
  let seenBlock = false;
  for (const [i, raw] of text.split('\n').entries()) {
    const words = (raw.replace(/(^|\s)#.*$/, '').match(/"[^"]*"|\S+/g) ?? []).map((w) => w.replace(/^"|"$/g, ''));
    if (words.length === 0) continue;
    if (depth === 0 && !seenBlock && words.length === 1 && words[0] === '{') globalOpen = true;
    out.push({ line: i + 1, words, depth, global: globalOpen && depth >= 1 });
    for (const w of words) {
      if (w === '{' || w.endsWith('{')) depth++;
      if (w === '}') depth--;
    }
    if (depth === 0) {
      if (globalOpen) globalOpen = false;
      if (words.includes('{') || words.includes('}')) seenBlock = true;
    }
  }
  return out;
}

/** Upstream-looking words: not a matcher, path, brace or option. */
function addressWords(words: readonly string[]): string[] {
  return words.filter((w) => w !== '{' && w !== '}' && !w.startsWith('@') && !w.startsWith('/') && w !== '*');
}

export function caddyfileFacts(text: string): CaddyfileFacts {
  const facts: CaddyfileFacts = { imports: [], upstreams: [], transport: false };
  for (const l of caddyLines(text)) {
    const [first, second] = l.words;
    if (l.global && l.depth === 1 && first === 'admin' && second) {
      if (second.startsWith('unix/')) facts.adminSocket = second.slice(5).split('|')[0];
      else facts.adminOther = { line: l.line, text: l.words.join(' ') };
    }
    if (first === 'import' && second) facts.imports.push({ line: l.line, path: second });
    if (first === 'reverse_proxy') for (const a of addressWords(l.words.slice(1))) facts.upstreams.push({ line: l.line, address: a });
    if (first === 'to' && l.depth > 0) for (const a of addressWords(l.words.slice(1))) facts.upstreams.push({ line: l.line, address: a });
    if (first === 'transport') facts.transport = true;
  }
  return facts;
}

/** host and port of an upstream address (`app:8080`, `http://app:8080`, `[::1]:80`). */
export function splitAddress(address: string): { host: string; port?: number } {
  const bare = address.replace(/^[a-z0-9+.-]+:\/\//i, '').replace(/\/.*$/, '');
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d+))?$/.exec(bare);
  if (!m) return { host: bare };
  return { host: m[1]!.replace(/^\[|\]$/g, ''), ...(m[2] ? { port: Number(m[2]) } : {}) };
}

/** The Compose services named by these addresses (host = the service name, or <service>.<network>). */
export function servicesNamed(addresses: readonly string[], serviceNames: readonly string[]): string[] {
  const hosts = addresses.map((a) => splitAddress(a).host.toLowerCase());
  return serviceNames.filter((name) => hosts.some((h) => h === name.toLowerCase() || h.startsWith(`${name.toLowerCase()}.`)));
}

export interface CaddySeed {
  service: string;
  port: number;
}

/**
 * An upstream file handoff manages: one `to` line naming one Compose service with its port (the
 * seed, as uploaded) or the replicas' IPs with that port (as handoff rendered it, recognised by its
 * header). Undefined when the file is something else.
 */
export function parseCaddySeed(text: string, serviceNames: readonly string[]): CaddySeed | { error: string } | undefined {
  const rendered = /^# handoff: service (\S+) port (\d+)/m.exec(text);
  if (rendered && serviceNames.includes(rendered[1]!)) return { service: rendered[1]!, port: Number(rendered[2]) };
  const to = caddyLines(text).filter((l) => l.words[0] === 'to');
  if (to.length === 0) return undefined;
  const addresses = to.flatMap((l) => addressWords(l.words.slice(1)));
  const named = servicesNamed(addresses, serviceNames);
  if (named.length === 0) return undefined;
  if (named.length > 1 || addresses.length > 1 || to.length > 1)
    return { error: `it must name one service and its port on one line, e.g. "to ${named[0]}:8080"` };
  const { port } = splitAddress(addresses[0]!);
  if (!port) return { error: `"to ${addresses[0]}" has no port: write "to ${named[0]}:<port>"` };
  return { service: named[0]!, port };
}

/**
 * handoff's upstream file for these replica addresses (`ip:port`). With none (the service's last
 * replica drained by a stop-first batch), an address that refuses at once: Caddy answers 502
 * rather than resolving the service name to a stopped replica.
 */
export function renderCaddyUpstreams(seed: CaddySeed, ips: readonly string[]): string {
  const to = ips.length ? ips.map((ip) => `${ip}:${seed.port}`).join(' ') : '127.0.0.1:1';
  return [
    `# handoff: service ${seed.service} port ${seed.port}`,
    `# Written by handoff at each change of the ${seed.service} replicas (by container IP); do not edit.`,
    `# The seed uploaded with the release ("to ${seed.service}:${seed.port}") is used until handoff first writes it.`,
    `to ${to}`,
    '',
  ].join('\n');
}
