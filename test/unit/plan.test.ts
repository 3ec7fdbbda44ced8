import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCompose } from '../../src/model/compose.js';
import type { ContainerInfo } from '../../src/engine/docker/containers.js';
import { orderByDependencies, planDeploy, renderPlan, renderPlanMarkdown, rollBatches, type DesiredService } from '../../src/model/plan.js';
import { checkPolicies, decidePolicy } from '../../src/model/rollout-policy.js';

const H1 = '1'.repeat(64);
const H2 = '2'.repeat(64);

const compose = `
services:
  web:
    image: app:v1
    deploy: { replicas: 3, update_config: { parallelism: 1 } }
    healthcheck: { test: ["CMD", "true"] }
    depends_on: [db]
  db:
    image: postgres
    volumes: [data:/var/lib/postgresql/data]
  proxy:
    image: haproxy
    ports: ["127.0.0.1:18080:8080"]
    depends_on: [web]
volumes: { data: {} }
`;
const model = parseCompose([{ name: 'compose.yaml', text: compose }]);
const { policies } = checkPolicies(model, ['web']);

function desired(
  hashes: Record<string, string> = {},
  images: Record<string, string> = {},
  edit?: (s: DesiredService) => void,
): DesiredService[] {
  return model.services.map((s) => {
    const d: DesiredService = {
      service: structuredClone(s),
      configHash: hashes[s.name] ?? H1,
      imageId: images[s.name] ?? `sha256:img-${s.name}`,
      policy: policies.get(s.name)!,
    };
    edit?.(d);
    return d;
  });
}

let seq = 0;
function ctr(service: string, fields: Partial<ContainerInfo> = {}): ContainerInfo {
  seq++;
  return {
    id: `${service}-${seq}`,
    name: `p_${service}_${seq}`,
    service,
    project: 'p',
    number: seq,
    configHash: H1,
    imageId: `sha256:img-${service}`,
    image: 'x',
    state: 'running',
    health: 'healthy',
    healthLog: [],
    exitCode: 0,
    restartCount: 0,
    createdAt: `2026-01-01T00:00:${String(seq).padStart(2, '0')}Z`,
    startedAt: '',
    ips: { p_default: `172.18.0.${seq}` },
    oneoff: false,
    composeVersion: '2.26.1',
    ...fields,
  };
}
const steady = () => [ctr('db'), ctr('web'), ctr('web'), ctr('web'), ctr('proxy')];

test('unchanged: everything kept, no changes', () => {
  const plan = planDeploy({ desired: desired(), running: steady() });
  assert.deepEqual(
    plan.services.map((s) => [s.service, s.action]),
    [
      ['db', 'keep'],
      ['web', 'keep'],
      ['proxy', 'keep'],
    ],
  );
  assert.equal(plan.changes, false);
  assert.match(renderPlan(plan), /Nothing to change/);
});

test('config change: start-first roll in batches of 1, oldest first', () => {
  const running = steady();
  const webIds = running.filter((c) => c.service === 'web').map((c) => c.id);
  const plan = planDeploy({ desired: desired({ web: H2 }), running });
  const web = plan.services.find((s) => s.service === 'web')!;
  assert.equal(web.action, 'roll');
  assert.equal(web.order, 'start-first');
  assert.match(web.reason, /routed by the proxy/);
  assert.deepEqual(
    web.batches,
    webIds.map((id) => ({ start: 1, remove: [id] })),
  );
  assert.match(web.changes[0]!, /config changed/);
  assert.equal(plan.services.find((s) => s.service === 'db')!.action, 'keep');
  assert.equal(plan.changes, true);
});

test('re-pushed tag: same hash, different image ID is a change', () => {
  const plan = planDeploy({ desired: desired({}, { web: 'sha256:new' }), running: steady() });
  const web = plan.services.find((s) => s.service === 'web')!;
  assert.equal(web.action, 'roll');
  assert.match(web.changes.join(), /image changed.*re-pushed tag/);
});

test('parallelism 2 over 3 replicas: batches of 2 then 1', () => {
  const plan = planDeploy({
    desired: desired({ web: H2 }, {}, (d) => {
      d.service.updateConfig.parallelism = 2;
    }),
    running: steady(),
  });
  const web = plan.services.find((s) => s.service === 'web')!;
  assert.deepEqual(
    web.batches.map((b) => [b.start, b.remove.length]),
    [
      [2, 2],
      [1, 1],
    ],
  );
});

test('stop-first db: one batch, warns that requests drop', () => {
  const plan = planDeploy({ desired: desired({ db: H2 }), running: steady() });
  const db = plan.services.find((s) => s.service === 'db')!;
  assert.equal(db.action, 'roll');
  assert.equal(db.order, 'stop-first');
  assert.match(db.reason, /named volume/);
  assert.deepEqual(
    db.batches.map((b) => [b.start, b.remove.length]),
    [[1, 1]],
  );
  assert.ok(db.warnings.some((w) => /requests to it will drop/.test(w)));
  assert.ok(db.warnings.some((w) => /no health gate/.test(w)));
  assert.match(renderPlan(plan), /db +roll +1→1 +stop-first +-1 \+1/);
  assert.match(renderPlan(plan), /^db: stop-first .*\n {2}- image \S+/m, 'the plan names the image a rolled service goes to');
});

