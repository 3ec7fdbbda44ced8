/**
 * Issue #6 acceptance: releases, rollback on demand, the deploy lock and retention, through the
 * bundled action on the sample stack (app ×3 behind HAProxy), with the action's probe on every deploy
 * that has something serving.
 *
 * One project for the chain A → B → rollback (→ A) → unknown release id → two deploys started
 * together → a deploy refused by a short lock_timeout → a deploy killed mid-rollout → the converging
 * deploy. A second project for a re-pushed tag (A, then B under the same tag, then rollback to the A
 * image) and keep_releases: 2 after its fourth deploy.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  appImage,
  cleanupProject,
  mainPassOnly,
  connectionInputs,
  freePort,
  projectContainers,
  runAction,
  sampleWorkspace,
  sh,
  uniqueProject,
  type ActionRun,
  type RunOptions,
} from './harness.js';
import { get } from './load.js';
import { containerVersion, waitServing } from './stacks/helpers.js';

const pid = process.pid;
const tags = {
  A: `handoff-test-app:rela-${pid}`,
  B: `handoff-test-app:relb-${pid}`,
  C: `handoff-test-app:relc-${pid}`,
  same: `handoff-test-app:same-${pid}`,
  keep: `handoff-test-app:keep-${pid}`,
  good: `handoff-test-app:good-${pid}`,
  next: `handoff-test-app:next-${pid}`,
};
/** Every image ID this file made, removed at the end (whatever tag they ended up with). */
const madeImages = new Set<string>();
const projects: string[] = [];

after(async () => {
  for (const p of projects) await cleanupProject(p).catch(() => {});
  for (const t of Object.values(tags)) await sh(`docker rmi -f ${t} >/dev/null 2>&1 || true`);
  for (const id of madeImages) await sh(`docker rmi -f ${id} >/dev/null 2>&1 || true`);
});

async function image(tag: string, version: string): Promise<string> {
  const id = await appImage(tag, version);
  madeImages.add(id);
  return id;
}

/**
 * This file's tag on one of the bench's own images: nothing to build, and while the bench's tag
 * remains, `docker image rm <id>` refuses the image (two tags), so no prune can delete it.
 */
async function benchAlias(tag: string, benchImage: string): Promise<string> {
  await sh(`docker tag ${benchImage} ${tag}`);
  return (await sh(`docker image inspect --format '{{.Id}}' ${tag}`)).trim();
}

interface Stack {
  project: string;
  port: number;
  workspace: string;
  dir: string;
}

async function newStack(prefix: string): Promise<Stack> {
  const project = uniqueProject(prefix);
  projects.push(project);
  return { project, port: freePort(), workspace: await sampleWorkspace(), dir: `/home/deploy/handoff/${project}` };
}

function inputs(s: Stack, extra: Record<string, string>): Record<string, string> {
  return {
    ...connectionInputs(),
    project: s.project,
    compose_files: 'deploy/compose.yaml',
    files: 'deploy/haproxy/',
    pull: 'never',
    probe_url: `http://127.0.0.1:${s.port}/`,
    probe_rate: '40',
    probe_body_marker: 'version=',
    ...extra,
  };
}

const envOf = (s: Stack, tag: string, more = '') => `PROXY_PORT=${s.port}\nAPP_IMAGE=${tag}${more ? `\n${more}` : ''}`;

function tail(r: ActionRun): string {
  return `exit ${r.code}; log tail:\n${r.log.slice(-4000)}\n--- post:\n${r.postLog.slice(-1000)}`;
}

/** A deploy with something serving: exit 0 and the probe ran with nothing lost. */
function assertCleanDeploy(r: ActionRun, what: string): void {
  assert.equal(r.code, 0, `${what}: ${tail(r)}`);
  assert.ok(Number(r.outputs.requests_sent) > 0, `${what}: the probe ran (sent ${r.outputs.requests_sent}); ${tail(r)}`);
  assert.equal(r.outputs.requests_lost, '0', `${what}: the probe lost requests; ${tail(r)}`);
}

