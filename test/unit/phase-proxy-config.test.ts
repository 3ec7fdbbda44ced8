/**
 * src/phases/proxy-config.ts: the release's HAProxy config compared with the live one in app/,
 * checked in a throwaway container only when it changed (before anything reaches the running proxy),
 * and reloaded only when the proxy itself is kept. Files are real (a temp dir); Docker is a fake that
 * records what it is asked.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { listProjectContainers } from '../../src/engine/docker/containers.js';
import { parseCompose } from '../../src/model/compose.js';
import { planDeploy } from '../../src/model/plan.js';
import { checkPolicies } from '../../src/model/rollout-policy.js';
import { HaproxyConfigError } from '../../src/proxy/haproxy/reload.js';
import { checkProxyConfig } from '../../src/phases/proxy-config.js';
import { proxyHost } from '../../src/phases/gate.js';
import { reloadIfChanged } from '../../src/proxy/haproxy/driver.js';
import type { ConfigChange } from '../../src/proxy/driver.js';
import type { Plan } from '../../src/model/plan.js';
import type { Session } from '../../src/phases/session.js';

/** The HAProxy driver's reload before the rollout, as the deploy calls it for this plan. */
function reloadProxyIfChanged(s: Session, change: ConfigChange, plan: Plan, proxyService: string | undefined, opener: undefined) {
  const proxyAction = plan.services.find((p) => p.service === proxyService)?.action;
  return reloadIfChanged(proxyHost(s, 'r'), { ...change, ...(proxyAction ? { proxyAction } : {}) }, proxyService ?? '', opener);
}
import type { Release } from '../../src/phases/release.js';
import { FakeClock, FakeDockerHost } from '../helpers/fake-docker-host.js';
import { imageId, manifest, R, seedReleases, tempHost, testSession } from '../helpers/session.js';

const cfg = readFileSync(new URL('../../examples/haproxy/haproxy.cfg', import.meta.url), 'utf8');
const edited = cfg.replace(/timeout client\s+\S+/, 'timeout client 61s');
const model = parseCompose([
  {
    name: 'compose.yaml',
    text: 'services:\n  app:\n    image: app:v2\n  proxy:\n    image: haproxy:2.6\n    volumes: ["./haproxy:/usr/local/etc/haproxy:ro"]\n',
  },
]);
const CFG = 'deploy/haproxy/haproxy.cfg';
const HASH = 'c'.repeat(64);

/** Release R(2) on the host with `next` as its proxy config (none: no config file), app/ with `live`. */
async function setup(o: { next?: string; live?: string; check?: 'ok' | 'reject' }) {
  const docker = new FakeDockerHost(new FakeClock(), [], { project: 'shop' });
  docker.seed('app', { configHash: HASH, imageId: imageId('8') });
  docker.seed('proxy', { configHash: HASH, imageId: imageId('7') });
  const t = await tempHost(docker);
  const files = o.next === undefined ? ['deploy/compose.yaml'] : ['deploy/compose.yaml', CFG];
  await seedReleases(t.host, t.remoteDir, [manifest(R(2), { files, result: 'pending' })], undefined, o.next ? { [CFG]: o.next } : {});
  if (o.live !== undefined) {
    await mkdir(join(t.remoteDir, 'app/deploy/haproxy'), { recursive: true });
    await writeFile(join(t.remoteDir, 'app', CFG), o.live);
  }
  t.host.on(/^docker run --rm --network none --entrypoint haproxy /, () =>
    o.check === 'reject'
      ? { code: 1, stdout: '[ALERT] (1) : config : parsing [haproxy.cfg:12] : unknown keyword "timeout clinet"\n', stderr: '' }
      : { code: 0, stdout: 'Configuration file is valid\n', stderr: '' },
  );
  t.host.on(/^docker kill --signal USR2 /, '');
  t.host.on(/^docker logs --since /, '[NOTICE]   (1) : Reloading HAProxy\n[NOTICE]   (1) : Loading success.\n');
  const { s, lines } = testSession({ remote: t.host, remoteDir: t.remoteDir });
  const release: Release = { id: R(2), manifest: manifest(R(2), { files }), composeFiles: ['deploy/compose.yaml'] };
  t.host.commands.length = 0;
  t.host.docker.length = 0;
  return { ...t, docker, s, lines, release };
}

