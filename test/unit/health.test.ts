import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  collectDiagnostics,
  healthTimeoutMs,
  monitorContainers,
  neverChecked,
  stateSignature,
  waitHealthy,
  type HealthResult,
} from '../../src/engine/docker/health.js';
import type { Remote, ExecResult } from '../../src/host/remote.js';
import { Timeline } from '../../src/model/timeline.js';
import { parseDockerInspect } from '../../src/engine/docker/containers.js';
import { shellWords } from '../helpers/fake-docker-host.js';

const hc = { intervalS: 2, timeoutS: 3, retries: 5, startPeriodS: 40, disabled: false };

test('healthTimeoutMs: start_period + interval × retries + timeout, floor, override', () => {
  assert.equal(healthTimeoutMs(hc), 53_000);
  assert.equal(healthTimeoutMs({ ...hc, startPeriodS: 0, retries: 1 }), 30_000);
  assert.equal(healthTimeoutMs(undefined), 30_000);
  assert.equal(healthTimeoutMs(hc, 120_000), 120_000);
  assert.equal(healthTimeoutMs({ intervalS: 30, timeoutS: 30, retries: 3, startPeriodS: 0, disabled: false }), 120_000);
});

type Snap = { id: string; status?: string; health?: string; startedAt?: string; exit?: number };
function inspectJson(snaps: Snap[]) {
  return JSON.stringify(
    snaps.map((s) => ({
      Id: s.id,
      Name: `/p_app_${s.id}`,
      Image: 'sha256:x',
      Created: '',
      RestartCount: 0,
      Config: { Image: 'app', Labels: { 'com.docker.compose.project': 'p', 'com.docker.compose.service': 'app' } },
      State: {
        Status: s.status ?? 'running',
        ExitCode: s.exit ?? 0,
        StartedAt: s.startedAt ?? 'T0',
        ...(s.health ? { Health: { Status: s.health, Log: [{ Start: 's', End: 'e', ExitCode: 1, Output: 'connection refused\n' }] } } : {}),
      },
      NetworkSettings: { Networks: { p_default: { IPAddress: '172.18.0.9' } } },
    })),
  );
}

/** A failed result's reason (fails the test on success). */
function reasonOf(r: HealthResult): string {
  if (r.ok) assert.fail('expected a health failure');
  return r.reason;
}

/**
 * A fake host: each `docker inspect` returns the next snapshot; a fake clock advances on sleep. A
 * blocking wait (awaitChangeCommand) returns the next snapshot 1 s later when it differs from the
 * state seen, else at the end of its wait.
 */
function fake(script: Snap[][]) {
  let i = 0;
  let t = 0;
  const commands: string[] = [];
  const remote = {
    async exec(command: string): Promise<ExecResult> {
      commands.push(command);
      if (command.startsWith('docker inspect'))
        return { code: 0, stdout: inspectJson(script[Math.min(i++, script.length - 1)]!), stderr: '' };
      if (command.startsWith('sh -c ') && command.includes('docker events')) {
        const [, , , , waitMs, seen, ...ids] = shellWords(command);
        const stdout = inspectJson(script[Math.min(i++, script.length - 1)]!);
        const changed = stateSignature(ids, parseDockerInspect(stdout)) !== seen;
        t += changed ? Math.min(1000, Number(waitMs)) : Number(waitMs);
        return { code: 0, stdout, stderr: '' };
      }
      if (command.startsWith('docker logs')) return { code: 0, stdout: 'boom\n', stderr: '' };
      return { code: 0, stdout: '', stderr: '' };
    },
  } as unknown as Remote;
  return {
    remote,
    commands,
    now: () => t,
    sleep: async (ms: number) => {
      t += ms;
    },
  };
}

test('waitHealthy passes when all become healthy: one read, then one blocking wait per change, for all ids', async () => {
  const f = fake([
    [
      { id: 'a', health: 'starting' },
      { id: 'b', health: 'starting' },
    ],
    [
      { id: 'a', health: 'healthy' },
      { id: 'b', health: 'starting' },
    ],
    [
      { id: 'a', health: 'healthy' },
      { id: 'b', health: 'healthy' },
    ],
  ]);
  const tl = new Timeline(f.now);
  const r = await waitHealthy(f.remote, ['a', 'b'], 10_000, tl, { now: f.now, sleep: f.sleep });
  assert.equal(r.ok, true);
  assert.equal(f.commands.length, 3);
  assert.match(f.commands[0]!, /^docker inspect --type container a b$/);
  assert.deepEqual(
    tl.events.map((e) => e.action),
    ['healthy', 'healthy'],
  );
});

test('with the state just read (seen), the first read is skipped; the wait starts from it', async () => {
  const f = fake([[{ id: 'a', health: 'healthy' }]]);
  const seen = parseDockerInspect(inspectJson([{ id: 'a', health: 'starting' }]));
  const r = await waitHealthy(f.remote, ['a'], 10_000, new Timeline(f.now), { now: f.now, sleep: f.sleep, seen });
  assert.equal(r.ok, true);
  assert.equal(f.commands.length, 1);
  assert.match(f.commands[0]!, /^sh -c .*docker events.* sh 10000 'a running starting 0 T0' a$/s);
});