test('depends_on order; cycles are refused', () => {
  const plan = planDeploy({ desired: desired(), running: [] });
  assert.deepEqual(
    plan.services.map((s) => s.service),
    ['db', 'web', 'proxy'],
  );
  assert.ok(plan.services.every((s) => s.action === 'create'));
  const cyc = [{ service: { name: 'aa', dependsOn: ['bb'] } }, { service: { name: 'bb', dependsOn: ['aa'] } }];
  assert.throws(() => orderByDependencies(cyc), /depends_on cycle: aa → bb → aa/);
});

test('leftover exited containers are cleaned and not counted', () => {
  const running = [...steady(), ctr('web', { state: 'exited', exitCode: 137 }), ctr('web', { state: 'restarting' })];
  const plan = planDeploy({ desired: desired(), running });
  const web = plan.services.find((s) => s.service === 'web')!;
  assert.equal(web.action, 'clean');
  assert.equal(web.cleanup.length, 2);
  assert.equal(web.oldReplicas, 3);
  assert.equal(plan.changes, true);
});

test('exited containers leave too few replicas: scale up after cleanup', () => {
  const running = [ctr('db'), ctr('web'), ctr('web', { state: 'exited' }), ctr('web', { state: 'restarting' }), ctr('proxy')];
  const web = planDeploy({ desired: desired(), running }).services.find((s) => s.service === 'web')!;
  assert.equal(web.action, 'scale');
  assert.equal(web.cleanup.length, 2);
  assert.deepEqual(web.batches, [{ start: 2, remove: [] }]);
});

test('a running unhealthy replica (it may still serve) is replaced start-first, first of all, never removed up front', () => {
  const sick = ctr('web', { health: 'unhealthy' });
  const running = [ctr('db'), ctr('web'), sick, ctr('web'), ctr('proxy')];
  const web = planDeploy({ desired: desired(), running }).services.find((s) => s.service === 'web')!;
  assert.equal(web.action, 'roll');
  assert.deepEqual(web.cleanup, []);
  assert.equal(web.current.length, 2, 'the healthy ones on the desired config are kept');
  assert.deepEqual(web.batches, [{ start: 1, remove: [sick.id] }]);
});

test('scale down removes the oldest', () => {
  const running = steady();
  const webIds = running.filter((c) => c.service === 'web').map((c) => c.id);
  const web = planDeploy({
    desired: desired({}, {}, (d) => {
      if (d.service.name === 'web') d.service.replicas = 1;
    }),
    running,
  }).services.find((s) => s.service === 'web')!;
  assert.equal(web.action, 'scale');
  assert.deepEqual(web.batches, [{ start: 0, remove: webIds.slice(0, 2) }]);
  assert.deepEqual(web.current, [webIds[2]]);
});

test('half-finished rollout (3 old + 1 new healthy) converges: surplus old first, then 2 pairs', () => {
  const old = [ctr('web'), ctr('web'), ctr('web')];
  const fresh = ctr('web', { configHash: H2 });
  const web = planDeploy({ desired: desired({ web: H2 }), running: [ctr('db'), ...old, fresh, ctr('proxy')] }).services.find(
    (s) => s.service === 'web',
  )!;
  assert.equal(web.action, 'roll');
  assert.deepEqual(web.current, [fresh.id]);
  assert.deepEqual(web.batches, [
    { start: 0, remove: [old[0]!.id] },
    { start: 1, remove: [old[1]!.id] },
    { start: 1, remove: [old[2]!.id] },
  ]);
});

test('rollBatches: growing and shrinking counts', () => {
  assert.deepEqual(rollBatches(0, ['a', 'b'], 3, 1), [
    { start: 1, remove: ['a'] },
    { start: 1, remove: ['b'] },
    { start: 1, remove: [] },
  ]);
  assert.deepEqual(rollBatches(0, ['a', 'b', 'c'], 1, 1), [
    { start: 0, remove: ['a'] },
    { start: 0, remove: ['b'] },
    { start: 1, remove: ['c'] },
  ]);
  assert.deepEqual(rollBatches(0, ['a', 'b'], 0, 5), [{ start: 0, remove: ['a', 'b'] }]);
});

test('only and force: unselected skipped, selected forced; orphans kept when only is set', () => {
  const running = [...steady(), ctr('worker')];
  const plan = planDeploy({ desired: desired(), running, only: ['web'], force: true });
  const by = Object.fromEntries(plan.services.map((s) => [s.service, s]));
  assert.equal(by.web!.action, 'roll');
  assert.deepEqual(by.web!.changes, ['forced']);
  assert.equal(by.db!.action, 'skip');
  assert.equal(by.worker!.action, 'skip');
  const all = planDeploy({ desired: desired(), running });
  const worker = all.services.at(-1)!;
  assert.equal(worker.service, 'worker');
  assert.equal(worker.action, 'remove');
  assert.equal(worker.batches[0]!.remove.length, 1);
});

