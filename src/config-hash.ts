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
 * `depends_on`. A container whose label is any of these runs the desired config: they differ only in
 * `depends_on`, which does not change the container.
 */
import type { ComposeFlavor, ComposeProject } from './compose-cli.js';
import { composeCommand, configHashCommand, parseConfigHashes } from './compose-cli.js';
import type { Remote } from './remote.js';

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

/** Read the resolved model and the accepted config hashes of a stack, in as few round trips as the flavor allows. */
export async function readDesiredConfig(remote: Remote, flavor: ComposeFlavor, stack: ComposeProject, timeoutMs = 120_000): Promise<DesiredConfig> {
  if (flavor === 'v1') {
    const [config, hash] = await Promise.all([
      remote.exec(composeCommand('v1', stack, ['config']), { timeoutMs }),
      remote.exec(configHashCommand('v1', stack), { timeoutMs }),
    ]);
    return { modelText: config.stdout, hashes: mergeHashes(parseConfigHashes(hash.stdout)) };
  }
  const config = await remote.exec(configJsonCommand(stack), { timeoutMs });
  const [asLoaded, noDeps, direct] = await Promise.all([
    remote.exec(stdinHashCommand(stack), { timeoutMs, stdin: config.stdout }),
    remote.exec(stdinHashCommand(stack), { timeoutMs, stdin: withoutDependsOn(config.stdout) }),
    remote.exec(configHashCommand('v2', stack), { timeoutMs }),
  ]);
  return {
    modelText: config.stdout,
    hashes: mergeHashes(parseConfigHashes(asLoaded.stdout), parseConfigHashes(noDeps.stdout), parseConfigHashes(direct.stdout)),
  };
}
