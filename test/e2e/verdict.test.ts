/**
 * Issue #10 acceptance, a verdict users can trust:
 * - a correct rollout while two busy loops saturate both cores passes with 0 lost; the prober's
 *   lag shows in the summary instead of turning into losses;
 * - the long-request lane (probe_slow_url) sees responses cut when replicas are stopped by SIGKILL
 *   without a drain (degraded mode), and loses nothing when HAProxy drains them first.
 * (The lossy deploy that must still fail is in probe.test.ts.)
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanupProject, connectionInputs, freePort, runAction, sampleWorkspace, uniqueProject, type ActionRun } from './harness.js';

const projects: string[] = [];
const busy: ChildProcess[] = [];
after(async () => {
  for (const b of busy) b.kill('SIGKILL');
  for (const p of projects) await cleanupProject(p);
});

interface Records {
  records: Array<{ lane: string; outcome: string; scheduledAt: number; sentAt?: number }>;
}

async function deploy(
  workspace: string,
  port: number,
  project: string,
  version: string,
  extra: Record<string, string> = {},
): Promise<ActionRun> {
  return runAction(
    {
      ...connectionInputs(),
      project,
      compose_files: 'deploy/compose.yaml',
      files: 'deploy/haproxy/',
      pull: 'never',
      keep_releases: '20',
      env: `PROXY_PORT=${port}\nAPP_IMAGE=handoff-test-app:${version}\nSTOP_SIGNAL=SIGKILL`,
      probe_url: `http://127.0.0.1:${port}/`,
      probe_slow_url: `http://127.0.0.1:${port}/stream?ms=1500`,
      probe_slow_rate: '6',
      ...extra,
    },
    { workspace },
  );
}

/** A v1 stack serving, then the v2 rollout with the probe's three lanes. */
async function rollout(
  name: string,
  prepare?: (workspace: string) => Promise<void>,
  extra: Record<string, string> = {},
  during?: () => () => void,
) {
  const project = uniqueProject(name);
  projects.push(project);
  const port = freePort();
  const ws = await sampleWorkspace();
  await prepare?.(ws);
  const first = await deploy(ws, port, project, 'v1', { probe_url: '', probe_slow_url: '' });
  assert.equal(first.code, 0, first.log);
  const stop = during?.();
  let run: ActionRun;
  try {
    run = await deploy(ws, port, project, 'v2', extra);
  } finally {
    stop?.();
  }
  const records = JSON.parse(await readFile(run.outputs.probe_records!, 'utf8')) as Records;
  const lost = (lane: string) => records.records.filter((r) => r.lane === lane && r.outcome !== 'ok' && r.outcome !== 'unmeasured');
  return { run, records, lost };
}

test('long-request lane, degraded mode (no Runtime API, SIGKILL): cut responses are caught', async () => {
  const { run, records, lost } = await rollout(
    'slow-degraded',
    async (ws) => {
      const cfg = join(ws, 'deploy/haproxy/haproxy.cfg');
      const text = await readFile(cfg, 'utf8');
      const stripped = text.replace(/^\s*stats socket .*$/m, '    # no stats socket: handoff cannot drain');
      assert.notEqual(stripped, text);
      await writeFile(cfg, stripped);
    },
    { max_lost: '1000' },
  );
  assert.equal(run.code, 0, run.log);
  assert.match(run.log + run.summary, /Runtime API is not reachable/);
  assert.ok(records.records.filter((r) => r.lane === 'slow').length >= 30, 'the long-request lane ran');
  const slowLost = lost('slow');
  assert.ok(
    slowLost.length > 0,
    `the long-request lane saw the stops cut responses (short lanes lost ${lost('keepalive').length + lost('fresh').length})`,
  );
  assert.ok(
    slowLost.every((r) => ['cut', 'reset', 'empty'].includes(r.outcome)),
    `kinds: ${slowLost.map((r) => r.outcome)}`,
  );
  assert.equal(
    Number(run.outputs.requests_lost),
    slowLost.length + lost('keepalive').length + lost('fresh').length,
    'counted in the same total',
  );
  assert.match(run.summary, /\| long requests \| \d+ \| \d+ \| \d+ \| [1-9]\d* \|/);
});

test('long-request lane with the drain (SIGKILL): nothing lost on any lane', async () => {
  const { run, records, lost } = await rollout('slow-drain');
  assert.equal(run.code, 0, run.log);
  assert.ok(records.records.filter((r) => r.lane === 'slow').length >= 30, 'the long-request lane ran');
  assert.deepEqual([lost('slow').length, lost('keepalive').length, lost('fresh').length], [0, 0, 0], run.outputs.requests_lost);
  assert.equal(run.outputs.requests_lost, '0');
});

test('a correct rollout while two busy loops saturate both cores: passes, 0 lost, the lag is shown', async () => {
  // Bounded: each loop stops by itself after 150 s, and is killed as soon as the deploy ends.
  const spin = () => spawn(process.execPath, ['-e', 'const end = Date.now() + 150000; while (Date.now() < end) {}'], { stdio: 'ignore' });
  const saturate = () => {
    const loops = [spin(), spin()];
    busy.push(...loops);
    return () => loops.forEach((l) => l.kill('SIGKILL'));
  };
  const { run, lost } = await rollout('busy', undefined, { probe_rate: '100', health_timeout: '60s' }, saturate);
  assert.equal(run.code, 0, run.log);
  assert.equal(run.outputs.requests_lost, '0', run.summary);
  assert.deepEqual([lost('keepalive').length, lost('fresh').length, lost('slow').length], [0, 0, 0]);
  assert.match(run.summary, /send lag p99 [\d.]+ ms, max [\d.]+ ms/);
});
