/**
 * The zero-downtime ordering of rollOut, proven without Docker: a fake Docker host in memory
 * (test/helpers/fake-docker-host.ts) answers the commands rollout.ts sends, a recording proxy gate
 * logs park/waitUp/drain/release/unpark with replica names into the same step list, and a fake clock
 * makes health timeouts and `monitor` pass instantly. Each test asserts the exact interleaving.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ComposeFlavor } from '../../src/engine/docker/compose-cli.js';
import { parseCompose } from '../../src/model/compose.js';
import { listProjectContainers } from '../../src/engine/docker/containers.js';
import { planDeploy, type DesiredService } from '../../src/model/plan.js';
import { checkPolicies } from '../../src/model/rollout-policy.js';
import { rollOut, type RolloutContext } from '../../src/rollout/rollout.js';
import { dockerEngine } from '../../src/engine/docker/engine.js';
import { Timeline } from '../../src/model/timeline.js';
import { countRoundTrips, RoundTrips } from '../../src/host/round-trips.js';
import type { BatchSpan } from '../../src/model/floor.js';
import { behaviors, FakeClock, FakeDockerHost, RecordingGate, type Behavior } from '../helpers/fake-docker-host.js';

const OLD = 'a'.repeat(64);
const NEW = 'b'.repeat(64);
const OLD_IMAGE = 'sha256:' + '1'.repeat(64);
const NEW_IMAGE = 'sha256:' + '2'.repeat(64);

interface Setup {
  /** web's replicas and update_config (flow YAML via JSON). */
  replicas?: number;
  updateConfig?: Record<string, unknown>;
  /** Services whose config changed (their running containers are on OLD). Default ['web']. */
  changed?: string[];
  /** Behavior of the n-th new web / worker container. Default healthy after 2 s. */
  web?: (n: number) => Behavior;
  worker?: (n: number) => Behavior;
  /** Services the proxy routes to (gated). Default ['web']. */
  routed?: string[];
  /** Adds a `proxy` service on the p_front network and passes proxyService (not proxyNetworks). */
  proxy?: boolean;
  flavor?: ComposeFlavor;
  /** Containers left by an earlier run, seeded after the serving ones. */
  extra?: (host: FakeDockerHost) => void;
}

async function setup(o: Setup = {}) {
  const text = `
services:
  web:
    image: app:v2
    deploy:
      replicas: ${o.replicas ?? 3}
      update_config: ${JSON.stringify({ monitor: '2s', ...o.updateConfig })}
    stop_grace_period: 3s
    healthcheck: { test: ["CMD", "true"], interval: 1s, timeout: 1s, retries: 3 }
  worker:
    image: app:v2
    deploy: { update_config: { monitor: 1s } }
    healthcheck: { test: ["CMD", "true"], interval: 1s, timeout: 1s, retries: 3 }
${o.proxy ? '  proxy:\n    image: haproxy:2.6\n    depends_on: [web]\n' : ''}`;
  const model = parseCompose([{ name: 'compose.yaml', text }]);
  const routed = o.routed ?? ['web'];
  const { policies, errors } = checkPolicies(model, routed);
  assert.deepEqual(errors, []);
  const clock = new FakeClock();
  const steps: string[] = [];
  const flavor = o.flavor ?? 'v2';
  const host = new FakeDockerHost(clock, steps, { flavor, networks: o.proxy ? ['p_default', 'p_front'] : ['p_default'] });
  const changed = o.changed ?? ['web'];
  for (const s of model.services) {
    const old = changed.includes(s.name);
    if (s.name === 'proxy') host.seed('proxy', { configHash: NEW, imageId: NEW_IMAGE, ips: { p_front: '172.30.0.2' } });
    else
      for (let i = 0; i < s.replicas; i++)
        host.seed(s.name, { configHash: old ? OLD : NEW, imageId: old ? OLD_IMAGE : NEW_IMAGE, agoMs: 3_600_000 - i * 1000 });
    const b = s.name === 'web' ? o.web : s.name === 'worker' ? o.worker : undefined;
    host.release(s.name, { configHash: NEW, imageId: NEW_IMAGE, ...(b ? { behavior: b } : {}) });
  }
  o.extra?.(host);
  const desired: DesiredService[] = model.services.map((service) => ({
    service,
    configHash: NEW,
    imageId: NEW_IMAGE,
    policy: policies.get(service.name)!,
  }));
  // The plan from what the host reports, as deploy.ts builds it.
  const plan = planDeploy({ desired, running: await listProjectContainers(host, 'p') });
  steps.length = 0;
  host.commands.length = 0;
  const gate = new RecordingGate(steps, host);
  const timeline = new Timeline(clock.now);
  const logs: string[] = [];
  const ctx: RolloutContext = {
    engine: dockerEngine({
      remote: host,
      flavor,
      stack: { project: 'p', files: ['/srv/app/releases/r2/compose.yaml'], envFile: '/srv/app/releases/r2/.env' },
    }),
    gate,
    timeline,
    log: { info: (m) => logs.push(`info: ${m}`), warning: (m) => logs.push(`warning: ${m}`) },
    routedServices: new Set(routed),
    now: clock.now,
    sleep: clock.sleep,
    ...(o.proxy ? { proxyService: 'proxy' } : {}),
  };
  return { host, gate, clock, steps, plan, ctx, timeline, logs, run: () => rollOut(ctx, plan) };
}

