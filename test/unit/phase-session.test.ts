/**
 * src/phases/session.ts: the state the post step reads (markInterrupted / settled, through
 * GITHUB_STATE), and where a release is loaded from versus where it is hashed and run (planningView).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Remote } from '../../src/host/remote.js';
import { markInterrupted, planningView, settled } from '../../src/phases/session.js';
import { R, savedState, testSession } from '../helpers/session.js';

const nowhere = {} as Remote; // these functions never touch the host

test('markInterrupted saves what the post step must restore; settled clears it', async () => {
  const state = await savedState();
  try {
    const { s } = testSession({ remote: nowhere });
    markInterrupted(s, { releaseId: R(2), previous: R(1) });
    assert.deepEqual(s.interrupted, { releaseId: R(2), previous: R(1) });
    assert.deepEqual(JSON.parse((await state.read()).deploy ?? ''), { releaseId: R(2), previous: R(1) });
    settled(s);
    assert.equal(s.interrupted, undefined);
    assert.equal((await state.read()).deploy, '');
  } finally {
    await state.restore();
  }
});

test('a first deploy has no previous release to restore: none is saved', async () => {
  const state = await savedState();
  try {
    const { s } = testSession({ remote: nowhere });
    markInterrupted(s, { releaseId: R(1) });
    assert.deepEqual(JSON.parse((await state.read()).deploy ?? ''), { releaseId: R(1) });
  } finally {
    await state.restore();
  }
});

test('planningView: loaded from the release (its env file), hashed and run from app/, paths relocated there', () => {
  const v = planningView('/srv/h/shop', ['deploy/compose.yaml', 'deploy/prod.yaml'], R(3), 'shop');
  const rel = `/srv/h/shop/releases/${R(3)}`;
  assert.deepEqual(v.load, {
    project: 'shop',
    files: [`${rel}/deploy/compose.yaml`, `${rel}/deploy/prod.yaml`],
    envFile: `${rel}/.env`,
    projectDirectory: `${rel}/deploy`,
  });
  assert.deepEqual(v.hashAs, { ...v.load, projectDirectory: '/srv/h/shop/app/deploy' });
  assert.deepEqual(v.relocation, { from: rel, to: '/srv/h/shop/app' });
});
