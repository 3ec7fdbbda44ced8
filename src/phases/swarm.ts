/**
 * One deploy to the Swarm target (`target: swarm`): the same release, lock, probe, record and
 * outputs as the Compose target; the rollout is Swarm's updater, gated by handoff (each routed task
 * drained before it stops, see model/swarm-stack.ts), and its real outcome read after convergence.
 */
import { posix } from 'node:path';
import { parseCompose, type ComposeFile, type ComposeModel } from '../model/compose.js';
import { OVERRIDE_FILE, renderSwarmOverride, updateOutcome } from '../model/swarm-stack.js';
import type { ReleaseManifest } from '../model/release.js';
import { removeReleaseCommand } from '../commands/release-store.js';
import { activateRelease } from '../host/release-store.js';
import {
  converge,
  deployStack,
  failedTasks,
  imageIds,
  requireSwarmManager,
  stackServices,
  watchNode,
  type NodeWatcher,
} from '../engine/swarm/stack.js';
import type { Drain } from '../model/swarm-stack.js';
import type { ReleaseFile } from '../action/workspace.js';
import { phase } from '../support/log.js';
import { startProbeIfServing } from './probe.js';
import { recordPhase } from './record.js';
import { readHistory, releaseRouting, uploadPhase, type Release } from './release.js';
import type { Session } from './session.js';
import { connectSwarmNodes, type SwarmNode } from './swarm-nodes.js';

export async function deploySwarmLocked(s: Session, files: ReleaseFile[], routed: string[]): Promise<void> {
  const { inputs, remote, remoteDir, report } = s;
  await requireSwarmManager(remote);
  const { manager, nodes } = await connectSwarmNodes(s, routed);
  const history = await readHistory(s);
  let overridePath = posix.join(posix.dirname(inputs.composeFiles[0]!), OVERRIDE_FILE);
  let images: ReleaseManifest['services'] | undefined;
  if (!inputs.rollback) {
    const pinned = await pinImages(s, releaseModel(inputs.composeFiles, files, { ...inputs.env, ...inputs.secrets }), routed, nodes);
    images = pinned.images;
    if (inputs.dryRun) {
      s.log.info(`dry run: nothing uploaded; the stack would be deployed with ${overridePath}:\n${pinned.override}`);
      report.releaseId = undefined;
      return;
    }
    files = [...files, { path: overridePath, data: Buffer.from(pinned.override), mode: 0o644 }];
  }
  const release = await uploadPhase(s, history, files);
  if (inputs.dryRun) {
    await remote.exec(removeReleaseCommand(remoteDir, release.id), { check: false });
    report.releaseId = undefined;
    return;
  }
  const model = await hostModel(s, release);
  if (release.target) {
    overridePath = posix.join(posix.dirname(release.composeFiles[0]!), OVERRIDE_FILE);
    images = release.target.services;
    routed = await releaseRouting(s, { ...release.target, id: release.id });
  }
  if (!release.manifest.files.includes(overridePath))
    throw new Error(`release ${release.target?.id ?? release.id} has no ${overridePath}: it was not deployed with target: swarm`);
  s.log.info(
    `stack ${inputs.project}: ${model.services.map((x) => x.name).join(', ')}; drained by handoff before they stop: ${routed.join(', ') || 'none'}`,
  );
  const wasServing = (await stackServices(remote, inputs.project)).length > 0;
  const probe = await startProbeIfServing(s, wasServing);
  report.proxyKind = 'swarm tasks (connections)';
  report.proxyDrains = routed.length > 0;
  const failure = await rollStack(s, release, [...release.composeFiles, overridePath], history.current, { manager, nodes });
  const verdict = await probe.finish();
  s.timeline.add('deploy-end');
  await recordPhase(s, release, model, history, failure, verdict, undefined, images);
  if (failure) throw failure;
  if (verdict && !verdict.passed) throw new Error(verdict.message);
}

/** Every service's image by ID on the host (nothing is pulled), and the override file that pins them. */
async function pinImages(s: Session, model: ComposeModel, routed: string[], nodes: SwarmNode[]) {
  const refs = [...new Set(model.services.flatMap((x) => (x.image ? [x.image] : [])))];
  const found = await imageIds(s.remote, refs);
  const missing = refs.filter((r) => !found.get(r));
  if (missing.length)
    throw new Error(
      `image ${missing.join(', ')} is not on the host: the swarm target runs local images only (push and pull them there first)`,
    );
  // Pinned by ID, a task runs only on a node that has that very image.
  for (const node of nodes) {
    const there = await imageIds(node.remote, refs);
    const differ = refs.filter((r) => there.get(r) !== found.get(r));
    if (differ.length)
      throw new Error(
        `image ${differ.join(', ')} on node ${node.name} is missing or not the manager's (by ID): load the same image on every node first`,
      );
  }
  const byService = new Map<string, string>();
  const images: ReleaseManifest['services'] = {};
  for (const svc of model.services) {
    if (!svc.image) continue;
    byService.set(svc.name, found.get(svc.image)!);
    images[svc.name] = { image: svc.image, imageId: found.get(svc.image)! };
  }
  const override = renderSwarmOverride({
    model,
    imageIds: byService,
    gated: routed,
    drainTimeoutS: Math.ceil(s.inputs.drainTimeoutMs / 1000),
  });
  return { images, override };
}

