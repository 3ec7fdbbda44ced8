/**
 * The Plan phase (src/phases/plan.ts over desired.ts): the desired state read on the host (the
 * release's model, relocated to app/ and hashed there), compared with what runs; what is routed
 * rolls start-first; a proxy that itself changes is warned about; the host-side refusals (the only
 * ones a rollback gets). Docker is an in-memory host plus Compose answers (test/helpers/session.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planPhase } from '../../src/phases/plan.js';
import type { History, Release } from '../../src/phases/release.js';
import { FakeClock, FakeDockerHost } from '../helpers/fake-docker-host.js';
import { answerCompose, imageId, manifest, R, tempHost, testSession, type ComposeAnswers } from '../helpers/session.js';

const OLD = 'a'.repeat(64);
const NEW = 'b'.repeat(64);
const PROXY_HASH = 'c'.repeat(64);
const APP_OLD = imageId('1');
const APP_NEW = imageId('2');
const PROXY_IMAGE = imageId('3');

/** app (2 replicas on OLD) and proxy run; the release R(2) has app on NEW. */
async function setup(o: { proxyImage?: string; app?: Record<string, unknown>; inputs?: Record<string, string> } = {}) {
  const docker = new FakeDockerHost(new FakeClock(), [], { project: 'shop' });
  docker.seed('app', { configHash: OLD, imageId: APP_OLD });
  docker.seed('app', { configHash: OLD, imageId: APP_OLD });
  docker.seed('proxy', { configHash: PROXY_HASH, imageId: PROXY_IMAGE });
  const t = await tempHost(docker);
  const releaseRoot = `${t.remoteDir}/releases/${R(2)}`;
  const answers: ComposeAnswers = {
    model: {
      services: {
        app: { image: 'app:v2', deploy: { replicas: 2 }, ...o.app },
        proxy: {
          image: 'haproxy:2.6',
          volumes: [{ type: 'bind', source: `${releaseRoot}/deploy/haproxy`, target: '/usr/local/etc/haproxy', read_only: true }],
        },
      },
    },
    hashes: { app: NEW, proxy: PROXY_HASH },
    images: { 'app:v2': APP_NEW, 'haproxy:2.6': o.proxyImage ?? PROXY_IMAGE },
  };
  answerCompose(t.host, answers);
  const hashInputs: string[] = [];
  t.host.on(/ config '?--hash=\*'?$/, (_cmd, options) => {
    hashInputs.push(String(options.stdin ?? ''));
    return Object.entries(answers.hashes)
      .map(([svc, h]) => `${svc} ${h}\n`)
      .join('');
  });
  const { s, lines } = testSession({ remote: t.host, remoteDir: t.remoteDir, inputs: o.inputs });
  const release: Release = { id: R(2), manifest: manifest(R(2), { result: 'pending' }), composeFiles: ['deploy/compose.yaml'] };
  const history: History = { releases: [manifest(R(1))], current: R(1), serving: manifest(R(1)) };
  return { ...t, docker, s, lines, release, history, hashInputs, releaseRoot, run: () => planPhase(s, release, ['app'], history) };
}

test('the changed, routed service rolls start-first; the unchanged proxy is kept; the report has the plan', async () => {
  const t = await setup();
  try {
    const { plan, proxyService, model } = await t.run();
    assert.equal(proxyService, 'proxy');
    assert.deepEqual(
      model.services.map((x) => x.name),
      ['app', 'proxy'],
    );
    assert.deepEqual(
      plan.services.map((p) => [p.service, p.action, p.order]),
      [
        ['app', 'roll', 'start-first'],
        ['proxy', 'keep', 'stop-first'],
      ],
    );
    assert.deepEqual(t.s.report.planJson, [
      { service: 'app', action: 'roll', order: 'start-first', old: 2, new: 2, batches: plan.services[0]!.batches.length },
      { service: 'proxy', action: 'keep', order: 'stop-first', old: 1, new: 1, batches: 0 },
    ]);
    assert.ok(t.s.report.planText && t.lines.includes(t.s.report.planText));
    assert.match(t.s.report.planMarkdown ?? '', /app/);
    // The rolled service's warnings reach the log (here: no healthcheck); nothing about the kept proxy.
    const warnings = t.lines.filter((l) => l.startsWith('warning:'));
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0]!, /^warning: service "app" has no healthcheck/);
  } finally {
    await t.cleanup();
  }
});

test('the model is read from the release and hashed as it will run from app/', async () => {
  const t = await setup();
  try {
    await t.run();
    const config = t.host.docker.find((c) => c.endsWith(' config --format json'))!;
    assert.ok(config.includes(`-f ${t.releaseRoot}/deploy/compose.yaml`), config);
    assert.ok(config.includes(`--project-directory ${t.releaseRoot}/deploy`), config);
    const hash = t.host.docker.filter((c) => /--hash=/.test(c));
    assert.equal(hash.length, 2, 'as loaded, and without depends_on');
    assert.ok(
      hash.every((c) => c.includes(`--project-directory ${t.remoteDir}/app/deploy`)),
      hash.join('\n'),
    );
    assert.equal(t.hashInputs.length, 2);
    for (const stdin of t.hashInputs) {
      assert.ok(stdin.includes(`${t.remoteDir}/app/deploy/haproxy`), stdin);
      assert.ok(!stdin.includes(`/releases/`), stdin);
    }
  } finally {
    await t.cleanup();
  }
});

test('a proxy whose image changed rolls, with a warning that recreating it drops its connections', async () => {
  const t = await setup({ proxyImage: imageId('4') });
  try {
    const { plan } = await t.run();
    const proxy = plan.services.find((p) => p.service === 'proxy')!;
    assert.equal(proxy.action, 'roll');
    assert.ok(proxy.warnings.some((w) => w.startsWith('the proxy (proxy) itself changes')));
    assert.ok(t.lines.some((l) => l.startsWith('warning: the proxy (proxy) itself changes')));
  } finally {
    await t.cleanup();
  }
});

test('the services input: only those are planned; the others are skipped', async () => {
  const t = await setup({ proxyImage: imageId('4'), inputs: { services: 'app' } });
  try {
    const { plan } = await t.run();
    assert.deepEqual(
      plan.services.map((p) => [p.service, p.action]),
      [
        ['app', 'roll'],
        ['proxy', 'skip'],
      ],
    );
    assert.equal(
      t.lines.some((l) => l.includes('itself changes')),
      false,
      'a skipped proxy is not warned about',
    );
  } finally {
    await t.cleanup();
  }
});

test('a routed service with a container_name is refused on the host, before any change', async () => {
  const t = await setup({ app: { container_name: 'shop-app' } });
  try {
    await assert.rejects(t.run(), /refused before any change on the host:[\s\S]*app[\s\S]*container_name/);
    assert.equal(
      t.docker.commands.some((c) => / up /.test(c)),
      false,
    );
  } finally {
    await t.cleanup();
  }
});
