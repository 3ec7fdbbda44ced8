/**
 * Pure helpers over the user's nginx.conf and handoff's upstream files (one per routed service):
 * - nginx.conf: its `include` lines, `proxy_pass` targets and `server` lines of upstream blocks
 *   written in it (a Compose service named there is resolved once, at load, to whatever replicas
 *   run then: handoff cannot drain it);
 * - an upstream file: the seed the user uploads (`upstream app { server app:8080; keepalive 16; }`:
 *   the service, its port, and the block's other directives, used on a first deploy through
 *   Docker's DNS) and handoff's rendering of it with the replicas' IPs.
 */
import { servicesNamed, splitAddress } from '../caddy/config.js';

export interface NginxStatement {
  /** 1-based line of its first word. */
  line: number;
  words: string[];
  /** The enclosing block names, outermost first (e.g. ['http', 'upstream app']). */
  context: string[];
}

/** Statements (`words;`) and block openings (`words {`), comments dropped, quotes kept together. */
export function nginxStatements(text: string): NginxStatement[] {
  const out: NginxStatement[] = [];
  const context: string[] = [];
  let words: string[] = [];
  let line = 0;
  for (const [i, raw] of text.split('\n').entries()) {
    const tokens = raw.replace(/(^|\s)#.*$/, '').match(/"[^"]*"|'[^']*'|[{};]|[^\s{};]+/g) ?? [];
    for (const t of tokens) {
      if (t === ';') {
        if (words.length) out.push({ line, words, context: [...context] });
        words = [];
      } else if (t === '{') {
        out.push({ line, words, context: [...context] });
        context.push(words.join(' '));
        words = [];
      } else if (t === '}') {
        context.pop();
        words = [];
      } else {
        if (words.length === 0) line = i + 1;
        words.push(t.replace(/^["']|["']$/g, ''));
      }
    }
  }
  return out;
}

export interface NginxConfFacts {
  includes: Array<{ line: number; path: string }>;
  /** `proxy_pass` targets (host part: an upstream name or a host; a port means a host). */
  proxyPasses: Array<{ line: number; host: string; port?: number }>;
  /** `server` lines of upstream blocks written in this file. */
  upstreamServers: Array<{ line: number; address: string }>;
  /** `keepalive_min_timeout` (nginx 1.27.4+), wherever it is set. */
  keepaliveMinTimeout?: { line: number; value: string };
}

export function nginxConfFacts(text: string): NginxConfFacts {
  const facts: NginxConfFacts = { includes: [], proxyPasses: [], upstreamServers: [] };
  for (const s of nginxStatements(text)) {
    const [first, second] = s.words;
    if (!second) continue;
    if (first === 'include') facts.includes.push({ line: s.line, path: second });
    if (first === 'proxy_pass') facts.proxyPasses.push({ line: s.line, ...splitAddress(second) });
    if (first === 'server' && s.context.at(-1)?.startsWith('upstream ')) facts.upstreamServers.push({ line: s.line, address: second });
    if (first === 'keepalive_min_timeout') facts.keepaliveMinTimeout = { line: s.line, value: second };
  }
  return facts;
}

export interface NginxSeed {
  /** The upstream block's name (what proxy_pass names). */
  upstream: string;
  service: string;
  port: number;
  /** Parameters of the seed's server line (weight=, max_fails=...), kept on every rendered one. */
  serverParams: string[];
  /** The block's other directives (keepalive 16; keepalive_timeout 2s; ...), kept as written. */
  directives: string[];
}

/**
 * An upstream file handoff manages: exactly one `upstream` block whose server lines name one
 * Compose service with its port (the seed), or handoff's rendering (recognised by its header, which
 * repeats the seed). Undefined when the file is something else.
 */
export function parseNginxSeed(text: string, serviceNames: readonly string[]): NginxSeed | { error: string } | undefined {
  const rendered = /^# handoff-seed: (.*)$/m.exec(text);
  const source = rendered ? rendered[1]!.replace(/\\n/g, '\n') : text;
  const statements = nginxStatements(source);
  const blocks = statements.filter((s) => s.words[0] === 'upstream' && s.context.length === 0);
  if (blocks.length !== 1 || !blocks[0]!.words[1]) return undefined;
  const name = blocks[0]!.words[1];
  const inside = statements.filter((s) => s.context.length === 1 && s.context[0] === `upstream ${name}`);
  const servers = inside.filter((s) => s.words[0] === 'server');
  const named = servicesNamed(
    servers.map((s) => s.words[1] ?? ''),
    serviceNames,
  );
  if (named.length === 0) return undefined;
  if (named.length > 1 || servers.length > 1)
    return { error: `the upstream block must name one service once, e.g. "server ${named[0]}:8080;"` };
  const { port } = splitAddress(servers[0]!.words[1]!);
  if (!port) return { error: `"server ${servers[0]!.words[1]}" has no port: write "server ${named[0]}:<port>;"` };
  return {
    upstream: name,
    service: named[0]!,
    port,
    serverParams: servers[0]!.words.slice(2),
    directives: inside.filter((s) => s.words[0] !== 'server').map((s) => `${s.words.join(' ')};`),
  };
}

/** The seed, as its header keeps it (one line). */
function seedLine(seed: NginxSeed): string {
  return [
    `upstream ${seed.upstream} {`,
    `server ${seed.service}:${seed.port}${seed.serverParams.map((p) => ` ${p}`).join('')};`,
    ...seed.directives,
    '}',
  ].join('\\n');
}

/**
 * handoff's upstream file for these replica IPs. With none (the service's last replica drained by a
 * stop-first batch), one server marked `down`: nginx answers 502 at once (an upstream block needs a server).
 */
export function renderNginxUpstreams(seed: NginxSeed, ips: readonly string[]): string {
  const params = seed.serverParams.map((p) => ` ${p}`).join('');
  const servers = ips.length ? ips.map((ip) => `    server ${ip}:${seed.port}${params};`) : ['    server 127.0.0.1:1 down;'];
  return [
    `# handoff-seed: ${seedLine(seed)}`,
    `# Written by handoff at each change of the ${seed.service} replicas (by container IP); do not edit.`,
    `upstream ${seed.upstream} {`,
    ...servers,
    ...seed.directives.map((d) => `    ${d}`),
    '}',
    '',
  ].join('\n');
}

/** Whether a release path matches an nginx include pattern (`*` and `?` within one path segment). */
export function matchesInclude(pattern: string, p: string): boolean {
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '[^/]*')
      .replace(/\?/g, '[^/]')}$`,
  );
  return re.test(p);
}

/**
 * What the config should add so that a reload loses nothing, or undefined. Without
 * `keepalive_min_timeout`, the old workers close every idle client keep-alive connection the moment a
 * reload starts, and a client that sends on one right then gets a reset (measured: 4 to 6 in 10
 * reloads under keep-alive load; none with 3s). Pure.
 */
export function reloadAdvice(facts: NginxConfFacts, file: string): string | undefined {
  const set = facts.keepaliveMinTimeout;
  if (set && !/^0+(ms|s)?$/.test(set.value)) return undefined;
  return `${file} ${set ? `line ${set.line} sets keepalive_min_timeout to 0` : 'sets no keepalive_min_timeout'}: at each reload nginx closes the client keep-alive connections idle at that moment, and a client that reuses one right then gets a reset. On nginx 1.27.4 or later add "keepalive_min_timeout 3s;" in http {} (older nginx has no such setting)`;
}

/** An nginx time ("3s", "500ms", "1m30s", "5" = seconds) in ms; undefined when it is not one. Pure. */
export function nginxTimeMs(text: string): number | undefined {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const parts = [...text.matchAll(/(\d+)(ms|s|m|h|d)/g)];
  if (!parts.length || parts.map((p) => p[0]).join('') !== text) return undefined;
  return parts.reduce((ms, p) => ms + Number(p[1]) * units[p[2]!]!, 0);
}

/**
 * How long after a reload an old worker may still take a request on a client connection it holds
 * (and route it with the previous upstream list): nginx.conf's `keepalive_min_timeout`. Undefined
 * when nginx.conf does not say (it may be set in an included file): then only the workers' exit tells. Pure.
 */
export function oldWorkerHoldMs(facts: NginxConfFacts): number | undefined {
  const set = facts.keepaliveMinTimeout;
  return set ? nginxTimeMs(set.value) : undefined;
}
