/**
 * Issue #15, migrations: `pre_deploy` runs once in a one-off container of the new release before any
 * replica changes (a failing one stops the deploy with the old version serving and nothing lost);
 * `post_deploy` runs after a successful rollout. Both show in the log, the timeline and the summary.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  cleanupProject,
  connectionInputs,
  freePort,
  projectContainers,
  runAction,
  sampleWorkspace,
  uniqueProject,
  visibleLog,
  type ActionRun,
} from './harness.js';
import { startLoad, type LoadResult } from './load.js';
import { containerVersion, sleep, waitServing } from './stacks/helpers.js';

const project = uniqueProject('hooks');
const port = freePort();
const nonce = Math.random().toString(36).slice(2, 10);
let workspace: string;

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

async function underLoad(version: string, extra: Record<string, string>): Promise<{ run: ActionRun; load: LoadResult }> {
  const load = startLoad({ port, rate: 40, maxDurationMs: 240_000 });
  await sleep(500);
  let run: ActionRun;
  try {
    run = await runAction(inputs(version, extra), { workspace });
  } finally {
    await sleep(500);
  }
  return { run: run!, load: await load.stop() };
}

async function appVersions(): Promise<string[]> {
  const app = (await projectContainers(project)).filter((c) => c.service === 'app' && c.state === 'running');
  return Promise.all(app.map((c) => containerVersion(c.id)));
}

/** How often `marker` is a line of the visible log (the command text itself never is: it computes the marker). */
const ranTimes = (run: ActionRun, marker: string) =>
  visibleLog(run.log)
    .split('\n')
    .filter((l) => l.trim() === marker).length;

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
  'a failing pre_deploy stops the deploy before any replica changes: v1 keeps serving, 0 lost, its output in the log',
  { timeout: 300_000 },
  async () => {
    const before = (await projectContainers(project)).map((c) => c.id).sort();
    const { run, load } = await underLoad('v2', {
      pre_deploy: `echo MIGRATE-$((40 + 2))-${nonce}; echo "relation already exists" >&2; exit 3`,
    });
    assert.notEqual(run.code, 0, 'the deploy fails');
    assert.equal(ranTimes(run, `MIGRATE-42-${nonce}`), 1, `the hook's output is in the log once:\n${run.log.slice(-3000)}`);
    assert.match(run.log, /pre_deploy failed in a one-off app container/);
    assert.match(run.log, /relation already exists/);
    assert.equal(load.failures.length, 0, `no request lost: ${JSON.stringify(load.failures.slice(0, 5))}`);
    assert.deepEqual(await appVersions(), ['v1', 'v1', 'v1'], 'the old version serves');
    assert.deepEqual((await projectContainers(project)).map((c) => c.id).sort(), before, 'no container changed, no one-off left behind');
  },
);

test(
  'a passing pre_deploy runs exactly once, before the first new replica; post_deploy after the rollout; both in the timeline',
  { timeout: 300_000 },
  async () => {
    const { run, load } = await underLoad('v2', {
      pre_deploy: `echo PRE-$((40 + 2))-${nonce}-$APP_VERSION`,
      post_deploy: `echo POST-$((40 + 2))-${nonce}`,
    });
    assert.equal(run.code, 0, `the deploy succeeds:\n${run.log.slice(-4000)}`);
    assert.equal(ranTimes(run, `PRE-42-${nonce}-v2`), 1, "pre_deploy ran once, in the new release's image");
    assert.equal(ranTimes(run, `POST-42-${nonce}`), 1, 'post_deploy ran once');
    const log = visibleLog(run.log);
    const pre = log.indexOf(`PRE-42-${nonce}`);
    const firstStart = log.indexOf('app: batch 1/');
    const post = log.indexOf(`POST-42-${nonce}`);
    assert.ok(pre >= 0 && firstStart > pre, 'pre_deploy ran before the first batch');
    assert.ok(post > log.lastIndexOf('app: batch 3/3'), 'post_deploy ran after the last batch');
    assert.match(run.summary, /pre_deploy ok/);
    assert.match(run.summary, /post_deploy ok/);
    assert.equal(run.outputs.requests_lost, '0');
    assert.equal(load.failures.length, 0, `no request lost: ${JSON.stringify(load.failures.slice(0, 5))}`);
    assert.deepEqual(await appVersions(), ['v2', 'v2', 'v2']);
    assert.equal((await projectContainers(project)).length, 4, 'three app replicas and the proxy: the one-off containers are gone');
  },
);
