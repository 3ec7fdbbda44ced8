/**
 * The release of this deploy: the releases on the host (pending ones of killed runs marked
 * abandoned), a fresh id, and its files uploaded — or, for a rollback, the target's files copied.
 */
import { posix } from 'node:path';
import { appendAudit } from '../host/audit.js';
import { renderEnvFile } from '../model/envfile.js';
import { parseCompose, type ComposeFile } from '../model/compose.js';
import { missingPins, pinImages, type Pin } from '../engine/docker/images.js';
import { phase } from '../support/log.js';
import { missingImagesError, selectRollbackTarget, type ReleaseManifest } from '../model/release.js';
import { freeReleaseId } from '../model/fleet.js';
import { copyRelease, listReleases, markAbandoned, readCurrent, uploadRelease } from '../host/release-store.js';
import type { ReleaseFile } from '../action/workspace.js';
import { hostView, selectedProxy } from './gate.js';
import type { Session } from './session.js';

export interface History {
  releases: ReleaseManifest[];
  /** The release serving now (the `current` pointer). */
  current?: string;
  serving?: ReleaseManifest;
}

export interface Release {
  id: string;
  manifest: ReleaseManifest;
  composeFiles: string[];
  /** A rollback's source release. */
  target?: ReleaseManifest;
}

/** The project's releases; pending ones left by killed runs are marked abandoned (we hold the lock). */
export async function readHistory(s: Session): Promise<History> {
  const { inputs, remote, remoteDir, log } = s;
  s.roundTrips?.enter('history');
  // Two reads side by side: one round trip of waiting.
  const [listed, current] = await Promise.all([listReleases(remote, remoteDir), readCurrent(remote, remoteDir)]);
  const found = inputs.dryRun ? { releases: listed, marked: [] } : await markAbandoned(remote, remoteDir, listed, inputs.project);
  if (found.marked.length) {
    for (const m of found.marked) log.warning(`release ${m.id} was left pending: ${m.reason}; marked abandoned`);
    await appendAudit(
      remote,
      remoteDir,
      found.marked.map((m) => ({
        at: new Date().toISOString(),
        kind: 'abandon' as const,
        release: m.id,
        sha: m.sha,
        actor: m.actor,
        runUrl: m.runUrl,
        result: 'abandoned',
        detail: m.reason,
      })),
    );
  }
  s.report.previousReleaseId = current;
  const serving = current ? found.releases.find((r) => r.id === current) : undefined;
  return { releases: found.releases, ...(current ? { current } : {}), ...(serving ? { serving } : {}) };
}

/** Upload the workspace's files as a new release, or copy the rollback target's (its images checked first). */
export async function uploadPhase(
  s: Session,
  history: History,
  files: ReleaseFile[],
  id = freshReleaseId(s.run.sha, history.releases),
): Promise<Release> {
  const { inputs, run, remote, remoteDir, log, timeline } = s;
  s.roundTrips?.enter('upload');
  s.report.releaseId = id;
  const manifest: ReleaseManifest = {
    id,
    project: inputs.project,
    sha: run.sha,
    ref: run.ref,
    actor: run.actor,
    runUrl: run.runUrl,
    createdAt: new Date().toISOString(),
    files: files.map((f) => f.path),
    composeFiles: inputs.composeFiles,
    services: {},
    result: 'pending',
  };
  const release: Release = { id, manifest, composeFiles: inputs.composeFiles };
  await phase('Upload', async () => {
    if (inputs.rollback) {
      const target = selectRollbackTarget(history.releases, history.current, inputs.release);
      // Before the copy: a rollback whose images cannot be had changes nothing on the host.
      const missing = await missingPins(remote, pinsOf(target), inputs.pull !== 'never', inputs.commandTimeoutMs);
      if (missing.length) throw missingImagesError(target, missing, history.releases, history.current, inputs.pull !== 'never');
      log.info(`rolling back to release ${target.id} (${target.sha.slice(0, 7)}, ${target.createdAt})`);
      Object.assign(manifest, { files: target.files, composeFiles: target.composeFiles, rollbackOf: target.id });
      Object.assign(release, { composeFiles: target.composeFiles, target });
      await copyRelease(remote, remoteDir, target.id, id, manifest);
    } else {
      await uploadRelease(remote, remoteDir, id, files, renderEnvFile({ ...inputs.env, ...inputs.secrets }), manifest, {
        dryRun: inputs.dryRun,
      });
    }
    timeline.add('upload', { detail: id });
  });
  return release;
}

/** A rollback redeploys its target's pinned images, routed as the target's proxy config says. */
export async function rollbackRouting(s: Session, release: Release): Promise<string[]> {
  const target = release.target!;
  await pinImages(s.remote, pinsOf(target));
  return releaseRouting(s, { ...target, id: release.id });
}

/**
 * The services a release's proxy routes, from its files on the host: its Compose files (interpolated
 * with its own env file) say which service is the proxy, its config what that proxy routes.
 */
export async function releaseRouting(s: Session, release: Pick<ReleaseManifest, 'id' | 'files' | 'composeFiles'>): Promise<string[]> {
  const root = posix.join(s.remoteDir, 'releases', release.id);
  const composeFiles: ComposeFile[] = [];
  for (const name of release.composeFiles) {
    const text = await s.remote.readFile(posix.join(root, name));
    if (text === undefined) return [];
    composeFiles.push({ name, text });
  }
  const env = envFileValues((await s.remote.readFile(posix.join(root, '.env'))) ?? '');
  const model = parseCompose(composeFiles, { env });
  const selected = selectedProxy(s.inputs, model);
  if (!selected) return [];
  const view = hostView(s, model, selected.service, release);
  const cfgPath = selected.driver.configPath(release.files, selected.service, view.composeDir);
  const cfg = cfgPath ? await view.read(cfgPath) : undefined;
  return cfg ? selected.driver.routedServices(view, cfg) : [];
}

/** KEY=VALUE lines of a release's env file (renderEnvFile single-quotes the values it must). */
function envFileValues(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m) env[m[1]!] = /^'.*'$/.test(m[2]!) ? m[2]!.slice(1, -1) : m[2]!;
  }
  return env;
}

/** The image IDs a release ran, to re-point its tags at before redeploying it. */
export function pinsOf(release: ReleaseManifest): Pin[] {
  return Object.entries(release.services)
    .filter(([, x]) => x.imageId)
    .map(([service, x]) => ({ service, image: x.image, imageId: x.imageId, ...(x.digest ? { digest: x.digest } : {}) }));
}

/** A release id not taken yet (two runs of one commit within a second get distinct ids). */
function freshReleaseId(sha: string, taken: ReleaseManifest[]): string {
  return freeReleaseId(
    sha,
    taken.map((r) => r.id),
    Date.now(),
  );
}
