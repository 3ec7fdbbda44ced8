/**
 * The Compose model handoff needs: parsed from one or more Compose files (merged in order, like
 * `-f a -f b`) and interpolated from an env map. The same parser reads the local files (early
 * validation, before the host changes) and the output of the remote `compose config` (the resolved
 * truth, which is what gets deployed).
 */
import { isMap, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { parseDuration as parseDurationMs } from './duration.js';
import { validateServiceName } from './names.js';

export type UpdateOrder = 'start-first' | 'stop-first';
export type FailureAction = 'rollback' | 'pause' | 'continue';

export interface UpdateConfig {
  /** Replicas replaced per batch; at least 1 (Swarm's 0 = "all at once" becomes the replica count). */
  parallelism: number;
  /** Pause between batches. */
  delayS: number;
  /** undefined = not set in the file: the rollout policy decides. */
  order?: UpdateOrder;
  failureAction: FailureAction;
  /** How long new replicas are watched after each batch. Default 5 s, Swarm's default. */
  monitorS: number;
  /** Fraction of failed batches tolerated before failure_action applies. Default 0. */
  maxFailureRatio: number;
}

export interface Healthcheck {
  /** As written: a string (CMD-SHELL) or a list (["CMD", ...], ["CMD-SHELL", "..."]). */
  test?: string | string[];
  intervalS: number;
  timeoutS: number;
  retries: number;
  startPeriodS: number;
  /** `disable: true` or test ["NONE"]: the image's healthcheck is switched off too. */
  disabled: boolean;
}

export interface PortMapping {
  hostIp?: string;
  /** The host port or range; undefined = Docker picks an ephemeral port (no conflict between replicas). */
  published?: string;
  target: string;
  protocol?: string;
}

export interface VolumeMount {
  type: 'volume' | 'bind' | 'tmpfs' | 'npipe' | 'cluster' | 'image';
  /** Volume name or host path; undefined for an anonymous volume. */
  source?: string;
  target: string;
  readOnly: boolean;
}

export interface ComposeService {
  name: string;
  image?: string;
  hasBuild: boolean;
  replicas: number;
  updateConfig: UpdateConfig;
  stopGracePeriodS: number;
  /** undefined = none in the Compose file (the image may still define one: checked at runtime). */
  healthcheck?: Healthcheck;
  containerName?: string;
  ports: PortMapping[];
  /** The ports that pin a host port: a second replica of this service cannot start. */
  fixedHostPorts: string[];
  networkMode?: string;
  dependsOn: string[];
  volumes: VolumeMount[];
  hasNamedVolume: boolean;
  networks: string[];
}

export interface ComposeModel {
  /** Top-level `name`, when set (Compose v2 prints it in `config`). */
  name?: string;
  /** In file order. */
  services: ComposeService[];
  /** The merged document, interpolated, for anything the typed model does not cover. */
  raw: Record<string, unknown>;
}

export interface ComposeFile {
  /** For error messages. */
  name: string;
  text: string;
}

export interface ParseOptions {
  /** Variables for `${VAR}` interpolation. Missing ones become '' (as Compose does, with a warning). */
  env?: Record<string, string | undefined>;
  /** Default true. */
  interpolate?: boolean;
  /** Called for variables that are not set (Compose warns about these). */
  onWarning?: (message: string) => void;
}

const UPDATE_DEFAULTS: Readonly<Omit<UpdateConfig, 'order'>> = {
  parallelism: 1,
  delayS: 0,
  failureAction: 'rollback',
  monitorS: 5,
  maxFailureRatio: 0,
};
const STOP_GRACE_DEFAULT_S = 10;
const HEALTHCHECK_DEFAULTS = { intervalS: 30, timeoutS: 30, retries: 3, startPeriodS: 0 } as const;

/** Parse and merge Compose files in order (`-f a -f b`), then build the typed model. */
export function parseCompose(files: ComposeFile[], options: ParseOptions = {}): ComposeModel {
  if (files.length === 0) throw new Error('no Compose files given: set compose_files');
  let merged: Record<string, unknown> = {};
  for (const file of files) {
    const doc = loadFile(file);
    const value = options.interpolate === false ? doc : interpolateTree(doc, file.name, options);
    merged = mergeTop(merged, value as Record<string, unknown>);
  }
  const names = files.map((f) => f.name).join(', ');
  const services = merged.services;
  if (!isRecord(services) || Object.keys(services).length === 0) {
    throw new Error(`${names}: no services defined (a Compose file needs a top-level "services:" mapping)`);
  }
  const model: ComposeModel = {
    services: Object.entries(services).map(([name, def]) => parseService(name, def, names)),
    raw: merged,
  };
  if (typeof merged.name === 'string') model.name = merged.name;
  for (const s of model.services) {
    for (const dep of s.dependsOn) {
      if (!(dep in services)) throw new Error(`${names}: service "${s.name}" depends on undefined service "${dep}"`);
    }
  }
  return model;
}

function loadFile(file: ComposeFile): Record<string, unknown> {
  const lc = new LineCounter();
  const doc = parseDocument(file.text, { lineCounter: lc, merge: true, prettyErrors: false });
  const err = doc.errors[0];
  if (err) {
    const line = err.linePos?.[0].line ?? lc.linePos(err.pos[0]).line;
    throw new Error(`${file.name}:${line}: invalid YAML: ${err.message.split('\n')[0]}`);
  }
  const lineOf = (node: YamlNode | null | undefined) => (node?.range ? lc.linePos(node.range[0]).line : 1);
  if (!isMap(doc.contents)) {
    throw new Error(`${file.name}:${lineOf(doc.contents)}: a Compose file must be a mapping with a "services:" key`);
  }
  const servicesNode = doc.contents.get('services', true) as YamlNode | undefined;
  if (servicesNode !== undefined && servicesNode !== null && !isMap(servicesNode)) {
    throw new Error(`${file.name}:${lineOf(servicesNode)}: "services" must be a mapping of service names to definitions`);
  }
  if (isMap(servicesNode)) {
    for (const pair of servicesNode.items) {
      const v = pair.value as YamlNode | null;
      if (v !== null && !isMap(v)) {
        const key = String((pair.key as { value?: unknown })?.value ?? pair.key);
        throw new Error(`${file.name}:${lineOf(v)}: service "${key}" must be a mapping`);
      }
    }
  }
  return doc.toJS({ maxAliasCount: 1000 }) as Record<string, unknown>;
}

// ---- interpolation ----

/** Interpolate `${VAR}`, `${VAR:-d}`, `${VAR-d}`, `${VAR:?e}`, `${VAR?e}`, `${VAR:+a}`, `${VAR+a}`, `$VAR`, `$$`. */
export function interpolate(
  text: string,
  env: Record<string, string | undefined>,
  where = 'value',
  onWarning?: (m: string) => void,
): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = text[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next === '{') {
      // Find the matching brace, allowing nested ${...} in defaults.
      let depth = 1;
      let j = i + 2;
      while (j < text.length && depth > 0) {
        if (text[j] === '$' && text[j + 1] === '{') {
          depth++;
          j += 2;
          continue;
        }
        if (text[j] === '}') depth--;
        j++;
      }
      if (depth !== 0) throw new Error(`${where}: unclosed "\${" in ${JSON.stringify(text)}`);
      out += substitute(text.slice(i + 2, j - 1), env, where, onWarning);
      i = j;
      continue;
    }
    const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i + 1));
    if (m) {
      out += lookup(m[0], env, where, onWarning);
      i += 1 + m[0].length;
      continue;
    }
    throw new Error(`${where}: invalid interpolation in ${JSON.stringify(text)}: write "$$" for a literal "$"`);
  }
  return out;
}