/** Activate, `docker stack deploy`, wait for convergence and read the real outcome: the failure, if any. */
async function rollStack(
  s: Session,
  release: Release,
  composeFiles: string[],
  previous: string | undefined,
  swarm: { manager: string; nodes: SwarmNode[] },
): Promise<Error | undefined> {
  const { nodes } = swarm;
  const { inputs, remote, remoteDir, log, timeline, report } = s;
  return phase('Rollout (swarm)', async () => {
    await activateRelease(remote, remoteDir, release.id);
    const base = posix.dirname(composeFiles[0]!);
    const at = { composeDir: posix.join(remoteDir, 'app', base), envFile: posix.join(remoteDir, 'app', '.env') };
    const drainS = Math.ceil(inputs.drainTimeoutMs / 1000);
    const deadlineS = Math.max(60, Math.floor(inputs.commandTimeoutMs / 1000) - 30);
    // The other nodes' watchers run before Swarm can stop anything there, and stop once it settled.
    const watchers = await Promise.all(
      nodes.map((n) => watchNode(n.remote, inputs.project, drainS, deadlineS + 30, (d) => onDrain(s, d, n.name))),
    );
    let result: Awaited<ReturnType<typeof converge>>;
    try {
      timeline.add('start', { detail: `docker stack deploy ${inputs.project}` });
      const relative = composeFiles.map((f) => posix.relative(base, f));
      log.info((await deployStack(remote, at, relative, inputs.project, inputs.commandTimeoutMs)).trim());
      result = await converge(
        remote,
        inputs.project,
        drainS,
        deadlineS,
        (d) => onDrain(s, d, nodes.length ? swarm.manager : undefined),
        nodes.length > 0,
      );
    } finally {
      await stopWatchers(s, watchers, nodes);
    }
    const services = await stackServices(remote, inputs.project);
    report.servicesUpdated = services.filter((x) => x.update).map((x) => x.name);
    const outcome = updateOutcome(services, result.settled);
    if (!outcome.failed) return undefined;
    const tasks = await failedTasks(remote, inputs.project);
    timeline.add('failure', { detail: outcome.message });
    if (tasks) log.error(`failed tasks:\n${tasks}`);
    report.rolledBack = outcome.rolledBack;
    // Swarm put the previous specs back: app/ follows, so bind-mounted files match what runs.
    if (outcome.rolledBack && previous) await activateRelease(remote, remoteDir, previous);
    if (outcome.rolledBack) timeline.add('rollback-done', { detail: 'by Swarm (failure_action: rollback)' });
    return new Error(`the Swarm update failed: ${outcome.message}${tasks ? `\n${tasks}` : ''}`);
  });
}

/** A task drained and stopped by a watcher (on `node`, when the swarm has more than one). */
function onDrain(s: Session, d: Drain, node: string | undefined): void {
  const service = d.service.replace(`${s.inputs.project}_`, '');
  const on = node ? ` on node ${node}` : '';
  s.timeline.add('drained', {
    service,
    container: d.container.slice(0, 12),
    detail: `${d.end === 'idle' ? 'no connection left' : 'drain_timeout'} after ${d.seconds}s${on}`,
    ms: d.seconds * 1000,
  });
  s.log.info(`task ${d.task.slice(0, 12)} (container ${d.container.slice(0, 12)})${on} drained in ${d.seconds}s (${d.end}), stopped`);
}

/** Ends the other nodes' watchers; one that fails to end is a warning (Swarm's grace still stops its tasks). */
async function stopWatchers(s: Session, watchers: NodeWatcher[], nodes: SwarmNode[]): Promise<void> {
  const ends = await Promise.allSettled(watchers.map((w) => w.stop()));
  ends.forEach((end, i) => {
    if (end.status === 'rejected') s.log.warning(`the drain watcher on node ${nodes[i]!.name} failed: ${(end.reason as Error).message}`);
    else if (!end.value.settled) s.log.warning(`the drain watcher on node ${nodes[i]!.name} reached its deadline`);
  });
}

/** The release's Compose model as the host has it (its own env file), for a rollback's copied files too. */
async function hostModel(s: Session, release: Release): Promise<ComposeModel> {
  const root = posix.join(s.remoteDir, 'releases', release.id);
  const files: ComposeFile[] = [];
  for (const name of release.composeFiles) files.push({ name, text: (await s.remote.readFile(posix.join(root, name))) ?? '' });
  const env: Record<string, string> = {};
  for (const line of ((await s.remote.readFile(posix.join(root, '.env'))) ?? '').split('\n')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]!] = /^'.*'$/.test(m[2]!) ? m[2]!.slice(1, -1) : m[2]!;
  }
  return parseCompose(files, { env });
}

/** The Compose model of the workspace's files (validated before connecting). */
function releaseModel(composeFiles: string[], files: ReleaseFile[], env: Record<string, string>): ComposeModel {
  return parseCompose(
    composeFiles.map((name) => ({ name, text: files.find((f) => f.path === name)?.data.toString('utf8') ?? '' })),
    { env },
  );
}
