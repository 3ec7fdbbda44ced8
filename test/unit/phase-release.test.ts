/**
 * The Release phase (src/phases/release.ts) against a real release store in a temp dir: the history
 * (pending releases of killed runs marked abandoned and audited), the upload of a new release, and
 * a rollback's copy of its target (images checked first) and routing. Docker's answers are fakes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { releaseId } from '../../src/model/release.js';
import { readHistory, rollbackRouting, uploadPhase, type History } from '../../src/phases/release.js';
import { imageId, manifest, R, readAudit, readManifestFile, seedReleases, tempHost, testRun, testSession } from '../helpers/session.js';

const cfg = readFileSync(new URL('../../examples/haproxy/haproxy.cfg', import.meta.url), 'utf8');
const file = (path: string, text: string) => ({ path, data: Buffer.from(text), mode: 0o644 });
const releasesOn = async (remoteDir: string) => (await readdir(join(remoteDir, 'releases'))).sort();

test('readHistory: a pending release of a killed run is marked abandoned on the host, audited and warned about', async () => {
  const { host, remoteDir, cleanup } = await tempHost();
  try {
    await seedReleases(host, remoteDir, [manifest(R(1)), manifest(R(2), { result: 'pending', actor: 'carol' })], R(1));
    const { s, lines } = testSession({ remote: host, remoteDir });
    const h = await readHistory(s);
    assert.equal(h.current, R(1));
    assert.equal(h.serving?.id, R(1));
    assert.equal(s.report.previousReleaseId, R(1));
    assert.deepEqual(
      h.releases.map((r) => [r.id, r.result]),
      [
        [R(1), 'success'],
        [R(2), 'abandoned'],
      ],
    );
    const onHost = await readManifestFile(remoteDir, R(2));
    assert.equal(onHost.result, 'abandoned');
    assert.match(onHost.reason ?? '', /stopped before recording a result/);
    const audit = await readAudit(remoteDir);
    // The abandoned run's actor and URL, not this run's: it is that deploy's line.
    assert.deepEqual(
      audit.map((a) => [a.kind, a.release, a.result, a.actor, a.runUrl]),
      [['abandon', R(2), 'abandoned', 'carol', manifest(R(2)).runUrl]],
    );
    assert.equal(lines.filter((l) => l.startsWith(`warning: release ${R(2)} was left pending`)).length, 1);
  } finally {
    await cleanup();
  }
});

test('readHistory in a dry run changes nothing: the pending release stays pending, no audit line', async () => {
  const { host, remoteDir, cleanup } = await tempHost();
  try {
    await seedReleases(host, remoteDir, [manifest(R(1), { result: 'pending' })]);
    const { s, lines } = testSession({ remote: host, remoteDir, inputs: { dry_run: 'true' } });
    const h = await readHistory(s);
    assert.equal(h.current, undefined);
    assert.equal(h.serving, undefined);
    assert.equal(h.releases[0]!.result, 'pending');
    assert.equal((await readManifestFile(remoteDir, R(1))).result, 'pending');
    assert.deepEqual(await readAudit(remoteDir), []);
    assert.deepEqual(lines, []);
  } finally {
    await cleanup();
  }
});

test('uploadPhase: the workspace files, env and secrets, and a pending manifest, under an id not taken yet', async () => {
  const { host, remoteDir, cleanup } = await tempHost();
  try {
    const { s } = testSession({ remote: host, remoteDir, inputs: { env: 'A=1', secrets: 'TOKEN=s3cret' } });
    // Ids this very second and the next few are taken (two runs of one commit): the new one is later.
    const t0 = Date.now();
    const taken = [0, 1, 2, 3].map((k) => manifest(releaseId(new Date(t0 + k * 1000), testRun.sha)));
    const history: History = { releases: taken };
    const files = [file('deploy/compose.yaml', 'services: {}\n'), file('deploy/haproxy/haproxy.cfg', cfg)];
    const release = await uploadPhase(s, history, files);
    assert.ok(!taken.some((r) => r.id === release.id) && release.id > taken.at(-1)!.id, release.id);
    assert.ok(release.id.endsWith(`-${testRun.sha.slice(0, 7)}`));
    assert.equal(s.report.releaseId, release.id);
    assert.equal(release.target, undefined);
    assert.deepEqual(await releasesOn(remoteDir), [release.id]);
    const dir = join(remoteDir, 'releases', release.id);
    assert.equal(await readFile(join(dir, 'deploy/haproxy/haproxy.cfg'), 'utf8'), cfg);
    assert.equal(await readFile(join(dir, '.env'), 'utf8'), 'A=1\nTOKEN=s3cret\n');
    const m = await readManifestFile(remoteDir, release.id);
    assert.deepEqual(
      [m.result, m.sha, m.actor, m.runUrl, m.files, m.rollbackOf],
      ['pending', testRun.sha, testRun.actor, testRun.runUrl, ['deploy/compose.yaml', 'deploy/haproxy/haproxy.cfg'], undefined],
    );
    assert.equal(s.timeline.events.at(-1)?.action, 'upload');
  } finally {
    await cleanup();
  }
});

/** R(1) (with a proxy config) and R(2) successful, R(2) serving: `rollback: true` goes to R(1). */
async function rollbackSetup(pin: 'present' | 'missing') {
  const t = await tempHost();
  const files = ['deploy/compose.yaml', 'deploy/haproxy/haproxy.cfg'];
  const services = { app: { image: 'app:v1', imageId: imageId('1') }, proxy: { image: 'haproxy:2.6', imageId: '' } };
  const r1 = manifest(R(1), { files, services });
  const r2 = manifest(R(2), { services: { app: { image: 'app:v1', imageId: imageId('2') } } });
  // R(1)'s Compose file names the proxy and mounts its config: the rollback's routing reads both.
  const compose =
    'services:\n  app:\n    image: app:v1\n  proxy:\n    image: haproxy:2.6\n    volumes: ["./haproxy:/usr/local/etc/haproxy:ro"]\n';
  await seedReleases(t.host, t.remoteDir, [r1, r2], R(2), { 'deploy/haproxy/haproxy.cfg': cfg, 'deploy/compose.yaml': compose });
  t.host.on(/^have\(\) \{/, `0 ${pin}\n`);
  t.host.on(/^docker image inspect .*docker tag/s, '');
  const { s, lines } = testSession({ remote: t.host, remoteDir: t.remoteDir, inputs: { rollback: 'true' } });
  const history: History = { releases: [r1, r2], current: R(2), serving: r2 };
  return { ...t, s, lines, history };
}

test('uploadPhase for a rollback: the target copied into a new release with rollbackOf, its files and compose files', async () => {
  const t = await rollbackSetup('present');
  try {
    const release = await uploadPhase(t.s, t.history, []);
    assert.equal(release.target?.id, R(1));
    assert.notEqual(release.id, R(1));
    const m = await readManifestFile(t.remoteDir, release.id);
    assert.deepEqual([m.rollbackOf, m.result, m.files], [R(1), 'pending', ['deploy/compose.yaml', 'deploy/haproxy/haproxy.cfg']]);
    assert.equal(await readFile(join(t.remoteDir, 'releases', release.id, 'deploy/haproxy/haproxy.cfg'), 'utf8'), cfg);
    // The pinned image was checked before the copy, and only R(1)'s pin (the proxy pinned nothing).
    const check = t.host.docker.find((c) => c.startsWith('have() {'));
    assert.ok(check?.includes(imageId('1')) && !check.includes(imageId('2')));
    assert.ok(t.lines.some((l) => l.startsWith(`rolling back to release ${R(1)}`)));

    // Its routing comes from the target's proxy config, after its image tags are pinned again.
    const routed = await rollbackRouting(t.s, release);
    assert.deepEqual(routed, ['app']);
    assert.ok(
      t.host.docker.some((c) => c.includes(`docker tag '${imageId('1')}' 'app:v1'`) || c.includes(`docker tag ${imageId('1')} app:v1`)),
    );
  } finally {
    await t.cleanup();
  }
});

test('uploadPhase for a rollback whose image is gone: refused before any change on the host', async () => {
  const t = await rollbackSetup('missing');
  try {
    await assert.rejects(uploadPhase(t.s, t.history, []), /cannot roll back to release .*no longer on the host.*Nothing was changed/s);
    assert.deepEqual(await releasesOn(t.remoteDir), [R(1), R(2)]);
  } finally {
    await t.cleanup();
  }
});
