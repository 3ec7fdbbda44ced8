/**
 * Issue #4 acceptance: HAProxy integration through the bundled action, on the sample stack.
 * One stack for the whole file, in order: v1, then v2 with slow GETs and POSTs in flight on the
 * draining replicas, then v3 into the maint-slot trap, then a broken proxy config (refused, nothing
 * changes), then a valid config change (reloaded without loss).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  appImage,
  cleanupProject,
  connectionInputs,
  freePort,
  projectContainers,
  runAction,
  sampleWorkspace,
  mainPassOnly,
  sh,
  uniqueProject,
  type ActionRun,
} from './harness.js';
import { startLoad, type LoadResult } from './load.js';
import {
  adminSocket,
  haproxy,
  request,
  serversState,
  serviceIps,
  sleep,
  summaryTimeline,
  waitServing,
  type RawAnswer,
} from './stacks/helpers.js';

const project = uniqueProject('proxy');
const port = freePort();
const v3Tag = `handoff-test-app:proxy-v3-${process.pid}`;
let workspace: string;
let cfgPath: string;
let originalCfg: string;
let image = 'handoff-test-app:v1';

const inputs = (extra: Record<string, string> = {}) => ({
  ...connectionInputs(),
  project,
  compose_files: 'deploy/compose.yaml',
  files: 'deploy/haproxy/',
  env: `PROXY_PORT=${port}\nAPP_IMAGE=${image}`,
  pull: 'never',
  keep_releases: '20',
  probe_url: `http://127.0.0.1:${port}/`,
  ...extra,
});

function describeFailures(load: LoadResult): string {
  return `${load.failures.length} of ${load.sent} requests failed: ${JSON.stringify(load.failures.slice(0, 10))}`;
}

async function deployUnderLoad(
  options: { paths?: string[]; postEvery?: number; onLog?: (c: string) => void } = {},
): Promise<{ run: ActionRun; load: LoadResult }> {
  const load = startLoad({ port, rate: 40, maxDurationMs: 240_000, paths: options.paths, postEvery: options.postEvery });
  await sleep(500);
  let run: ActionRun;
  try {
    run = await runAction(inputs(), { workspace, onLog: options.onLog });
  } finally {
    await sleep(500);
  }
  return { run: run!, load: await load.stop() };
}

const liveCfg = () => sh(`cat /home/deploy/handoff/${project}/app/deploy/haproxy/haproxy.cfg`);

before(async () => {
  workspace = await sampleWorkspace();
  cfgPath = join(workspace, 'deploy/haproxy/haproxy.cfg');
  originalCfg = await readFile(cfgPath, 'utf8');
  // No probe on the very first deploy: nothing serves before it.
  const first = await runAction(inputs({ probe_url: '' }), { workspace });
  assert.equal(first.code, 0, `the v1 deploy succeeds:\n${first.log}`);
  await waitServing(port, 'v1');
});

after(async () => {
  await cleanupProject(project);
  await sh(`docker rmi -f ${v3Tag} >/dev/null 2>&1 || true`);
});

test('slow GETs and POSTs in flight on the draining replicas all complete; nothing lost on either lane', { timeout: 420_000 }, async () => {
  // The witness lane of its own: a 1 s GET every 150 ms and a POST with a body every 150 ms,
  // alternating keep-alive and fresh connections, each recorded with its start/end time and answer.
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const slow: Array<Promise<RawAnswer | Error>> = [];
  const posts: Array<{ body: string; answer: Promise<RawAnswer | Error> }> = [];
  let drainAt = 0;
  let stopped = false;
  let i = 0;
  const lane = (async () => {
    const deadline = Date.now() + 240_000;
    while (!stopped && Date.now() < deadline) {
      const agent = i % 2 === 0 ? keepAlive : false;
      slow.push(request(port, { path: '/slow?ms=1000', agent }).catch((e: Error) => e));
      const body = `body-${i}-${'y'.repeat(1000 + (i % 500))}`;
      posts.push({ body, answer: request(port, { path: '/echo', method: 'POST', body, agent }).catch((e: Error) => e) });
      i++;
      await sleep(150);
    }
  })();

  image = 'handoff-test-app:v2';
  const { run, load } = await deployUnderLoad({
    paths: ['/', '/slow?ms=1000'],
    postEvery: 3,
    onLog: (c) => {
      if (!drainAt && /HAProxy: draining app replica/.test(c)) drainAt = Date.now();
    },
  });
  stopped = true;
  await lane;
  const slowAnswers = await Promise.all(slow);
  const postAnswers = await Promise.all(posts.map(async (p) => ({ body: p.body, answer: await p.answer })));
  keepAlive.destroy();

  assert.equal(run.code, 0, `the v2 deploy succeeds:\n${run.log}`);
  assert.equal(load.failures.length, 0, describeFailures(load));
  assert.equal(run.outputs.requests_lost, '0', 'the probe lost nothing');

  const badSlow = slowAnswers.filter((a) => a instanceof Error || a.status !== 200 || !/slow=1000/.test(a.body));
  assert.deepEqual(
    badSlow.map((a) => (a instanceof Error ? a.message : `${a.status} ${a.body.slice(0, 80)}`)),
    [],
    `every 1 s GET completes with 200 (${slowAnswers.length} sent)`,
  );
  const badPosts = postAnswers.filter((p) => p.answer instanceof Error || p.answer.status !== 200 || p.answer.body !== p.body);
  assert.deepEqual(
    badPosts.map((p) =>
      p.answer instanceof Error ? p.answer.message : `${p.answer.status} body ${p.answer.body === p.body ? 'ok' : 'differs'}`,
    ),
    [],
    `every POST comes back with 200 and its own body (${postAnswers.length} sent)`,
  );

  // They really were in flight on replicas being drained: v1 answers to slow GETs that were sent
  // before the first drain started and finished after it.
  assert.ok(drainAt > 0, 'the log shows a replica drained through HAProxy');
  const overlapping = slowAnswers.filter(
    (a): a is RawAnswer => !(a instanceof Error) && a.headers['x-app-version'] === 'v1' && a.start < drainAt && a.end > drainAt,
  );
  assert.ok(overlapping.length > 0, 'some slow v1 requests were in flight when the drain began, and completed');
  assert.ok(
    summaryTimeline(run.summary).some((e) => e.action === 'drained' && e.service === 'app'),
    'the timeline shows drained replicas',
  );
});

// HAProxy's side (drain, slots, config check, reload) does not depend on the Compose flavor, and
// Compose v1's rollout under load is test/e2e/v1/rollout.test.ts: this file has no v1 pass (CI time).
mainPassOnly(
  'the maint-slot trap: every slot put in maint by hand, the rollout still ends with every new replica UP',
  { timeout: 420_000 },
  async () => {
    const sock = adminSocket(project);
    const before = await serversState(sock);
    assert.ok(before.length >= 6, `the app backend has its server-template slots (${before.length})`);
    for (const s of before) {
      const answer = await haproxy(sock, `set server ${s.backend}/${s.server} state maint`);
      assert.equal(answer.trim(), '', `set ${s.server} maint: ${answer}`);
    }
    const trapped = await serversState(sock);
    assert.ok(
      trapped.every((s) => (s.adminState & 0x01) === 1),
      'every slot is in forced maintenance',
    );

    await appImage(v3Tag, 'v3');
    image = v3Tag;
    // No probe here: with every slot in maint the proxy answers 503 until the first new replica is UP.
    const run = await runAction(inputs({ probe_url: '' }), { workspace });
    assert.equal(run.code, 0, `the v3 deploy succeeds despite the trap:\n${run.log}`);
    assert.match(run.log, /in maintenance[^\n]*setting it ready/, 'the action saw a new replica land in a maint slot and put it back');

    const ips = [...(await serviceIps(project, 'app')).values()];
    assert.equal(ips.length, 3, 'three new replicas run');
    const after = await serversState(sock);
    for (const ip of ips) {
      const slot = after.find((s) => s.addr === ip);
      assert.ok(slot, `replica ${ip} holds a slot: ${JSON.stringify(after)}`);
      assert.equal(slot.opState, 2, `replica ${ip} is UP in ${slot.server}: ${JSON.stringify(slot)}`);
      assert.equal(slot.adminState & 0x19, 0, `slot ${slot.server} of ${ip} is not in forced maint or drain: ${JSON.stringify(slot)}`);
    }
    await waitServing(port, 'v3', 10_000);
    // Served by all three, not only one lucky slot. Not necessarily within the first few requests:
    // HAProxy's roundrobin (fwrr, 2.6) works in windows of the backend's total weight (3 replicas x 16 =
    // 48 picks) and keeps the current window across state changes. The trap takes the backend to 0
    // usable servers in the middle of a window left by the earlier traffic, and no request passes during
    // this deploy; the first replica set ready then brings only 16 of the stale window's 48, and when 16
    // or more of that window's picks were already used, HAProxy queues it for the *next* window
    // (lb_fwrr.c fwrr_set_server_status_up/fwrr_queue_srv: npos >= curr_weight + next_weight) while the
    // two replicas set ready after it share what is left of the current one: 12 to 21 requests
    // alternating between two UP servers before the third gets its first (issue #10: 6/6 in 12, all
    // three slots UP, weight 1). It depends only on how many requests the backend served before the
    // trap (the earlier tests' load), not on time, Docker's IP reuse, threads or keep-alive (every
    // request here is a fresh connection). Reproduced on the bench: 20 requests served before the trap
    // -> the first replica set ready got the 20th request after the deploy, 26 -> the 16th, 10 -> the
    // first three went to the three. So: one full window to reach all three, then a fair share.
    const window = 48;
    const servedBy = new Map<string, number>();
    const sequence: string[] = [];
    for (let k = 0; k < window && servedBy.size < 3; k++) {
      const by = (await request(port)).headers['x-served-by'] as string;
      servedBy.set(by, (servedBy.get(by) ?? 0) + 1);
      sequence.push(by);
    }
    if (sequence.length > 3)
      console.log(
        `maint-slot trap: the third replica first answered after ${sequence.length} requests (HAProxy's roundrobin window, see above): ${sequence.join(' ')}`,
      );
    // On failure, the proxy's own view at that moment (slots, addresses, states) says why.
    const stateNow = async () =>
      `${JSON.stringify(await serversState(sock))}; show stat: ${(await haproxy(sock, 'show stat'))
        .split('\n')
        .filter((l) => l.startsWith('app,'))
        .map((l) => l.split(',').slice(0, 20).join(','))
        .join(' | ')}`;
    const state = servedBy.size === 3 ? '' : await stateNow();
    assert.equal(
      servedBy.size,
      3,
      `the proxy sends each of the three new replicas a request within one roundrobin window (${window}): ${JSON.stringify([...servedBy])}; replicas ${JSON.stringify(ips)}; servers state ${state}`,
    );
    // From then on, plain round robin: 12 more requests, 4 each (give or take one).
    const share = new Map<string, number>();
    for (let k = 0; k < 12; k++) {
      const by = (await request(port)).headers['x-served-by'] as string;
      share.set(by, (share.get(by) ?? 0) + 1);
    }
    const even = share.size === 3 && [...share.values()].every((n) => n >= 3 && n <= 5);
    assert.ok(even, `then the three share the traffic: ${JSON.stringify([...share])}; servers state ${even ? '' : await stateNow()}`);
  },
);

mainPassOnly(
  "a broken proxy config fails the deploy with HAProxy's own error; the running proxy and live config are untouched",
  { timeout: 300_000 },
  async () => {
    const liveBefore = await liveCfg();
    const containersBefore = (await projectContainers(project)).map((c) => c.id).sort();
    await writeFile(cfgPath, originalCfg.replace('backend app\n', 'backend app\n    bogus-handoff-directive on\n'));
    try {
      const { run, load } = await deployUnderLoad();
      assert.notEqual(run.code, 0, 'the deploy fails');
      assert.match(run.log, /bogus-handoff-directive/, "HAProxy's error names the bad line");
      assert.match(run.log, /unknown keyword|ALERT|parsing/i, "HAProxy's own error text is in the log");
      assert.equal(load.failures.length, 0, `the running proxy kept serving: ${describeFailures(load)}`);
      assert.deepEqual([...load.versions.keys()], ['v3'], 'the previous version served throughout');
    } finally {
      await writeFile(cfgPath, originalCfg);
    }
    assert.equal(await liveCfg(), liveBefore, 'the live app/ config is unchanged');
    assert.deepEqual((await projectContainers(project)).map((c) => c.id).sort(), containersBefore, 'no container changed');
    const r = await request(port);
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-app-version'], 'v3');
  },
);

mainPassOnly('a valid proxy config change is live after the deploy and the reload loses nothing', { timeout: 300_000 }, async () => {
  const containersBefore = (await projectContainers(project)).map((c) => c.id).sort();
  assert.equal((await request(port)).headers['x-handoff-test'], undefined, 'the header is not there yet');
  const changed = originalCfg.replace(
    '    default_backend app\n',
    '    default_backend app\n    http-response set-header X-Handoff-Test yes\n',
  );
  assert.notEqual(changed, originalCfg, 'the frontend was edited');
  await writeFile(cfgPath, changed);
  try {
    const { run, load } = await deployUnderLoad();
    assert.equal(run.code, 0, `the deploy succeeds:\n${run.log}`);
    assert.equal(
      load.failures.length,
      0,
      `nothing lost during the reload: ${describeFailures(load)}. Suspected product bug: after USR2 the new HAProxy worker starts with every server-template slot empty (init-addr none) and answers 503 until DNS resolves and checks pass; keep slot addresses/states across the reload (server-state-file + load-server-state-from-file + init-addr last,none, state dumped by src/haproxy/reload.ts before the signal)`,
    );
    assert.equal(run.outputs.requests_lost, '0', 'the probe lost nothing');
    assert.ok(
      summaryTimeline(run.summary).some((e) => e.action === 'proxy-reload'),
      'the timeline shows the reload',
    );
    assert.equal(await liveCfg(), changed, 'the live config is the new one');
    const r = await request(port);
    assert.equal(r.status, 200);
    assert.equal(r.headers['x-handoff-test'], 'yes', 'the new header is live');
    assert.deepEqual(
      (await projectContainers(project)).map((c) => c.id).sort(),
      containersBefore,
      'reloaded in place: no container replaced',
    );
  } finally {
    await writeFile(cfgPath, originalCfg);
  }
});