interface Manifest {
  id: string;
  result: string;
  runUrl: string;
  reason?: string;
  rollbackOf?: string;
  services: Record<string, { image: string; imageId: string }>;
}

/** releases/ on the host, read as root: entry names and the parsed manifests. */
async function hostReleases(s: Stack): Promise<{ entries: string[]; manifests: Manifest[] }> {
  const dir = join(s.dir, 'releases');
  const entries = (await readdir(dir)).sort();
  const manifests: Manifest[] = [];
  for (const e of entries) {
    const f = join(dir, e, 'release.json');
    if (existsSync(f)) manifests.push(JSON.parse(await readFile(f, 'utf8')) as Manifest);
  }
  return { entries, manifests };
}

async function audit(
  s: Stack,
): Promise<Array<{ kind: string; release?: string; result?: string; runUrl?: string; images?: string[]; detail?: string }>> {
  const text = await readFile(join(s.dir, 'audit.log'), 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

async function appRunning(s: Stack) {
  return (await projectContainers(s.project)).filter((c) => c.service === 'app' && c.state === 'running');
}

/** Versions of the running app containers, sorted. */
async function runningVersions(s: Stack): Promise<string[]> {
  return (await Promise.all((await appRunning(s)).map((c) => containerVersion(c.id)))).sort();
}

/** A few answers through the proxy, all from `version`. */
async function assertServes(s: Stack, version: string): Promise<void> {
  await waitServing(s.port, version, 20_000);
  for (let i = 0; i < 6; i++) {
    const r = await get(s.port);
    assert.equal(r.status, 200);
    assert.equal(r.version, version, `answer ${i} came from ${r.version}: ${r.body}`);
    assert.match(r.body, new RegExp(`version=${version}\\b`));
  }
}

/** Runs the action and notes when (wall clock) the rollout started and when the main step last logged. */
function tracked(inp: Record<string, string>, options: RunOptions) {
  const t = { rolloutAt: 0, lastLogAt: 0, startedAt: Date.now() };
  const onStart: Array<() => void> = [];
  const run = runAction(inp, {
    ...options,
    onLog: (chunk) => {
      t.lastLogAt = Date.now();
      if (!t.rolloutAt && /starting \d+ new replica/.test(chunk)) {
        t.rolloutAt = Date.now();
        for (const f of onStart) f();
      }
      options.onLog?.(chunk);
    },
  });
  const rolling = new Promise<void>((resolve) => onStart.push(resolve));
  return { run, t, rolling };
}

// ---------------------------------------------------------------------------------------------
// The main chain

const main: { s?: Stack; idA?: string; idB?: string; idRb?: string } = {};

test('deploy A, deploy B, then rollback: A serves again, 0 lost, three releases with results', async () => {
  const s = await newStack('rel');
  main.s = s;
  await image(tags.A, 'A');
  await image(tags.B, 'B');
  await image(tags.C, 'C');

  const a = await runAction(inputs(s, { env: envOf(s, tags.A) }), { workspace: s.workspace });
  assert.equal(a.code, 0, `deploy A: ${tail(a)}`);
  assert.match(a.log, /Probe skipped/);
  main.idA = a.outputs.release_id;
  assert.ok(main.idA, 'deploy A names its release');
  await assertServes(s, 'A');

  const b = await runAction(inputs(s, { env: envOf(s, tags.B) }), { workspace: s.workspace });
  assertCleanDeploy(b, 'deploy B');
  main.idB = b.outputs.release_id;
  assert.equal(b.outputs.previous_release_id, main.idA);
  await assertServes(s, 'B');
  assert.deepEqual(await runningVersions(s), ['B', 'B', 'B']);

  // A rollback: no env input (the release's own env file comes back), release left empty.
  const rbInputs = inputs(s, { rollback: 'true', release: '' });
  const rb = await runAction(rbInputs, { workspace: s.workspace });
  assertCleanDeploy(rb, 'rollback');
  main.idRb = rb.outputs.release_id;
  assert.ok(main.idRb && main.idRb !== main.idA && main.idRb !== main.idB, `the rollback is a release of its own (${main.idRb})`);
  assert.equal(rb.outputs.previous_release_id, main.idB);
  assert.match(rb.log, new RegExp(`rolling back to release ${main.idA}`));
  await assertServes(s, 'A');
  assert.deepEqual(await runningVersions(s), ['A', 'A', 'A']);

  const { entries, manifests } = await hostReleases(s);
  assert.deepEqual(entries, [main.idA, main.idB, main.idRb].sort(), 'releases/ holds exactly the three releases');
  const byId = new Map(manifests.map((m) => [m.id, m]));
  for (const id of [main.idA, main.idB, main.idRb])
    assert.equal(byId.get(id!)?.result, 'success', `release ${id}: ${JSON.stringify(byId.get(id!))}`);
  assert.equal(byId.get(main.idRb!)?.rollbackOf, main.idA, 'the rollback release names the release it went back to');
  assert.equal(byId.get(main.idA!)?.rollbackOf, undefined);
  assert.equal(byId.get(main.idB!)?.rollbackOf, undefined);
  assert.equal(byId.get(main.idRb!)?.services.app?.imageId, byId.get(main.idA!)?.services.app?.imageId, 'the rollback runs A’s image');
  assert.equal((await readFile(join(s.dir, 'current'), 'utf8')).trim(), main.idRb);

  const kinds = (await audit(s)).map((e) => `${e.kind}:${e.release}:${e.result}`);
  assert.deepEqual(kinds, [`deploy:${main.idA}:success`, `deploy:${main.idB}:success`, `rollback:${main.idRb}:success`]);
});

test('rollback to an unknown release id fails and lists the releases on the host', async () => {
  const s = main.s!;
  assert.ok(main.idRb, 'needs the previous test');
  const bogus = '20000101T000000Z-0000000';
  const r = await runAction(inputs(s, { rollback: 'true', release: bogus }), { workspace: s.workspace });
  assert.notEqual(r.code, 0, 'an unknown release fails the step');
  assert.match(r.log, new RegExp(`${bogus}.*not on the host`));
  for (const id of [main.idA, main.idB, main.idRb]) assert.ok(r.log.includes(id!), `the log lists release ${id}: ${tail(r)}`);
  // Nothing changed: no new release, A still serving, the lock free.
  assert.deepEqual((await hostReleases(s)).entries, [main.idA, main.idB, main.idRb].sort());
  assert.ok(!existsSync(join(s.dir, 'lock')), 'the lock is released');
  await assertServes(s, 'A');
});

// Locks, retention and image pinning do not depend on the Compose flavor: the Compose v1 pass
// (test/e2e/v1/releases.test.ts) registers only the two tests above.
mainPassOnly('two deploys started together: one waits for the lock, both succeed, never both at once', async () => {
  const s = main.s!;
  const runX = `e2e-rel-x-${pid}`;
  const runY = `e2e-rel-y-${pid}`;
  const x = tracked(inputs(s, { env: envOf(s, tags.B, 'STARTUP_DELAY=1') }), { workspace: s.workspace, env: { GITHUB_RUN_ID: runX } });
  const y = tracked(inputs(s, { env: envOf(s, tags.B, 'STARTUP_DELAY=2') }), { workspace: s.workspace, env: { GITHUB_RUN_ID: runY } });
  const [rx, ry] = await Promise.all([x.run, y.run]);
  assertCleanDeploy(rx, 'deploy X');
  assertCleanDeploy(ry, 'deploy Y');

  // Which one went first: the other waited, naming it.
  const [first, second, firstRun, secondRun] = x.t.rolloutAt <= y.t.rolloutAt ? [x, y, rx, ry] : [y, x, ry, rx];
  const firstId = first === x ? runX : runY;
  assert.ok(first.t.rolloutAt > 0 && second.t.rolloutAt > 0, 'both rolled out');
  assert.match(secondRun.log, new RegExp(`waiting for the deploy lock held by run ${firstId}-1`), tail(secondRun));
  assert.ok(
    second.t.rolloutAt > first.t.lastLogAt,
    `the second rollout started ${second.t.rolloutAt - first.t.lastLogAt} ms relative to the end of the first deploy: they overlapped`,
  );
  assert.notEqual(firstRun.outputs.release_id, secondRun.outputs.release_id);
  assert.equal(secondRun.outputs.previous_release_id, firstRun.outputs.release_id, 'the second deploy saw the first as serving');

  const entries = (await audit(s)).filter((e) => e.kind === 'deploy' && (e.runUrl?.endsWith(`/${runX}`) || e.runUrl?.endsWith(`/${runY}`)));
  assert.deepEqual(
    entries.map((e) => [e.runUrl?.split('/').pop(), e.release, e.result]),
    [
      [firstId, firstRun.outputs.release_id, 'success'],
      [first === x ? runY : runX, secondRun.outputs.release_id, 'success'],
    ],
    'the audit log records both, in lock order',
  );
  assert.deepEqual(await runningVersions(s), ['B', 'B', 'B']);
  assert.ok(!existsSync(join(s.dir, 'lock')));
});

mainPassOnly('a deploy with a short lock_timeout while another is mid-rollout fails naming the holder', async () => {
  const s = main.s!;
  const holderRun = `e2e-rel-holder-${pid}`;
  const waiterRun = `e2e-rel-waiter-${pid}`;
  const holder = tracked(inputs(s, { env: envOf(s, tags.B, 'STARTUP_DELAY=3') }), {
    workspace: s.workspace,
    env: { GITHUB_RUN_ID: holderRun },
  });
  const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 120_000).unref());
  assert.notEqual(
    await Promise.race([holder.rolling, holder.run.then(() => 'ended' as const), timeout]),
    'timeout',
    'the holder started rolling',
  );
  assert.ok(holder.t.rolloutAt > 0, 'the holder is mid-rollout');

  const started = Date.now();
  const waiter = await runAction(inputs(s, { env: envOf(s, tags.B, 'STARTUP_DELAY=4'), lock_timeout: '5s' }), {
    workspace: s.workspace,
    env: { GITHUB_RUN_ID: waiterRun },
  });
  const waited = Date.now() - started;
  const h = await holder.run;
  assertCleanDeploy(h, 'the holder');
  assert.notEqual(waiter.code, 0, 'the waiter fails');
  assert.match(waiter.log, new RegExp(`held by run ${holderRun}-1`), tail(waiter));
  assert.match(waiter.log, /lock_timeout/);
  assert.ok(waited < 60_000, `the waiter gave up in ${waited} ms`);
  assert.ok(holder.t.lastLogAt > started + 4000, 'the holder was still deploying while the waiter waited');

  // (a deploy's prune lines carry its run too: only deploys count here)
  const mine = (await audit(s)).filter(
    (e) => e.kind === 'deploy' && (e.runUrl?.endsWith(`/${holderRun}`) || e.runUrl?.endsWith(`/${waiterRun}`)),
  );
  assert.deepEqual(
    mine.map((e) => [e.kind, e.runUrl?.split('/').pop(), e.result]),
    [['deploy', holderRun, 'success']],
    'only the holder deployed',
  );
  assert.ok(!existsSync(join(s.dir, 'lock')));
  const v = await Promise.all((await appRunning(s)).map(async (c) => `${await containerVersion(c.id)}`));
  assert.deepEqual(v, ['B', 'B', 'B']);
});

