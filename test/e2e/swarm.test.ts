/**
 * Issue #18 acceptance: the Swarm target on a single-node swarm of the bench's engine
 * (scripts/bench/swarm.sh), the stack of examples/swarm/ with the app stopped by SIGKILL:
 * 1. v1 -> v2 with keep-alive GETs, 1 s GETs and 1 s POSTs in flight: nothing lost (probe and load),
 *    every old task drained (no timeout) before handoff stopped it;
 * 2. an unhealthy v3: Swarm rolls back, the job fails with the task's error, v2 keeps serving, nothing lost;
 * 3. rollback to the v1 release by id: v1 serves, images pinned by ID, nothing lost.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { cp, mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appImage, connectionInputs, freePort, repo, runAction, sh, uniqueProject, type ActionRun } from './harness.js';
import { startLoad, type LoadResult } from './load.js';
import { request, sleep, summaryTimeline, waitServing, type RawAnswer } from './stacks/helpers.js';

const project = uniqueProject('swarm');
const port = freePort();
const v3Tag = `handoff-test-app:swarm-v3-${process.pid}`;
let workspace: string;
let image = 'handoff-test-app:v1';
let healthFail = '0';
let v1Release = '';

const inputs = (extra: Record<string, string> = {}) => ({
  ...connectionInputs(),
  target: 'swarm',
  project,
  compose_files: 'deploy/stack.yaml',
  files: 'deploy/haproxy/',
  env: `PROXY_PORT=${port}\nAPP_IMAGE=${image}\nHEALTH_FAIL=${healthFail}\nSTOP_SIGNAL=SIGKILL`,
  pull: 'never',
  keep_releases: '20',
  probe_url: `http://127.0.0.1:${port}/`,
  ...extra,
});

/** Keep-alive and fresh GETs (some 1 s long) and POSTs for the whole deploy, plus 1 s GETs and POSTs with their answers. */
async function deployUnderLoad(extra: Record<string, string> = {}) {
  const load = startLoad({ port, rate: 40, maxDurationMs: 240_000, paths: ['/', '/slow?ms=1000'], postEvery: 3 });
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const slow: Array<Promise<RawAnswer | Error>> = [];
  const posts: Array<{ body: string; answer: Promise<RawAnswer | Error> }> = [];
  let stopped = false;
  const lane = (async () => {
    const deadline = Date.now() + 240_000;
    for (let i = 0; !stopped && Date.now() < deadline; i++) {
      const agent = i % 2 === 0 ? keepAlive : false;
      slow.push(request(port, { path: '/slow?ms=1000', agent }).catch((e: Error) => e));
      const body = `body-${i}-${'y'.repeat(1000 + (i % 500))}`;
      posts.push({ body, answer: request(port, { path: '/echo?ms=1000', method: 'POST', body, agent }).catch((e: Error) => e) });
      await sleep(150);
    }
  })();
  await sleep(500);
  let run: ActionRun;
  try {
    run = await runAction(inputs(extra), { workspace });
  } finally {
    await sleep(500);
    stopped = true;
  }
  await lane;
  const slowAnswers = await Promise.all(slow);
  const postAnswers = await Promise.all(posts.map(async (p) => ({ body: p.body, answer: await p.answer })));
  keepAlive.destroy();
  const done = await load.stop();
  const badSlow = slowAnswers.filter((a) => a instanceof Error || a.status !== 200 || !/slow=1000/.test(a.body));
  const badPosts = postAnswers.filter((p) => p.answer instanceof Error || p.answer.status !== 200 || p.answer.body !== p.body);
  return { run: run!, load: done, slowAnswers, postAnswers, badSlow, badPosts };
}

function describe(label: string, r: Awaited<ReturnType<typeof deployUnderLoad>>): string {
  const line = `${label}: probe sent ${r.run.outputs.requests_sent}, lost ${r.run.outputs.requests_lost}; load sent ${r.load.sent}, failed ${r.load.failures.length} ${JSON.stringify(r.load.failures.slice(0, 5))}; witness ${r.slowAnswers.length} 1 s GETs + ${r.postAnswers.length} 1 s POSTs, ${r.badSlow.length + r.badPosts.length} failed`;
  console.log(line);
  return line;
}

function assertNothingLost(r: Awaited<ReturnType<typeof deployUnderLoad>>, line: string, load: LoadResult = r.load) {
  assert.equal(r.run.outputs.requests_lost, '0', `the probe lost nothing (${line})`);
  assert.ok(Number(r.run.outputs.requests_sent) > 0, 'the probe ran');
  assert.deepEqual(load.failures, [], `no load request failed (${line})`);
  assert.deepEqual(
    r.badSlow.map((a) => (a instanceof Error ? a.message : `${a.status} ${a.body.slice(0, 80)}`)),
    [],
    'every 1 s GET completes with 200',
  );
  assert.deepEqual(
    r.badPosts.map((p) => (p.answer instanceof Error ? p.answer.message : `${p.answer.status}`)),
    [],
    'every 1 s POST comes back with 200 and its own body',
  );
}