function lookup(name: string, env: Record<string, string | undefined>, where: string, onWarning?: (m: string) => void): string {
  const v = env[name];
  if (v === undefined) {
    onWarning?.(`${where}: variable ${name} is not set, using an empty string`);
    return '';
  }
  return v;
}

function substitute(expr: string, env: Record<string, string | undefined>, where: string, onWarning?: (m: string) => void): string {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?+])([\s\S]*))?$/.exec(expr);
  if (!m) throw new Error(`${where}: invalid interpolation "\${${expr}}"`);
  const [, name, colon, op, rest = ''] = m;
  const value = env[name!];
  // With ':', an empty value counts as unset.
  const isSet = colon ? value !== undefined && value !== '' : value !== undefined;
  const arg = () => interpolate(rest, env, where, onWarning);
  switch (op) {
    case undefined:
      return lookup(name!, env, where, onWarning);
    case '-':
      return isSet ? value! : arg();
    case '+':
      return isSet ? arg() : '';
    case '?':
      if (!isSet) throw new Error(`${where}: required variable ${name} is missing a value: ${arg() || `set ${name} in env`}`);
      return value!;
  }
  throw new Error(`${where}: invalid interpolation "\${${expr}}"`);
}

function interpolateTree(value: unknown, file: string, options: ParseOptions, path = ''): unknown {
  const env = options.env ?? {};
  if (typeof value === 'string') return interpolate(value, env, `${file}${path ? ` (${path})` : ''}`, options.onWarning);
  if (Array.isArray(value)) return value.map((v, i) => interpolateTree(v, file, options, `${path}[${i}]`));
  if (isRecord(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = interpolateTree(v, file, options, path ? `${path}.${k}` : k);
    return out;
  }
  return value;
}

// ---- merging (-f a -f b) ----

function mergeTop(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (k === 'services' && isRecord(v)) {
      const services: Record<string, unknown> = { ...(isRecord(base.services) ? base.services : {}) };
      for (const [name, def] of Object.entries(v)) {
        services[name] =
          isRecord(services[name]) && isRecord(def) ? mergeService(services[name] as Record<string, unknown>, def) : (def ?? {});
      }
      out.services = services;
    } else {
      out[k] = deepMerge(base[k], v);
    }
  }
  return out;
}

