/**
 * Which Compose config hashes mean "this container already runs the desired config".
 *
 * Compose labels each container with a hash of its service config and handoff compares that label
 * with the desired config. On Compose v1 `config --hash` gives the label's value. On Compose v2 it
 * does not always (measured on 2.26.1):
 * - `config --hash` differs from the label of a service with `env_file` (the hash `up` writes is of
 *   the loaded model, where the env file is already merged into `environment`);
 * - `up --no-deps SVC` labels its containers with the hash of the service *without* `depends_on`
 *   (docker/compose#12069; from 2.29.3 on the hash leaves `depends_on` out altogether).
 * So on v2 the desired hashes are computed the way `up` computes them: the loaded model
 * (`config --format json`) is fed back to `config --hash` on stdin, once as it is and once without
 * `depends_on` (`config --hash` on the files themselves is not used: it is the one that disagrees). A container whose label is any of these runs the desired config: they differ only in
 * `depends_on`, which does not change the container.
 *
 * Both flavors: Compose reads `env_file` (and `extends` files) from the project directory while it
 * loads the config, so a plan made with the live app/ directory would read the *previous* release's
 * env files (and fail on a first deploy, where app/ is empty). The model is therefore loaded from the
 * release's own directory and relocated to app/ (every path under the release root rewritten) before
 * it is hashed against app/: the hashes `up` will write once the release is active.
 */
import type { ComposeFlavor, ComposeProject } from '../engine/docker/compose-cli.js';
import { composeCommand, configHashCommand, parseConfigHashes } from '../engine/docker/compose-cli.js';
import { parse as parseYaml } from 'yaml';
import { removeFileCommand } from '../commands/files.js';
import type { Remote } from '../host/remote.js';
import { QUICK_COMMAND_MS, RELEASE_COMMAND_MS } from '../support/timeouts.js';

/** The loaded model as JSON (v2): exactly what `up` hashes, with `$` escaped as `$$`. */
export function configJsonCommand(p: ComposeProject): string {
  return composeCommand('v2', p, ['config', '--format', 'json']);
}

/** `config --hash` over a model given on stdin, resolved like the project itself (name, env file, directory). */
export function stdinHashCommand(p: ComposeProject): string {
  return composeCommand('v2', { ...p, files: ['-'] }, ['config', '--hash=*']);
}

/** The same model with every service's `depends_on` removed (what `up --no-deps` hashes on Compose 2.2x). */
export function withoutDependsOn(modelJson: string): string {
  const model = JSON.parse(modelJson) as { services?: Record<string, Record<string, unknown>> };
  for (const svc of Object.values(model.services ?? {})) delete svc.depends_on;
  return JSON.stringify(model);
}

/** Where a model is loaded from, and the directory its paths must read as (the live app/). */
export interface Relocation {
  from: string;
  to: string;
}

/** Rewrite every absolute path under `from` (the release root) to the same path under `to` (app/). */
export function relocate(modelText: string, r: Relocation | undefined): string {
  if (!r || r.from === r.to) return modelText;
  const from = r.from.replace(/\/+$/, '');
  const escaped = from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return modelText.replace(new RegExp(`${escaped}(?=[/"':\\s,\\]}]|$)`, 'gm'), r.to.replace(/\/+$/, ''));
}

/** Merge hash lists per service, first seen first, without repeats. */
export function mergeHashes(...lists: Array<Map<string, string>>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const list of lists) {
    for (const [svc, h] of list) {
      const have = out.get(svc) ?? [];
      if (!have.includes(h)) have.push(h);
      out.set(svc, have);
    }
  }
  return out;
}

/** The flavor that wrote a container, from its `com.docker.compose.version` label ('' = unknown). */
export function flavorOfLabel(version: string): ComposeFlavor | undefined {
  const major = /^v?(\d+)\./.exec(version.trim())?.[1];
  if (major === '1') return 'v1';
  if (major && Number(major) >= 2) return 'v2';
  return undefined;
}

export interface DesiredConfig {
  /** The resolved model (YAML on v1, JSON on v2; both parse with parseCompose(..., {interpolate: false})). */
  modelText: string;
  /** Per service: the hashes that mean "the desired config", the one `up` writes today first. */
  hashes: Map<string, string[]>;
}

/**
 * Read the resolved model and the accepted config hashes of a stack. `load` is where Compose reads
 * the files (the release); `hashAs` is the project as it will run (app/). With `relocation`, the
 * model loaded from `load` has its paths rewritten to app/ before it is hashed as `hashAs`.
 */