async function stackImage(service: string): Promise<string> {
  return (await sh(`docker service inspect -f '{{.Spec.TaskTemplate.ContainerSpec.Image}}' ${project}_${service}`)).trim();
}

before(async () => {
  await sh(`bash ${join(repo, 'scripts/bench/swarm.sh')}`);
  workspace = await mkdtemp(join(tmpdir(), 'handoff-ws-swarm-'));
  await mkdir(join(workspace, 'deploy'));
  await cp(join(repo, 'examples/swarm'), join(workspace, 'deploy'), { recursive: true });
  // No probe on the very first deploy: nothing serves before it.
  const first = await runAction(inputs({ probe_url: '' }), { workspace });
  assert.equal(first.code, 0, `the v1 deploy succeeds:\n${first.log}`);
  v1Release = first.outputs.release_id!;
  await waitServing(port, 'v1', 60_000);
});

after(async () => {
  await sh(`docker stack rm ${project} >/dev/null 2>&1 || true`);
  // The stack's network goes once its tasks are gone.
  for (let i = 0; i < 60; i++) {
    if (!(await sh(`docker network ls -q --filter label=com.docker.stack.namespace=${project}`)).trim()) break;
    await sleep(1000);
  }
  await sh(`rm -rf /home/deploy/handoff/${project}; docker rmi -f ${v3Tag} >/dev/null 2>&1 || true`);
});

test(
  'swarm: v1 -> v2 with keep-alive GETs, 1 s GETs and 1 s POSTs in flight (app stopped by SIGKILL): nothing lost',
  { timeout: 420_000 },
  async () => {
    image = 'handoff-test-app:v2';
    const r = await deployUnderLoad();
    const line = describe('swarm v1->v2', r);
    assert.equal(r.run.code, 0, `the v2 deploy succeeds:\n${r.run.log}`);
    assertNothingLost(r, line);
    const drained = summaryTimeline(r.run.summary).filter((e) => e.action === 'drained');
    assert.equal(drained.length, 3, `three old tasks drained:\n${r.run.summary}`);
    assert.deepEqual(
      drained.filter((e) => /timeout/.test(e.detail)),
      [],
      'none by drain_timeout',
    );
    // 1 s requests were answered by v1 while the update ran, and by v2 after: they spanned the swap.
    const versions = new Set(r.slowAnswers.flatMap((a) => (a instanceof Error ? [] : [String(a.headers['x-app-version'])])));
    assert.deepEqual([...versions].sort(), ['v1', 'v2'], '1 s requests were served by both versions');
    assert.equal((await request(port)).headers['x-app-version'], 'v2');
    assert.match(await stackImage('app'), /^sha256:[0-9a-f]{64}$/, 'the service runs its image pinned by ID');
  },
);

test(
  'swarm: an unhealthy v3 is rolled back by Swarm, the job fails with the task error, v2 keeps serving, nothing lost',
  { timeout: 420_000 },
  async () => {
    await appImage(v3Tag, 'v3');
    image = v3Tag;
    healthFail = '1';
    try {
      const r = await deployUnderLoad();
      const line = describe('swarm unhealthy v3', r);
      assert.notEqual(r.run.code, 0, 'the deploy fails');
      assert.equal(r.run.outputs.rolled_back, 'true', 'rolled back');
      assert.match(r.run.log, /rollback_completed/, 'the real outcome of the update is read');
      assert.match(r.run.log, /unhealthy container/, "the task's error is in the log");
      assertNothingLost(r, line);
      assert.deepEqual([...r.load.versions.keys()], ['v2'], 'only v2 answered');
    } finally {
      image = 'handoff-test-app:v2';
      healthFail = '0';
    }
    assert.equal((await request(port)).headers['x-app-version'], 'v2');
  },
);

test('swarm: rollback to the v1 release by id, images pinned by ID, nothing lost', { timeout: 420_000 }, async () => {
  const r = await deployUnderLoad({ rollback: 'true', release: v1Release });
  const line = describe('swarm rollback to v1', r);
  assert.equal(r.run.code, 0, `the rollback succeeds:\n${r.run.log}`);
  assertNothingLost(r, line);
  assert.equal((await request(port)).headers['x-app-version'], 'v1');
  const v1Id = (await sh(`docker image inspect -f '{{.Id}}' handoff-test-app:v1`)).trim();
  assert.equal(await stackImage('app'), v1Id, "the service runs v1's image ID");
});
