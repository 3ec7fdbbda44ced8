/**
 * The Record phase (src/phases/record.ts) against a real release store in a temp dir: the result in
 * release.json, `current`, one audit line, retention with its audit lines, the rollback hint, and
 * the post step's state cleared. Docker's answers (containers, digests, image removal) are fakes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseCompose } from '../../src/model/compose.js';
import { recordPhase } from '../../src/phases/record.js';
import type { History, Release } from '../../src/phases/release.js';
import type { Verdict } from '../../src/probe/verdict.js';
import { FakeClock, FakeDockerHost } from '../helpers/fake-docker-host.js';
import { imageId, manifest, R, readAudit, readManifestFile, savedState, seedReleases, tempHost, testSession } from '../helpers/session.js';
import type { Plan } from '../../src/model/plan.js';

const model = parseCompose([{ name: 'compose.yaml', text: 'services:\n  web:\n    image: app:v2\n  proxy:\n    image: haproxy:2.6\n' }]);
const WEB = imageId('5');
const PROXY = imageId('6');
const DIGEST = `sha256:${'d'.repeat(64)}`;

/** A host with releases R(1)..R(n-1) successful (R(n-1) serving), R(n) uploaded pending, web and proxy running. */
async function setup(o: { earlier?: number; inputs?: Record<string, string> } = {}) {
  const docker = new FakeDockerHost(new FakeClock(), [], { project: 'shop' });
  docker.seed('web', { configHash: 'h', imageId: WEB });
  docker.seed('proxy', { configHash: 'h', imageId: PROXY });
  const t = await tempHost(docker);
  // web's image came from a registry (it has a RepoDigest); the proxy's was built on the host.
  t.host.on(/RepoDigests/, `${WEB} app@${DIGEST}\n${PROXY} \n`);
  t.host.on(/docker image rm/, (cmd) => [...new Set(cmd.match(/sha256:[0-9a-f]{64}/g))].map((i) => `${i}\n`).join(''));
  const n = (o.earlier ?? 1) + 1;
  const earlier = Array.from({ length: n - 1 }, (_, i) =>
    manifest(R(i + 1), { services: { web: { image: 'app:v1', imageId: imageId(String(i + 1)) } } }),
  );
  await seedReleases(t.host, t.remoteDir, [...earlier, manifest(R(n), { result: 'pending', actor: 'alice' })], earlier.at(-1)?.id);
  const { s, lines } = testSession({ remote: t.host, remoteDir: t.remoteDir, inputs: o.inputs });
  const release: Release = { id: R(n), manifest: manifest(R(n), { result: 'pending' }), composeFiles: ['deploy/compose.yaml'] };
  const serving = earlier.at(-1);
  const history: History = { releases: earlier, ...(serving ? { current: serving.id, serving } : {}) };
  const state = await savedState();
  s.interrupted = { releaseId: release.id, previous: serving?.id };
  const current = () => readFile(join(t.remoteDir, 'current'), 'utf8').then((x) => x.trim());
  return {
    ...t,
    s,
    lines,
    release,
    history,
    state,
    current,
    async done() {
      await state.restore();
      await t.cleanup();
    },
  };
}

const failedVerdict = { passed: false, message: 'the probe lost 3 requests (max_lost 0)' } as Verdict;

test('a successful deploy: result, images with digest, current moved, one audit line, post step state cleared', async () => {
  const t = await setup();
  try {
    await recordPhase(t.s, t.release, model, t.history, undefined, undefined);
    const m = await readManifestFile(t.remoteDir, t.release.id);
    assert.equal(m.result, 'success');
    assert.deepEqual(m.services, {
      web: { image: 'app:v2', imageId: WEB, digest: DIGEST },
      proxy: { image: 'haproxy:2.6', imageId: PROXY },
    });
    assert.equal(typeof m.durationS, 'number');
    assert.equal(await t.current(), t.release.id);
    const audit = await readAudit(t.remoteDir);
    assert.equal(audit.length, 1);
    assert.deepEqual(
      { kind: audit[0]!.kind, release: audit[0]!.release, result: audit[0]!.result, actor: audit[0]!.actor, runUrl: audit[0]!.runUrl },
      { kind: 'deploy', release: t.release.id, result: 'success', actor: 'alice', runUrl: t.s.run.runUrl },
    );
    assert.equal(audit[0]!.sha, t.s.run.sha);
    assert.equal(t.s.interrupted, undefined);
    assert.equal((await t.state.read()).deploy, '', 'nothing left for the post step');
    assert.match(
      t.s.report.rollbackHint ?? '',
      new RegExp(`Release \`${t.release.id}\` is serving. \`rollback: true\` returns to \`${R(1)}\``),
    );
  } finally {
    await t.done();
  }
});