test('a host whose wait answers at once without a change (no docker events) is read again only pollMs later', async () => {
  const f = fake([[{ id: 'a', health: 'starting' }]]);
  // The fake's clock is not this test's: seen from here, every wait comes back at once, unchanged.
  let t = 0;
  const r = await waitHealthy(f.remote, ['a'], 5_000, new Timeline(() => t), {
    now: () => t,
    sleep: async (ms) => void (t += ms),
    pollMs: 1000,
  });
  assert.equal(r.ok, false);
  assert.equal(t, 5_000);
  assert.ok(f.commands.length <= 7, `${f.commands.length} reads in 5 s`);
});

test('unhealthy fails at once', async () => {
  const f = fake([[{ id: 'a', health: 'starting' }], [{ id: 'a', health: 'unhealthy' }], [{ id: 'a', health: 'healthy' }]]);
  const r = await waitHealthy(f.remote, ['a'], 60_000, new Timeline(f.now), { now: f.now, sleep: f.sleep });
  assert.equal(r.ok, false);
  assert.match(reasonOf(r), /p_app_a: unhealthy/);
  assert.equal(f.now(), 1000);
});

test('exited fails with its exit code', async () => {
  const f = fake([[{ id: 'a', status: 'exited', exit: 3 }]]);
  const r = await waitHealthy(f.remote, ['a'], 60_000, new Timeline(f.now), { now: f.now, sleep: f.sleep });
  assert.equal(r.ok, false);
  assert.match(reasonOf(r), /exited with code 3/);
});

test('deadline is wall-clock: a slow "starting" container times out at the deadline', async () => {
  const f = fake([[{ id: 'a', health: 'starting' }]]);
  const r = await waitHealthy(f.remote, ['a'], 5_500, new Timeline(f.now), { now: f.now, sleep: f.sleep, pollMs: 1000 });
  assert.equal(r.ok, false);
  assert.match(reasonOf(r), /not healthy before the health timeout: p_app_a \(starting\)/);
  assert.equal(f.now(), 5_500);
});

test('no healthcheck: must stay running for the settle time; a restart fails', async () => {
  const ok = fake([[{ id: 'a' }]]);
  const r = await waitHealthy(ok.remote, ['a'], 60_000, new Timeline(ok.now), { now: ok.now, sleep: ok.sleep, settleMs: 3000 });
  assert.equal(r.ok, true);
  assert.equal(ok.now(), 3000);
  const bad = fake([[{ id: 'a', startedAt: 'T0' }], [{ id: 'a', startedAt: 'T1' }]]);
  const r2 = await waitHealthy(bad.remote, ['a'], 60_000, new Timeline(bad.now), { now: bad.now, sleep: bad.sleep, settleMs: 3000 });
  assert.equal(r2.ok, false);
  assert.match(reasonOf(r2), /restarted/);
});

test('monitor: ok after the window, fails on a crash inside it', async () => {
  const ok = fake([[{ id: 'a', health: 'healthy' }]]);
  const tl = new Timeline(ok.now);
  assert.equal((await monitorContainers(ok.remote, ['a'], 2000, tl, { now: ok.now, sleep: ok.sleep })).ok, true);
  assert.equal(tl.events.at(-1)!.action, 'monitor-ok');
  const bad = fake([[{ id: 'a', health: 'healthy' }], [{ id: 'a', status: 'exited', exit: 1 }]]);
  const r = await monitorContainers(bad.remote, ['a'], 5000, new Timeline(bad.now), { now: bad.now, sleep: bad.sleep });
  assert.equal(r.ok, false);
  assert.match(reasonOf(r), /during monitor: exited with code 1/);
});

test('diagnostics include the health log and docker logs', async () => {
  const f = fake([[{ id: 'a', health: 'unhealthy' }]]);
  const r = await waitHealthy(f.remote, ['a'], 1000, new Timeline(), { now: f.now, sleep: f.sleep });
  assert.equal(r.ok, false);
  const text = await collectDiagnostics(f.remote, r.containers);
  assert.match(text, /health check at s: exit 1: connection refused/);
  assert.match(text, /boom/);
  assert.ok(f.commands.some((c) => c === 'docker logs --tail 50 a 2>&1'));
});

test('a health wait with no check run at all says the engine is not running them (Podman without systemd)', () => {
  const starting = parseDockerInspect(
    JSON.stringify([
      {
        Id: 'a',
        Name: '/p-app-4',
        Image: 'sha256:x',
        Created: '',
        RestartCount: 0,
        Config: { Image: 'app', Labels: {} },
        State: { Status: 'running', ExitCode: 0, StartedAt: 'T0', Health: { Status: 'starting', FailingStreak: 0, Log: null } },
        NetworkSettings: { Networks: {} },
      },
    ]),
  );
  assert.match(neverChecked(starting), /No health check ran at all.*systemd timers/);
  // A check that ran (and failed) is an ordinary timeout.
  assert.equal(neverChecked(parseDockerInspect(inspectJson([{ id: 'b', health: 'starting' }]))), '');
  assert.equal(neverChecked([]), '');
});