test('a changed config is checked in a throwaway container of the proxy image, from the release (not app/)', async () => {
  const t = await setup({ next: edited, live: cfg });
  try {
    const r = await checkProxyConfig(t.s, t.release, model);
    assert.deepEqual(r, { next: edited, live: cfg, changed: true });
    assert.equal(t.host.docker.length, 1);
    assert.equal(
      t.host.docker[0],
      `docker run --rm --network none --entrypoint haproxy -v ${t.remoteDir}/releases/${R(2)}/deploy/haproxy:/usr/local/etc/haproxy:ro haproxy:2.6 -c -f /usr/local/etc/haproxy/haproxy.cfg 2>&1`,
    );
    assert.ok(t.lines.includes('the new HAProxy config is valid'));
  } finally {
    await t.cleanup();
  }
});

test('an unchanged config is not checked: no container is started', async () => {
  const t = await setup({ next: cfg, live: cfg });
  try {
    assert.deepEqual(await checkProxyConfig(t.s, t.release, model), { next: cfg, live: cfg, changed: false });
    assert.deepEqual(t.host.docker, []);
  } finally {
    await t.cleanup();
  }
});

test('a first deploy (nothing live yet) counts as changed and is checked', async () => {
  const t = await setup({ next: cfg });
  try {
    assert.deepEqual(await checkProxyConfig(t.s, t.release, model), { next: cfg, changed: true });
    assert.equal(t.host.docker.length, 1);
  } finally {
    await t.cleanup();
  }
});

test('a release without a proxy config: nothing to compare or check', async () => {
  const t = await setup({ live: cfg });
  try {
    const r = await checkProxyConfig(t.s, t.release, model);
    assert.deepEqual(r, { changed: false });
    assert.deepEqual(t.host.docker, []);
  } finally {
    await t.cleanup();
  }
});

test('a config HAProxy rejects stops the deploy, naming the file and quoting HAProxy', async () => {
  const t = await setup({ next: edited, live: cfg, check: 'reject' });
  try {
    await assert.rejects(
      checkProxyConfig(t.s, t.release, model),
      (e: unknown) =>
        e instanceof HaproxyConfigError &&
        e.message.includes(`releases/${R(2)}/deploy/haproxy/haproxy.cfg`) &&
        /timeout clinet/.test(e.message),
    );
  } finally {
    await t.cleanup();
  }
});

/** The plan with the proxy kept (its running hash is the desired one) or rolled (it differs). */
async function planWithProxy(t: Awaited<ReturnType<typeof setup>>, proxy: 'keep' | 'roll') {
  const { policies } = checkPolicies(model, ['app']);
  const desired = model.services.map((service) => ({
    service,
    configHash: service.name === 'proxy' && proxy === 'keep' ? HASH : 'd'.repeat(64),
    imageId: imageId('7'),
    policy: policies.get(service.name)!,
  }));
  const plan = planDeploy({ desired, running: await listProjectContainers(t.docker, 'shop') });
  assert.equal(plan.services.find((p) => p.service === 'proxy')?.action, proxy);
  t.host.docker.length = 0;
  return plan;
}

test('reloadProxyIfChanged: a changed config of a kept proxy is reloaded in its running container', async () => {
  const t = await setup({ next: edited, live: cfg });
  try {
    const plan = await planWithProxy(t, 'keep');
    await reloadProxyIfChanged(t.s, { next: edited, live: cfg, changed: true }, plan, 'proxy', undefined);
    const id = t.docker.of('proxy')[0]!.id;
    assert.deepEqual(
      t.host.docker.filter((c) => c.startsWith('docker kill')),
      [`docker kill --signal USR2 ${id}`],
      'the proxy, and only the proxy, is told to reload',
    );
    assert.deepEqual(
      t.s.timeline.events.map((e) => [e.action, e.service, e.container]),
      [['proxy-reload', 'proxy', 'shop-proxy-1']],
    );
    assert.ok(t.lines.includes('reloaded HAProxy in shop-proxy-1'));
  } finally {
    await t.cleanup();
  }
});

test('reloadProxyIfChanged: no reload when the config is unchanged, on a first deploy, or when the proxy is recreated anyway', async () => {
  const t = await setup({ next: edited, live: cfg });
  try {
    const keep = await planWithProxy(t, 'keep');
    const roll = await planWithProxy(t, 'roll');
    await reloadProxyIfChanged(t.s, { next: cfg, live: cfg, changed: false }, keep, 'proxy', undefined);
    await reloadProxyIfChanged(t.s, { next: cfg, changed: true }, keep, 'proxy', undefined);
    await reloadProxyIfChanged(t.s, { next: edited, live: cfg, changed: true }, roll, 'proxy', undefined);
    await reloadProxyIfChanged(t.s, { next: edited, live: cfg, changed: true }, keep, undefined, undefined);
    assert.deepEqual(t.host.docker, []);
    assert.deepEqual(t.s.timeline.events, []);
  } finally {
    await t.cleanup();
  }
});