/**
 * The main step of a runAction this process started (a direct child running dist/main), by pid: the
 * harness kills only on a fixed timer, and the kill must land while a batch is rolling.
 */
async function mainStepPids(): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      const cmd = (await readFile(`/proc/${name}/cmdline`, 'utf8')).split('\0');
      if (cmd.some((a) => a.endsWith(join('dist', 'main', 'index.js')))) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

mainPassOnly(
  'a deploy killed mid-rollout: the post step restores the serving release and frees the lock, the next deploy converges',
  async () => {
    const s = main.s!;
    const killedInputs = inputs(s, { env: envOf(s, tags.C, 'STARTUP_DELAY=4') });
    const k = tracked(killedInputs, {
      workspace: s.workspace,
      env: { GITHUB_RUN_ID: `e2e-rel-killed-${pid}` },
      // A backstop only: the kill below lands ~1.5 s after the first batch started.
      killAfterMs: 240_000,
    });
    await Promise.race([k.rolling, k.run]);
    assert.ok(k.t.rolloutAt > 0, 'the deploy started rolling');
    await new Promise((r) => setTimeout(r, 1500));
    const pids = await mainStepPids();
    assert.equal(pids.length, 1, `exactly one main step runs (${pids.join(', ')})`);
    process.kill(pids[0]!, 'SIGKILL');
    const r = await k.run;
    assert.equal(r.code, 137, `the main step was killed: ${tail(r)}`);
    assert.doesNotMatch(r.log, /released|Record/, 'killed before it could finish');
    assert.match(r.postLog, /serves again/, `the post step rolled the interrupted batch back: ${tail(r)}`);
    assert.match(r.postLog, /released the deploy lock left by the main step/, tail(r));
    assert.ok(!existsSync(join(s.dir, 'lock')), 'the post step removed the lock dir');

    const c = await runAction(killedInputs, { workspace: s.workspace, env: { GITHUB_RUN_ID: `e2e-rel-converge-${pid}` } });
    assertCleanDeploy(c, 'the converging deploy');
    const all = await projectContainers(s.project);
    const apps = all.filter((x) => x.service === 'app');
    assert.equal(apps.length, 3, `exactly 3 app containers: ${JSON.stringify(all)}`);
    assert.ok(
      apps.every((x) => x.state === 'running'),
      `all running: ${JSON.stringify(apps)}`,
    );
    assert.deepEqual(all.map((x) => x.service).sort(), ['app', 'app', 'app', 'proxy'], 'no leftover containers');
    assert.ok(
      all.every((x) => x.state === 'running'),
      `no stopped leftovers: ${JSON.stringify(all)}`,
    );
    const cId = (await sh(`docker image inspect --format '{{.Id}}' ${tags.C}`)).trim();
    assert.ok(
      apps.every((x) => x.image === cId),
      'all on the new image',
    );
    assert.deepEqual(await runningVersions(s), ['C', 'C', 'C']);
    await assertServes(s, 'C');
    assert.ok(!existsSync(join(s.dir, 'lock')));

    // Issues #11/#12: the killed deploy's release is not left pending: the post step that restored the stack marked it abandoned.
    const { manifests } = await hostReleases(s);
    const killedRelease = manifests.filter((m) => m.runUrl.endsWith(`/e2e-rel-killed-${pid}`));
    assert.equal(
      killedRelease.length,
      1,
      `one release of the killed run: ${JSON.stringify(manifests.map((m) => [m.id, m.result, m.runUrl]))}`,
    );
    assert.equal(killedRelease[0]!.result, 'abandoned', JSON.stringify(killedRelease[0]));
    assert.match(killedRelease[0]!.reason ?? '', /interrupted before it was recorded; the post step restored release/);
    assert.deepEqual(
      manifests.filter((m) => m.result === 'pending').map((m) => m.id),
      [],
      'no release is left pending',
    );
    assert.ok(
      (await audit(s)).some((e) => e.kind === 'rollback' && (e.detail ?? '').includes(killedRelease[0]!.id)),
      'the restore is audited',
    );
  },
);