test('a failed rollout that was rolled back: rolled-back, current stays, audit says failed with the error', async () => {
  const t = await setup();
  try {
    t.s.report.rolledBack = true;
    // The release meant to run image 7 for web; the rollback put the serving image (5) back.
    const NEW = imageId('7');
    const plan = { services: [{ service: 'web', desired: { imageId: NEW } }] } as unknown as Plan;
    await recordPhase(t.s, t.release, model, t.history, new Error('web: unhealthy after 30 s'), undefined, plan);
    const m = await readManifestFile(t.remoteDir, t.release.id);
    assert.equal(m.result, 'rolled-back');
    assert.equal(m.services.web?.imageId, NEW, "the release's own image, not the one the rollback put back");
    assert.equal(await t.current(), R(1));
    const audit = await readAudit(t.remoteDir);
    assert.deepEqual(
      audit.map((a) => [a.kind, a.release, a.result, a.detail]),
      [['deploy', t.release.id, 'failed', 'web: unhealthy after 30 s']],
    );
    assert.match(t.s.report.rollbackHint ?? '', new RegExp(`Release \`${R(1)}\` is serving`));
  } finally {
    await t.done();
  }
});

test('a failed rollout without a rollback is failed; a rollback run audits as kind rollback', async () => {
  const t = await setup({ inputs: { rollback: 'true' } });
  try {
    await recordPhase(t.s, t.release, model, t.history, new Error('boom'), undefined);
    assert.equal((await readManifestFile(t.remoteDir, t.release.id)).result, 'failed');
    assert.equal(await t.current(), R(1));
    const audit = await readAudit(t.remoteDir);
    assert.deepEqual(
      audit.map((a) => [a.kind, a.result]),
      [['rollback', 'failed']],
    );
  } finally {
    await t.done();
  }
});

test('a failed probe verdict: release failed, audit probe-failed with the verdict, yet current moves (the new release serves)', async () => {
  const t = await setup();
  try {
    await recordPhase(t.s, t.release, model, t.history, undefined, failedVerdict);
    assert.equal((await readManifestFile(t.remoteDir, t.release.id)).result, 'failed');
    const audit = await readAudit(t.remoteDir);
    assert.deepEqual(
      audit.map((a) => [a.kind, a.result, a.detail]),
      [['deploy', 'probe-failed', failedVerdict.message]],
    );
    // The rollout itself succeeded, so the stack runs this release: `current` says so.
    assert.equal(await t.current(), t.release.id);
  } finally {
    await t.done();
  }
});

test('retention: keep_releases 2 prunes the oldest successes, their images, one audit line each; the hint lists only what is kept', async () => {
  const t = await setup({ earlier: 4, inputs: { keep_releases: '2' } });
  try {
    await recordPhase(t.s, t.release, model, t.history, undefined, undefined);
    const left = ['1', '2', '3', '4', '5'].map((n) => existsSync(join(t.remoteDir, 'releases', R(Number(n)))));
    assert.deepEqual(left, [false, false, false, true, true]);
    const audit = await readAudit(t.remoteDir);
    assert.deepEqual(
      audit.map((a) => [a.kind, a.release, a.result]),
      [
        ['deploy', R(5), 'success'],
        ['prune', R(1), 'success'],
        ['prune', R(2), 'success'],
        ['prune', R(3), 'success'],
      ],
    );
    assert.deepEqual(
      audit.slice(1).map((a) => a.images),
      [[imageId('1')], [imageId('2')], [imageId('3')]],
    );
    assert.ok(audit.every((a) => a.actor === 'alice' && a.runUrl === t.s.run.runUrl));
    assert.ok(t.lines.includes(`pruned release ${R(1)} (success), images ${imageId('1')}`));
    const hint = t.s.report.rollbackHint ?? '';
    assert.ok(hint.includes(R(4)) && !hint.includes(R(3)), hint);
  } finally {
    await t.done();
  }
});

test('a failed deploy prunes too, around the release still serving', async () => {
  const t = await setup({ earlier: 3, inputs: { keep_releases: '1' } });
  try {
    await recordPhase(t.s, t.release, model, t.history, new Error('boom'), undefined);
    // R(3) serves and is kept; R(4) failed and is kept for diagnosis; R(2) is the rollback target of R(3).
    const left = [1, 2, 3, 4].map((n) => existsSync(join(t.remoteDir, 'releases', R(n))));
    assert.deepEqual(left, [false, true, true, true]);
    assert.deepEqual(
      (await readAudit(t.remoteDir)).map((a) => [a.kind, a.release]),
      [
        ['deploy', R(4)],
        ['prune', R(1)],
      ],
    );
  } finally {
    await t.done();
  }
});
