import { parseDuration } from '../model/duration.js';
import { isValidProjectName, isValidServiceName, projectNameFromRepository } from '../model/names.js';
import { assignFingerprints, parseHostPort, parseHosts, type FleetHost } from '../model/fleet.js';

/** One SSH endpoint: the deploy host, or the jump host in front of it. */
export interface SshTarget {
  host: string;
  port: number;
  username: string;
  key: string;
  passphrase?: string;
  /** Pins of the host key; neither means the explicit insecure opt-out. */
  knownHosts?: string;
  fingerprint?: string;
}

/** Everything the action was asked to do, parsed and validated before anything on the host changes. */
export interface Inputs extends SshTarget {
  insecureIgnoreHostKey: boolean;
  /**
   * Several hosts (the `hosts` input), rolled in waves of `hostParallelism`; `host`, `port` and
   * `fingerprint` are then those of the first. Undefined for a one-host deploy (`host`).
   */
  fleet?: FleetHost[];
  hostParallelism: number;
  jump?: SshTarget;
  connectTimeoutMs: number;
  commandTimeoutMs: number;

  project: string;
  composeFiles: string[];
  files: string[];
  /** Plain variables: shown in the log like any other value. */
  env: Record<string, string>;
  /** Secret variables: masked, written only to the release's 0600 env file. */
  secrets: Record<string, string>;
  remoteDir: string;
  services: string[];
  force: boolean;
  dryRun: boolean;
  pull: 'always' | 'missing' | 'never';
  healthTimeoutMs?: number;
  drainTimeoutMs: number;
  /** Commands run once per deploy in a one-off container of `hookService` (see hooks.ts). */
  preDeploy?: string;
  postDeploy?: string;
  hookService?: string;
  hookTimeoutMs: number;

  /** Which proxy drives the drain: auto (from the proxy service's image), a kind, or none (degraded). */
  proxy: 'auto' | 'haproxy' | 'caddy' | 'nginx' | 'none';
  proxyService?: string;
  /** A proxy config that lacks what its gate needs deploys without a drain instead of failing. */
  allowDegraded: boolean;
  haproxySocket?: string;
  /** Which Compose to drive: auto (v2 when the host has it, else v1), v2 or v1. */
  compose: 'auto' | 'v1' | 'v2';
  /** Which engine: auto (Docker's default endpoint, else a Podman API socket), docker or podman. */
  engine: 'auto' | 'docker' | 'podman';
  /** The Podman API socket to use (default: the user's own, else /run/podman/podman.sock). */
  podmanSocket?: string;
  /** compose: the project run by Docker Compose; swarm: deployed as a stack (`docker stack deploy`). */
  target: 'compose' | 'swarm';
  /** The swarm's other nodes (target swarm), reached like `host` to drain the tasks on them. */
  swarmNodes: Array<{ host: string; port: number }>;

  probe?: {
    url: string;
    via: 'direct' | 'ssh';
    rate: number;
    timeoutMs: number;
    method: string;
    headers: Record<string, string>;
    expectStatus: string;
    bodyMarker?: string;
    windowMs: number;
    /** The long-request lane: a URL whose answers take a while, sent open loop at its own rate. */
    slow?: { url: string; rate: number; timeoutMs: number };
    /** What an unmeasured window around a drain or stop does to the verdict. */
    unmeasured: 'warn' | 'fail';
  };
  maxLost: number;
  /** With hosts: a URL probed on each host (`{host}` is its address), beside the fleet's probe of probe_url. */
  probeHostUrl?: string;

  rollback: boolean;
  release?: string;
  keepReleases: number;
  lockTimeoutMs: number;
  lockTtlMs: number;

  githubToken?: string;
  /** A private registry the host logs in to for this deploy only (see registry.ts). */
  registry?: { server: string; username: string; password: string };
  environment?: string;
  environmentUrl?: string;
}

/** A bad input: the message names the input and says how to fix it. */
export class InputError extends Error {
  constructor(
    readonly input: string,
    message: string,
  ) {
    super(`input '${input}': ${message}`);
    this.name = 'InputError';
  }
}

export type InputGetter = (name: string) => string;

