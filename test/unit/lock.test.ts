import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempRemote } from '../helpers/shell-remote.js';
import { acquireLock, lockDecision, releaseLock, LockTimeoutError, type LockOwner } from '../../src/lock.js';
import { parseAuditLog } from '../../src/audit.js';

const owner = (runId: string, actor = 'alice'): LockOwner => ({
  runId,
  runUrl: `https://github.com/o/r/actions/runs/${runId}`,
  actor,
  sha: 'abc1234def5678',
  startedAt: '2026-11-23T19:30:00.000Z',
});
const HOUR = 3_600_000;

test('lockDecision: wait while young, take over past the TTL, ownerless debris after a minute', () => {
  assert.deepEqual(lockDecision({ owner: owner('1'), ageMs: 59 * 60_000 }, HOUR), { action: 'wait' });
  assert.equal(lockDecision({ owner: owner('1'), ageMs: HOUR + 1000 }, HOUR).action, 'take-over');
  assert.deepEqual(lockDecision({ ageMs: 30_000 }, HOUR), { action: 'wait' });
  const d = lockDecision({ ageMs: 61_000 }, HOUR);
  assert.equal(d.action, 'take-over');
  assert.match(d.action === 'take-over' ? d.reason : '', /no owner\.json/);
  // a TTL shorter than the grace applies to ownerless locks too
  assert.equal(lockDecision({ ageMs: 20_000 }, 10_000).action, 'take-over');
});

test('a second acquirer waits, then fails naming the holder; release only by the owner', async () => {
  const { remote, home, cleanup } = await tempRemote();
  try {
    const h = await acquireLock(remote, home, owner('101'), { timeoutMs: 1000, ttlMs: HOUR });
    assert.equal(h.runId, '101');
    assert.equal(h.remoteDir, home);
    const stored = JSON.parse(await readFile(join(home, 'lock/owner.json'), 'utf8')) as LockOwner;
    assert.equal(stored.runId, '101');
    assert.equal(stored.token, h.token);

    const logs: string[] = [];
    const t0 = Date.now();
    await assert.rejects(acquireLock(remote, home, owner('202', 'bob'), { timeoutMs: 400, pollMs: 50, ttlMs: HOUR, log: (m) => logs.push(m) }), (e: Error) => {
      assert.ok(e instanceof LockTimeoutError);
      assert.match(e.message, /run 101 by alice \(sha abc1234\) since 2026-11-23T19:30:00.000Z/);
      assert.match(e.message, /https:\/\/github\.com\/o\/r\/actions\/runs\/101/);
      return true;
    });
    assert.ok(Date.now() - t0 >= 400, 'it waited for the timeout');
    assert.match(logs.join('\n'), /waiting for the deploy lock held by run 101/);

    assert.equal(await releaseLock(remote, home, '202'), 'not-ours');
    assert.ok(existsSync(join(home, 'lock')));
    assert.equal(await releaseLock(remote, home, '101', 'not-the-token'), 'not-ours');
    assert.equal(await releaseLock(remote, home, '101', h.token), 'released');
    assert.ok(!existsSync(join(home, 'lock')));
    assert.equal(await releaseLock(remote, home, '101', h.token), 'not-held');
    // once free, the other run gets it at once
    assert.equal((await acquireLock(remote, home, owner('202'), { timeoutMs: 0, ttlMs: HOUR })).runId, '202');
  } finally {
    await cleanup();
  }
});

test('a lock older than the TTL is taken over with a warning and an audit line', async () => {
  const { remote, home, cleanup } = await tempRemote();
  try {
    await acquireLock(remote, home, owner('101'), { timeoutMs: 0, ttlMs: HOUR });
    execFileSync('touch', ['-d', '2 hours ago', join(home, 'lock/owner.json')]);
    const logs: string[] = [];
    const h = await acquireLock(remote, home, owner('303', 'carol'), { timeoutMs: 0, ttlMs: HOUR, log: (m) => logs.push(m) });
    assert.equal(h.takenOver?.runId, '101');
    assert.match(logs.join('\n'), /warning: took over the deploy lock from run 101 by alice/);
    const stored = JSON.parse(await readFile(join(home, 'lock/owner.json'), 'utf8')) as LockOwner;
    assert.equal(stored.runId, '303');
    const audit = parseAuditLog(await readFile(join(home, 'audit.log'), 'utf8'));
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.kind, 'lock-takeover');
    assert.equal(audit[0]!.actor, 'carol');
    assert.match(audit[0]!.detail!, /run 101/);
    // the old holder's post step must not remove the new holder's lock
    assert.equal(await releaseLock(remote, home, '101'), 'not-ours');
    assert.ok(existsSync(join(home, 'lock')));
  } finally {
    await cleanup();
  }
});

test('an ownerless lock dir is taken over only after the grace period', async () => {
  const { remote, home, cleanup } = await tempRemote();
  try {
    await mkdir(join(home, 'lock'));
    await assert.rejects(acquireLock(remote, home, owner('1'), { timeoutMs: 0, ttlMs: HOUR }), /unknown holder \(no owner\.json\)/);
    execFileSync('touch', ['-d', '5 minutes ago', join(home, 'lock')]);
    const h = await acquireLock(remote, home, owner('1'), { timeoutMs: 0, ttlMs: HOUR });
    assert.equal(h.takenOver, undefined);
    assert.equal((JSON.parse(await readFile(join(home, 'lock/owner.json'), 'utf8')) as LockOwner).runId, '1');
  } finally {
    await cleanup();
  }
});

test('concurrent acquirers never hold the lock at the same time', async () => {
  const { remote, home, cleanup } = await tempRemote();
  try {
    let holders = 0;
    let maxHolders = 0;
    let done = 0;
    await Promise.all(
      Array.from({ length: 6 }, async (_, i) => {
        const h = await acquireLock(remote, home, owner(`run-${i}`), { timeoutMs: 30_000, pollMs: 20, ttlMs: HOUR });
        holders++;
        maxHolders = Math.max(maxHolders, holders);
        await new Promise((r) => setTimeout(r, 40));
        holders--;
        assert.equal(await releaseLock(remote, home, h.runId, h.token), 'released');
        done++;
      }),
    );
    assert.equal(done, 6);
    assert.equal(maxHolders, 1);
  } finally {
    await cleanup();
  }
});

test('concurrent takeovers of one stale lock: exactly one wins', async () => {
  const { remote, home, cleanup } = await tempRemote();
  try {
    await acquireLock(remote, home, owner('stale'), { timeoutMs: 0, ttlMs: HOUR });
    execFileSync('touch', ['-d', '3 hours ago', join(home, 'lock/owner.json')]);
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, (_, i) => acquireLock(remote, home, owner(`w${i}`), { timeoutMs: 600, pollMs: 30, ttlMs: HOUR })),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1);
    for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof LockTimeoutError);
    const winner = (won[0] as PromiseFulfilledResult<{ runId: string }>).value.runId;
    assert.equal((JSON.parse(await readFile(join(home, 'lock/owner.json'), 'utf8')) as LockOwner).runId, winner);
    assert.equal(parseAuditLog(await readFile(join(home, 'audit.log'), 'utf8')).filter((e) => e.kind === 'lock-takeover').length, 1);
  } finally {
    await cleanup();
  }
});

test('a lock dir that cannot be created is an error at once, not a wait', async () => {
  const { remote, home, cleanup } = await tempRemote();
  try {
    await assert.rejects(acquireLock(remote, join(home, 'missing/dir'), owner('1'), { timeoutMs: 5000, ttlMs: HOUR }), /cannot create the deploy lock/);
  } finally {
    await cleanup();
  }
});