const hashes = (host: FakeDockerHost, service: string) => host.of(service).map((c) => `${c.name}:${c.configHash === NEW ? 'new' : 'old'}`);

test('start-first, batches of 1: each new replica is healthy and UP in the proxy before an old one is drained and stopped', async () => {
  const s = await setup();
  assert.deepEqual(
    s.plan.services.map((p) => [p.service, p.action, p.order]),
    [
      ['web', 'roll', 'start-first'],
      ['worker', 'keep', 'stop-first'],
    ],
  );
  const r = await s.run();
  assert.deepEqual(r, { ok: true, updated: ['web'], failures: [] });
  assert.deepEqual(s.steps, [
    'park web p-web-1 p-web-2 p-web-3',
    'up web=4 → p-web-4',
    'waitUp web p-web-4',
    'drain web p-web-1',
    'stop+rm p-web-1',
    'release web p-web-1',
    'park web p-web-2 p-web-3 p-web-4',
    // Created during batch 1's monitor, only started now.
    'create web=4 → p-web-5',
    'start p-web-5',
    'waitUp web p-web-5',
    'drain web p-web-2',
    'stop+rm p-web-2',
    'release web p-web-2',
    'park web p-web-3 p-web-4 p-web-5',
    'create web=4 → p-web-6',
    'start p-web-6',
    'waitUp web p-web-6',
    'drain web p-web-3',
    'stop+rm p-web-3',
    'release web p-web-3',
    'unpark web',
  ]);
  assert.deepEqual(s.gate.violations, [], 'every replica let UP was healthy, with its own IP');
  assert.deepEqual(hashes(s.host, 'web'), ['p-web-4:new', 'p-web-5:new', 'p-web-6:new']);
  assert.deepEqual(hashes(s.host, 'worker'), ['p-worker-1:new']);
  assert.deepEqual(
    s.timeline.events.map((e) => `${e.action} ${e.container ?? ''}`.trim()),
    [
      'start p-web-4',
      'healthy p-web-4',
      'stop p-web-1',
      'remove p-web-1',
      'monitor-ok',
      'start p-web-5',
      'healthy p-web-5',
      'stop p-web-2',
      'remove p-web-2',
      'monitor-ok',
      'start p-web-6',
      'healthy p-web-6',
      'stop p-web-3',
      'remove p-web-3',
      'monitor-ok',
    ],
  );
  // Per batch: 2 s until healthy (seen at the change, no poll interval added), then 2 s of update_config.monitor.
  assert.equal(s.clock.slept, 3 * (2_000 + 2_000));
  // The proxy's UP gate ends with the health deadline: the 30 s floor from the start of the batch.
  const firstStart = s.timeline.events.find((e) => e.action === 'start')!.at;
  assert.equal(s.gate.calls.find((c) => c.op === 'waitUp')!.deadline, firstStart + 30_000);
  assert.ok(s.gate.calls.filter((c) => c.op !== 'unpark').every((c) => c.replicas.every((x) => /^172\.18\.0\.\d+$/.test(x.ip))));
  // The exact command Compose gets, and the stop with the service's grace period.
  assert.equal(
    s.host.commands.find((c) => c.includes(' up ')),
    'docker compose -p p -f /srv/app/releases/r2/compose.yaml --env-file /srv/app/releases/r2/.env up -d --no-deps --no-recreate --scale web=4 web',
  );
  assert.deepEqual(s.host.graces, [3, 3, 3]);
});