/** Sequences Compose unions rather than replaces. */
const UNION_LISTS = new Set([
  'ports',
  'expose',
  'external_links',
  'dns',
  'dns_search',
  'tmpfs',
  'cap_add',
  'cap_drop',
  'devices',
  'security_opt',
]);
/** Lists that are really maps (`K=V` or a mapping) and merge by key. */
const KV_LISTS = new Set(['environment', 'labels', 'extra_hosts', 'sysctls']);

function mergeService(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = base[k];
    if (b === undefined) out[k] = v;
    else if (UNION_LISTS.has(k) && Array.isArray(b) && Array.isArray(v)) {
      const seen = new Set(b.map((x) => JSON.stringify(x)));
      out[k] = [...b, ...v.filter((x) => !seen.has(JSON.stringify(x)))];
    } else if (KV_LISTS.has(k)) out[k] = { ...kvMap(b), ...kvMap(v) };
    else if (k === 'depends_on') out[k] = { ...dependsOnMap(b), ...dependsOnMap(v) };
    else if (k === 'volumes' && Array.isArray(b) && Array.isArray(v)) {
      // Merged by mount target: a later file's mount at the same path replaces the earlier one.
      const byTarget = new Map<string, unknown>();
      for (const x of [...b, ...v]) byTarget.set(volumeTarget(x) ?? JSON.stringify(x), x);
      out[k] = [...byTarget.values()];
    } else out[k] = deepMerge(b, v);
  }
  return out;
}

function deepMerge(base: unknown, over: unknown): unknown {
  if (isRecord(base) && isRecord(over)) {
    const out: Record<string, unknown> = { ...base };
    for (const [k, v] of Object.entries(over)) out[k] = k in base ? deepMerge(base[k], v) : v;
    return out;
  }
  return over;
}

function kvMap(v: unknown): Record<string, unknown> {
  if (Array.isArray(v)) {
    const out: Record<string, unknown> = {};
    for (const item of v) {
      const s = String(item);
      const eq = s.indexOf('=');
      if (eq < 0) out[s] = null;
      else out[s.slice(0, eq)] = s.slice(eq + 1);
    }
    return out;
  }
  return isRecord(v) ? v : {};
}

function dependsOnMap(v: unknown): Record<string, unknown> {
  if (Array.isArray(v)) return Object.fromEntries(v.map((s) => [String(s), { condition: 'service_started' }]));
  return isRecord(v) ? v : {};
}

function volumeTarget(v: unknown): string | undefined {
  if (isRecord(v)) return typeof v.target === 'string' ? v.target : undefined;
  if (typeof v === 'string') return parseShortVolume(v).target;
  return undefined;
}

// ---- typed service ----

function parseService(name: string, defRaw: unknown, where: string): ComposeService {
  validateServiceName(name);
  const def = isRecord(defRaw) ? defRaw : {};
  const at = (field: string) => `${where}: service "${name}" ${field}`;
  const deploy = isRecord(def.deploy) ? def.deploy : {};
  const replicas = replicaCount(deploy, def, at);
  const updateConfig = parseUpdateConfig(isRecord(deploy.update_config) ? deploy.update_config : {}, replicas, at);

  const ports = asList(def.ports, at('ports')).map((p) => parsePort(p, at('ports')));
  const volumes = asList(def.volumes, at('volumes')).map((v) => parseVolume(v, at('volumes')));

  const service: ComposeService = {
    name,
    hasBuild: def.build !== undefined && def.build !== null,
    replicas,
    updateConfig,
    stopGracePeriodS: durationOr(def.stop_grace_period, STOP_GRACE_DEFAULT_S, at('stop_grace_period')),
    ports,
    fixedHostPorts: ports.filter((p) => p.published !== undefined).map(formatPort),
    dependsOn: Object.keys(dependsOnMap(def.depends_on)),
    volumes,
    hasNamedVolume: volumes.some((v) => v.type === 'volume' && v.source !== undefined),
    networks: networkNames(def.networks),
  };
  if (typeof def.image === 'string') service.image = def.image;
  if (def.container_name !== undefined && def.container_name !== null) service.containerName = String(def.container_name);
  if (typeof def.network_mode === 'string') service.networkMode = def.network_mode;
  if (isRecord(def.healthcheck)) service.healthcheck = parseHealthcheck(def.healthcheck, at('healthcheck'));
  return service;
}

