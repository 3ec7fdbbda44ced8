/**
 * Issue #12: a network cut mid-deploy. Every SSH session of the bench's sshd is ended in the middle
 * of a batch, under load; the deploy reconnects and finishes (or rolls back on a fresh connection),
 * nothing is lost, the lock is freed, and a rerun right after converges without waiting. Then a
 * runner killed mid-batch, with the link cut again while its post step restores the stack.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import {
  cleanupProject,
  connectionInputs,
  cutSsh,
  freePort,
  projectContainers,
  runAction,
  sampleWorkspace,
  uniqueProject,
  type ActionRun,
  type RunOptions,
} from './harness.js';
import { startLoad, type LoadResult } from './load.js';
import { containerVersion, sleep, waitServing } from './stacks/helpers.js';

const project = uniqueProject('cut');
const port = freePort();
let workspace: string;
const lockDir = `/home/deploy/handoff/${project}/lock`;

const inputs = (version: string, extra: Record<string, string> = {}) => ({
  ...connectionInputs(),
  project,
  compose_files: 'deploy/compose.yaml',
  files: 'deploy/haproxy/',
  env: `PROXY_PORT=${port}\nAPP_IMAGE=handoff-test-app:${version}`,
  pull: 'never',
  keep_releases: '20',
  probe_url: `http://127.0.0.1:${port}/`,
  ...extra,
});

async function underLoad(version: string, options: Omit<RunOptions, 'workspace'>): Promise<{ run: ActionRun; load: LoadResult }> {
  const load = startLoad({ port, rate: 40, maxDurationMs: 300_000 });
  await sleep(500);
  let run: ActionRun;
  try {
    run = await runAction(inputs(version), { workspace, ...options });
  } finally {
    await sleep(500);
  }
  return { run: run!, load: await load.stop() };
}

function describeFailures(load: LoadResult): string {
  return `${load.failures.length} of ${load.sent} requests failed: ${JSON.stringify(load.failures.slice(0, 10))}`;
}

/** The project's containers: every one running, `app` exactly `replicas` of `version`, one proxy. */
async function assertConverged(version: string, replicas = 3): Promise<void> {
  const all = await projectContainers(project);
  const notRunning = all.filter((c) => c.state !== 'running');
  assert.deepEqual(
    notRunning.map((c) => `${c.name} ${c.state}`),
    [],
    'nothing left over from the interrupted batch',
  );
  const app = all.filter((c) => c.service === 'app');
  assert.equal(app.length, replicas, `exactly ${replicas} app replicas: ${app.map((c) => c.name).join(', ')}`);
  const versions = await Promise.all(app.map((c) => containerVersion(c.id)));
  assert.deepEqual(versions, Array(replicas).fill(version), `every replica runs ${version}`);
  assert.equal(all.filter((c) => c.service === 'proxy').length, 1, 'one proxy');
}

before(async () => {
  workspace = await sampleWorkspace();
  const first = await runAction(inputs('v1', { probe_url: '' }), { workspace });
  assert.equal(first.code, 0, `the v1 deploy succeeds:\n${first.log}`);
  await waitServing(port, 'v1');
});

after(async () => {
  await cleanupProject(project);
});

test(
  'every SSH connection cut in the middle of a batch: the deploy reconnects, 0 lost, the lock is freed, a rerun converges at once',
  { timeout: 600_000 },
  async () => {
    let cut = 0;
    let cutAt = '';
    const { run, load } = await underLoad('v2', {
      onLog: (chunk) => {
        if (cut === 0 && /app: batch 2\/3: starting/.test(chunk)) {
          cut = -1;
          cutAt = chunk.trim().split('\n')[0]!;
          void cutSsh().then((n) => (cut = n));
        }
      },
    });
    assert.ok(cut > 0, `the test cut live SSH sessions (${cut}) at "${cutAt}"`);
    assert.match(run.log, /reconnected to the host after/, `the action reconnected:\n${run.log.slice(-4000)}`);
    assert.equal(load.failures.length, 0, `no request lost by the independent clients: ${describeFailures(load)}`);
    assert.equal(run.outputs.requests_lost, '0', `the probe lost nothing:\n${run.log.slice(-3000)}`);
    // Either outcome is a consistent stack: the deploy went on where it was, or (a step that could
    // not be repeated) it rolled back to v1 on the fresh connection.
    const finished = run.code === 0;
    console.log(`cut ${cut} sessions at "${cutAt}": the deploy ${finished ? 'finished after reconnecting' : 'rolled back'}`);
    if (finished) await assertConverged('v2');
    else {
      assert.match(run.log, /Rollback to/, `a failed deploy rolled back:\n${run.log.slice(-4000)}`);
      await assertConverged('v1');
    }
    assert.ok(!existsSync(lockDir), 'the deploy lock is freed');

    const started = Date.now();
    const rerun = await runAction(inputs('v2'), { workspace });
    assert.equal(rerun.code, 0, `the rerun succeeds:\n${rerun.log}`);
    assert.doesNotMatch(rerun.log, /waiting for the deploy lock/, 'the rerun did not wait for a lock');
    assert.ok(Date.now() - started < 180_000, `the rerun took ${Math.round((Date.now() - started) / 1000)} s`);
    await assertConverged('v2');
  },
);

test(
  'a runner killed mid-batch, the link cut again while its post step restores: the post step reconnects and finishes',
  { timeout: 600_000 },
  async () => {
    let postCut = 0;
    const { run, load } = await underLoad('v1', {
      killWhen: (log) => /app: batch 2\/3: starting/.test(log),
      onPostLog: (chunk) => {
        // In the middle of the restore: the rollback's own rollout has begun. Its first batch may
        // only remove a replica (a kill after the next batch's replica was made ahead leaves 4):
        // then it says "took", not "starting", and the cut lands before its second batch.
        if (postCut === 0 && /app: batch 1\/\d+: (starting|took)/.test(chunk)) {
          postCut = -1;
          void cutSsh().then((n) => (postCut = n));
        }
      },
    });
    assert.notEqual(run.code, 0, 'the main step was killed');
    assert.ok(run.state.deploy, 'the main step left what the post step must finish in its saved state');
    assert.ok(postCut > 0, `the test cut the post step's SSH sessions (${postCut}):\n${run.postLog.slice(-4000)}`);
    assert.match(run.postLog, /reconnected to the host after/, `the post step reconnected:\n${run.postLog.slice(-4000)}`);
    assert.match(run.postLog, /serves again/, `the post step restored the previous release:\n${run.postLog.slice(-4000)}`);
    assert.match(run.postLog, /released the deploy lock/, 'and released the lock');
    assert.equal(load.failures.length, 0, `no request lost: ${describeFailures(load)}`);
    await assertConverged('v2');
    assert.ok(!existsSync(lockDir), 'the deploy lock is freed');

    const rerun = await runAction(inputs('v1'), { workspace });
    assert.equal(rerun.code, 0, `the rerun succeeds:\n${rerun.log}`);
    assert.doesNotMatch(rerun.log, /waiting for the deploy lock/, 'the rerun did not wait for a lock');
    await assertConverged('v1');
  },
);