/** Split a list input on newlines and commas, dropping blanks. */
export function parseList(text: string): string[] {
  return text
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** KEY=VALUE lines (a leading `export ` and blank/comment lines allowed). */
export function parseEnv(text: string, input = 'env'): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/\r$/, '');
    if (!line.trim() || line.trim().startsWith('#')) continue;
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    // Never echo the line: it may hold a secret value.
    if (!m) throw new InputError(input, `line ${i + 1} is not KEY=VALUE (names: letters, digits, _; not starting with a digit)`);
    if (m[2]!.includes('\n')) throw new InputError(input, `line ${i + 1}: values are single-line`);
    env[m[1]!] = m[2]!;
  }
  return env;
}

/** `Name: value` lines. */
export function parseHeaders(text: string, input: string): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [i, line] of text.split('\n').entries()) {
    if (!line.trim()) continue;
    const m = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*:\s*(.*?)\s*$/.exec(line);
    if (!m) throw new InputError(input, `line ${i + 1} is not 'Name: value'`);
    headers[m[1]!] = m[2]!;
  }
  return headers;
}

function bool(get: InputGetter, name: string): boolean {
  const v = get(name).trim().toLowerCase();
  if (v === '' || v === 'false') return false;
  if (v === 'true') return true;
  throw new InputError(name, `expected true or false, got '${v}'`);
}

function int(get: InputGetter, name: string, min: number, max: number, fallback: number): number {
  const v = get(name).trim();
  if (v === '') return fallback;
  if (!/^\d+$/.test(v)) throw new InputError(name, `expected a whole number from ${min} to ${max}, got '${v}'`);
  const n = Number(v);
  if (n < min || n > max) throw new InputError(name, `expected a whole number from ${min} to ${max}, got ${n}`);
  return n;
}

function duration(get: InputGetter, name: string, fallback: string, minMs = 0): number {
  const v = get(name).trim() || fallback;
  let ms: number;
  try {
    ms = parseDuration(v);
  } catch {
    throw new InputError(name, `'${v}' is not a duration; write e.g. 30s, 2m, 1m30s or a number of seconds`);
  }
  if (ms < minMs) throw new InputError(name, `must be at least ${minMs / 1000}s`);
  return ms;
}

function required(get: InputGetter, name: string, hint: string): string {
  const v = get(name).trim();
  if (!v) throw new InputError(name, `is required: ${hint}`);
  return v;
}

/** registry, registry_username and registry_password: all three or none. */
function registryInputs(get: InputGetter): Inputs['registry'] {
  const server = optional(get, 'registry');
  const username = optional(get, 'registry_username');
  const password = get('registry_password');
  if (!server && !username && !password) return undefined;
  for (const [name, v] of [
    ['registry', server],
    ['registry_username', username],
    ['registry_password', password],
  ] as const) {
    if (!v) throw new InputError(name, 'is required when any of registry, registry_username and registry_password is set');
  }
  if (!/^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(server!))
    throw new InputError(
      'registry',
      'must be a registry host name with an optional port (e.g. ghcr.io or registry.example.com:5000), no scheme or path',
    );
  return { server: server!, username: username!, password };
}

function optional(get: InputGetter, name: string): string | undefined {
  const v = get(name).trim();
  return v === '' ? undefined : v;
}

/** One of a fixed set of words; `expected` lists them as the error message says them. */
function oneOf<T extends string>(get: InputGetter, name: string, allowed: readonly T[], fallback: T, expected: string): T {
  const v = get(name).trim() || fallback;
  if (!(allowed as readonly string[]).includes(v)) throw new InputError(name, `expected ${expected}, got '${v}'`);
  return v as T;
}

