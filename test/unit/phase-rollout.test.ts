/**
 * src/phases/rollout.ts: what a failed rollout leads to (handleFailure: a rollback only with
 * failure_action rollback and an earlier release, and then the services really go back to it), and
 * rolloutPhase returning a failure instead of throwing. The host: a real release store in a temp dir
 * and an in-memory Docker (fake-docker-host.ts) behind the Compose answers of session.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { planDeploy } from '../../src/model/plan.js';
import type { History, Release } from '../../src/phases/release.js';
import { handleFailure, rolloutPhase, type RolloutOutcome } from '../../src/phases/rollout.js';
import { behaviors, FakeClock, FakeDockerHost, RecordingGate, type Behavior } from '../helpers/fake-docker-host.js';
import { answerCompose, imageId, manifest, R, seedReleases, tempHost, testSession } from '../helpers/session.js';

const OLD_HASH = 'a'.repeat(64);
const NEW_HASH = 'b'.repeat(64);
const OLD_IMAGE = imageId('1');
const NEW_IMAGE = imageId('2');

/**
 * R(1) served web (app:v1, OLD_HASH); the failed deploy R(2) left web's two replicas on NEW_HASH.
 * Compose, reading app/ once R(1) is active again, answers R(1)'s config.
 */
async function setup(o: { serving?: boolean; inputs?: Record<string, string>; back?: Behavior } = {}) {
  const clock = new FakeClock();
  const steps: string[] = [];
  const docker = new FakeDockerHost(clock, steps, { project: 'shop' });
  for (let i = 0; i < 2; i++) docker.seed('web', { configHash: NEW_HASH, imageId: NEW_IMAGE });
  docker.release('web', { configHash: OLD_HASH, imageId: OLD_IMAGE, image: 'app:v1', behavior: () => o.back ?? behaviors.healthyAfter(0) });
  const t = await tempHost(docker);
  const r1 = manifest(R(1), { services: { web: { image: 'app:v1', imageId: OLD_IMAGE } } });
  await seedReleases(t.host, t.remoteDir, [r1, manifest(R(2), { result: 'pending' })], R(1));
  answerCompose(t.host, {
    model: { services: { web: { image: 'app:v1', deploy: { replicas: 2, update_config: { monitor: '0s' } } } } },
    hashes: { web: OLD_HASH },
    images: { 'app:v1': OLD_IMAGE },
  });
  t.host.on(/^docker image inspect .*docker tag/s, '');
  const { s, lines } = testSession({ remote: t.host, remoteDir: t.remoteDir, inputs: { pull: 'never', ...o.inputs } });
  const history: History = o.serving === false ? { releases: [] } : { releases: [r1], current: R(1), serving: r1 };
  const gate = new RecordingGate(steps, docker);
  const proxy = { gate };
  // From here on: what the phase sends.
  t.host.commands.length = 0;
  t.host.docker.length = 0;
  return { ...t, docker, steps, gate, s, lines, history, proxy };
}

const failed = (failureAction: RolloutOutcome['failureAction']): RolloutOutcome => ({
  failure: new Error('web: p-web-3 unhealthy after 30 s'),
  failureAction,
});

for (const action of ['pause', 'continue'] as const) {
  test(`failure_action ${action}: the failure is logged, a warning says no rollback, nothing is sent to the host`, async () => {
    const t = await setup();
    try {
      await handleFailure(t.s, failed(action), t.history, ['web'], t.proxy);
      assert.deepEqual(t.host.commands, []);
      assert.equal(t.s.report.rolledBack, false);
      assert.ok(t.lines.includes('error: web: p-web-3 unhealthy after 30 s'));
      assert.ok(t.lines.some((l) => l.startsWith(`warning: failure_action ${action}: no rollback`)));
      assert.deepEqual(
        t.s.timeline.events.map((e) => e.action),
        ['failure'],
      );
    } finally {
      await t.cleanup();
    }
  });
}