test("round trips: a batch made ahead runs 4 commands (start and read in one, wait for health, stop, wait for monitor); the next batch's list, create and read happen during the monitor", async () => {
  const s = await setup();
  const counter = new RoundTrips();
  const batches: BatchSpan[] = [];
  s.ctx.engine = dockerEngine({
    remote: countRoundTrips(s.host, counter),
    flavor: 'v2',
    stack: { project: 'p', files: ['/srv/app/releases/r2/compose.yaml'], envFile: '/srv/app/releases/r2/.env' },
  });
  s.ctx.roundTrips = counter;
  s.ctx.batches = batches;
  assert.equal((await s.run()).ok, true);
  assert.deepEqual(
    batches.map((b) => [b.index, b.of, b.roundTrips, b.ok, b.endedAt - b.startedAt]),
    [
      // The first batch lists, scales up and reads (3), waits, stops, monitors (3), and makes the
      // second's head (list, create, read: 3); the second starts what was made and reads it in one
      // command (1) instead of list, scale, read; the last makes no head.
      [0, 3, 9, true, 4_000],
      [1, 3, 7, true, 4_000],
      [2, 3, 4, true, 4_000],
    ],
  );
  // One blocking wait until healthy (from the state read right after the scale-up: no first poll),
  // one for the whole monitor window: no round trip per poll.
  assert.deepEqual(s.host.waits, [30_000, 2_000, 30_000, 2_000, 30_000, 2_000]);
  const kinds = s.host.commands.map((c) =>
    c.startsWith('ids=$(docker ps')
      ? 'list'
      : c.includes(' up -d ')
        ? 'scale'
        : c.includes(' up --no-start ')
          ? 'create'
          : c.startsWith('docker start ')
            ? 'start'
            : c.startsWith('docker inspect ')
              ? 'read'
              : c.includes('docker events')
                ? 'wait'
                : c.startsWith('set -- $(docker ps')
                  ? 'stop'
                  : c,
  );
  // Batch 1 scales up itself; the monitor's wait runs beside the next batch's list + create + list.
  assert.deepEqual(kinds.slice(0, 9), ['list', 'scale', 'list', 'wait', 'stop', 'wait', 'list', 'create', 'list']);
  // Batch 2 starts what was made ahead and reads it in the same command: no list, no Compose.
  assert.deepEqual(kinds.slice(9, 13), ['start', 'wait', 'stop', 'wait']);
  assert.ok(s.host.commands[9]!.includes(' >/dev/null && docker inspect --type container '), 'the start prints the inspect JSON');
  assert.equal(counter.total, 20);
  assert.deepEqual(
    s.logs.filter((l) => / took /.test(l)),
    [
      [1, 9],
      [2, 7],
      [3, 4],
    ].map(
      ([n, trips]) =>
        `info: web: batch ${n}/3: took 4.0 s (floor 4.0 s: health 2.0, up 0.0, drain 0.0, stop 0.0, monitor 2.0; 1.00x); ${trips} (exec ${trips}) round trips to the host`,
    ),
  );
});

test('the next batch made ahead fails half-way: that batch scales up through Compose, which starts the container made anyway', async () => {
  const s = await setup({ replicas: 2 });
  s.host.failNextCreate = true;
  const r = await s.run();
  assert.equal(r.ok, true);
  assert.deepEqual(s.steps, [
    'park web p-web-1 p-web-2',
    'up web=3 → p-web-3',
    'waitUp web p-web-3',
    'drain web p-web-1',
    'stop+rm p-web-1',
    'release web p-web-1',
    'park web p-web-2 p-web-3',
    // Created, but the command failed: not handed on as made.
    'create web=3 → p-web-4',
    'up web=3',
    'waitUp web p-web-4',
    'drain web p-web-2',
    'stop+rm p-web-2',
    'release web p-web-2',
    'unpark web',
  ]);
  assert.ok(s.logs.some((l) => /creating the next batch ahead failed .*connection reset.*; the batch scales up itself/s.test(l)));
  assert.deepEqual(hashes(s.host, 'web'), ['p-web-3:new', 'p-web-4:new']);
});

