/**
 * Issue #12 acceptance: a bad link between the runner and the host does not fail the deploy.
 * The SSH connection goes through a user-space proxy (stall-proxy.ts) that stalls all traffic for
 * seconds at a time; the probe and the independent load loop talk to HAProxy directly, so they
 * measure the stack, not the link.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bench,
  cleanupProject,
  connectionInputs,
  freePort,
  projectContainers,
  runAction,
  sampleWorkspace,
  uniqueProject,
  type ActionRun,
} from './harness.js';
import { get, startLoad, type LoadResult } from './load.js';
import { containerVersion, waitServing } from './stacks/helpers.js';
import { startStallProxy, type StallProxy } from './stall-proxy.js';

const project = uniqueProject('network');
const port = freePort();
let workspace: string;

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

/** The same host through the proxy: known_hosts names the host by [host]:port, so the port changes with it. */
function throughProxy(proxy: StallProxy): Record<string, string> {
  const b = bench();
  const direct = connectionInputs(b);
  const name = `[${b.host}]:${b.port}`;
  assert.ok(direct.known_hosts!.includes(name), `the bench known_hosts names ${name}`);
  return { host: '127.0.0.1', port: String(proxy.port), known_hosts: direct.known_hosts!.split(name).join(`[127.0.0.1]:${proxy.port}`) };
}

function describeFailures(load: LoadResult): string {
  return `${load.failures.length} of ${load.sent} requests failed: ${JSON.stringify(load.failures.slice(0, 10))}`;
}

before(async () => {
  workspace = await sampleWorkspace();
});

after(async () => {
  await cleanupProject(project);
});

test('a link that stalls for a few seconds at a time does not fail the deploy', { timeout: 480_000 }, async () => {
  // No probe on the very first deploy: nothing serves before it.
  const first = await runAction({ ...inputs('APP_IMAGE=handoff-test-app:v1'), probe_url: '' }, { workspace });
  assert.equal(first.code, 0, `the v1 deploy succeeds:\n${first.log}`);
  await waitServing(port, 'v1');

  // 3 s of silence every 8 s, for longer than the deploy takes; close() ends it in any case.
  const proxy = await startStallProxy({ everyMs: 8_000, pauseMs: 3_000, durationMs: 300_000 });
  const load = startLoad({ port, rate: 40, maxDurationMs: 360_000 });
  let run: ActionRun;
  let loadResult: LoadResult;
  const t0 = Date.now();
  try {
    await new Promise((r) => setTimeout(r, 500));
    run = await runAction({ ...inputs('APP_IMAGE=handoff-test-app:v2'), ...throughProxy(proxy) }, { workspace });
    await new Promise((r) => setTimeout(r, 500));
  } finally {
    loadResult = await load.stop();
    await proxy.close();
  }
  const seconds = ((Date.now() - t0) / 1000).toFixed(1);
  const s = proxy.stats;
  const report =
    `deploy+post ${seconds} s; proxy: ${s.connections} connection(s), ${s.bytesUp} B up, ${s.bytesDown} B down, ` +
    `${s.pauses.length} pause(s), ${proxy.effectivePauses} with a connection open, held ${s.pauses.map((p) => p.heldBytes).join('/')} B; ` +
    `probe: ${run!.outputs.requests_sent} sent, ${run!.outputs.requests_lost} lost; load: ${loadResult.sent} sent, ${loadResult.failures.length} failed`;
  console.log(report);

  assert.equal(run!.code, 0, `the v2 deploy through the stalling link succeeds (${report}):\n${run!.log}`);
  // The link really stalled under the deploy, and the deploy really went through it.
  assert.ok(s.connections > 0 && s.bytesUp > 0 && s.bytesDown > 0, `the action's SSH traffic went through the proxy: ${report}`);
  assert.ok(proxy.effectivePauses > 0, `the link stalled while the action was connected: ${report}`);
  assert.ok(
    s.pauses.some((p) => p.heldBytes > 0),
    `traffic waited out a stall: ${report}`,
  );

  assert.equal(run!.outputs.requests_lost, '0', `the probe lost nothing: ${report}`);
  assert.ok(Number(run!.outputs.requests_sent) > 0, 'the probe sent requests');
  assert.equal(loadResult.failures.length, 0, describeFailures(loadResult));
  assert.ok(loadResult.sent > 100, `the load loop ran during the deploy (${loadResult.sent} requests)`);
  assert.deepEqual([...new Set(loadResult.sequence.slice(-20))], ['v2'], 'the last answers of the loop are all v2');

  const answer = await get(port);
  assert.equal(answer.status, 200);
  assert.equal(answer.version, 'v2');
  const running = (await projectContainers(project)).filter((c) => c.service === 'app' && c.state === 'running');
  assert.deepEqual(await Promise.all(running.map((c) => containerVersion(c.id))), ['v2', 'v2', 'v2'], 'all three replicas run v2');
});
