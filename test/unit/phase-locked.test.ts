/**
 * src/phases/locked.ts, withDeployLock, against the real lock and release store in a temp dir:
 * however the deploy ends, cleanups run and the lock goes (its saved state with it); a deploy that
 * stops before Record abandons its release; one that stops midway (interrupted) leaves the lock and
 * the release to the post step; a fresh connection is used only while the lock is still ours.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Remote } from '../../src/host/remote.js';
import { resolveRemoteDir } from '../../src/host/release-store.js';
import { withDeployLock } from '../../src/phases/locked.js';
import { markInterrupted } from '../../src/phases/session.js';
import type { ReconnectingRemote } from '../../src/ssh/index.js';
import { manifest, R, readManifestFile, savedState, seedReleases, TestHost, testSession } from '../helpers/session.js';

/** withDeployLock wants a ReconnectingRemote for setVerify alone: a TestHost that keeps the check. */
class VerifyingHost extends TestHost {
  verify?: (fresh: Remote) => Promise<void>;
  setVerify(v: (fresh: Remote) => Promise<void>): void {
    this.verify = v;
  }
}

async function setup() {
  const home = await mkdtemp(join(tmpdir(), 'handoff-phase-'));
  const host = new VerifyingHost(home);
  const remoteDir = await resolveRemoteDir(host, 'handoff/shop');
  await seedReleases(host, remoteDir, [manifest(R(1)), manifest(R(2), { result: 'pending' })], R(1));
  const { s, lines } = testSession({ remote: host, remoteDir });
  const state = await savedState();
  const ran: string[] = [];
  s.cleanups.push(async () => void ran.push('first'));
  s.cleanups.push(async () => {
    ran.push('second');
    throw new Error('a cleanup that fails');
  });
  s.cleanups.push(async () => void ran.push('third'));
  const lockDir = join(remoteDir, 'lock');
  return {
    host,
    remoteDir,
    s,
    lines,
    state,
    ran,
    lockDir,
    run: (body: () => Promise<void>) => withDeployLock(s, host as unknown as ReconnectingRemote, body),
    async done() {
      await state.restore();
      await rm(home, { recursive: true, force: true });
    },
  };
}

test('a deploy that ends well: the lock is held during the body, then released; every cleanup ran', async () => {
  const t = await setup();
  try {
    let token = '';
    await t.run(async () => {
      assert.ok(existsSync(join(t.lockDir, 'owner.json')), 'the body runs under the lock');
      const saved = JSON.parse((await t.state.read()).lock ?? '{}') as { token?: string; runId?: string };
      token = saved.token ?? '';
      assert.equal(saved.runId, t.s.run.runId);
      assert.match(await readFile(join(t.lockDir, 'owner.json'), 'utf8'), new RegExp(token));
    });
    assert.ok(token.length > 0);
    assert.equal(existsSync(t.lockDir), false, 'the lock is released');
    assert.equal((await t.state.read()).lock, '', 'the post step has no lock to release');
    assert.deepEqual(t.ran, ['first', 'second', 'third'], 'a failing cleanup does not stop the others');
  } finally {
    await t.done();
  }
});

test('a deploy that throws before Record: its pending release is abandoned with the error, the lock released', async () => {
  const t = await setup();
  try {
    await assert.rejects(
      t.run(async () => {
        t.s.report.releaseId = R(2);
        throw new Error('compose config failed: no such file');
      }),
      /compose config failed/,
    );
    const m = await readManifestFile(t.remoteDir, R(2));
    assert.deepEqual([m.result, m.reason], ['abandoned', 'compose config failed: no such file']);
    assert.equal((await readManifestFile(t.remoteDir, R(1))).result, 'success', 'a recorded release is left alone');
    assert.equal(existsSync(t.lockDir), false);
    assert.deepEqual(t.ran, ['first', 'second', 'third']);
  } finally {
    await t.done();
  }
});

test('a deploy that stops midway (interrupted): lock, release and state are left for the post step', async () => {
  const t = await setup();
  try {
    await assert.rejects(
      t.run(async () => {
        t.s.report.releaseId = R(2);
        markInterrupted(t.s, { releaseId: R(2), previous: R(1) });
        throw new Error('connection lost');
      }),
      /connection lost/,
    );
    assert.equal((await readManifestFile(t.remoteDir, R(2))).result, 'pending', 'the post step writes what happened');
    assert.ok(existsSync(join(t.lockDir, 'owner.json')), 'the lock stays held');
    const state = await t.state.read();
    assert.deepEqual(JSON.parse(state.deploy ?? ''), { releaseId: R(2), previous: R(1) });
    assert.ok(JSON.parse(state.lock ?? '').token, 'the post step can release the lock');
    assert.ok(t.lines.some((l) => /^warning: .*the post step restores release .*aaaa001.* then frees the deploy lock/.test(l)));
    assert.deepEqual(t.ran, ['first', 'second', 'third'], 'cleanups run even then');
  } finally {
    await t.done();
  }
});

test('a fresh connection is accepted while the lock is ours, refused once it was taken over', async () => {
  const t = await setup();
  try {
    await t.run(async () => {
      assert.ok(t.host.verify, 'withDeployLock sets the check');
      await t.host.verify(t.host);
      const owner = join(t.lockDir, 'owner.json');
      const text = await readFile(owner, 'utf8');
      const { token } = JSON.parse(text) as { token: string };
      await writeFile(owner, text.replace(token, 'someone-else'));
      await assert.rejects(t.host.verify(t.host), /the deploy lock was taken over/);
    });
  } finally {
    await t.done();
  }
});