test('refusals: start-first with container_name, fixed port, host network; unknown service', () => {
  const bad = parseCompose([
    {
      name: 'c.yaml',
      text: `
services:
  api:
    image: x
    container_name: api
    ports: ["8080:80"]
    deploy: { update_config: { order: start-first } }
  hostnet:
    image: x
    network_mode: host
  db:
    image: x
    container_name: db
`,
    },
  ]);
  const r = checkPolicies(bad, ['hostnet'], ['api', 'hostnet', 'db', 'nope']);
  assert.equal(r.errors.length, 4);
  assert.match(r.errors[0]!, /unknown service "nope" in the services input: the Compose files define api, hostnet, db/);
  assert.ok(r.errors.some((e) => /"api" is rolled start-first but sets container_name "api"/.test(e)));
  assert.ok(r.errors.some((e) => /"api" .* fixed host port\(s\) 8080:80/.test(e)));
  assert.ok(r.errors.some((e) => /"hostnet" .* network_mode: host/.test(e)));
  // db: stop-first with one replica may keep its container_name.
  assert.equal(r.policies.get('db')!.refusals.length, 0);
});

test('policy: order in the file wins over routing', () => {
  const s = parseCompose([
    { name: 'c.yaml', text: 'services:\n  web:\n    image: x\n    deploy: { update_config: { order: stop-first } }\n' },
  ]).services[0]!;
  const p = decidePolicy(s, new Set(['web']));
  assert.equal(p.order, 'stop-first');
  assert.equal(p.reason, 'update_config.order: stop-first');
});

test('markdown plan shows action, replicas, order and why', () => {
  const md = renderPlanMarkdown(planDeploy({ desired: desired({ web: H2 }), running: steady() }));
  assert.match(md, /\| web \| roll \| 3 → 3 \| start-first \| routed by the proxy.*config changed.* \| \+1 -1, \+1 -1, \+1 -1 \|/);
});

test("Compose v2: a container labelled with any of the config's hashes (e.g. the no-deps hash) is current", () => {
  const H3 = '3'.repeat(64);
  const running = [ctr('db'), ctr('web'), ctr('web'), ctr('web'), ctr('proxy', { configHash: H3 })];
  const plan = planDeploy({
    desired: desired({}, {}, (d) => {
      if (d.service.name === 'proxy') d.configHashes = [H1, H3];
    }),
    running,
  });
  assert.equal(plan.services.find((s) => s.service === 'proxy')!.action, 'keep');
  assert.equal(plan.changes, false);
  // Without the alternative hash it is a change: the test above is not vacuous.
  const again = planDeploy({ desired: desired(), running });
  assert.equal(again.services.find((s) => s.service === 'proxy')!.action, 'roll');
});

test('upgrade v1 -> v2: v1-written containers are adopted when the config is unchanged since the serving release', () => {
  const V1 = 'a'.repeat(64);
  const v1 = { configHash: V1, composeVersion: '1.29.2' };
  const running = [ctr('db', v1), ctr('web', v1), ctr('web', v1), ctr('web', v1), ctr('proxy', v1)];
  const adopt = { flavor: 'v2' as const, release: 'R1' };
  // web changed (not adoptable), db and proxy unchanged since R1.
  const plan = planDeploy({
    desired: desired({ web: H2 }, {}, (d) => {
      if (d.service.name !== 'web') d.adopt = adopt;
    }),
    running,
  });
  const by = (n: string) => plan.services.find((s) => s.service === n)!;
  assert.equal(by('proxy').action, 'keep');
  assert.equal(by('db').action, 'keep');
  assert.match(by('proxy').changes.join(' '), /adopted 1 container\(s\) written by Compose 1\.29\.2 \(config unchanged since release R1\)/);
  // The changed service is rolled batch by batch, not recreated at once.
  assert.equal(by('web').action, 'roll');
  assert.deepEqual(
    by('web').batches.map((b) => [b.start, b.remove.length]),
    [
      [1, 1],
      [1, 1],
      [1, 1],
    ],
  );
  // Adoption is for the other flavor only: a v2 container with an unknown hash is still a change.
  const plan2 = planDeploy({
    desired: desired({}, {}, (d) => {
      d.adopt = adopt;
    }),
    running: [ctr('db', { configHash: V1 }), ctr('web'), ctr('web'), ctr('web'), ctr('proxy')],
  });
  assert.equal(plan2.services.find((s) => s.service === 'db')!.action, 'roll');
  // An adopted container still needs the desired image.
  const plan3 = planDeploy({
    desired: desired({}, { proxy: 'sha256:new' }, (d) => {
      d.adopt = adopt;
    }),
    running,
  });
  assert.equal(plan3.services.find((s) => s.service === 'proxy')!.action, 'roll');
});
