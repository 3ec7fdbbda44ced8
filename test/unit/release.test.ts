import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  defaultRollbackTarget,
  formatReleaseList,
  KEEP_FAILED,
  parseManifest,
  releaseId,
  retention,
  rollbackHintMarkdown,
  selectRollbackTarget,
  type ReleaseManifest,
} from '../../src/model/release.js';

function rel(
  id: string,
  result: ReleaseManifest['result'],
  images: Record<string, string> = {},
  extra: Partial<ReleaseManifest> = {},
): ReleaseManifest {
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
  const m = rel(
    R(1),
    'success',
    { app: 'sha256:' + 'a'.repeat(64) },
    { probe: { sent: 100, lost: 0, p99Ms: 12 }, durationS: 30, rollbackOf: R(0) },
  );
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

test('rollback from a rollback whose source was pruned still does not swing forward', () => {
  // R4 rolled back to R2, and R2 has been pruned since: R3 is newer than R2, so not a target; R1 is.
  const rs = [rel(R(1), 'success'), rel(R(3), 'success'), rel(R(4), 'success', {}, { rollbackOf: R(2) })];
  assert.equal(selectRollbackTarget(rs, R(4)).id, R(1));
  assert.throws(
    () => selectRollbackTarget(rs.slice(1), R(4)),
    new RegExp(`no successful release older than ${R(2)} \\(the release ${R(4)} rolled back to\\)`),
  );
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
      assert.match(lines[0]!, new RegExp(`${R(3)}\\s+success\\s+aaaaaa3\\s+\\d+ \\w+ ago\\s+\\(serving\\)`));
      assert.match(lines[2]!, new RegExp(`${R(1)}.*\\(rollback: true picks this\\)`));
      assert.match(lines[1]!, /failed/);
      return true;
    },
  );
});

test('rollback list: result, sha, age, serving and the release rollback: true picks', () => {
  const now = Date.parse('2026-11-23T12:00:00Z');
  const at = (h: number) => new Date(now - h * 3600_000).toISOString();
  const rs = [
    rel(R(1), 'success', {}, { createdAt: at(50) }),
    rel(R(2), 'success', {}, { createdAt: at(5) }),
    rel(R(3), 'abandoned', {}, { createdAt: at(2), reason: 'image x:1 could not be pulled' }),
    rel(R(4), 'success', {}, { createdAt: new Date(now - 42_000).toISOString() }),
  ];
  const lines = formatReleaseList(rs, R(4), now).split('\n');
  assert.match(lines[0]!, new RegExp(`^  ${R(4)}  success\\s+aaaaaa4  42 s ago\\s+\\(serving\\)$`));
  assert.match(lines[1]!, /abandoned\s+aaaaaa3\s+2 h ago\s+\(image x:1 could not be pulled\)/);
  assert.match(lines[2]!, new RegExp(`${R(2)}  success\\s+aaaaaa2\\s+5 h ago\\s+\\(rollback: true picks this\\)`));
  assert.match(lines[3]!, /2 d ago$/);
  const md = rollbackHintMarkdown(rs, R(4), now)!;
  assert.match(md, new RegExp(`\`rollback: true\` returns to \`${R(2)}\``));
  assert.match(md, new RegExp(`\\| \`${R(2)}\` \\| success \\| \`aaaaaa2\` \\| 5 h ago \\| \`rollback: true\` picks this \\|`));
  assert.match(rollbackHintMarkdown([rel(R(1), 'success')], R(1), now)!, /no earlier successful release/);
  assert.equal(rollbackHintMarkdown(rs, undefined, now), undefined);
});

test('rollback to an abandoned release is refused: it never recorded its images', () => {
  const rs = [rel(R(1), 'success'), rel(R(2), 'abandoned', {}, { reason: 'killed' }), rel(R(3), 'success')];
  assert.throws(() => selectRollbackTarget(rs, R(3), R(2)), /is abandoned \(killed\).*pick a successful release/s);
});