test('failure_action rollback on a first deploy: nothing to go back to, a warning, nothing sent', async () => {
  const t = await setup({ serving: false });
  try {
    await handleFailure(t.s, failed('rollback'), t.history, ['web'], t.proxy);
    assert.deepEqual(t.host.commands, []);
    assert.equal(t.s.report.rolledBack, false);
    assert.ok(t.lines.some((l) => l.startsWith('warning: no earlier release to roll back to')));
  } finally {
    await t.cleanup();
  }
});

test('failure_action rollback when `current` names a release whose manifest is gone: a warning, nothing sent', async () => {
  const t = await setup();
  try {
    await handleFailure(t.s, failed('rollback'), { releases: [], current: R(1) }, ['web'], t.proxy);
    assert.deepEqual(t.host.commands, []);
    assert.equal(t.s.report.rolledBack, false);
    assert.ok(t.lines.some((l) => l.startsWith('warning: no earlier release to roll back to')));
  } finally {
    await t.cleanup();
  }
});

test('no failure: nothing at all', async () => {
  const t = await setup();
  try {
    await handleFailure(t.s, { failureAction: 'rollback' }, t.history, ['web'], t.proxy);
    assert.deepEqual([t.host.commands, t.lines, t.s.timeline.events], [[], [], []]);
  } finally {
    await t.cleanup();
  }
});

test('failure_action rollback with a serving release: its images pinned, its files active, web rolled back behind the gate', async () => {
  const t = await setup();
  try {
    await handleFailure(t.s, failed('rollback'), t.history, ['web'], t.proxy);
    assert.equal(t.s.report.rolledBack, true);
    assert.ok(t.host.docker[0]!.includes(`docker tag ${OLD_IMAGE} app:v1`), t.host.docker[0]);
    assert.equal(await readFile(join(t.remoteDir, 'app/.env'), 'utf8'), `RELEASE=${R(1)}\n`);
    assert.deepEqual(
      t.docker.of('web').map((c) => [c.configHash, c.imageId]),
      [
        [OLD_HASH, OLD_IMAGE],
        [OLD_HASH, OLD_IMAGE],
      ],
    );
    assert.deepEqual(t.gate.violations, []);
    assert.ok(t.steps.some((x) => x.startsWith('drain web')));
    assert.deepEqual(
      t.s.timeline.events.filter((e) => e.action.startsWith('rollback') || e.action === 'failure').map((e) => `${e.action} ${e.detail}`),
      ['failure web: p-web-3 unhealthy after 30 s', `rollback-start ${R(1)}`, 'rollback-done ok'],
    );
  } finally {
    await t.cleanup();
  }
});

test('a rollback that fails too: rolledBack stays false, the log says so, the timeline ends failed', async () => {
  const t = await setup({ back: behaviors.unhealthyAfter(0), inputs: { health_timeout: '1s' } });
  try {
    await handleFailure(t.s, failed('rollback'), t.history, ['web'], t.proxy);
    assert.equal(t.s.report.rolledBack, false);
    assert.ok(t.lines.some((l) => l.startsWith(`error: the rollback to ${R(1)} failed too`)));
    assert.equal(t.s.timeline.events.find((e) => e.action === 'rollback-done')?.detail, 'failed');
    assert.ok(
      t.docker.of('web').every((c) => c.configHash === NEW_HASH),
      'what ran keeps running',
    );
  } finally {
    await t.cleanup();
  }
});

test('rolloutPhase: a throw before the rollout (a failed proxy reload) is returned as a failure, with rollback', async () => {
  const t = await setup();
  try {
    const release: Release = { id: R(2), manifest: manifest(R(2)), composeFiles: ['deploy/compose.yaml'] };
    const plan = planDeploy({ desired: [], running: [] });
    const outcome = await rolloutPhase(t.s, release, plan, ['web'], t.proxy, async () => {
      throw new Error('HAProxy reload failed');
    });
    assert.deepEqual([outcome.failure?.message, outcome.failureAction], ['HAProxy reload failed', 'rollback']);
    assert.deepEqual(t.host.commands, []);
    assert.equal(
      t.s.timeline.events.some((e) => e.action === 'deploy-start'),
      false,
    );
  } finally {
    await t.cleanup();
  }
});
