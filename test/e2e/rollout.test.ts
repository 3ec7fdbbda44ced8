/**
 * Issue #3 acceptance: the rollout engine, through the bundled action, on the sample stack (app ×3
 * behind HAProxy) with an independent load loop through the proxy during every deploy.
 * One stack for the whole file, in order: v1 → v2 → same again → v3 failing health → v4 crashing
 * in monitor. Then two small stacks of their own: a refused container_name, and a stateful service
 * recreated stop-first.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  appImage,
  cleanupProject,
  connectionInputs,
  freePort,
  projectContainers,
  repo,
  runAction,
  sampleWorkspace,
  mainPassOnly,
  sh,
  uniqueProject,
  type ActionRun,
} from './harness.js';
import { get, startLoad, type LoadResult } from './load.js';
import { containerVersion, summaryTimeline, waitServing, watchRunning } from './stacks/helpers.js';

const project = uniqueProject('rollout');
const port = freePort();
const v3Tag = `handoff-test-app:rollout-v3-${process.pid}`;
const v4Tag = `handoff-test-app:rollout-v4-${process.pid}`;
let workspace: string;
const extraProjects: string[] = [];

const inputs = (env: string) => ({
  ...connectionInputs(),
  project,
  compose_files: 'deploy/compose.yaml',
  files: 'deploy/haproxy/',
  env: `PROXY_PORT=${port}\n${env}`,
  pull: 'never',
  // The bench's shared images (v1, v2) must never be pruned by this file's deploys.
  keep_releases: '20',
  probe_url: `http://127.0.0.1:${port}/`,
});

/** Run a deploy with the load loop running through the proxy the whole time. */
async function deployUnderLoad(env: string): Promise<{ run: ActionRun; load: LoadResult }> {
  const load = startLoad({ port, rate: 40, maxDurationMs: 240_000 });
  await new Promise((r) => setTimeout(r, 500));
  let run: ActionRun;
  try {
    run = await runAction(inputs(env), { workspace });
  } finally {
    await new Promise((r) => setTimeout(r, 500));
  }
  return { run: run!, load: await load.stop() };
}

function describeFailures(load: LoadResult): string {
  return `${load.failures.length} of ${load.sent} requests failed: ${JSON.stringify(load.failures.slice(0, 10))}`;
}

function planOf(run: ActionRun): Array<{ service: string; action: string; order: string; old: number; new: number; batches: number }> {
  assert.ok(run.outputs.plan, `the plan output is set (log:\n${run.log.slice(-3000)})`);
  return JSON.parse(run.outputs.plan!);
}

async function appContainers() {
  return (await projectContainers(project)).filter((c) => c.service === 'app');
}

/** Running app containers with the APP_VERSION of their image. */
async function runningVersions(): Promise<string[]> {
  const running = (await appContainers()).filter((c) => c.state === 'running');
  return Promise.all(running.map((c) => containerVersion(c.id)));
}

before(async () => {
  workspace = await sampleWorkspace();
});

after(async () => {
  await cleanupProject(project);
  for (const p of extraProjects) await cleanupProject(p);
  await sh(`docker rmi -f ${v3Tag} ${v4Tag} >/dev/null 2>&1 || true`);
});

test('v1 → v2: every replica replaced one at a time under load, nothing lost', { timeout: 420_000 }, async () => {
  // No probe on the very first deploy: nothing serves before it.
  const first = await runAction({ ...inputs('APP_IMAGE=handoff-test-app:v1'), probe_url: '' }, { workspace });
  assert.equal(first.code, 0, `the v1 deploy succeeds:\n${first.log}`);
  await waitServing(port, 'v1');
  const before = await appContainers();
  assert.equal(before.filter((c) => c.state === 'running').length, 3, 'three v1 replicas before the roll');

  const { run, load } = await deployUnderLoad('APP_IMAGE=handoff-test-app:v2');
  assert.equal(run.code, 0, `the v2 deploy succeeds:\n${run.log}`);

  // Batches of one, start-first: the plan says so, and the timeline shows start → remove three times.
  const app = planOf(run).find((p) => p.service === 'app');
  assert.equal(app?.action, 'roll', 'app is rolled');
  assert.equal(app?.order, 'start-first');
  assert.equal(app?.batches, 3, 'three batches of one replica');
  const events = summaryTimeline(run.summary).filter((e) => e.service === 'app' && (e.action === 'start' || e.action === 'remove'));
  assert.deepEqual(
    events.map((e) => e.action),
    ['start', 'remove', 'start', 'remove', 'start', 'remove'],
    `one new replica, then one old replica removed, three times (timeline: ${JSON.stringify(events)})`,
  );
  for (const e of events.filter((x) => x.action === 'remove'))
    assert.equal(e.detail.split(',').length, 1, `one container per removal: ${e.detail}`);

  // The independent load loop and the action's own probe both saw nothing lost.
  assert.equal(load.failures.length, 0, describeFailures(load));
  assert.ok(load.sent > 100, `the load loop ran during the deploy (${load.sent} requests)`);
  assert.ok(
    (load.versions.get('v1') ?? 0) > 0 && (load.versions.get('v2') ?? 0) > 0,
    `both versions answered: ${JSON.stringify([...load.versions])}`,
  );
  assert.deepEqual([...new Set(load.sequence.slice(-20))], ['v2'], 'the last answers of the loop are all v2');
  assert.equal(run.outputs.requests_lost, '0', 'the probe lost nothing');
  assert.ok(Number(run.outputs.requests_sent) > 0, 'the probe sent requests');
  assert.match(run.outputs.services_updated ?? '', /\bapp\b/);

  const answer = await get(port);
  assert.equal(answer.status, 200);
  assert.equal(answer.version, 'v2', 'the version header flipped to v2');

  const afterRoll = await appContainers();
  const oldIds = new Set(before.map((c) => c.id));
  assert.deepEqual(
    afterRoll.filter((c) => oldIds.has(c.id)).map((c) => c.name),
    [],
    'no old container is left (running or stopped)',
  );
  assert.equal(afterRoll.length, 3, `exactly three app containers: ${afterRoll.map((c) => `${c.name} ${c.state}`).join(', ')}`);
  assert.deepEqual(await runningVersions(), ['v2', 'v2', 'v2'], 'all three run the v2 image');
});

