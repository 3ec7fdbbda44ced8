/**
 * The Swarm target's pure parts (model/swarm-stack.ts): the override file, the refusals before any
 * change, the outcome of an update; and `docker stack deploy`'s command line, run by a local sh with
 * a fake docker that records its arguments and environment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { parseCompose } from '../../src/model/compose.js';
import { renderEnvFile } from '../../src/model/envfile.js';
import { checkSwarmStack, parseConverge, parseStackServices, renderSwarmOverride, updateOutcome } from '../../src/model/swarm-stack.js';
import { stackDeployCommand } from '../../src/commands/swarm.js';

const STACK = `version: "3.8"
services:
  app:
    image: handoff-test-app:v2
    stop_signal: SIGKILL
    stop_grace_period: 15s
    deploy:
      replicas: 3
      endpoint_mode: dnsrr
      update_config: { parallelism: 2, order: start-first, monitor: 7s }
    healthcheck: { test: ["CMD", "true"], interval: 2s }
  proxy:
    image: handoff-test-haproxy:latest
  db:
    image: postgres:16
`;
const model = () => parseCompose([{ name: 'stack.yaml', text: STACK }]);
const ID = (c: string) => `sha256:${c.repeat(64)}`;

test('the override pins every image by ID and gates only the routed services', () => {
  const text = renderSwarmOverride({
    model: model(),
    imageIds: new Map([
      ['app', ID('a')],
      ['proxy', ID('b')],
      ['db', ID('c')],
    ]),
    gated: ['app'],
    drainTimeoutS: 30,
  });
  const doc = parse(text) as { version: string; services: Record<string, Record<string, unknown>> };
  assert.equal(doc.version, '3.8');
  assert.deepEqual(doc.services.app, {
    image: ID('a'),
    // Swarm's own stop is a signal nothing handles, for drain_timeout + the service's grace...
    stop_signal: 'SIGCONT',
    stop_grace_period: '45s',
    // ...and handoff stops the drained task with the service's real signal and grace.
    labels: { 'handoff.stop-signal': 'SIGKILL', 'handoff.stop-grace': '15' },
    deploy: { rollback_config: { parallelism: 2, order: 'start-first', monitor: '7s' } },
  });
  assert.deepEqual(doc.services.proxy, { image: ID('b') });
  assert.deepEqual(doc.services.db, { image: ID('c') });
});

test('a routed service without its own stop_signal is stopped with SIGTERM after its drain', () => {
  const m = parseCompose([{ name: 's.yaml', text: STACK.replace('    stop_signal: SIGKILL\n', '') }]);
  const doc = parse(renderSwarmOverride({ model: m, imageIds: new Map(), gated: ['app'], drainTimeoutS: 5 })) as {
    services: Record<string, { labels: Record<string, string>; stop_grace_period: string; image?: string }>;
  };
  assert.equal(doc.services.app!.labels['handoff.stop-signal'], 'SIGTERM');
  assert.equal(doc.services.app!.stop_grace_period, '20s');
  assert.equal(doc.services.app!.image, undefined, 'no ID known: the image is left as written');
});

test('refused before any change: no Compose file format 3, a routed service behind the virtual IP; warned: no healthcheck', () => {
  assert.deepEqual(checkSwarmStack(model(), ['app'], ''), { errors: [], warnings: [] });
  const noVersion = parseCompose([{ name: 's.yaml', text: STACK.replace('version: "3.8"\n', '') }]);
  assert.match(checkSwarmStack(noVersion, ['app'], '').errors.join('\n'), /needs `version: "3.8"`.*found none/);
  const vip = parseCompose([{ name: 's.yaml', text: STACK.replace('      endpoint_mode: dnsrr\n', '') }]);
  assert.match(
    checkSwarmStack(vip, ['app'], 'server-template app 10 app:8080').errors.join('\n'),
    /service app .*set `deploy.endpoint_mode: dnsrr`.*`tasks.app`/,
  );
  assert.deepEqual(checkSwarmStack(vip, ['app'], 'server-template app 10 tasks.app:8080').errors, [], 'tasks.<service> reaches the tasks');
  const noHealth = parseCompose([{ name: 's.yaml', text: STACK.replace(/ {4}healthcheck:.*\n/, '') }]);
  assert.match(checkSwarmStack(noHealth, ['app'], '').warnings.join('\n'), /service app has no healthcheck/);
});

test('the outcome is read from the services after convergence, not from docker stack deploy', () => {
  const services = parseStackServices('p_app\t3\trollback_completed\trollback completed\np_proxy\t1\t\t\n');
  assert.deepEqual(services[1], { name: 'p_proxy', replicas: 1, update: '', message: '' });
  assert.deepEqual(updateOutcome(services, true), {
    failed: true,
    rolledBack: true,
    message: 'service p_app: rollback_completed (rollback completed)',
  });
  assert.equal(updateOutcome(parseStackServices('p_app\t3\tpaused\tupdate paused due to failure\n'), true).rolledBack, false);
  assert.equal(updateOutcome(parseStackServices('p_app\t3\tpaused\tx\n'), true).failed, true);
  assert.deepEqual(updateOutcome(parseStackServices('p_app\t3\tcompleted\tupdate completed\np_proxy\t1\t\t\n'), true), {
    failed: false,
    rolledBack: false,
  });
  assert.match(updateOutcome(parseStackServices('p_app\t3\tcompleted\tx\n'), false).message!, /did not settle/);
});

test('the host-side gate reports each drain and the end', () => {
  const out = parseConverge('drain c1 t1 4 0 p_app\ndrain c2 t2 30 timeout p_app\nsettled\n');
  assert.deepEqual(out, {
    settled: true,
    drains: [
      { container: 'c1', task: 't1', service: 'p_app', seconds: 4, end: 'idle' },
      { container: 'c2', task: 't2', service: 'p_app', seconds: 30, end: 'timeout' },
    ],
  });
  assert.equal(parseConverge('deadline\n').settled, false);
});

test('docker stack deploy gets the release env file as its environment, every value one literal argument', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'handoff-swarm-'));
  const composeDir = join(dir, `it's $(touch pwned) deploy`);
  await mkdir(composeDir);
  await mkdir(join(dir, 'bin'));
  await writeFile(
    join(dir, 'bin/docker'),
    `#!/bin/sh\nprintf '%s\\n' "$@" > "${dir}/args"\nprintf '%s' "$APP_IMAGE|$DB_PASSWORD" > "${dir}/env"\n`,
  );
  await chmod(join(dir, 'bin/docker'), 0o755);
  await writeFile(join(dir, '.env'), renderEnvFile({ APP_IMAGE: 'app:v2', DB_PASSWORD: 'p w $x "q"' }));
  const cmd = stackDeployCommand(composeDir, join(dir, '.env'), ['stack.yaml', 'handoff.swarm.yaml'], 'web');
  const r = spawnSync('sh', ['-c', cmd], { env: { PATH: `${dir}/bin:/usr/bin:/bin` }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual((await readFile(join(dir, 'args'), 'utf8')).trim().split('\n'), [
    'stack',
    'deploy',
    '--resolve-image',
    'never',
    '-c',
    'stack.yaml',
    '-c',
    'handoff.swarm.yaml',
    'web',
  ]);
  assert.equal(
    await readFile(join(dir, 'env'), 'utf8'),
    'app:v2|p w $x "q"',
    'values reach the stack as written, secrets only through the env file',
  );
  for (const where of [dir, composeDir, process.cwd()]) assert.equal(existsSync(join(where, 'pwned')), false, 'nothing ran from a value');
});
