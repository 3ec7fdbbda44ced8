/**
 * Issue #18, a swarm of two nodes (scripts/bench/swarm-nodes.sh): manager h3 (10.78.0.13), worker h4
 * (10.78.0.14), each its own network namespace, engine and sshd. The stack of examples/swarm/ with
 * four app tasks spread over both nodes (stopped by SIGKILL) and the proxy on the manager:
 * 1. without swarm_nodes, or with a node that does not answer, the deploy is refused before any change;
 * 2. v1 -> v2 with swarm_nodes: h4 under keep-alive GETs, 1 s GETs and 1 s POSTs: nothing lost, and
 *    old tasks on h4 drained by the watcher on h4 before they stopped.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { cp, mkdtemp, readFile, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repo, runAction, sh, uniqueProject, type ActionRun } from './harness.js';
import { startLoad } from './load.js';
import { request, sleep, summaryTimeline, type RawAnswer } from './stacks/helpers.js';

const MANAGER = { name: 'h3', ip: '10.78.0.13' };
const WORKER = { name: 'h4', ip: '10.78.0.14' };
const project = uniqueProject('swarm-nodes');
// The proxy's port on h3's own network namespace (nothing else listens there).
const port = 18093;
const managerDocker = 'DOCKER_HOST=unix:///var/lib/handoff-hosts/h3/docker.sock docker';
let workspace: string;
let image = 'handoff-test-app:v1';

interface HostFacts {
  name: string;
  host: string;
  knownHosts: string;
}

async function knownHosts(): Promise<string> {
  const hosts = JSON.parse(await readFile(join(repo, '.bench/hosts.json'), 'utf8')) as HostFacts[];
  const texts = await Promise.all(
    [MANAGER, WORKER].map(async (h) => {
      const facts = hosts.find((x) => x.name === h.name);
      assert.ok(facts, `${h.name} is in .bench/hosts.json`);
      return readFile(facts.knownHosts, 'utf8');
    }),
  );
  return texts.join('');
}

let pins = '';
const inputs = (extra: Record<string, string> = {}) => ({
  host: MANAGER.ip,
  port: '22',
  username: 'deploy',
  key: '',
  known_hosts: pins,
  target: 'swarm',
  swarm_nodes: WORKER.ip,
  project,
  compose_files: 'deploy/stack.yaml',
  files: 'deploy/haproxy/',
  env: `PROXY_PORT=${port}\nAPP_IMAGE=${image}\nSTOP_SIGNAL=SIGKILL`,
  pull: 'never',
  probe_url: `http://${MANAGER.ip}:${port}/`,
  ...extra,
});
let key = '';
const run = (extra: Record<string, string> = {}) => runAction({ ...inputs(extra), key }, { workspace });

/** A lane of 1 s GETs and POSTs every `everyMs`, alternating keep-alive and fresh connections. */
function witnessLane(everyMs: number) {
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 32 });
  const answers: Array<Promise<{ body?: string; answer: RawAnswer | Error }>> = [];
  let stopped = false;
  const lane = (async () => {
    const deadline = Date.now() + 180_000;
    for (let i = 0; !stopped && Date.now() < deadline; i++) {
      const agent: http.Agent | false = i % 2 === 0 ? keepAlive : false;
      const at = { host: MANAGER.ip, agent, timeoutMs: 6000 };
      answers.push(
        request(port, { ...at, path: '/slow?ms=1000' }).then(
          (answer) => ({ answer }),
          (e: Error) => ({ answer: e }),
        ),
      );
      const body = `body-${i}-${'y'.repeat(1000 + (i % 500))}`;
      answers.push(
        request(port, { ...at, path: '/echo?ms=1000', method: 'POST', body }).then(
          (answer) => ({ body, answer }),
          (e: Error) => ({ body, answer: e }),
        ),
      );
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await lane;
      const all = await Promise.all(answers);
      keepAlive.destroy();
      const bad = all.filter(
        ({ body, answer: a }) =>
          a instanceof Error || a.status !== 200 || (body !== undefined ? a.body !== body : !/slow=1000/.test(a.body)),
      );
      return { sent: all.length, bad: bad.map(({ answer: a }) => (a instanceof Error ? a.message : `${a.status} ${a.body.slice(0, 60)}`)) };
    },
  };
}

/** Which node runs each running task of the app service: node name per task. */
async function appTaskNodes(): Promise<string[]> {
  const text = await sh(`${managerDocker} service ps --filter desired-state=running --format '{{.Node}}' ${project}_app`);
  return text.split('\n').filter(Boolean);
}

async function waitServing(version: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const r = await request(port, { host: MANAGER.ip, timeoutMs: 3000 }).catch((e: Error) => e);
    if (!(r instanceof Error) && r.status === 200 && r.headers['x-app-version'] === version) return;
    last = r instanceof Error ? r.message : `${r.status} ${String(r.headers['x-app-version'])}`;
    await sleep(300);
  }
  assert.fail(`${MANAGER.ip}:${port} did not serve ${version} within ${timeoutMs} ms (last: ${last})`);
}