// ---------------------------------------------------------------------------------------------
// Issue #11: retention counts good releases

mainPassOnly(
  'keep_releases: 2 counts good releases: after a good one, three failed deploys, one stopped before its record and a good one, rollback to the first good one serves it, 0 lost',
  async () => {
    const s = await newStack('relkeep');
    const keep = { keep_releases: '2' };
    const idGood = await benchAlias(tags.good, 'handoff-test-app:v1');
    const idNext = await benchAlias(tags.next, 'handoff-test-app:v2');

    const g = await runAction(inputs(s, { ...keep, env: envOf(s, tags.good) }), { workspace: s.workspace });
    assert.equal(g.code, 0, `deploy G: ${tail(g)}`);
    const G = g.outputs.release_id!;
    await assertServes(s, 'v1');

    // More failed deploys than keep_releases: the new replica never gets healthy, each rolls back to G.
    const failed: string[] = [];
    for (let i = 0; i < 3; i++) {
      const f = await runAction(inputs(s, { ...keep, probe_url: '', health_timeout: '4s', env: envOf(s, tags.good, 'HEALTH_FAIL=1') }), {
        workspace: s.workspace,
      });
      assert.notEqual(f.code, 0, `failed deploy ${i + 1} fails: ${tail(f)}`);
      assert.equal(f.outputs.rolled_back, 'true', `failed deploy ${i + 1} rolled back: ${tail(f)}`);
      failed.push(f.outputs.release_id!);
    }
    assert.deepEqual(await runningVersions(s), ['v1', 'v1', 'v1']);
    assert.ok((await appRunning(s)).every((c) => c.image === idGood));

    // A deploy that stops before its record (its image is nowhere): its own release says so.
    const absent = `handoff-test-app:absent-${pid}`;
    const x = await runAction(inputs(s, { ...keep, probe_url: '', env: envOf(s, absent) }), { workspace: s.workspace });
    assert.notEqual(x.code, 0, `the deploy of a missing image fails: ${tail(x)}`);
    const X = x.outputs.release_id!;
    assert.ok(X, 'it names its release');

    const n = await runAction(inputs(s, { ...keep, env: envOf(s, tags.next) }), { workspace: s.workspace });
    assertCleanDeploy(n, 'the good deploy after the failures');
    await assertServes(s, 'v2');

    // G survives: failed ones never count toward keep_releases; of the four failed ones the oldest went.
    let host = await hostReleases(s);
    assert.deepEqual(host.entries, [G, failed[1]!, failed[2]!, X, n.outputs.release_id!].sort(), `releases/: ${host.entries.join(', ')}`);
    const result = new Map(host.manifests.map((m) => [m.id, m]));
    assert.equal(result.get(G)?.result, 'success');
    assert.equal(result.get(failed[1]!)?.result, 'rolled-back');
    assert.equal(result.get(X)?.result, 'abandoned');
    assert.match(result.get(X)?.reason ?? '', new RegExp(`${absent}.*not on the host`));
    assert.equal(result.get(G)?.services.app?.imageId, idGood);
    assert.equal((await sh(`docker image inspect --format '{{.Id}}' ${idGood}`)).trim(), idGood, "G's image is still on the host");
    const prunes = (await audit(s)).filter((e) => e.kind === 'prune');
    assert.deepEqual(
      prunes.map((e) => [e.release, e.result]),
      [[failed[0], 'rolled-back']],
      'one audit line for the one prune',
    );
    // The summary's rollback table names G as what rollback: true would pick.
    assert.match(
      n.summary,
      new RegExp(`\\| \`${G}\` \\| success \\| \`[0-9a-f]{7}\` \\| [^|]+ago \\| \`rollback: true\` picks this \\|`),
      n.summary,
    );

    const rb = await runAction(inputs(s, { ...keep, rollback: 'true', release: G }), { workspace: s.workspace });
    assertCleanDeploy(rb, 'rollback to G');
    await assertServes(s, 'v1');
    const apps = await appRunning(s);
    assert.equal(apps.length, 3);
    assert.ok(
      apps.every((c) => c.image === idGood),
      `every replica runs G's image: ${JSON.stringify(apps)}`,
    );

    // Now the rollback release and N are the two good ones kept; G goes, but its image stays (the rollback release pins it).
    host = await hostReleases(s);
    assert.ok(!host.entries.includes(G), `G was pruned after the rollback: ${host.entries.join(', ')}`);
    assert.ok(host.entries.includes(rb.outputs.release_id!) && host.entries.includes(n.outputs.release_id!));
    const allPrunes = (await audit(s)).filter((e) => e.kind === 'prune');
    assert.deepEqual(
      allPrunes.map((e) => e.release),
      [failed[0], G],
      'two prunes, one audit line each',
    );
    // No image was even a candidate (Docker would refuse these two-tag images, and the line would say so):
    // every pruned release pinned an image a kept release pins too.
    assert.deepEqual(
      allPrunes.map((e) => [e.images, e.detail]),
      [
        [[], undefined],
        [[], undefined],
      ],
    );
    assert.equal((await sh(`docker image inspect --format '{{.Id}}' ${idGood}`)).trim(), idGood);
    assert.equal((await sh(`docker image inspect --format '{{.Id}}' ${idNext}`)).trim(), idNext, "N's image stays: N's release is kept");
    // G is gone, yet rollback: true from here would not swing forward to N, the release rolled away from.
    assert.match(rb.summary, /There is no earlier successful release for `rollback: true`/, rb.summary);
  },
);

