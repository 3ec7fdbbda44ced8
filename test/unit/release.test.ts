import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseManifest, releaseId, retention, selectRollbackTarget, type ReleaseManifest } from '../../src/release.js';

function rel(id: string, result: ReleaseManifest['result'], images: Record<string, string> = {}, extra: Partial<ReleaseManifest> = {}): ReleaseManifest {
  const services: ReleaseManifest['services'] = {};
  for (const [name, imageId] of Object.entries(images)) services[name] = { image: `${name}:tag`, imageId };
  return {
    id,
    project: 'shop',
    sha: `${id.slice(-7)}000000000000000000000000000000000`,
    ref: 'refs/heads/main',
    actor: 'alice',
    runUrl: 'https://github.com/o/r/actions/runs/1',
    createdAt: '2026-11-23T19:30:00Z',
    files: ['deploy/compose.yaml'],
    composeFiles: ['deploy/compose.yaml'],
    services,
    result,
    ...extra,
  };
}

const R = (n: number) => `2026112${n}T100000Z-aaaaaa${n}`;

test('releaseId: UTC stamp to the second and 7-char sha, sortable', () => {
  assert.equal(releaseId(new Date('2026-11-23T19:30:00.123Z'), 'ABC1234def'), '20261123T193000Z-abc1234');
  assert.ok(releaseId(new Date('2026-01-02T03:04:05Z'), 'f'.repeat(40)) < releaseId(new Date('2026-01-02T03:04:06Z'), '0'.repeat(40)));
  assert.throws(() => releaseId(new Date(), 'abc'), /at least 7/);
  assert.throws(() => releaseId(new Date(), 'abc;rm -'), /at least 7/);
});

test('parseManifest: round trip and field errors', () => {
  const m = rel(R(1), 'success', { app: 'sha256:' + 'a'.repeat(64) }, { probe: { sent: 100, lost: 0, p99Ms: 12 }, durationS: 30, rollbackOf: R(0) });
  assert.deepEqual(parseManifest(JSON.stringify(m)), m);
  assert.throws(() => parseManifest('{'), /not JSON/);
  assert.throws(() => parseManifest(JSON.stringify({ ...m, result: 'great' })), /'result' must be/);
  assert.throws(() => parseManifest(JSON.stringify({ ...m, id: '../x' })), /'id' must be a release id/);
  assert.throws(() => parseManifest(JSON.stringify({ ...m, files: [1] })), /'files' must be a list/);
  assert.throws(() => parseManifest(JSON.stringify({ ...m, services: { app: { image: 'x' } } })), /services\.app/);
  assert.throws(() => parseManifest(JSON.stringify({ ...m, probe: { sent: 1 } })), /'probe'/);
  const { probe: _p, durationS: _d, rollbackOf: _r, ...minimal } = m;
  assert.deepEqual(parseManifest(JSON.stringify(minimal)), minimal);
});

test('rollback default: newest successful release older than current', () => {
  const rs = [rel(R(1), 'success'), rel(R(2), 'success'), rel(R(3), 'failed'), rel(R(4), 'success'), rel(R(5), 'failed')];
  assert.equal(selectRollbackTarget(rs, R(4)).id, R(2));
  assert.equal(selectRollbackTarget(rs, R(2)).id, R(1));
  assert.throws(() => selectRollbackTarget(rs, R(1)), /no successful release older than/);
  assert.throws(() => selectRollbackTarget(rs, undefined), /no release is recorded as serving/);
});

test('rollback from a rollback steps further back instead of swinging forward', () => {
  // R4 is a rollback to R2; rolling back again goes to R1, not to R3 (the release rolled away from).
  const rs = [rel(R(1), 'success'), rel(R(2), 'success'), rel(R(3), 'success'), rel(R(4), 'success', {}, { rollbackOf: R(2) })];
  assert.equal(selectRollbackTarget(rs, R(4)).id, R(1));
});

test('rollback to a named release; unknown id lists what is there', () => {
  const rs = [rel(R(1), 'success'), rel(R(2), 'failed'), rel(R(3), 'success')];
  assert.equal(selectRollbackTarget(rs, R(3), R(1)).id, R(1));
  assert.throws(
    () => selectRollbackTarget(rs, R(3), '20200101T000000Z-0000000'),
    (e: Error) => {
      assert.match(e.message, /'20200101T000000Z-0000000' is not on the host/);
      const lines = e.message.split('\n').slice(1);
      assert.equal(lines.length, 3);
      assert.match(lines[0]!, new RegExp(`${R(3)}\\s+aaaaaa3\\s+2026-11-23T19:30:00Z\\s+success\\s+\\(current\\)`));
      assert.match(lines[1]!, /failed/);
      return true;
    },
  );
});

test('retention keeps the newest N, current and the rollback target; frees images only pruned releases used', () => {
  const rs = [
    rel(R(1), 'success', { app: 'sha256:1', db: 'sha256:db' }),
    rel(R(2), 'success', { app: 'sha256:2', db: 'sha256:db' }),
    rel(R(3), 'failed', { app: 'sha256:3', db: 'sha256:db' }),
    rel(R(4), 'failed', { app: 'sha256:4', db: 'sha256:db' }),
    rel(R(5), 'success', { app: 'sha256:5', db: 'sha256:db' }),
    rel(R(6), 'failed', { app: 'sha256:6', db: 'sha256:db' }),
  ];
  // keep 2 = R6, R5; current R5; rollback target of R5 = R2 (R3, R4 failed)
  const plan = retention(rs, 2, R(5));
  assert.deepEqual(plan.prune, [R(1), R(3), R(4)]);
  assert.deepEqual(plan.images, ['sha256:1', 'sha256:3', 'sha256:4']);
  // the current release is kept even when it is not among the newest N
  assert.ok(!retention(rs, 1, R(2)).prune.includes(R(2)));
  assert.throws(() => retention(rs, 0, R(5)), /at least 1/);
});

test('retention never prunes or frees images of another project', () => {
  const other = rel(R(1), 'success', { web: 'sha256:shared' }, { project: 'blog' });
  const rs = [other, rel(R(2), 'success', { app: 'sha256:shared' }), rel(R(3), 'success', { app: 'sha256:mine' }), rel(R(4), 'success', { app: 'sha256:new' })];
  const plan = retention(rs, 1, R(4), 'shop');
  assert.deepEqual(plan.prune, [R(2)]); // R3 is the rollback target, R1 is blog's
  assert.deepEqual(plan.images, []); // sha256:shared is still referenced by blog's release
});