test('stop-first: each old replica is drained, stopped and released before its replacement starts; an unrouted service has no gate calls', async () => {
  const s = await setup({ replicas: 2, updateConfig: { order: 'stop-first' }, changed: ['web', 'worker'] });
  assert.deepEqual(
    s.plan.services.map((p) => [p.service, p.action, p.order]),
    [
      ['web', 'roll', 'stop-first'],
      ['worker', 'roll', 'stop-first'],
    ],
  );
  const r = await s.run();
  assert.deepEqual(r, { ok: true, updated: ['web', 'worker'], failures: [] });
  assert.deepEqual(s.steps, [
    'drain web p-web-1',
    'stop+rm p-web-1',
    'release web p-web-1',
    'park web p-web-2',
    'up web=2 → p-web-3',
    'waitUp web p-web-3',
    'drain web p-web-2',
    'stop+rm p-web-2',
    'release web p-web-2',
    'park web p-web-3',
    'up web=2 → p-web-4',
    'waitUp web p-web-4',
    'unpark web',
    // worker: not routed by the proxy, so no park/drain/waitUp/unpark at all.
    'stop+rm p-worker-1',
    'up worker=1 → p-worker-1',
  ]);
  assert.deepEqual(s.gate.violations, []);
  assert.deepEqual(hashes(s.host, 'web'), ['p-web-3:new', 'p-web-4:new']);
  assert.deepEqual(hashes(s.host, 'worker'), ['p-worker-1:new']);
  assert.deepEqual(s.host.graces, [3, 3, 10], 'web stop_grace_period 3s, worker the 10s default');
});

test('parallelism 2 over 3 replicas: two new replicas UP before two old ones go, then one; update_config.delay between batches', async () => {
  const s = await setup({ updateConfig: { parallelism: 2, delay: '10s' } });
  assert.deepEqual(
    s.plan.services[0]!.batches.map((b) => [b.start, b.remove.length]),
    [
      [2, 2],
      [1, 1],
    ],
  );
  const r = await s.run();
  assert.equal(r.ok, true);
  assert.deepEqual(s.steps, [
    'park web p-web-1 p-web-2 p-web-3',
    'up web=5 → p-web-4 p-web-5',
    'waitUp web p-web-4 p-web-5',
    'drain web p-web-1 p-web-2',
    'stop+rm p-web-1 p-web-2',
    'release web p-web-1 p-web-2',
    'park web p-web-3 p-web-4 p-web-5',
    'up web=4 → p-web-6',
    'waitUp web p-web-6',
    'drain web p-web-3',
    'stop+rm p-web-3',
    'release web p-web-3',
    'unpark web',
  ]);
  assert.deepEqual(s.gate.violations, []);
  assert.deepEqual(hashes(s.host, 'web'), ['p-web-4:new', 'p-web-5:new', 'p-web-6:new']);
  // Two batches of (2 s healthy + 2 s monitor) and one 10 s delay between them, none after the last.
  assert.equal(s.clock.slept, 2 * 4_000 + 10_000);
  const starts = s.timeline.events.filter((e) => e.action === 'start').map((e) => e.at);
  assert.equal(starts[2]! - starts[0]!, 4_000 + 10_000);
  assert.ok(s.logs.includes('info: web: waiting update_config.delay 10s'));
});

test('a new replica that never becomes healthy: removed at the health timeout, rollback returned, old replicas untouched, later services not touched', async () => {
  const s = await setup({ changed: ['web', 'worker'], web: (n) => (n === 0 ? behaviors.neverHealthy() : behaviors.healthyAfter(2_000)) });
  const r = await s.run();
  assert.deepEqual(s.steps, [
    'park web p-web-1 p-web-2 p-web-3',
    'up web=4 → p-web-4',
    'logs p-web-4',
    'drain web p-web-4',
    'stop+rm p-web-4',
    'release web p-web-4',
    'unpark web',
  ]);
  assert.equal(r.ok, false);
  assert.equal(r.stoppedAt, 'web');
  assert.deepEqual(r.updated, ['web']);
  assert.equal(r.failures.length, 1);
  assert.equal(r.failure, r.failures[0]);
  const f = r.failure!;
  assert.equal(f.service, 'web');
  assert.equal(f.failureAction, 'rollback');
  assert.deepEqual(f.containers, ['p-web-4']);
  // The fake replica's health log is empty: no check ever ran, which the reason points out (Podman without systemd).
  assert.equal(
    f.reason,
    'not healthy before the health timeout: p-web-4 (starting). No health check ran at all: the engine is not running them (Podman runs healthchecks from systemd timers; on a host without systemd they never run)',
  );
  assert.match(f.logs, /--- p-web-4 \([0-9a-f]{12}\): state running, health starting/);
  assert.match(f.logs, /p-web-4: fatal: database unreachable/);
  assert.equal(s.clock.slept, 30_000, 'waited exactly the health timeout (30 s floor)');
  assert.deepEqual(hashes(s.host, 'web'), ['p-web-1:old', 'p-web-2:old', 'p-web-3:old']);
  assert.deepEqual(hashes(s.host, 'worker'), ['p-worker-1:old']);
  assert.ok(s.logs.includes('warning: web: batch 1/3 failed: removing its 1 new container(s)'));
  assert.deepEqual(
    s.timeline.events.map((e) => e.action),
    ['start', 'failure', 'failure', 'stop', 'remove'],
  );
});

