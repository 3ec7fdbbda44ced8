/**
 * The Record phase: the release's result, images and probe figures in release.json, `current` moved
 * on success, an audit line, and retention (failed deploys prune too, so failed releases stay bounded).
 */
import { appendAudit, auditEntry } from '../host/audit.js';
import type { ComposeModel } from '../model/compose.js';
import type { Plan } from '../model/plan.js';
import { listProjectContainers } from '../engine/docker/containers.js';
import { repoDigests } from '../engine/docker/images.js';
import { phase } from '../support/log.js';
import type { Verdict } from '../probe/verdict.js';
import { KEEP_FAILED, rollbackHintMarkdown, type ReleaseManifest } from '../model/release.js';
import { pruneAuditEntries, pruneReleases, setCurrent, updateManifest } from '../host/release-store.js';
import type { History, Release } from './release.js';
import { settled, type Session } from './session.js';

export async function recordPhase(
  s: Session,
  release: Release,
  model: ComposeModel,
  history: History,
  failure: Error | undefined,
  verdict: Verdict | undefined,
  plan?: Plan,
  images?: ReleaseManifest['services'],
): Promise<void> {
  s.roundTrips?.enter('record');
  await phase('Record', async () => {
    const written = await recordResult(s, release, model, failure, verdict, plan, images);
    // Failed releases never push a good one out (release.ts), so a failed deploy prunes too: they stay bounded.
    const serving = failure ? history.current : release.id;
    s.roundTrips?.enter('prune');
    // Under the lock since the history was read, only this release changed: no need to list again.
    const kept = await prune(s, serving, [...history.releases.filter((r) => r.id !== written.id), written]);
    s.report.rollbackHint = rollbackHintMarkdown(kept ?? history.releases, serving);
    settled(s);
  });
}

/** The release's result in its release.json, `current` moved on success, and the audit line. */
async function recordResult(
  s: Session,
  release: Release,
  model: ComposeModel,
  failure: Error | undefined,
  verdict: Verdict | undefined,
  plan: Plan | undefined,
  images: ReleaseManifest['services'] | undefined,
) {
  const { inputs, run, remote, remoteDir, report } = s;
  const ok = !failure && (verdict?.passed ?? true);
  // The images are read alongside the manifest.
  const services = images ? Promise.resolve(images) : resolveServicesImages(s, model, plan);
  const written = await updateManifest(
    remote,
    remoteDir,
    release.id,
    services.then((services) => ({
      services,
      result: failure ? (report.rolledBack ? 'rolled-back' : 'failed') : ok ? 'success' : 'failed',
      probe: report.probe ? { sent: report.probe.sent, lost: report.probe.lost, p99Ms: report.probe.p99Ms ?? 0 } : undefined,
      durationS: Math.round((Date.now() - report.startedAt) / 1000),
    })),
  );
  if (!failure) await setCurrent(remote, remoteDir, release.id);
  await appendAudit(
    remote,
    remoteDir,
    auditEntry(inputs.rollback ? 'rollback' : 'deploy', run, {
      release: release.id,
      sha: run.sha,
      result: failure ? 'failed' : ok ? 'success' : 'probe-failed',
      detail: failure?.message ?? verdict?.message,
    }),
  );
  return written;
}

/** Retention: the releases kept (undefined when pruning failed: a warning, not a failed deploy). */
async function prune(s: Session, serving: string | undefined, listed: ReleaseManifest[]): Promise<ReleaseManifest[] | undefined> {
  const { inputs, run, remote, remoteDir, log } = s;
  const warn = (m: string) => log.warning(m);
  const pruned = await pruneReleases(remote, remoteDir, inputs.project, inputs.keepReleases, serving, warn, KEEP_FAILED, listed).catch(
    (e: unknown) => {
      log.warning(`could not prune old releases: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    },
  );
  if (!pruned) return undefined;
  for (const p of pruned.pruned)
    log.info(`pruned release ${p.id} (${p.result})${p.imagesRemoved.length ? `, images ${p.imagesRemoved.join(', ')}` : ''}`);
  await appendAudit(remote, remoteDir, pruneAuditEntries(pruned, new Date().toISOString(), run.actor, run.runUrl));
  return pruned.kept;
}

/**
 * The release's own images: the image ID each tag had when the release was planned (what it meant to
 * run, also after a failed rollout put the previous images back), else what its container runs.
 */
async function resolveServicesImages(s: Session, model: ComposeModel, plan: Plan | undefined): Promise<ReleaseManifest['services']> {
  const out: ReleaseManifest['services'] = {};
  const running = await listProjectContainers(s.remote, s.inputs.project);
  const planned = new Map((plan?.services ?? []).map((p) => [p.service, p.desired?.imageId]));
  for (const svc of model.services) {
    const c = running.find((x) => x.service === svc.name && x.state === 'running');
    if (svc.image) out[svc.name] = { image: svc.image, imageId: planned.get(svc.name) || c?.imageId || '' };
  }
  const digests = await repoDigests(s.remote, Object.values(out)).catch(() => new Map<string, string>());
  for (const x of Object.values(out)) {
    const d = digests.get(`${x.image} ${x.imageId}`);
    if (d) x.digest = d;
  }
  return out;
}