test('the issue #11 run: a good release, six failed deploys and a good one with keep_releases 5 keeps the good release', () => {
  const rs = [rel(R(0), 'success', { app: 'sha256:g' })];
  for (let n = 1; n <= 6; n++) rs.push(rel(`2026112${n}T100000Z-aaaaaa${n}`, 'rolled-back', { app: 'sha256:g' }));
  rs.push(rel('20261129T100000Z-aaaaaa9', 'success', { app: 'sha256:g' }));
  const plan = retention(rs, 5, '20261129T100000Z-aaaaaa9');
  assert.ok(!plan.prune.includes(R(0)), `G is kept: ${plan.prune.join(', ')}`);
  assert.deepEqual(plan.prune, [R(1), R(2), R(3)], 'the three oldest failed ones go, the newest three stay for diagnosis');
  assert.deepEqual(plan.images, [], 'G pins its image');
});

test('retention: failed ones are pruned first and only their own images go', () => {
  const rs = [
    rel(R(1), 'success', { app: 'sha256:1', db: 'sha256:db' }),
    rel(R(2), 'failed', { app: 'sha256:2', db: 'sha256:db' }),
    rel(R(3), 'abandoned', {}),
    rel(R(4), 'rolled-back', { app: 'sha256:4', db: 'sha256:db' }),
    rel(R(5), 'success', { app: 'sha256:5', db: 'sha256:db' }),
    rel(R(6), 'failed', { app: 'sha256:6', db: 'sha256:db' }),
    rel(R(7), 'success', { app: 'sha256:7', db: 'sha256:db' }),
  ];
  const plan = retention(rs, 1, R(7), undefined, 1);
  // kept: R7 (serving), R5 (rollback target), R6 (newest failed); R1 the oldest good one goes last
  assert.deepEqual(plan.prune, [R(2), R(3), R(4), R(1)]);
  assert.deepEqual(plan.pruned, [
    { id: R(2), result: 'failed', sha: rs[1]!.sha, images: ['sha256:2'] },
    { id: R(3), result: 'abandoned', sha: rs[2]!.sha, images: [] },
    { id: R(4), result: 'rolled-back', sha: rs[3]!.sha, images: ['sha256:4'] },
    { id: R(1), result: 'success', sha: rs[0]!.sha, images: ['sha256:1'] },
  ]);
  assert.deepEqual(plan.images, ['sha256:1', 'sha256:2', 'sha256:4']);
  assert.ok(!retention(rs, 1, R(1)).prune.includes(R(1)), 'the serving release is kept even when it is not the newest');
  assert.throws(() => retention(rs, 0, R(5)), /at least 1/);
});

test('retention never prunes or frees images of another project', () => {
  const other = rel(R(1), 'success', { web: 'sha256:shared' }, { project: 'blog' });
  const rs = [
    other,
    rel(R(2), 'success', { app: 'sha256:shared' }),
    rel(R(3), 'success', { app: 'sha256:mine' }),
    rel(R(4), 'success', { app: 'sha256:new' }),
  ];
  const plan = retention(rs, 1, R(4), 'shop');
  assert.deepEqual(plan.prune, [R(2)]); // R3 is the rollback target, R1 is blog's
  assert.deepEqual(plan.images, []); // sha256:shared is still referenced by blog's release
});

/**
 * Every mix of results up to six releases, with keep 1..3 and 0..2 failed kept, and the serving
 * release as a deploy leaves it (the newest success, or a rollback of an older one), checked
 * against the rules stated independently of the implementation.
 */