test('a new replica that turns unhealthy fails at once, with its health check output', async () => {
  const s = await setup({ replicas: 1, web: () => behaviors.unhealthyAfter(3_000) });
  const r = await s.run();
  assert.deepEqual(s.steps, [
    'park web p-web-1',
    'up web=2 → p-web-2',
    'logs p-web-2',
    'drain web p-web-2',
    'stop+rm p-web-2',
    'release web p-web-2',
    'unpark web',
  ]);
  assert.equal(r.failure!.reason, 'p-web-2: unhealthy');
  assert.match(r.failure!.logs, /health check at .*: exit 1: curl: \(7\) connection refused/);
  assert.equal(s.clock.slept, 3_000, 'no waiting for the timeout once Docker says unhealthy');
  assert.deepEqual(hashes(s.host, 'web'), ['p-web-1:old']);
});

test('healthy, then crashed before the proxy had it UP: the crash is named as the cause', async () => {
  const s = await setup({ replicas: 2, web: () => behaviors.exitsAfter(2_000, 3_000) });
  s.gate.failWaitUp = true;
  s.gate.waitUpMs = 1_500;
  const r = await s.run();
  assert.deepEqual(s.steps, [
    'park web p-web-1 p-web-2',
    'up web=3 → p-web-3',
    'waitUp web p-web-3',
    'logs p-web-3',
    'drain web p-web-3',
    'stop+rm p-web-3',
    'release web p-web-3',
    'unpark web',
  ]);
  assert.equal(r.failure!.reason, 'new web replica crashed before the proxy had it UP: p-web-3 exited, exit code 137');
  assert.deepEqual(r.failure!.containers, ['p-web-3']);
  assert.deepEqual(hashes(s.host, 'web'), ['p-web-1:old', 'p-web-2:old']);
});

test('the proxy never has a live new replica UP: the gate error stops the batch and the new container still goes', async () => {
  const s = await setup({ replicas: 2 });
  s.gate.failWaitUp = true;
  const r = await s.run();
  assert.deepEqual(s.steps, [
    'park web p-web-1 p-web-2',
    'up web=3 → p-web-3',
    'waitUp web p-web-3',
    // No BatchFailure here, so no containers named and no logs collected: only the cleanup.
    'drain web p-web-3',
    'stop+rm p-web-3',
    'release web p-web-3',
    'unpark web',
  ]);
  assert.equal(r.failure!.reason, 'p-web-3 not UP in the proxy before the deadline');
  assert.deepEqual(r.failure!.containers, []);
  assert.equal(r.failure!.logs, '');
  assert.deepEqual(hashes(s.host, 'web'), ['p-web-1:old', 'p-web-2:old']);
});

test('monitor: a new replica that crashes after its old one is gone fails the batch and is removed too', async () => {
  const s = await setup({ replicas: 2, updateConfig: { monitor: '5s' }, web: () => behaviors.exitsAfter(2_000, 4_000) });
  const r = await s.run();
  assert.deepEqual(s.steps, [
    'park web p-web-1 p-web-2',
    'up web=3 → p-web-3',
    'waitUp web p-web-3',
    'drain web p-web-1',
    'stop+rm p-web-1',
    'release web p-web-1',
    // The next batch's head, made while the monitor ran: the failure removes its container too.
    'park web p-web-2 p-web-3',
    'create web=3 → p-web-4',
    'logs p-web-3',
    'drain web p-web-3',
    'stop+rm p-web-3',
    'release web p-web-3',
    'stop+rm p-web-4',
    'unpark web',
  ]);
  assert.equal(r.failure!.reason, 'p-web-3 during monitor: exited with code 137');
  assert.equal(r.stoppedAt, 'web');
  // The rollback (previous release's plan) is the caller's: one old replica is left serving.
  assert.deepEqual(hashes(s.host, 'web'), ['p-web-2:old']);
});