/** deploy.replicas, else the older `scale`, else 1. */
function replicaCount(deploy: Record<string, unknown>, def: Record<string, unknown>, at: (field: string) => string): number {
  if (deploy.replicas !== undefined && deploy.replicas !== null) return nonNegInt(deploy.replicas, at('deploy.replicas'));
  if (def.scale !== undefined && def.scale !== null) return nonNegInt(def.scale, at('scale'));
  return 1;
}

/** deploy.update_config, with Swarm's defaults for what it leaves out. */
function parseUpdateConfig(uc: Record<string, unknown>, replicas: number, at: (field: string) => string): UpdateConfig {
  const order =
    uc.order === undefined ? undefined : oneOf(uc.order, ['start-first', 'stop-first'] as const, at('deploy.update_config.order'));
  const failureAction = oneOf(
    uc.failure_action ?? UPDATE_DEFAULTS.failureAction,
    ['rollback', 'pause', 'continue'] as const,
    at('deploy.update_config.failure_action'),
  );
  let parallelism =
    uc.parallelism === undefined ? UPDATE_DEFAULTS.parallelism : nonNegInt(uc.parallelism, at('deploy.update_config.parallelism'));
  if (parallelism === 0) parallelism = Math.max(1, replicas); // Swarm: 0 = all at once
  const ratio = uc.max_failure_ratio === undefined ? UPDATE_DEFAULTS.maxFailureRatio : Number(uc.max_failure_ratio);
  if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
    throw new Error(`${at('deploy.update_config.max_failure_ratio')} is ${JSON.stringify(uc.max_failure_ratio)}: use a number from 0 to 1`);
  }
  const updateConfig: UpdateConfig = {
    parallelism,
    delayS: durationOr(uc.delay, UPDATE_DEFAULTS.delayS, at('deploy.update_config.delay')),
    failureAction,
    monitorS: durationOr(uc.monitor, UPDATE_DEFAULTS.monitorS, at('deploy.update_config.monitor')),
    maxFailureRatio: ratio,
  };
  if (order !== undefined) updateConfig.order = order;
  return updateConfig;
}

/** `networks` as a list of names or a mapping keyed by name. */
function networkNames(networks: unknown): string[] {
  if (Array.isArray(networks)) return networks.map(String);
  return isRecord(networks) ? Object.keys(networks) : [];
}

function parseHealthcheck(h: Record<string, unknown>, where: string): Healthcheck {
  const test = h.test;
  const hc: Healthcheck = {
    intervalS: h.interval === undefined ? HEALTHCHECK_DEFAULTS.intervalS : parseDuration(h.interval, `${where}.interval`),
    timeoutS: h.timeout === undefined ? HEALTHCHECK_DEFAULTS.timeoutS : parseDuration(h.timeout, `${where}.timeout`),
    retries: h.retries === undefined ? HEALTHCHECK_DEFAULTS.retries : nonNegInt(h.retries, `${where}.retries`),
    startPeriodS: h.start_period === undefined ? HEALTHCHECK_DEFAULTS.startPeriodS : parseDuration(h.start_period, `${where}.start_period`),
    disabled: h.disable === true || (Array.isArray(test) && test[0] === 'NONE'),
  };
  if (typeof test === 'string') hc.test = test;
  else if (Array.isArray(test)) hc.test = test.map(String);
  return hc;
}

/** A Compose/Go duration (`1m30s`, `10s`, `500ms`, `1h`, `1.5s`) or a bare number of seconds, in seconds. */
export function parseDuration(value: unknown, where = 'duration'): number {
  return parseDurationMs(value, where) / 1000;
}

function parsePort(p: unknown, where: string): PortMapping {
  if (typeof p === 'number') return { target: String(p) };
  if (isRecord(p)) return parseLongPort(p, where);
  if (typeof p !== 'string') throw new Error(`${where}: cannot read port ${JSON.stringify(p)}`);
  return parseShortPort(p, where);
}

