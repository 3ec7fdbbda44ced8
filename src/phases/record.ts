/**
 * The Record phase: the release's result, images and probe figures in release.json, `current` moved
 * on success, an audit line, and retention (failed deploys prune too, so failed releases stay bounded).
 */
import { appendAudit } from '../host/audit.js';
import type { ComposeModel } from '../model/compose.js';
import { listProjectContainers } from '../engine/docker/containers.js';
import { repoDigests } from '../engine/docker/images.js';
import { phase } from '../support/log.js';
import type { Verdict } from '../probe/verdict.js';
import { rollbackHintMarkdown, type ReleaseManifest } from '../model/release.js';
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
): Promise<void> {
  const { inputs, run, remote, remoteDir, log, report } = s;
  await phase('Record', async () => {
    const imagesAfter = await resolveServicesImages(s, model);
    const ok = !failure && (verdict?.passed ?? true);
    await updateManifest(remote, remoteDir, release.id, {
      services: imagesAfter,
      result: failure ? (report.rolledBack ? 'rolled-back' : 'failed') : ok ? 'success' : 'failed',
      probe: report.probe ? { sent: report.probe.sent, lost: report.probe.lost, p99Ms: report.probe.p99Ms ?? 0 } : undefined,
      durationS: Math.round((Date.now() - report.startedAt) / 1000),
    });
    if (!failure) await setCurrent(remote, remoteDir, release.id);
    await appendAudit(remote, remoteDir, {
      at: new Date().toISOString(),
      kind: inputs.rollback ? 'rollback' : 'deploy',
      release: release.id,
      sha: run.sha,
      actor: run.actor,
      runUrl: run.runUrl,
      result: failure ? 'failed' : ok ? 'success' : 'probe-failed',
      detail: failure?.message ?? verdict?.message,
    });
    // Failed releases never push a good one out (release.ts), so a failed deploy prunes too: they stay bounded.
    const serving = failure ? history.current : release.id;
    const pruned = await pruneReleases(remote, remoteDir, inputs.project, inputs.keepReleases, serving, (m) => log.warning(m)).catch(
      (e: unknown) => {
        log.warning(`could not prune old releases: ${e instanceof Error ? e.message : String(e)}`);
        return undefined;
      },
    );
    if (pruned) {
      for (const p of pruned.pruned)
        log.info(`pruned release ${p.id} (${p.result})${p.imagesRemoved.length ? `, images ${p.imagesRemoved.join(', ')}` : ''}`);
      await appendAudit(remote, remoteDir, pruneAuditEntries(pruned, new Date().toISOString(), run.actor, run.runUrl));
    }
    report.rollbackHint = rollbackHintMarkdown(pruned?.kept ?? history.releases, serving);
    settled(s);
  });
}

async function resolveServicesImages(s: Session, model: ComposeModel): Promise<ReleaseManifest['services']> {
  const out: ReleaseManifest['services'] = {};
  const running = await listProjectContainers(s.remote, s.inputs.project);
  for (const svc of model.services) {
    const c = running.find((x) => x.service === svc.name && x.state === 'running');
    if (svc.image) out[svc.name] = { image: svc.image, imageId: c?.imageId ?? '' };
  }
  const digests = await repoDigests(s.remote, Object.values(out)).catch(() => new Map<string, string>());
  for (const x of Object.values(out)) {
    const d = digests.get(`${x.image} ${x.imageId}`);
    if (d) x.digest = d;
  }
  return out;
}