test('Compose creating fewer containers than asked fails the batch and removes what it did create', async () => {
  const s = await setup({ updateConfig: { parallelism: 2 } });
  s.host.upShortfall = 1;
  const r = await s.run();
  assert.deepEqual(s.steps, [
    'park web p-web-1 p-web-2 p-web-3',
    'up web=5 → p-web-4',
    'logs p-web-4',
    'drain web p-web-4',
    'stop+rm p-web-4',
    'release web p-web-4',
    'unpark web',
  ]);
  assert.equal(r.failure!.reason, 'expected 2 new container(s) for web, Compose created 1');
  assert.deepEqual(hashes(s.host, 'web'), ['p-web-1:old', 'p-web-2:old', 'p-web-3:old']);
});

const batch1 = [
  'park web p-web-1 p-web-2 p-web-3',
  'up web=4 → p-web-4',
  'waitUp web p-web-4',
  'drain web p-web-1',
  'stop+rm p-web-1',
  'release web p-web-1',
];
const batch2Fails = [
  'park web p-web-2 p-web-3 p-web-4',
  'create web=4 → p-web-5',
  'start p-web-5',
  'logs p-web-5',
  'drain web p-web-5',
  'stop+rm p-web-5',
  'release web p-web-5',
];
const secondFails = (n: number) => (n === 1 ? behaviors.unhealthyAfter(1_000) : behaviors.healthyAfter(2_000));

test('failure_action continue: the failed batch is undone, the remaining batches and the next service still roll', async () => {
  const s = await setup({ updateConfig: { failure_action: 'continue' }, changed: ['web', 'worker'], web: secondFails });
  const r = await s.run();
  assert.deepEqual(s.steps, [
    ...batch1,
    ...batch2Fails,
    // Batch 3 replaces p-web-3; p-web-2 (batch 2's old replica) keeps serving. Compose reuses number 5.
    'park web p-web-2 p-web-3 p-web-4',
    'up web=4 → p-web-5',
    'waitUp web p-web-5',
    'drain web p-web-3',
    'stop+rm p-web-3',
    'release web p-web-3',
    'unpark web',
    'stop+rm p-worker-1',
    'up worker=1 → p-worker-1',
  ]);
  assert.equal(r.ok, false);
  assert.equal(r.stoppedAt, undefined);
  assert.deepEqual(r.updated, ['web', 'worker']);
  assert.equal(r.failures.length, 1);
  assert.equal(r.failure!.failureAction, 'continue');
  assert.equal(r.failure!.reason, 'p-web-5: unhealthy');
  assert.deepEqual(hashes(s.host, 'web'), ['p-web-2:old', 'p-web-4:new', 'p-web-5:new']);
  assert.deepEqual(hashes(s.host, 'worker'), ['p-worker-1:new']);
  assert.ok(
    s.logs.includes('warning: web: batch 2/3 failed (p-web-5: unhealthy); continuing (failure_action continue, 1/3 batches failed)'),
    s.logs.join('\n'),
  );
  assert.deepEqual(s.gate.violations, []);
});

test('failure_action continue: every batch failing still runs them all, the last failure is reported', async () => {
  const s = await setup({ replicas: 2, updateConfig: { failure_action: 'continue' }, web: () => behaviors.unhealthyAfter(1_000) });
  const r = await s.run();
  assert.deepEqual(s.steps, [
    'park web p-web-1 p-web-2',
    'up web=3 → p-web-3',
    'logs p-web-3',
    'drain web p-web-3',
    'stop+rm p-web-3',
    'release web p-web-3',
    'park web p-web-1 p-web-2',
    'up web=3 → p-web-3',
    'logs p-web-3',
    'drain web p-web-3',
    'stop+rm p-web-3',
    'release web p-web-3',
    'unpark web',
  ]);
  assert.equal(r.ok, false);
  assert.equal(r.stoppedAt, undefined);
  assert.equal(r.failures.length, 1);
  assert.equal(r.failure!.failureAction, 'continue');
  assert.deepEqual(hashes(s.host, 'web'), ['p-web-1:old', 'p-web-2:old']);
});

