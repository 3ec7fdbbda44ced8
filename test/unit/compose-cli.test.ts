import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  composeCommand,
  configCommand,
  configHashCommand,
  parseConfigHashes,
  pullCommand,
  scaleUpCommand,
  upServiceCommand,
} from '../../src/engine/docker/compose-cli.js';

const p = {
  project: 'shop',
  files: ['/srv/handoff/shop/app/deploy/compose.yaml', '/srv/x y/override.yaml'],
  envFile: '/srv/handoff/shop/app/.env',
};

test('v1 and v2 prefixes, files in order, env file, quoting', () => {
  assert.equal(
    composeCommand('v1', p, ['ps']),
    "docker-compose -p shop -f /srv/handoff/shop/app/deploy/compose.yaml -f '/srv/x y/override.yaml' --env-file /srv/handoff/shop/app/.env ps",
  );
  assert.equal(
    composeCommand('v2', { project: 'shop', files: ['c.yaml'], projectDirectory: '/srv/app' }, ['ps']),
    'docker compose -p shop -f c.yaml --project-directory /srv/app ps',
  );
  assert.equal(composeCommand('v2', { project: 'p', files: ["it's.yaml"] }, []), `docker compose -p p -f 'it'\\''s.yaml'`);
});

test('config, config --hash, up --scale, up, pull', () => {
  const q = { project: 'shop', files: ['c.yaml'] };
  assert.equal(configCommand('v1', q), 'docker-compose -p shop -f c.yaml config');
  assert.equal(configHashCommand('v1', q, ['app', 'db']), 'docker-compose -p shop -f c.yaml config --hash=app,db');
  assert.equal(configHashCommand('v2', q), "docker compose -p shop -f c.yaml config '--hash=*'");
  assert.equal(scaleUpCommand('v1', q, 'app', 4), 'docker-compose -p shop -f c.yaml up -d --no-deps --no-recreate --scale app=4 app');
  assert.equal(scaleUpCommand('v2', q, 'app', 4), 'docker compose -p shop -f c.yaml up -d --no-deps --no-recreate --scale app=4 app');
  assert.throws(() => scaleUpCommand('v2', q, 'app', -1), /invalid replica count/);
  assert.equal(upServiceCommand('v1', q, 'db'), 'docker-compose -p shop -f c.yaml up -d --no-deps db');
  assert.equal(pullCommand('v2', q, ['app']), 'docker compose -p shop -f c.yaml pull --quiet app');
});

test('parseConfigHashes reads "svc hash" lines and ignores noise', () => {
  const h = 'a'.repeat(64);
  const m = parseConfigHashes(`app ${h}\nWARNING: something\ndb ${'b'.repeat(64)}\n`);
  assert.equal(m.get('app'), h);
  assert.equal(m.size, 2);
});

test('no command waits with --wait: it would block on every service of the project, and v1 lacks it', () => {
  const q = { project: 'shop', files: ['c.yaml'] };
  for (const flavor of ['v1', 'v2'] as const) {
    for (const cmd of [
      scaleUpCommand(flavor, q, 'app', 4),
      upServiceCommand(flavor, q, 'db'),
      pullCommand(flavor, q),
      configHashCommand(flavor, q),
    ]) {
      assert.doesNotMatch(cmd, /--wait/);
    }
    assert.match(scaleUpCommand(flavor, q, 'app', 4), /up -d --no-deps --no-recreate --scale app=4 app$/);
  }
});
