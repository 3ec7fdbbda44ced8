/** The desired state on the host (resolved config, hashes, image IDs) and the plan against what runs. */
import { flavorOfLabel, readDesiredConfig } from '../model/config-hash.js';
import { parseCompose, type ComposeModel } from '../model/compose.js';
import { listProjectContainers, type ContainerInfo } from '../engine/docker/containers.js';
import { mkdirCommand } from '../commands/files.js';
import { resolveImages } from '../engine/docker/images.js';
import { planDeploy, type DesiredService, type Plan } from '../model/plan.js';
import type { ReleaseManifest } from '../model/release.js';
import { checkPolicies } from '../model/rollout-policy.js';
import { QUICK_COMMAND_MS } from '../support/timeouts.js';
import { planningView, stackOf, type Session } from './session.js';

/** The desired state of a stack on the host: resolved Compose model, config hashes, image IDs. */
export async function desiredState(
  s: Session,
  target: { composeFiles: string[]; release?: string },
  routed: string[],
  serving?: ReleaseManifest,
): Promise<{ model: ComposeModel; desired: DesiredService[]; running: ContainerInfo[] }> {
  const { remote, flavor, inputs } = s;
  // Read once, alongside the first command below: adoption and the plan both look at what runs,
  // and nothing changes in between.
  const reading = listProjectContainers(remote, inputs.project);
  reading.catch(() => {}); // awaited below; an error thrown before then must not leave it unhandled
  const appStack = stackOf(s.remoteDir, target.composeFiles, 'app', inputs.project);
  let config;
  let loadStack = appStack;
  if (target.release) {
    const view = planningView(s.remoteDir, target.composeFiles, target.release, inputs.project);
    // Compose may want the project directory to exist (empty on a first deploy).
    await remote.exec(mkdirCommand(view.hashAs.projectDirectory!), { timeoutMs: QUICK_COMMAND_MS });
    config = await readDesiredConfig(remote, flavor, view.load, { hashAs: view.hashAs, relocation: view.relocation });
    loadStack = view.load;
  } else {
    config = await readDesiredConfig(remote, flavor, appStack);
  }
  const model = parseCompose([{ name: 'compose config', text: config.modelText }], { interpolate: false });
  const ids = await resolveImages(remote, flavor, loadStack, model.services, inputs.pull, s.log, inputs.commandTimeoutMs);
  const check = checkPolicies(model, routed, inputs.services.length ? inputs.services : undefined);
  if (check.errors.length) throw new Error(`the deploy was refused before any change on the host:\n- ${check.errors.join('\n- ')}`);
  const running = await reading;
  const adopt = await adoptable(s, config.hashes, serving, running);
  const desired = model.services.map((service) => {
    const configHashes = config.hashes.get(service.name);
    if (!configHashes?.length) throw new Error(`compose config --hash printed no hash for service ${service.name}`);
    const adoptFrom = adopt.has(service.name) && serving ? { flavor, release: serving.id } : undefined;
    return {
      service,
      configHash: configHashes[0]!,
      configHashes,
      imageId: ids.get(service.name),
      policy: check.policies.get(service.name)!,
      adopt: adoptFrom,
    };
  });
  return { model, desired, running };
}

/**
 * Services whose containers written by the other Compose flavor (a host upgraded from v1 to v2
 * between deploys) can be kept: their config is the same in the serving release, hashed now by
 * this Compose. Costs round trips only when such containers exist.
 */
async function adoptable(
  s: Session,
  hashes: Map<string, string[]>,
  serving: ReleaseManifest | undefined,
  running: ContainerInfo[],
): Promise<Set<string>> {
  if (!serving) return new Set();
  if (!running.some((c) => c.composeVersion && flavorOfLabel(c.composeVersion) !== s.flavor)) return new Set();
  const view = planningView(s.remoteDir, serving.composeFiles, serving.id, s.inputs.project);
  const before = (await readDesiredConfig(s.remote, s.flavor, view.load, { hashAs: view.hashAs, relocation: view.relocation })).hashes;
  const out = new Set<string>();
  for (const [svc, now] of hashes) if ((before.get(svc) ?? []).some((h) => now.includes(h))) out.add(svc);
  return out;
}

export function makePlan(s: Session, desired: DesiredService[], force: boolean, running: ContainerInfo[]): Plan {
  return planDeploy({ desired, running, only: s.inputs.services.length ? s.inputs.services : undefined, force });
}
