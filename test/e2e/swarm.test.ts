/**
 * Issue #18 acceptance: the Swarm target on a single-node swarm of the bench's engine
 * (scripts/bench/swarm.sh), the stack of examples/swarm/ with the app stopped by SIGKILL:
 * 1. v1 -> v2 with keep-alive GETs, 1 s and 3 s GETs and POSTs in flight: nothing lost (probe and load),
 *    every old task drained (no timeout) before handoff stopped it;
 * 2. an unhealthy v3: Swarm rolls back, the job fails with the task's error, v2 keeps serving, nothing lost;
 * 3. rollback to the v1 release by id: v1 serves, images pinned by ID, nothing lost;
 * 4. the control: the same stack updated by a plain `docker stack deploy` cuts 3 s requests, so the
 *    lanes above can fail (1 s requests mostly fit in Swarm's own 2 s between DNS and the signal).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { cp, mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appImage, connectionInputs, freePort, repo, runAction, sh, uniqueProject, type ActionRun } from './harness.js';
import { startLoad } from './load.js';
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

/** A witness lane: a GET and a POST of `ms` each every `everyMs`, alternating keep-alive and fresh connections, with their answers. */
function witnessLane(ms: number, everyMs: number) {
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const gets: Array<Promise<RawAnswer | Error>> = [];
  const posts: Array<{ body: string; answer: Promise<RawAnswer | Error> }> = [];
  let stopped = false;
  const lane = (async () => {
    const deadline = Date.now() + 240_000;
    for (let i = 0; !stopped && Date.now() < deadline; i++) {
      const agent = i % 2 === 0 ? keepAlive : false;
      gets.push(request(port, { path: `/slow?ms=${ms}`, agent, timeoutMs: ms + 5000 }).catch((e: Error) => e));
      const body = `body-${i}-${'y'.repeat(1000 + (i % 500))}`;
      posts.push({
        body,
        answer: request(port, { path: `/echo?ms=${ms}`, method: 'POST', body, agent, timeoutMs: ms + 5000 }).catch((e: Error) => e),
      });
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await lane;
      const getAnswers = await Promise.all(gets);
      const postAnswers = await Promise.all(posts.map(async (p) => ({ body: p.body, answer: await p.answer })));
      keepAlive.destroy();
      const badGets = getAnswers.filter((a) => a instanceof Error || a.status !== 200 || !new RegExp(`slow=${ms}`).test(a.body));
      const badPosts = postAnswers.filter((p) => p.answer instanceof Error || p.answer.status !== 200 || p.answer.body !== p.body);
      return { ms, getAnswers, postAnswers, bad: [...badGets.map(describeAnswer), ...badPosts.map((p) => describeAnswer(p.answer))] };
    },
  };
}

function describeAnswer(a: RawAnswer | Error): string {
  return a instanceof Error ? a.message : `${a.status} ${a.body.slice(0, 60)}`;
}

/**
 * The deploy (or `deploy` given) under load: keep-alive and fresh GETs (some 1 s long) and POSTs, and
 * witness lanes of 1 s and 3 s GETs and POSTs. 3 s outlasts Swarm's own 2 s between a task leaving DNS
 * and its stop signal: a plain `docker stack deploy` cuts some of those (the last test).
 */
async function deployUnderLoad<T = ActionRun>(extra: Record<string, string> = {}, deploy?: () => Promise<T>) {
  const load = startLoad({ port, rate: 40, maxDurationMs: 240_000, paths: ['/', '/slow?ms=1000'], postEvery: 3 });
  const lanes = [witnessLane(1000, 150), witnessLane(3000, 300)];
  await sleep(500);
  let run: T | ActionRun;
  try {
    run = deploy ? await deploy() : await runAction(inputs(extra), { workspace });
  } finally {
    await sleep(3500);
  }
  const [short, long] = await Promise.all(lanes.map((l) => l.stop()));
  return { run: run! as T, load: await load.stop(), short: short!, long: long! };
}

type Deployed = Awaited<ReturnType<typeof deployUnderLoad<ActionRun>>>;

function describe(label: string, r: Deployed): string {
  const lanes = [r.short, r.long].map(
    (l) => `${l.getAnswers.length} ${l.ms / 1000} s GETs + ${l.postAnswers.length} POSTs, ${l.bad.length} failed`,
  );
  const line = `${label}: probe sent ${r.run.outputs.requests_sent}, lost ${r.run.outputs.requests_lost}; load sent ${r.load.sent}, failed ${r.load.failures.length} ${JSON.stringify(r.load.failures.slice(0, 5))}; witness ${lanes.join('; ')}`;
  console.log(line);
  return line;
}

function assertNothingLost(r: Deployed, line: string) {
  assert.equal(r.run.outputs.requests_lost, '0', `the probe lost nothing (${line})`);
  assert.ok(Number(r.run.outputs.requests_sent) > 0, 'the probe ran');
  assert.deepEqual(r.load.failures, [], `no load request failed (${line})`);
  assert.deepEqual(r.short.bad, [], 'every 1 s GET and POST comes back with 200 and its own body');
  assert.deepEqual(r.long.bad, [], 'every 3 s GET and POST comes back with 200 and its own body');
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

test('swarm: dry_run prints the pinned override and changes nothing', { timeout: 120_000 }, async () => {
  const before = (await sh(`ls /home/deploy/handoff/${project}/releases`)).trim();
  const r = await runAction(
    inputs({ dry_run: 'true', probe_url: '', env: inputs().env.replace('handoff-test-app:v1', 'handoff-test-app:v2') }),
    { workspace },
  );
  assert.equal(r.code, 0, r.log);
  const v2Id = (await sh(`docker image inspect -f '{{.Id}}' handoff-test-app:v2`)).trim();
  assert.ok(r.log.includes(`image: ${v2Id}`), 'the override pins v2 by ID');
  assert.match(r.log, /stop_signal: SIGCONT/);
  assert.equal((await sh(`ls /home/deploy/handoff/${project}/releases`)).trim(), before, 'no release left behind');
  assert.equal((await request(port)).headers['x-app-version'], 'v1');
});

test(
  'swarm: v1 -> v2 with keep-alive GETs, 1 s and 3 s GETs and POSTs in flight (app stopped by SIGKILL): nothing lost',
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
    const versions = new Set(r.short.getAnswers.flatMap((a) => (a instanceof Error ? [] : [String(a.headers['x-app-version'])])));
    assert.deepEqual([...versions].sort(), ['v1', 'v2'], '1 s requests were served by both versions');
    assert.equal((await request(port)).headers['x-app-version'], 'v2');
    const v2Id = (await sh(`docker image inspect -f '{{.Id}}' handoff-test-app:v2`)).trim();
    assert.equal(await stackImage('app'), v2Id, 'the service runs its image pinned by ID');
    // The release is recorded as for Compose: current, result, images.
    const dir = `/home/deploy/handoff/${project}`;
    assert.equal((await sh(`cat ${dir}/current`)).trim(), r.run.outputs.release_id);
    const manifest = JSON.parse(await sh(`cat ${dir}/releases/${r.run.outputs.release_id}/release.json`)) as {
      result: string;
      services: Record<string, { imageId: string }>;
    };
    assert.equal(manifest.result, 'success');
    assert.equal(manifest.services.app?.imageId, v2Id);
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

test(
  'swarm, control: a plain docker stack deploy of the same stack cuts 3 s requests (what the drain prevents)',
  { timeout: 300_000 },
  async () => {
    // Its own stack beside the test's, deployed twice by Swarm alone: the second update stops the v1
    // tasks with their own SIGKILL, 2 s after taking them out of DNS.
    const plain = `${project}-plain`;
    const dir = join(workspace, 'deploy');
    const deployPlain = (img: string) =>
      sh(
        `cd ${dir} && APP_IMAGE=${img} PROXY_PORT=${port} STOP_SIGNAL=SIGKILL docker stack deploy --resolve-image never -c stack.yaml ${plain} 2>&1`,
      );
    const waitSettled = async () => {
      for (let i = 0; i < 120; i++) {
        await sleep(1000);
        const state = (await sh(`docker service inspect -f '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' ${plain}_app`)).trim();
        const replicas = (await sh(`docker service ls --filter name=${plain}_app --format '{{.Replicas}}'`)).trim();
        if ((state === '' || state === 'completed') && replicas.startsWith('3/3')) return;
      }
      throw new Error('the plain stack did not settle');
    };
    // The test's own stack frees the port for the control's proxy.
    await sh(`docker stack rm ${project} >/dev/null`);
    try {
      await sleep(5000);
      await deployPlain('handoff-test-app:v1');
      await waitSettled();
      await waitServing(port, 'v1', 60_000);
      await sleep(3000);
      const r = await deployUnderLoad({}, async () => {
        await deployPlain('handoff-test-app:v2');
        await waitSettled();
      });
      console.log(
        `swarm control, plain docker stack deploy v1->v2: 3 s lane ${r.long.getAnswers.length + r.long.postAnswers.length} sent, ${r.long.bad.length} failed ${JSON.stringify(r.long.bad.slice(0, 4))}; 1 s lane ${r.short.bad.length} failed; load ${r.load.failures.length} failed`,
      );
      assert.ok(r.long.bad.length > 0, 'without the drain, 3 s requests in flight on the stopped tasks are cut');
    } finally {
      await sh(`docker stack rm ${plain} >/dev/null 2>&1 || true`);
    }
  },
);