before(async () => {
  await sh(`bash ${join(repo, 'scripts/bench/swarm-nodes.sh')} up`, 300_000);
  pins = await knownHosts();
  const bench = JSON.parse(await readFile(join(repo, '.bench/bench.json'), 'utf8')) as { keys: { ed25519: string } };
  key = await readFile(bench.keys.ed25519, 'utf8');
  workspace = await mkdtemp(join(tmpdir(), 'handoff-ws-swarm-nodes-'));
  await mkdir(join(workspace, 'deploy'));
  await cp(join(repo, 'examples/swarm'), join(workspace, 'deploy'), { recursive: true });
  // Four app tasks (Swarm spreads them, two a node) and the proxy on the manager, where the test reaches it.
  const stack = (await readFile(join(workspace, 'deploy/stack.yaml'), 'utf8'))
    .replace('replicas: 3', 'replicas: 4')
    .replace(/(\n {2}proxy:\n {4}image: .*\n)/, '$1    deploy:\n      placement:\n        constraints: [node.role == manager]\n');
  assert.match(stack, /constraints: \[node.role == manager\]/);
  await writeFile(join(workspace, 'deploy/stack.yaml'), stack);
  const first = await run({ probe_url: '' });
  assert.equal(first.code, 0, `the v1 deploy succeeds:\n${first.log}`);
  await waitServing('v1', 60_000);
});

after(async () => {
  await sh(`${managerDocker} stack rm ${project} >/dev/null 2>&1 || true`);
  await sh(`rm -rf /var/lib/handoff-hosts/h3/home/handoff/${project} /var/lib/handoff-hosts/h4/home/handoff/${project}`);
});

test(
  'swarm nodes: a deploy without the worker, or with a node that does not answer, is refused before any change',
  { timeout: 180_000 },
  async () => {
    const before = await sh(`${managerDocker} service inspect -f '{{.Version.Index}}' ${project}_app`);
    const nodes = await appTaskNodes();
    assert.ok(nodes.includes(WORKER.name), `app tasks run on ${WORKER.name} (${nodes.join(', ')})`);
    image = 'handoff-test-app:v2';
    try {
      const without = await run({ swarm_nodes: '', probe_url: '' });
      assert.notEqual(without.code, 0, 'refused without swarm_nodes');
      assert.match(without.log, /input 'swarm_nodes': tasks of app on h4 run on nodes handoff does not reach/);
      const closed = await run({ swarm_nodes: `${WORKER.ip}:2`, probe_url: '' });
      assert.notEqual(closed.code, 0, 'refused with a node that does not answer');
      assert.match(closed.log, /input 'swarm_nodes': node 1 of swarm_nodes \(port 2\): cannot connect/);
    } finally {
      image = 'handoff-test-app:v1';
    }
    assert.equal(
      await sh(`${managerDocker} service inspect -f '{{.Version.Index}}' ${project}_app`),
      before,
      'the service was not touched',
    );
    await waitServing('v1', 5000);
  },
);

test(
  'swarm nodes: v1 -> v2 over both nodes under keep-alive GETs and 1 s GETs and POSTs (app stopped by SIGKILL): nothing lost, tasks on the worker drained',
  { timeout: 420_000 },
  async () => {
    image = 'handoff-test-app:v2';
    const load = startLoad({ host: MANAGER.ip, port, rate: 40, maxDurationMs: 180_000, paths: ['/', '/slow?ms=1000'], postEvery: 3 });
    const lane = witnessLane(150);
    await sleep(500);
    let r: ActionRun;
    try {
      r = await run();
    } finally {
      await sleep(3000);
    }
    const witness = await lane.stop();
    const l = await load.stop();
    const line = `swarm nodes v1->v2: probe sent ${r.outputs.requests_sent}, lost ${r.outputs.requests_lost}; load sent ${l.sent}, failed ${l.failures.length} ${JSON.stringify(l.failures.slice(0, 5))}; 1 s lane sent ${witness.sent}, failed ${witness.bad.length} ${JSON.stringify(witness.bad.slice(0, 4))}`;
    console.log(line);
    const drained = summaryTimeline(r.summary).filter((e) => e.action === 'drained');
    console.log(drained.map((e) => `drained ${e.container}: ${e.detail}`).join('\n'));
    assert.equal(r.code, 0, `the v2 deploy succeeds:\n${r.log}\n${r.summary}`);
    assert.equal(r.outputs.requests_lost, '0', line);
    assert.ok(Number(r.outputs.requests_sent) > 0, 'the probe ran');
    assert.deepEqual(l.failures, [], line);
    assert.deepEqual(witness.bad, [], line);
    // Four old tasks, and any task Swarm replaced on its own meanwhile (e.g. a health check late on a busy machine).
    assert.ok(drained.length >= 4, `the four old tasks drained:\n${r.summary}`);
    assert.deepEqual(
      drained.filter((e) => /timeout/.test(e.detail)),
      [],
      'none by drain_timeout',
    );
    const onWorker = drained.filter((e) => e.detail.endsWith(`on node ${WORKER.name}`));
    assert.ok(onWorker.length > 0, `a task on ${WORKER.name} was drained by its watcher:\n${r.summary}`);
    // The drained container was h4's: its engine knows it, the manager's does not.
    const container = onWorker[0]!.container;
    assert.match(await sh(`DOCKER_HOST=unix:///var/lib/handoff-hosts/h4/docker.sock docker ps -aq --filter id=${container}`), /\w/);
    assert.equal((await sh(`${managerDocker} ps -aq --filter id=${container}`)).trim(), '');
    const nodes = await appTaskNodes();
    assert.deepEqual([...new Set(nodes)].sort(), [MANAGER.name, WORKER.name], `v2 runs on both nodes (${nodes.join(', ')})`);
    await waitServing('v2', 5000);
  },
);
