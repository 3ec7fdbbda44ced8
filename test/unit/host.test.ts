import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHostFacts } from '../../src/host/host.js';

const both = 'motd line\ndocker=20.10.24+dfsg1\ncompose=v2 2.26.1-4\ncompose=v1 1.29.2\ncompose=none\n';

test('auto prefers the v2 plugin when the host has both', () => {
  assert.deepEqual(parseHostFacts(both, 'deploy'), { dockerVersion: '20.10.24+dfsg1', compose: 'v2', composeVersion: '2.26.1-4' });
});

test('compose: v1 picks v1 on a host with both; auto falls back to v1 alone', () => {
  assert.equal(parseHostFacts(both, 'deploy', 'v1').compose, 'v1');
  assert.equal(parseHostFacts('docker=26.1.5\ncompose=v1 1.29.2\ncompose=none\n', 'deploy').compose, 'v1');
  assert.equal(parseHostFacts('docker=26.1.5\ncompose=v2 v2.29.7\ncompose=none\n', 'deploy').composeVersion, '2.29.7');
});

test('a flavor asked for but missing names the input and what the host has', () => {
  assert.throws(
    () => parseHostFacts('docker=26.1.5\ncompose=v1 1.29.2\ncompose=none\n', 'deploy', 'v2'),
    /input 'compose' asks for v2.*docker compose.*has Compose v1 1\.29\.2: set compose: v1 or auto/,
  );
  assert.throws(
    () => parseHostFacts('docker=26.1.5\ncompose=none\n', 'deploy'),
    /neither `docker compose` \(v2\) nor `docker-compose` \(v1\)/,
  );
});

test('the Swarm target needs no Compose on the host (docker stack deploy is the engine CLI)', () => {
  assert.equal(parseHostFacts('docker=20.10.24\ncompose=none\n', 'deploy', 'auto', false).composeVersion, 'none');
  assert.throws(() => parseHostFacts('docker=\ncompose=none\n', 'deploy', 'auto', false), /Docker is not usable/);
});

test('docker unusable: permission denied names the group fix', () => {
  assert.throws(
    () => parseHostFacts('docker=permission denied while trying to connect\ncompose=none\n', 'deploy'),
    /usermod -aG docker deploy/,
  );
});