test('retention over every mix of results', () => {
  const RESULTS: ReleaseManifest['result'][] = ['success', 'failed', 'rolled-back', 'abandoned', 'pending'];
  const bad = (r: ReleaseManifest) => r.result === 'failed' || r.result === 'rolled-back' || r.result === 'abandoned';
  let cases = 0;
  const check = (rs: ReleaseManifest[], current: string | undefined, keep: number, keepFailed: number) => {
    cases++;
    const plan = retention(rs, keep, current, 'shop', keepFailed);
    const pruned = new Set(plan.prune);
    const kept = rs.filter((r) => !pruned.has(r.id));
    const at = () =>
      `${rs.map((r) => `${r.id.slice(-1)}:${r.result}${r.rollbackOf ? `<${r.rollbackOf.slice(-1)}` : ''}`).join(' ')} current ${current?.slice(-1)} keep ${keep}/${keepFailed}`;
    const newest = [...rs].reverse();
    // the serving release, and the newest good ones up to keep in all
    if (current) assert.ok(!pruned.has(current), `serving kept: ${at()}`);
    const goods = newest.filter((r) => r.result === 'success' && r.id !== current).slice(0, keep - (current ? 1 : 0));
    for (const g of goods) assert.ok(!pruned.has(g.id), `good ${g.id.slice(-1)} kept: ${at()}`);
    // beyond those, only the rollback target stays among the good ones
    const target = defaultRollbackTarget(rs, current);
    if (target) assert.ok(!pruned.has(target.id), `rollback target kept: ${at()}`);
    const extraGood = kept.filter((r) => r.result === 'success' && r.id !== current && !goods.includes(r) && r.id !== target?.id);
    assert.deepEqual(extraGood, [], `no other good release kept: ${at()}`);
    // failed ones never push a good one out: the same history without them keeps the same good ones
    const withoutBad = rs.filter((r) => !bad(r) || r.id === current);
    const keptGood = (p: ReturnType<typeof retention>, list: ReleaseManifest[]) =>
      list.filter((r) => r.result === 'success' && !p.prune.includes(r.id)).map((r) => r.id);
    assert.deepEqual(
      keptGood(plan, rs),
      keptGood(retention(withoutBad, keep, current, 'shop', keepFailed), withoutBad),
      `failed releases changed which good ones stay: ${at()}`,
    );
    // the newest keepFailed failed ones stay, no more
    const badOnes = newest.filter((r) => bad(r) && r.id !== current);
    for (const r of badOnes) assert.equal(pruned.has(r.id), badOnes.indexOf(r) >= keepFailed, `failed ${r.id.slice(-1)}: ${at()}`);
    // a pending release may be a deploy in progress: never pruned
    for (const r of rs) if (r.result === 'pending') assert.ok(!pruned.has(r.id), `pending kept: ${at()}`);
    // failed first
    const firstGood = plan.prune.findIndex((id) => rs.find((r) => r.id === id)!.result === 'success');
    if (firstGood >= 0)
      assert.ok(
        plan.prune.slice(firstGood).every((id) => rs.find((r) => r.id === id)!.result === 'success'),
        `failed pruned first: ${at()}`,
      );
    // images: exactly those no kept release pins
    const keptImages = new Set(kept.flatMap((r) => Object.values(r.services).map((s) => s.imageId)));
    const prunedImages = new Set(rs.filter((r) => pruned.has(r.id)).flatMap((r) => Object.values(r.services).map((s) => s.imageId)));
    assert.deepEqual(plan.images, [...prunedImages].filter((i) => !keptImages.has(i)).sort(), `images: ${at()}`);
    assert.deepEqual(plan.pruned.flatMap((p) => p.images).sort(), plan.images, `each freed image is on one audit line: ${at()}`);
  };
  const ids = [1, 2, 3, 4, 5, 6].map((n) => R(n));
  const histories = (n: number): ReleaseManifest['result'][][] =>
    n === 0 ? [[]] : histories(n - 1).flatMap((h) => RESULTS.map((r) => [...h, r]));
  for (let n = 1; n <= 6; n++) {
    for (const results of histories(n)) {
      // each release pins its own app image and one shared with its neighbour, so pruning one can free an image another still pins
      const rs = results.map((result, i) =>
        rel(ids[i]!, result, result === 'abandoned' || result === 'pending' ? {} : { app: `sha256:${i}`, db: `sha256:db${i >> 1}` }),
      );
      const successes = rs.filter((r) => r.result === 'success');
      const serving = successes.at(-1)?.id;
      for (const keep of [1, 2, 3]) for (const keepFailed of [0, 2]) check(rs, serving, keep, keepFailed);
      // the serving release is a rollback (the newest success went back to an older one)
      if (successes.length >= 2) {
        const back = rs.map((r) => (r.id === serving ? { ...r, rollbackOf: successes[0]!.id } : r));
        check(back, serving, 2, KEEP_FAILED);
      }
      // a probe-failed deploy still serves: its result is failed, yet it is the one serving
      const last = rs.at(-1)!;
      if (last.result === 'failed') check(rs, last.id, 2, KEEP_FAILED);
    }
  }
  assert.ok(cases > 100_000, `${cases} cases`);
});