test('the same inputs again roll nothing and change no container', { timeout: 300_000 }, async () => {
  const before = (await projectContainers(project)).map((c) => c.id).sort();
  const { run, load } = await deployUnderLoad('APP_IMAGE=handoff-test-app:v2');
  assert.equal(run.code, 0, `the deploy succeeds:\n${run.log}`);
  const plan = planOf(run);
  assert.ok(plan.length >= 2, 'the plan lists app and proxy');
  for (const p of plan) assert.equal(p.action, 'keep', `service ${p.service} is kept (plan: ${JSON.stringify(plan)})`);
  assert.equal(run.outputs.services_updated, '', 'no service updated');
  assert.deepEqual((await projectContainers(project)).map((c) => c.id).sort(), before, 'the same containers before and after');
  assert.equal(load.failures.length, 0, describeFailures(load));
});

test(
  'v3 failing its health check: the deploy fails with the health output, v2 keeps serving, no v3 left',
  { timeout: 300_000 },
  async () => {
    const v3Id = await appImage(v3Tag, 'v3');
    const { run, load } = await deployUnderLoad(`APP_IMAGE=${v3Tag}\nHEALTH_FAIL=1`);
    assert.notEqual(run.code, 0, 'the deploy fails');
    assert.match(run.log, /unhealthy|health/i, 'the failure names the health check');
    // The failed container's own words: Docker's health check output (busybox wget on a 503) and its log.
    assert.match(
      run.log,
      /503/,
      "the job log carries the failed container's health check output (wget: ... 503). Suspected product bug: src/deploy.ts drops result.failure.logs (collectDiagnostics output) instead of logging it",
    );
    assert.match(run.log, /version=v3[^\n]*HEALTH_FAIL=1/, "the job log carries the failed container's own log lines (docker logs)");
    assert.equal(load.failures.length, 0, `v2 kept serving throughout: ${describeFailures(load)}`);
    assert.equal(load.versions.get('v3') ?? 0, 0, 'no request was answered by v3');

    const app = await appContainers();
    assert.deepEqual(
      app.filter((c) => c.image === v3Id).map((c) => c.name),
      [],
      'no v3 container is left',
    );
    assert.deepEqual(await runningVersions(), ['v2', 'v2', 'v2'], 'three v2 replicas still run');
    assert.equal((await get(port)).version, 'v2');
  },
);

// How a crash within monitor is caught and rolled back does not depend on the Compose flavor: the
// v1 pass (test/e2e/v1/rollout.test.ts) leaves it to the main pass.
mainPassOnly(
  'v4 healthy then crashing within monitor: the action fails, rolls back, v2 serves with 3 replicas',
  { timeout: 300_000 },
  async () => {
    const v4Id = await appImage(v4Tag, 'v4');
    const { run, load } = await deployUnderLoad(`APP_IMAGE=${v4Tag}\nCRASH_AFTER=3`);
    assert.notEqual(run.code, 0, 'the deploy fails');
    assert.equal(run.outputs.rolled_back, 'true', `rolled_back is reported (log:\n${run.log.slice(-4000)})`);
    assert.match(run.log, /exit|crash|monitor|restart/i, 'the failure names the crash');
    await waitServing(port, 'v2');
    const app = await appContainers();
    assert.deepEqual(
      app.filter((c) => c.image === v4Id).map((c) => `${c.name} ${c.state}`),
      [],
      'no v4 container is left',
    );
    assert.deepEqual(
      await runningVersions(),
      ['v2', 'v2', 'v2'],
      `three v2 replicas serve: ${app.map((c) => `${c.name} ${c.state}`).join(', ')}`,
    );
    assert.equal(app.length, 3, 'and nothing else');
    // Answers after the deploy are v2 (v4 may have answered briefly before it crashed).
    assert.deepEqual([...new Set(load.sequence.slice(-20))], ['v2'], 'the last answers of the loop are all v2');
    // A replica that dies while serving can cost a request in flight on it (HAProxy retries a refused
    // connection, not always one cut mid-answer or timed out): a handful at most, never an outage.
    assert.ok(load.failures.length <= Math.ceil(load.sent * 0.01), `the crash cost at most 1% of requests: ${describeFailures(load)}`);
  },
);

