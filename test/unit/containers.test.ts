import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { isBroken, listProjectContainers, parseDockerInspect, replicaIp } from '../../src/engine/docker/containers.js';
import { inspectCommand, projectContainerIdsCommand } from '../../src/commands/docker.js';
import type { Remote } from '../../src/host/remote.js';

// Captured from the bench: docker-compose 1.29 project "hfx", app ×2 with a healthcheck, plain ×1 without.
const fixture = readFileSync(new URL('../fixtures/docker-inspect-v1.json', import.meta.url), 'utf8');

test('parses a real docker inspect output', () => {
  const cs = parseDockerInspect(fixture);
  assert.equal(cs.length, 3);
  const app1 = cs.find((c) => c.name === 'hfx_app_1')!;
  assert.equal(app1.service, 'app');
  assert.equal(app1.project, 'hfx');
  assert.equal(app1.number, 1);
  assert.equal(app1.configHash, '9119ac6702de6dc7e6a36eb232a06e3f1cba5b9b73147860afec63eb13e096e1');
  assert.match(app1.imageId, /^sha256:[0-9a-f]{64}$/);
  assert.equal(app1.image, 'handoff-test-app:v1');
  assert.equal(app1.state, 'running');
  assert.equal(app1.health, 'healthy');
  assert.ok(app1.healthLog.length > 0);
  assert.equal(app1.healthLog.at(-1)!.exitCode, 0);
  assert.match(app1.id, /^[0-9a-f]{64}$/);
  assert.match(app1.ips.hfx_default!, /^\d+\.\d+\.\d+\.\d+$/);
  assert.equal(app1.oneoff, false);
  const plain = cs.find((c) => c.service === 'plain')!;
  assert.equal(plain.health, 'none');
  assert.equal(isBroken(plain), false);
});

test('broken: exited, restarting; not a running unhealthy one (it may still serve: it is rolled)', () => {
  const [c] = parseDockerInspect(fixture);
  assert.equal(isBroken({ ...c!, state: 'exited' }), true);
  assert.equal(isBroken({ ...c!, state: 'restarting' }), true);
  assert.equal(isBroken({ ...c!, health: 'unhealthy' }), false);
  assert.equal(isBroken({ ...c!, health: 'starting' }), false);
});

test('replicaIp prefers a network shared with the proxy', () => {
  const [c] = parseDockerInspect(fixture);
  const x = { ...c!, ips: { a_net: '10.0.0.2', b_net: '10.1.0.2' } };
  assert.equal(replicaIp(x, ['b_net']), '10.1.0.2');
  assert.equal(replicaIp(x, ['zz']), '10.0.0.2');
  assert.equal(replicaIp({ ...x, ips: {} }), '');
});

test('empty output and non-arrays', () => {
  assert.deepEqual(parseDockerInspect(''), []);
  assert.throws(() => parseDockerInspect('{}'), /not a JSON array/);
});

test('listProjectContainers: ps then inspect; none = no inspect call; one-offs dropped', async () => {
  const calls: string[] = [];
  const mk = (ids: string) =>
    ({
      async exec(cmd: string) {
        calls.push(cmd);
        if (cmd.startsWith('docker ps')) return { code: 0, stdout: ids, stderr: '' };
        const data = JSON.parse(fixture);
        data[0].Config.Labels['com.docker.compose.oneoff'] = 'True';
        return { code: 0, stdout: JSON.stringify(data), stderr: '' };
      },
    }) as unknown as Remote;
  assert.deepEqual(await listProjectContainers(mk(''), 'hfx'), []);
  assert.deepEqual(calls, ['docker ps -aq --no-trunc --filter label=com.docker.compose.project=hfx']);
  const cs = await listProjectContainers(mk('a\nb\nc\n'), 'hfx');
  assert.equal(calls.at(-1), 'docker inspect --type container a b c');
  assert.equal(cs.length, 2);
  assert.equal(projectContainerIdsCommand("x'y"), `docker ps -aq --no-trunc --filter 'label=com.docker.compose.project=x'\\''y'`);
  assert.equal(inspectCommand(['a']), 'docker inspect --type container a');
});