test('failure_action pause: stops at the failed batch like rollback (no later batch, no later service), reported as pause', async () => {
  const s = await setup({ updateConfig: { failure_action: 'pause' }, changed: ['web', 'worker'], web: secondFails });
  const r = await s.run();
  assert.deepEqual(s.steps, [...batch1, ...batch2Fails, 'unpark web']);
  assert.equal(r.ok, false);
  assert.equal(r.stoppedAt, 'web');
  assert.deepEqual(r.updated, ['web']);
  assert.equal(r.failure!.failureAction, 'pause');
  assert.deepEqual(r.failure!.containers, ['p-web-5']);
  // Paused half-way: one new replica beside the two old ones, all serving.
  assert.deepEqual(hashes(s.host, 'web'), ['p-web-2:old', 'p-web-3:old', 'p-web-4:new']);
  assert.deepEqual(hashes(s.host, 'worker'), ['p-worker-1:old']);
});

test('max_failure_ratio: a failed batch within the ratio is tolerated (service counts as rolled), the next batches still run', async () => {
  const s = await setup({ updateConfig: { max_failure_ratio: 0.5 }, changed: ['web', 'worker'], web: secondFails });
  const r = await s.run();
  assert.deepEqual(s.steps, [
    ...batch1,
    ...batch2Fails,
    'park web p-web-2 p-web-3 p-web-4',
    'up web=4 → p-web-5',
    'waitUp web p-web-5',
    'drain web p-web-3',
    'stop+rm p-web-3',
    'release web p-web-3',
    'unpark web',
    'stop+rm p-worker-1',
    'up worker=1 → p-worker-1',
  ]);
  // As rollout.ts implements it: a tolerated failure (rollback within the ratio) is logged, not returned.
  assert.deepEqual(r, { ok: true, updated: ['web', 'worker'], failures: [] });
  assert.ok(
    s.logs.includes('warning: web: batch 2/3 failed (p-web-5: unhealthy); continuing (failure_action rollback, 1/3 batches failed)'),
    s.logs.join('\n'),
  );
  assert.deepEqual(hashes(s.host, 'web'), ['p-web-2:old', 'p-web-4:new', 'p-web-5:new']);
});

test('max_failure_ratio: the failure that takes the ratio over the limit stops the service there', async () => {
  // 4 batches, ratio 0.25: the first failure (1/4) is tolerated, the second (2/4) is not.
  const s = await setup({
    replicas: 4,
    updateConfig: { max_failure_ratio: 0.25 },
    changed: ['web', 'worker'],
    web: (n) => (n < 2 ? behaviors.unhealthyAfter(1_000) : behaviors.healthyAfter(2_000)),
  });
  const r = await s.run();
  const failedBatch = [
    'park web p-web-1 p-web-2 p-web-3 p-web-4',
    'up web=5 → p-web-5',
    'logs p-web-5',
    'drain web p-web-5',
    'stop+rm p-web-5',
    'release web p-web-5',
  ];
  assert.deepEqual(s.steps, [...failedBatch, ...failedBatch, 'unpark web']);
  assert.equal(r.ok, false);
  assert.equal(r.stoppedAt, 'web');
  assert.deepEqual(r.updated, ['web']);
  assert.equal(r.failures.length, 1);
  assert.equal(r.failure!.failureAction, 'rollback');
  assert.deepEqual(hashes(s.host, 'web'), ['p-web-1:old', 'p-web-2:old', 'p-web-3:old', 'p-web-4:old']);
  assert.deepEqual(hashes(s.host, 'worker'), ['p-worker-1:old']);
  assert.equal(s.logs.filter((l) => /continuing/.test(l)).length, 1);
});