function parseLongPort(p: Record<string, unknown>, where: string): PortMapping {
  if (p.target === undefined) throw new Error(`${where}: a long-syntax port needs "target"`);
  const out: PortMapping = { target: String(p.target) };
  if (p.published !== undefined && p.published !== null && String(p.published) !== '' && String(p.published) !== '0')
    out.published = String(p.published);
  if (p.host_ip !== undefined) out.hostIp = String(p.host_ip);
  if (p.protocol !== undefined) out.protocol = String(p.protocol);
  return out;
}

/** `[IP:][HOST:]CONTAINER[/PROTOCOL]`, the IP optionally a bracketed IPv6 address; ports may be ranges. */
function parseShortPort(p: string, where: string): PortMapping {
  let s = p;
  let protocol: string | undefined;
  const slash = s.lastIndexOf('/');
  if (slash >= 0) {
    protocol = s.slice(slash + 1);
    s = s.slice(0, slash);
  }
  let hostIp: string | undefined;
  const v6 = /^\[([^\]]+)\]:(.*)$/.exec(s);
  if (v6) {
    hostIp = v6[1];
    s = v6[2]!;
  }
  const parts = s.split(':');
  let published: string | undefined;
  let target: string;
  if (parts.length === 1) target = parts[0]!;
  else if (parts.length === 2) [published, target] = parts as [string, string];
  else if (parts.length === 3 && !hostIp) [hostIp, published, target] = parts as [string, string, string];
  else throw new Error(`${where}: cannot read port ${JSON.stringify(p)}: use "HOST:CONTAINER" or "IP:HOST:CONTAINER"`);
  if (!/^\d+(-\d+)?$/.test(target) || (published && !/^\d+(-\d+)?$/.test(published))) {
    throw new Error(`${where}: cannot read port ${JSON.stringify(p)}`);
  }
  const out: PortMapping = { target };
  // Host port 0, like an empty one, lets Docker pick: not a fixed port (the long syntax reads it so too).
  if (published && published !== '0') out.published = published;
  if (hostIp) out.hostIp = hostIp;
  if (protocol) out.protocol = protocol;
  return out;
}

function formatPort(p: PortMapping): string {
  return `${p.hostIp ? `${p.hostIp}:` : ''}${p.published ? `${p.published}:` : ''}${p.target}${p.protocol ? `/${p.protocol}` : ''}`;
}

function parseShortVolume(s: string): { source?: string; target: string; readOnly: boolean } {
  const parts = s.split(':');
  if (parts.length === 1) return { target: parts[0]!, readOnly: false };
  const mode = parts.length >= 3 ? parts[2]! : '';
  return { source: parts[0]!, target: parts[1]!, readOnly: mode.split(',').includes('ro') };
}

function parseVolume(v: unknown, where: string): VolumeMount {
  if (typeof v === 'string') {
    const { source, target, readOnly } = parseShortVolume(v);
    if (source === undefined) return { type: 'volume', target, readOnly };
    const isPath = /^[./~]/.test(source) || source.includes('/');
    return { type: isPath ? 'bind' : 'volume', source, target, readOnly };
  }
  if (isRecord(v)) {
    const type = String(v.type ?? 'volume') as VolumeMount['type'];
    if (typeof v.target !== 'string') throw new Error(`${where}: a long-syntax volume needs "target"`);
    const out: VolumeMount = { type, target: v.target, readOnly: v.read_only === true };
    if (typeof v.source === 'string' && v.source !== '') out.source = v.source;
    return out;
  }
  throw new Error(`${where}: cannot read volume ${JSON.stringify(v)}`);
}

function asList(v: unknown, where: string): unknown[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new Error(`${where} must be a list`);
  return v;
}

function nonNegInt(v: unknown, where: string): number {
  const n = typeof v === 'string' && /^\d+$/.test(v.trim()) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new Error(`${where} is ${JSON.stringify(v)}: use a whole number ≥ 0`);
  return n;
}

/** A duration in seconds, or `fallbackS` when the field is not set. */
function durationOr(value: unknown, fallbackS: number, where: string): number {
  return value === undefined ? fallbackS : parseDuration(value, where);
}

/** One of `allowed`; the error lists them, e.g. `use "start-first" or "stop-first"`. */
function oneOf<T extends string>(value: unknown, allowed: readonly T[], where: string): T {
  if ((allowed as readonly unknown[]).includes(value)) return value as T;
  const quoted = allowed.map((a) => JSON.stringify(a));
  throw new Error(`${where} is ${JSON.stringify(value)}: use ${quoted.slice(0, -1).join(', ')} or ${quoted.at(-1)}`);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