// ---------------------------------------------------------------------------------------------
// A re-pushed tag, and retention

mainPassOnly(
  'a re-pushed tag rolls; rollback brings the old image back; keep_releases: 2 keeps two releases and their images',
  async () => {
    const s = await newStack('relsame');
    const keep = { keep_releases: '2' };
    const idA = await image(tags.same, 'A');
    const a = await runAction(inputs(s, { ...keep, env: envOf(s, tags.same) }), { workspace: s.workspace });
    assert.equal(a.code, 0, `deploy A: ${tail(a)}`);
    await assertServes(s, 'A');
    assert.ok((await appRunning(s)).every((c) => c.image === idA));

    // Same tag, same Compose file, same env: only the image behind the tag changed.
    const idB = await image(tags.same, 'B');
    assert.notEqual(idA, idB);
    const b = await runAction(inputs(s, { ...keep, env: envOf(s, tags.same) }), { workspace: s.workspace });
    assertCleanDeploy(b, 'deploy of the re-pushed tag');
    const plan = JSON.parse(b.outputs.plan ?? '[]') as Array<{ service: string; action: string }>;
    assert.equal(plan.find((p) => p.service === 'app')?.action, 'roll', `the planner saw the new image: ${b.outputs.plan}`);
    await assertServes(s, 'B');
    const afterB = await appRunning(s);
    assert.equal(afterB.length, 3);
    assert.ok(
      afterB.every((c) => c.image === idB),
      'every replica runs the re-pushed image',
    );

    const rb = await runAction(inputs(s, { ...keep, rollback: 'true' }), { workspace: s.workspace });
    assertCleanDeploy(rb, 'rollback to the first push');
    assert.equal((await sh(`docker image inspect --format '{{.Id}}' ${tags.same}`)).trim(), idA, 'the tag points at the A image again');
    const afterRb = await appRunning(s);
    assert.equal(afterRb.length, 3);
    assert.ok(
      afterRb.every((c) => c.image === idA),
      `every replica runs the A image by id: ${JSON.stringify(afterRb)}`,
    );
    await assertServes(s, 'A');

    // A fourth deploy; with keep_releases: 2 the host keeps it and the rollback release (its rollback target).
    const idK = await image(tags.keep, 'K');
    const k = await runAction(inputs(s, { ...keep, env: envOf(s, tags.keep) }), { workspace: s.workspace });
    assertCleanDeploy(k, 'fourth deploy');
    await assertServes(s, 'K');
    const { entries, manifests } = await hostReleases(s);
    assert.deepEqual(
      entries,
      [rb.outputs.release_id, k.outputs.release_id].sort(),
      `releases/ holds the two newest releases and nothing else: ${entries.join(', ')}`,
    );
    const keptApp = manifests.map((m) => m.services.app?.imageId).sort();
    assert.deepEqual(keptApp, [idA, idK].sort(), `the kept releases pin the A and K app images: ${JSON.stringify(manifests)}`);
    const kept = new Set(manifests.flatMap((m) => Object.values(m.services).map((x) => x.imageId)).filter(Boolean));
    for (const id of kept) await sh(`docker image inspect ${id} >/dev/null`); // throws if retention removed it
    // The re-pushed B image was referenced only by a pruned release: retention let it go.
    const bGone = await sh(`docker image inspect ${idB} >/dev/null 2>&1 && echo present || echo gone`);
    assert.equal(bGone.trim(), 'gone', 'the image only a pruned release referenced was removed');
  },
);