export async function readDesiredConfig(
  remote: Remote,
  flavor: ComposeFlavor,
  load: ComposeProject,
  options: { hashAs?: ComposeProject; relocation?: Relocation; scratch?: string; timeoutMs?: number } = {},
): Promise<DesiredConfig> {
  const timeoutMs = options.timeoutMs ?? RELEASE_COMMAND_MS;
  const hashAs = options.hashAs ?? load;
  if (flavor === 'v1') return readDesiredConfigV1(remote, load, hashAs, options.relocation, options.scratch, timeoutMs);
  const config = await remote.exec(configJsonCommand(load), { timeoutMs });
  const modelText = relocate(config.stdout, options.relocation);
  const [asLoaded, noDeps] = await Promise.all([
    remote.exec(stdinHashCommand(hashAs), { timeoutMs, stdin: modelText }),
    remote.exec(stdinHashCommand(hashAs), { timeoutMs, stdin: withoutDependsOn(modelText) }),
  ]);
  return { modelText, hashes: mergeHashes(parseConfigHashes(asLoaded.stdout), parseConfigHashes(noDeps.stdout)) };
}

/**
 * Compose v1. Its hash depends on the literal form of some fields (`config` prints ports as
 * `…:8080/tcp`, which hashes differently from `…:8080`), so a round trip through `config` is not
 * faithful. The hash comes from the release's files resolved from app/ (what `up` will see), and the
 * env files, which v1 reads from app/ (the previous release's, or none on a first deploy), are
 * checked apart: a service whose environment differs between the model loaded from the release and
 * the one loaded from app/ changed, and gets the round-trip hash, which no running container has.
 */
async function readDesiredConfigV1(
  remote: Remote,
  load: ComposeProject,
  hashAs: ComposeProject,
  relocation: Relocation | undefined,
  scratchPath: string | undefined,
  timeoutMs: number,
): Promise<DesiredConfig> {
  const config = await remote.exec(composeCommand('v1', load, ['config']), { timeoutMs });
  const modelText = relocate(config.stdout, relocation);
  if (!relocation) {
    const hash = await remote.exec(configHashCommand('v1', load), { timeoutMs });
    return { modelText, hashes: mergeHashes(parseConfigHashes(hash.stdout)) };
  }
  const [asRun, directHash] = await Promise.all([
    remote.exec(composeCommand('v1', hashAs, ['config']), { timeoutMs, check: false }),
    remote.exec(configHashCommand('v1', hashAs), { timeoutMs, check: false }),
  ]);
  const direct = asRun.code === 0 && directHash.code === 0 ? parseConfigHashes(directHash.stdout) : new Map<string, string>();
  const changed = envChanged(modelText, asRun.code === 0 ? asRun.stdout : '');
  const trusted = new Map([...direct].filter(([svc]) => !changed.has(svc)));
  if (trusted.size === direct.size && direct.size > 0) return { modelText, hashes: mergeHashes(trusted) };
  // Compose v1 cannot read a file from stdin: the relocated model goes to a scratch file (0600:
  // it holds the env values) that is removed right after.
  const scratch = scratchPath ?? `${relocation.from.replace(/\/+$/, '')}/.handoff-plan.yaml`;
  await remote.writeFile(scratch, modelText, 0o600);
  try {
    const hash = await remote.exec(configHashCommand('v1', { ...hashAs, files: [scratch] }), { timeoutMs });
    const roundTrip = parseConfigHashes(hash.stdout);
    return { modelText, hashes: mergeHashes(trusted, new Map([...roundTrip].filter(([svc]) => !trusted.has(svc)))) };
  } finally {
    await remote.exec(removeFileCommand(scratch), { check: false, timeoutMs: QUICK_COMMAND_MS });
  }
}

/** Services whose resolved `environment` differs between two `config` outputs (all of them when `other` is empty). */
export function envChanged(modelText: string, other: string): Set<string> {
  const envs = (text: string): Map<string, string> => {
    const doc = (text.trim() ? parseYaml(text) : {}) as { services?: Record<string, { environment?: unknown }> } | null;
    return new Map(Object.entries(doc?.services ?? {}).map(([svc, def]) => [svc, JSON.stringify(normalizeEnv(def?.environment))]));
  };
  const a = envs(modelText);
  const b = envs(other);
  return new Set([...a.keys()].filter((svc) => a.get(svc) !== b.get(svc)));
}

function normalizeEnv(env: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(env)) {
    for (const item of env) {
      const text = String(item);
      const i = text.indexOf('=');
      out[i < 0 ? text : text.slice(0, i)] = i < 0 ? '' : text.slice(i + 1);
    }
  } else if (env && typeof env === 'object') {
    for (const [k, v] of Object.entries(env)) out[k] = v === null || v === undefined ? '' : String(v);
  }
  return Object.fromEntries(Object.entries(out).sort(([x], [y]) => x.localeCompare(y)));
}