test('a start-first service with container_name is refused before any remote change', { timeout: 120_000 }, async () => {
  const p = uniqueProject('cname');
  extraProjects.push(p);
  const ws = await mkdtemp(join(tmpdir(), 'handoff-ws-'));
  await mkdir(join(ws, 'deploy'));
  await copyFile(join(repo, 'test/e2e/stacks/container-name.yaml'), join(ws, 'deploy/compose.yaml'));
  const run = await runAction(
    { ...connectionInputs(), project: p, compose_files: 'deploy/compose.yaml', pull: 'never' },
    { workspace: ws },
  );
  assert.notEqual(run.code, 0, 'the deploy is refused');
  assert.match(run.log, /web/, 'the error names the service');
  assert.match(run.log, /container_name/, 'the error names container_name');
  assert.doesNotMatch(run.log, /connected to the host/, 'it never connected');
  assert.deepEqual(await projectContainers(p), [], 'no container was created');
  assert.equal((await sh(`docker ps -aq --filter name=handoff-e2e-fixed-web`)).trim(), '', 'no container with the fixed name');
  assert.equal((await sh(`ls -d /home/deploy/handoff/${p} 2>/dev/null || true`)).trim(), '', 'no remote directory was created');
});

test('a stateful service with a named volume is recreated stop-first, never two at once, volume kept', { timeout: 300_000 }, async () => {
  const p = uniqueProject('stateful');
  extraProjects.push(p);
  const ws = await mkdtemp(join(tmpdir(), 'handoff-ws-'));
  await mkdir(join(ws, 'deploy'));
  await copyFile(join(repo, 'test/e2e/stacks/stateful.yaml'), join(ws, 'deploy/compose.yaml'));
  const dbInputs = (gen: string) => ({
    ...connectionInputs(),
    project: p,
    compose_files: 'deploy/compose.yaml',
    pull: 'never',
    keep_releases: '20',
    env: `DB_GENERATION=${gen}`,
  });

  const first = await runAction(dbInputs('1'), { workspace: ws });
  assert.equal(first.code, 0, `the first deploy succeeds:\n${first.log}`);
  const [db1] = (await projectContainers(p)).filter((c) => c.service === 'db' && c.state === 'running');
  assert.ok(db1, 'one db container runs');
  await sh(`docker exec ${db1.id} sh -c 'echo generation-1 > /data/marker'`);

  const watch = watchRunning(p, 'db');
  const run = await runAction(dbInputs('2'), { workspace: ws });
  const seen = await watch.stop();
  assert.equal(run.code, 0, `the second deploy succeeds:\n${run.log}`);

  const db = planOf(run).find((x) => x.service === 'db');
  assert.equal(db?.action, 'roll', 'db is recreated (its config changed)');
  assert.equal(db?.order, 'stop-first', 'a service no proxy routes to, without order, is rolled stop-first');
  assert.ok(seen.samples > 5, `docker ps was sampled during the deploy (${seen.samples})`);
  assert.ok(seen.max <= 1, `never two db containers running at once (saw ${seen.max})`);
  const events = summaryTimeline(run.summary).filter((e) => e.service === 'db' && ['stop', 'remove', 'start'].includes(e.action));
  assert.deepEqual(
    events.map((e) => e.action),
    ['stop', 'remove', 'start'],
    `the old one stops before the new one starts: ${JSON.stringify(events)}`,
  );

  const running = (await projectContainers(p)).filter((c) => c.service === 'db' && c.state === 'running');
  assert.equal(running.length, 1, 'one db container runs');
  assert.notEqual(running[0]!.id, db1.id, 'it is a new container');
  assert.equal((await sh(`docker ps -aq --no-trunc --filter id=${db1.id}`)).trim(), '', 'the old container is gone');
  assert.equal((await sh(`docker exec ${running[0]!.id} cat /data/marker`)).trim(), 'generation-1', 'the named volume was kept');
});