/** An http(s) URL, normalized; `example` shows the fix when it does not parse. */
function httpUrl(name: string, text: string, example: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new InputError(name, `'${text}' is not a URL; write e.g. ${example}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new InputError(name, 'must be an http:// or https:// URL');
  return url.toString();
}

/** Workspace-relative paths only: they become paths under the release directory on the host. */
export function checkRelativePath(input: string, path: string): string {
  const p = path.replace(/\\/g, '/').replace(/^\.\//, '');
  if (p.startsWith('/') || p.split('/').includes('..')) {
    throw new InputError(input, `'${path}' must be a path inside the workspace (relative, without '..')`);
  }
  return p;
}

/** Compose's rule for project names, applied to a repository name as the default. */
export const defaultProject = projectNameFromRepository;

type Connection = Pick<
  Inputs,
  | 'host'
  | 'port'
  | 'username'
  | 'key'
  | 'passphrase'
  | 'knownHosts'
  | 'fingerprint'
  | 'insecureIgnoreHostKey'
  | 'fleet'
  | 'hostParallelism'
  | 'jump'
  | 'connectTimeoutMs'
  | 'commandTimeoutMs'
>;

/** The deploy host, how its key is pinned, and the jump host in front of it. */
function connectionInputs(get: InputGetter): Connection {
  const fleet = fleetInputs(get);
  const host = fleet ? fleet.hosts[0]!.host : required(get, 'host', 'the name or IP of the host to deploy to (or hosts, one a line)');
  const username = required(get, 'username', 'the SSH user on the host (in the docker group)');
  const key = get('key');
  if (!key.trim()) throw new InputError('key', 'is required: a private key, e.g. `key: ${{ secrets.DEPLOY_KEY }}`');

  const knownHosts = optional(get, 'known_hosts');
  const fingerprint = optional(get, 'fingerprint');
  const insecureIgnoreHostKey = bool(get, 'insecure_ignore_host_key');
  if (!knownHosts && !fingerprint && !insecureIgnoreHostKey) {
    throw new InputError(
      'known_hosts',
      'pin the host key with known_hosts (the output of `ssh-keyscan -p PORT HOST`) or fingerprint (`ssh-keygen -l -f <host key>`); ' +
        'insecure_ignore_host_key: true skips the check (not recommended)',
    );
  }
  return {
    host,
    port: fleet ? fleet.hosts[0]!.port : int(get, 'port', 1, 65535, 22),
    username,
    key,
    passphrase: optional(get, 'passphrase'),
    knownHosts,
    fingerprint: fleet ? fleet.hosts[0]!.fingerprint : fingerprint,
    insecureIgnoreHostKey,
    ...(fleet ? { fleet: fleet.hosts } : {}),
    hostParallelism: fleet?.parallelism ?? 1,
    jump: jumpInputs(get, { username, key, insecureIgnoreHostKey }),
    connectTimeoutMs: duration(get, 'connect_timeout', '20s', 1000),
    commandTimeoutMs: duration(get, 'command_timeout', '10m', 1000),
  };
}

/** hosts, with each host's fingerprint and host_parallelism: undefined for a one-host deploy. */
function fleetInputs(get: InputGetter): { hosts: FleetHost[]; parallelism: number } | undefined {
  const text = get('hosts');
  if (!text.trim()) {
    if (get('host_parallelism').trim() && get('host_parallelism').trim() !== '1')
      throw new InputError('host_parallelism', 'is only used with hosts (several hosts, one a line)');
    return undefined;
  }
  if (get('host').trim()) throw new InputError('hosts', 'set either host (one host) or hosts (several, one a line), not both');
  const port = int(get, 'port', 1, 65535, 22);
  let hosts: FleetHost[];
  try {
    hosts = parseHosts(text, port);
  } catch (e) {
    throw new InputError('hosts', (e as Error).message);
  }
  try {
    hosts = assignFingerprints(hosts, optional(get, 'fingerprint'), port);
  } catch (e) {
    throw new InputError('fingerprint', (e as Error).message);
  }
  const unpinned = hosts.filter((h) => !h.fingerprint);
  if (unpinned.length && !optional(get, 'known_hosts') && !bool(get, 'insecure_ignore_host_key'))
    throw new InputError(
      'fingerprint',
      `no pin for host ${unpinned.map((h) => `#${h.index}`).join(', ')} of hosts (in listed order): ` +
        'give a host[:port]=SHA256:… line for each, or known_hosts lines covering every host',
    );
  return { hosts, parallelism: int(get, 'host_parallelism', 1, hosts.length, 1) };
}

/** jump_*: undefined without jump_host; user, key and passphrase default to the deploy host's. */
function jumpInputs(get: InputGetter, main: Pick<Inputs, 'username' | 'key' | 'insecureIgnoreHostKey'>): Inputs['jump'] {
  const host = optional(get, 'jump_host');
  if (!host) return undefined;
  const knownHosts = optional(get, 'jump_known_hosts');
  const fingerprint = optional(get, 'jump_fingerprint');
  if (!knownHosts && !fingerprint && !main.insecureIgnoreHostKey) {
    throw new InputError('jump_known_hosts', 'pin the jump host key with jump_known_hosts or jump_fingerprint');
  }
  // The main passphrase only goes with the main key.
  const ownKey = get('jump_key').trim() ? get('jump_key') : undefined;
  return {
    host,
    port: int(get, 'jump_port', 1, 65535, 22),
    username: optional(get, 'jump_username') ?? main.username,
    key: ownKey ?? main.key,
    passphrase: ownKey ? optional(get, 'jump_passphrase') : (optional(get, 'jump_passphrase') ?? optional(get, 'passphrase')),
    knownHosts,
    fingerprint,
  };
}

/** The Compose project, the files uploaded for it, where they go, and the variables they see. */
function filesInputs(
  get: InputGetter,
  environment: NodeJS.ProcessEnv,
): Pick<Inputs, 'project' | 'composeFiles' | 'files' | 'remoteDir' | 'env' | 'secrets'> {
  const project = projectInput(get, environment);
  const composeFiles = parseList(get('compose_files') || 'compose.yaml').map((p) => checkRelativePath('compose_files', p));
  if (composeFiles.length === 0) throw new InputError('compose_files', 'name at least one Compose file');
  const files = parseList(get('files')).map((p) => checkRelativePath('files', p));

  const remoteDir = optional(get, 'remote_dir') ?? `handoff/${project}`;
  if (remoteDir.includes('\n')) throw new InputError('remote_dir', 'must be a single path');
  return { project, composeFiles, files, remoteDir, ...variableInputs(get) };
}

function projectInput(get: InputGetter, environment: NodeJS.ProcessEnv): string {
  const project = optional(get, 'project') ?? defaultProject(environment.GITHUB_REPOSITORY);
  if (!project) throw new InputError('project', 'is required when the repository name is unknown: a Compose project name like my-app');
  if (!isValidProjectName(project)) {
    throw new InputError(
      'project',
      `'${project}' is not a valid Compose project name: use lowercase letters, digits, '-' and '_', starting with a letter or digit`,
    );
  }
  return project;
}

/** env and secrets: each variable in one of them, so a secret is never also shown as plain. */
function variableInputs(get: InputGetter): Pick<Inputs, 'env' | 'secrets'> {
  const env = parseEnv(get('env'));
  const secrets = parseEnv(get('secrets'), 'secrets');
  const both = Object.keys(secrets).filter((k) => k in env);
  if (both.length)
    throw new InputError(
      'secrets',
      `${both.join(', ')} ${both.length === 1 ? 'is' : 'are'} set in both 'env' and 'secrets': keep each variable in one of them`,
    );
  return { env, secrets };
}

/** Which services change and how: pulling, health and drain limits, the proxy, the Compose version. */
function rolloutInputs(
  get: InputGetter,
): Pick<
  Inputs,
  | 'services'
  | 'force'
  | 'dryRun'
  | 'pull'
  | 'healthTimeoutMs'
  | 'drainTimeoutMs'
  | 'proxy'
  | 'proxyService'
  | 'allowDegraded'
  | 'haproxySocket'
  | 'compose'
  | 'engine'
  | 'podmanSocket'
  | 'target'
  | 'swarmNodes'
> {
  const services = parseList(get('services'));
  for (const s of services) {
    if (!isValidServiceName(s)) throw new InputError('services', `'${s}' is not a valid Compose service name`);
  }
  return {
    services,
    force: bool(get, 'force'),
    dryRun: bool(get, 'dry_run'),
    pull: oneOf(get, 'pull', ['always', 'missing', 'never'], 'always', 'always, missing or never'),
    // Unset: the wait follows each service's healthcheck timing (health.ts).
    healthTimeoutMs: optional(get, 'health_timeout') ? duration(get, 'health_timeout', '30s', 1000) : undefined,
    drainTimeoutMs: duration(get, 'drain_timeout', '30s'),
    proxy: oneOf(get, 'proxy', ['auto', 'haproxy', 'caddy', 'nginx', 'none'], 'auto', 'auto, haproxy, caddy, nginx or none'),
    proxyService: optional(get, 'proxy_service'),
    allowDegraded: bool(get, 'allow_degraded'),
    haproxySocket: optional(get, 'haproxy_socket'),
    compose: oneOf(get, 'compose', ['auto', 'v1', 'v2'], 'auto', 'auto, v2 or v1'),
    engine: oneOf(get, 'engine', ['auto', 'docker', 'podman'], 'auto', 'auto, docker or podman'),
    podmanSocket: podmanSocketInput(get),
    target: targetInput(get),
    swarmNodes: swarmNodesInput(get),
  };
}

/** swarm_nodes: one `host[:port]` a line (`[v6]:port` for an IPv6 address), for target swarm only. */
function swarmNodesInput(get: InputGetter): Inputs['swarmNodes'] {
  const lines = parseList(get('swarm_nodes'));
  if (lines.length && get('target').trim() !== 'swarm')
    throw new InputError('swarm_nodes', 'is set, but target is not swarm: remove it, or set target: swarm');
  return lines.map((line) => {
    const node = parseHostPort(line, 22);
    if (!node)
      throw new InputError('swarm_nodes', `'${line}' is not host[:port] (one node a line, e.g. node2.example.com or 10.0.0.12:2222)`);
    return node;
  });
}

function targetInput(get: InputGetter): Inputs['target'] {
  const target = oneOf(get, 'target', ['compose', 'swarm'], 'compose', 'compose or swarm');
  if (target === 'swarm' && get('hosts').trim())
    throw new InputError('hosts', 'is for target: compose; a swarm is deployed through one manager: give it as host');
  if (target === 'swarm' && get('engine').trim() === 'podman')
    throw new InputError(
      'target',
      'is swarm, but engine is podman: Podman has no swarm mode; set engine to docker (or auto) for a swarm manager',
    );
  return target;
}

function podmanSocketInput(get: InputGetter): string | undefined {
  const path = optional(get, 'podman_socket')?.replace(/^unix:\/\//, '');
  if (path !== undefined && (!path.startsWith('/') || /\s/.test(path))) {
    throw new InputError('podman_socket', `'${path}' is not an absolute path to a unix socket (e.g. /run/podman/podman.sock)`);
  }
  if (path !== undefined && get('engine') === 'docker')
    throw new InputError('podman_socket', 'is set, but engine is docker: set engine to podman or auto');
  return path;
}

function hookInputs(get: InputGetter): Pick<Inputs, 'preDeploy' | 'postDeploy' | 'hookService' | 'hookTimeoutMs'> {
  return {
    preDeploy: optional(get, 'pre_deploy'),
    postDeploy: optional(get, 'post_deploy'),
    hookService: optional(get, 'hook_service'),
    hookTimeoutMs: duration(get, 'hook_timeout', '10m', 1000),
  };
}

/** probe_*: undefined without probe_url. */
function probeInputs(get: InputGetter): Inputs['probe'] {
  const probeUrl = optional(get, 'probe_url');
  if (!probeUrl) return undefined;
  const url = httpUrl('probe_url', probeUrl, 'https://example.com/health');
  const via = oneOf(get, 'probe_via', ['direct', 'ssh'], 'direct', 'direct or ssh');
  const expectStatus = get('probe_expect_status').trim() || '200-399';
  if (!/^\s*\d{3}(\s*-\s*\d{3})?(\s*,\s*\d{3}(\s*-\s*\d{3})?)*\s*$/.test(expectStatus)) {
    throw new InputError('probe_expect_status', `'${expectStatus}' is not a status list; write e.g. 200-399 or 200,204`);
  }
  const method = (get('probe_method').trim() || 'GET').toUpperCase();
  if (!/^[A-Z]+$/.test(method)) throw new InputError('probe_method', `'${method}' is not an HTTP method`);
  const slow = slowLaneInputs(get);
  const unmeasured = oneOf(get, 'probe_unmeasured', ['warn', 'fail'], 'warn', 'warn or fail');
  return {
    slow,
    unmeasured,
    url,
    via,
    rate: int(get, 'probe_rate', 1, 1000, 20),
    timeoutMs: duration(get, 'probe_timeout', '2s', 50),
    method,
    headers: parseHeaders(get('probe_headers'), 'probe_headers'),
    expectStatus,
    bodyMarker: get('probe_body_marker') || undefined,
    windowMs: duration(get, 'probe_window', '3s'),
  };
}

/** probe_host_url: a URL template, checked with an example host; only with hosts and probe_url. */
function probeHostUrlInput(get: InputGetter): string | undefined {
  const text = optional(get, 'probe_host_url');
  if (!text) return undefined;
  if (!get('hosts').trim()) throw new InputError('probe_host_url', 'is only used with hosts (several hosts, one a line)');
  if (!optional(get, 'probe_url'))
    throw new InputError('probe_host_url', 'needs probe_url too (the URL of the whole fleet, e.g. its load balancer)');
  httpUrl('probe_host_url', hostProbeUrl(text, '192.0.2.1'), 'http://{host}:8080/health');
  return text;
}

/** probe_host_url for one host: `{host}` replaced by its address (an IPv6 one in brackets). */
export function hostProbeUrl(template: string, host: string): string {
  return template.replace(/\{host\}/g, host.includes(':') ? `[${host}]` : host);
}

/** probe_slow_*: undefined without probe_slow_url. */
function slowLaneInputs(get: InputGetter): NonNullable<Inputs['probe']>['slow'] {
  const slowUrl = optional(get, 'probe_slow_url');
  if (!slowUrl) return undefined;
  return {
    url: httpUrl('probe_slow_url', slowUrl, 'https://example.com/report?ms=1000'),
    rate: int(get, 'probe_slow_rate', 1, 100, 2),
    timeoutMs: duration(get, 'probe_slow_timeout', '10s', 100),
  };
}

/** Rollback, which release it goes back to, how many releases are kept, and the deploy lock. */
function releaseInputs(get: InputGetter): Pick<Inputs, 'rollback' | 'release' | 'keepReleases' | 'lockTimeoutMs' | 'lockTtlMs'> {
  const rollback = bool(get, 'rollback');
  const release = optional(get, 'release');
  if (release && !rollback) throw new InputError('release', 'is only used with rollback: true');
  if (release && !/^[A-Za-z0-9._-]+$/.test(release))
    throw new InputError('release', `'${release}' is not a release id (like 20261123T193000Z-abc1234)`);
  return {
    rollback,
    release,
    keepReleases: int(get, 'keep_releases', 1, 1000, 5),
    lockTimeoutMs: duration(get, 'lock_timeout', '10m'),
    lockTtlMs: duration(get, 'lock_ttl', '1h', 60_000),
  };
}

/** The GitHub side (token, Deployments environment) and the private registry. */
function githubInputs(get: InputGetter): Pick<Inputs, 'githubToken' | 'registry' | 'environment' | 'environmentUrl'> {
  return {
    githubToken: optional(get, 'github_token'),
    registry: registryInputs(get),
    environment: optional(get, 'environment'),
    environmentUrl: optional(get, 'environment_url'),
  };
}

export function readInputs(get: InputGetter, environment: NodeJS.ProcessEnv = {}): Inputs {
  return {
    ...connectionInputs(get),
    ...filesInputs(get, environment),
    ...rolloutInputs(get),
    ...hookInputs(get),
    probe: probeInputs(get),
    probeHostUrl: probeHostUrlInput(get),
    maxLost: int(get, 'max_lost', 0, 1_000_000, 0),
    ...releaseInputs(get),
    ...githubInputs(get),
  };
}

/** Every secret value and its derived forms, for core.setSecret before anything is logged. */
export function secretsOf(inputs: Inputs): string[] {
  const out: string[] = [];
  const addKey = (k: string | undefined) => {
    if (!k) return;
    out.push(k.trim());
    // A key's single lines leak on their own too (e.g. in a parse error echo).
    for (const line of k.split(/\r?\n/)) {
      const l = line.trim();
      if (l.length >= 8 && !l.startsWith('-----')) out.push(l);
    }
  };
  addKey(inputs.key);
  addKey(inputs.jump?.key);
  if (inputs.passphrase) out.push(inputs.passphrase);
  if (inputs.jump?.passphrase) out.push(inputs.jump.passphrase);
  // Only `secrets`: `env` is plain on purpose (an image tag or a host in the log is what users read).
  // The runner masks values that come from secrets.* itself; this covers values built otherwise.
  for (const v of Object.values(inputs.secrets)) if (v.length >= 4) out.push(v); // shorter values would mask common words everywhere
  if (inputs.githubToken) out.push(inputs.githubToken);
  if (inputs.registry) out.push(inputs.registry.password);
  return [...new Set(out)];
}