test('cleanup: exited containers from an earlier run are removed before the first batch, outside the proxy; a running unhealthy one is replaced like an outdated one', async () => {
  const s = await setup({
    replicas: 2,
    extra: (host) => {
      host.seed('web', {
        configHash: OLD,
        imageId: OLD_IMAGE,
        behavior: behaviors.fixed({ state: 'exited', health: 'unhealthy', exitCode: 1 }),
      });
      host.seed('web', { configHash: NEW, imageId: NEW_IMAGE, behavior: behaviors.unhealthyAfter(0) });
      // worker: unchanged, but a crashed container beside it: action clean.
      host.seed('worker', {
        configHash: NEW,
        imageId: NEW_IMAGE,
        behavior: behaviors.fixed({ state: 'restarting', health: 'none', exitCode: 2 }),
      });
    },
  });
  assert.deepEqual(
    s.plan.services.map((p) => [p.service, p.action, p.cleanup.length, p.batches.length]),
    [
      ['web', 'roll', 1, 3],
      ['worker', 'clean', 1, 0],
    ],
  );
  const r = await s.run();
  assert.deepEqual(r, { ok: true, updated: ['web', 'worker'], failures: [] });
  assert.deepEqual(s.steps, [
    'stop+rm p-web-3',
    // Running, unhealthy, one too many: drained like any surplus replica, never removed unannounced.
    'drain web p-web-4',
    'stop+rm p-web-4',
    'release web p-web-4',
    'park web p-web-1 p-web-2',
    'create web=3 → p-web-3',
    'start p-web-3',
    'waitUp web p-web-3',
    'drain web p-web-1',
    'stop+rm p-web-1',
    'release web p-web-1',
    'park web p-web-2 p-web-3',
    'create web=3 → p-web-4',
    'start p-web-4',
    'waitUp web p-web-4',
    'drain web p-web-2',
    'stop+rm p-web-2',
    'release web p-web-2',
    'unpark web',
    'stop+rm p-worker-2',
  ]);
  assert.deepEqual(hashes(s.host, 'web'), ['p-web-3:new', 'p-web-4:new']);
  assert.deepEqual(hashes(s.host, 'worker'), ['p-worker-1:new']);
  assert.deepEqual(s.gate.violations, []);
});

test('cleanup that fails stops the service before any batch starts', async () => {
  const s = await setup({
    replicas: 2,
    changed: ['web', 'worker'],
    extra: (host) =>
      void host.seed('web', {
        configHash: OLD,
        imageId: OLD_IMAGE,
        behavior: behaviors.fixed({ state: 'exited', health: 'none', exitCode: 1 }),
      }),
  });
  s.host.failNextStop = 1;
  const r = await s.run();
  assert.deepEqual(s.steps, ['stop+rm failed p-web-3', 'unpark web']);
  assert.equal(r.ok, false);
  assert.equal(r.stoppedAt, 'web');
  assert.equal(r.failure!.failureAction, 'rollback');
  assert.deepEqual(r.failure!.containers, []);
  assert.match(r.failure!.reason, /^remote command failed \(exit 1\): set -- \$\(docker ps[\s\S]*permission denied/);
  assert.deepEqual(hashes(s.host, 'web'), ['p-web-1:old', 'p-web-2:old', 'p-web-3:old']);
});

test('Compose v1 host, proxy networks from the proxy service: the gate gets each replica by its IP on the proxy network', async () => {
  const s = await setup({ replicas: 2, proxy: true, flavor: 'v1' });
  assert.deepEqual(
    s.plan.services.map((p) => [p.service, p.action]),
    [
      ['web', 'roll'],
      ['worker', 'keep'],
      ['proxy', 'keep'],
    ],
  );
  const r = await s.run();
  assert.equal(r.ok, true);
  assert.deepEqual(s.steps, [
    'park web p_web_1 p_web_2',
    'up web=3 → p_web_3',
    'waitUp web p_web_3',
    'drain web p_web_1',
    'stop+rm p_web_1',
    'release web p_web_1',
    'park web p_web_2 p_web_3',
    'create web=3 → p_web_4',
    'start p_web_4',
    'waitUp web p_web_4',
    'drain web p_web_2',
    'stop+rm p_web_2',
    'release web p_web_2',
    'unpark web',
  ]);
  assert.match(
    s.host.commands.find((c) => c.includes(' up '))!,
    /^docker-compose -p p -f \S+ --env-file \S+ up -d --no-deps --no-recreate --scale web=3 web$/,
  );
  const ups = s.gate.calls.filter((c) => c.op === 'waitUp').flatMap((c) => c.replicas);
  assert.deepEqual(
    ups.map((x) => x.ip),
    ['p_web_3', 'p_web_4'].map((n) => s.host.byName(n).ips.p_front!),
  );
  assert.ok(
    ups.every((x) => x.ip.startsWith('172.19.')),
    'the p_front address, not p_default',
  );
  assert.deepEqual(s.gate.violations, []);
});
