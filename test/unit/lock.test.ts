import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempRemote, type ShellRemote } from '../helpers/shell-remote.js';
import {
  acquireLock,
  heartbeatStaleMs,
  lockDecision,
  lockHeldBy,
  parseLockLook,
  releaseLock,
  startHeartbeat,
  LockTimeoutError,
  type LockOwner,
} from '../../src/host/lock.js';
import { parseAuditLog } from '../../src/host/audit.js';
import type { ExecOptions, ExecResult, Remote } from '../../src/host/remote.js';
import { collectLog } from '../helpers/collect-log.js';

const owner = (runId: string, actor = 'alice'): LockOwner => ({
  runId,
  runUrl: `https://github.com/o/r/actions/runs/${runId}`,
  actor,
  sha: 'abc1234def5678',
  startedAt: '2026-11-23T19:30:00.000Z',
});
const HOUR = 3_600_000;

/**
 * A ShellRemote whose connection can be cut: `down` makes exec fail without running anything;
 * `loseAnswer(pred)` runs the next matching command on the host and then throws, as when the
 * connection drops after the command ran; `before(pred, fn)` runs fn on the host first.
 */
class FlakyRemote implements Remote {
  down = false;
  execs = 0;
  private losers: Array<(cmd: string) => boolean> = [];
  private hooks: Array<{ pred: (cmd: string) => boolean; fn: () => void }> = [];
  constructor(readonly inner: ShellRemote) {}
  loseAnswer(pred: (cmd: string) => boolean): void {
    this.losers.push(pred);
  }
  before(pred: (cmd: string) => boolean, fn: () => void): void {
    this.hooks.push({ pred, fn });
  }
  async exec(command: string, options?: ExecOptions): Promise<ExecResult> {
    this.execs++;
    if (this.down) throw new Error('connection lost: ECONNRESET');
    const h = this.hooks.findIndex((x) => x.pred(command));
    if (h >= 0) this.hooks.splice(h, 1)[0]!.fn();
    const r = await this.inner.exec(command, options);
    const i = this.losers.findIndex((p) => p(command));
    if (i >= 0) {
      this.losers.splice(i, 1);
      throw new Error('connection lost after the command ran: ECONNRESET');
    }
    return r;
  }
  writeFile(path: string, data: string | Buffer, mode?: number): Promise<void> {
    return this.inner.writeFile(path, data, mode);
  }
  readFile(path: string): Promise<string | undefined> {
    return this.inner.readFile(path);
  }
  openUnixSocket(): Promise<never> {
    return Promise.reject(new Error('no sockets'));
  }
  openTcp(): Promise<never> {
    return Promise.reject(new Error('no TCP'));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const isTry = (cmd: string) => cmd.includes('echo HELD');
const isTakeover = (cmd: string) => cmd.includes('echo TAKEN');
const mtimeOf = (file: string) => statSync(file).mtimeMs;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

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

test('parseLockLook: the holder, its age on the host clock, and the inode and mtime a takeover checks', () => {
  const raw = JSON.stringify(owner('7'));
  const look = parseLockLook('HELD\nnow=1000\nino=42\nmtime=940\n', raw);
  assert.equal(look.held.owner?.runId, '7');
  assert.equal(look.held.ageMs, 60_000);
  assert.equal(look.ino, '42');
  assert.equal(look.mtimeText, '940');
  assert.equal(look.raw, raw);
  // a lock gone as we looked: no inode or mtime, age 0; unreadable owner.json: no owner
  const gone = parseLockLook('HELD\nnow=1000\nino=\nmtime=\n', '{oops');
  assert.deepEqual(gone.held, { owner: undefined, ageMs: 0 });
  assert.equal(gone.ino, '');
  assert.equal(gone.mtimeText, '');
  // a clock step back on the host never makes a negative age
  assert.equal(parseLockLook('HELD\nnow=900\nino=1\nmtime=940\n', raw).held.ageMs, 0);
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
    await assert.rejects(
      acquireLock(remote, home, owner('202', 'bob'), { timeoutMs: 400, pollMs: 50, ttlMs: HOUR, log: collectLog(logs) }),
      (e: Error) => {
        assert.ok(e instanceof LockTimeoutError);
        assert.match(e.message, /run 101 by alice \(sha abc1234\) since 2026-11-23T19:30:00.000Z/);
        assert.match(e.message, /https:\/\/github\.com\/o\/r\/actions\/runs\/101/);
        return true;
      },
    );
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
    const h = await acquireLock(remote, home, owner('303', 'carol'), { timeoutMs: 0, ttlMs: HOUR, log: collectLog(logs) });
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
    await assert.rejects(
      acquireLock(remote, join(home, 'missing/dir'), owner('1'), { timeoutMs: 5000, ttlMs: HOUR }),
      /cannot create the deploy lock/,
    );
  } finally {
    await cleanup();
  }
});

test('lockDecision: a beating holder is taken over once silent for max(4 beats, 60s), well before lock_ttl', () => {
  const beating = (heartbeatMs: number): LockOwner => ({ ...owner('1'), heartbeatMs });
  assert.equal(heartbeatStaleMs(15_000), 60_000);
  assert.equal(heartbeatStaleMs(30_000), 120_000);
  assert.deepEqual(lockDecision({ owner: beating(15_000), ageMs: 59_000 }, HOUR), { action: 'wait' });
  assert.deepEqual(lockDecision({ owner: beating(15_000), ageMs: 75_000 }, HOUR), {
    action: 'take-over',
    reason: 'its heartbeat stopped 75s ago (beats every 15s)',
  });
  // a slower beat gets a longer grace
  assert.deepEqual(lockDecision({ owner: beating(30_000), ageMs: 100_000 }, HOUR), { action: 'wait' });
  assert.equal(lockDecision({ owner: beating(30_000), ageMs: 121_000 }, HOUR).action, 'take-over');
  // a holder without heartbeatMs (an older version) still gets the whole TTL
  assert.deepEqual(lockDecision({ owner: owner('1'), ageMs: 75_000 }, HOUR), { action: 'wait' });
});

test('heartbeatMs is written to owner.json and the handle; the heartbeat refreshes the mtime, and a beating lock is waited for', async () => {
  const { remote, home, cleanup } = await tempRemote();
  const file = join(home, 'lock/owner.json');
  try {
    const h = await acquireLock(remote, home, owner('101'), { timeoutMs: 0, ttlMs: HOUR, heartbeatMs: 150 });
    assert.equal(h.heartbeatMs, 150);
    assert.equal((JSON.parse(await readFile(file, 'utf8')) as LockOwner).heartbeatMs, 150);
    // as if the holder had been silent for 10 minutes: stale for any waiter, until a beat lands
    execFileSync('touch', ['-d', '10 minutes ago', file]);
    const old = mtimeOf(file);
    const t0 = Date.now();
    const hb = startHeartbeat(remote, h); // interval from the handle: 150 ms
    try {
      await until(() => mtimeOf(file) > old + 5 * 60_000, 3000, 'a beat to refresh owner.json');
      assert.ok(Math.abs(mtimeOf(file) - Date.now()) < 5000, 'the mtime is now');
      assert.ok(hb.lastBeatAt >= t0);
      assert.equal(hb.lost, false);
      // a waiter sees a fresh lock and waits, rather than taking it over
      const logs: string[] = [];
      await assert.rejects(
        acquireLock(remote, home, owner('202', 'bob'), { timeoutMs: 300, pollMs: 50, ttlMs: HOUR, log: collectLog(logs) }),
        LockTimeoutError,
      );
      assert.doesNotMatch(logs.join('\n'), /took over/);
      assert.equal((JSON.parse(await readFile(file, 'utf8')) as LockOwner).runId, '101');
    } finally {
      await hb.stop();
    }
    // stopped: no more beats
    execFileSync('touch', ['-d', '10 minutes ago', file]);
    const after = mtimeOf(file);
    await sleep(450);
    assert.equal(mtimeOf(file), after);
  } finally {
    await cleanup();
  }
});

test('a heartbeat that finds another owner sets lost, names the new holder, and leaves its owner.json alone', async () => {
  const { remote, home, cleanup } = await tempRemote();
  const file = join(home, 'lock/owner.json');
  try {
    const h = await acquireLock(remote, home, owner('101'), { timeoutMs: 0, ttlMs: HOUR, heartbeatMs: 100 });
    const logs: string[] = [];
    const reasons: string[] = [];
    const hb = startHeartbeat(remote, h, { log: collectLog(logs), onLost: (r) => reasons.push(r) });
    try {
      await writeFile(file, `${JSON.stringify({ ...owner('909', 'mallory'), token: 'someone-else' })}\n`);
      execFileSync('touch', ['-d', '1 hour ago', file]);
      const theirs = mtimeOf(file);
      await until(() => hb.lost, 3000, 'the heartbeat to notice');
      assert.equal(reasons.length, 1);
      assert.match(reasons[0]!, /held by run 909 by mallory/);
      assert.match(logs.join('\n'), /warning: the deploy lock is no longer ours: .*run 909 by mallory/);
      await sleep(300);
      assert.equal(mtimeOf(file), theirs, "the other holder's owner.json was not touched");
      assert.equal(reasons.length, 1, 'no more beats once lost');
    } finally {
      await hb.stop();
    }
  } finally {
    await cleanup();
  }
});

test('a heartbeat that cannot reach the host skips the beat, logs once, and beats again when the host answers', async () => {
  const { remote: shell, home, cleanup } = await tempRemote();
  const remote = new FlakyRemote(shell);
  const file = join(home, 'lock/owner.json');
  try {
    const h = await acquireLock(remote, home, owner('101'), { timeoutMs: 0, ttlMs: HOUR, heartbeatMs: 60 });
    const logs: string[] = [];
    remote.down = true;
    const hb = startHeartbeat(remote, h, { log: collectLog(logs) });
    try {
      const execs = remote.execs;
      await until(() => remote.execs >= execs + 4, 3000, 'several failed beats');
      assert.equal(hb.lost, false);
      assert.equal(logs.filter((m) => /could not reach the host/.test(m)).length, 1, logs.join('\n'));
      assert.doesNotMatch(logs.join('\n'), /warning/);
      execFileSync('touch', ['-d', '10 minutes ago', file]);
      const old = mtimeOf(file);
      remote.down = false;
      await until(() => mtimeOf(file) > old + 5 * 60_000, 3000, 'a beat after the outage');
      await until(() => logs.some((m) => /answers again \(after \d+ missed beats\)/.test(m)), 1000, 'the recovery line');
      assert.equal(hb.lost, false);
    } finally {
      await hb.stop();
    }
  } finally {
    await cleanup();
  }
});

test('stop() waits for a beat in flight', async () => {
  const { remote: shell, home, cleanup } = await tempRemote();
  let running = 0;
  let finished = 0;
  const slow: Remote = Object.assign(Object.create(shell) as ShellRemote, {
    async exec(command: string, options?: ExecOptions) {
      running++;
      await sleep(300);
      const r = await shell.exec(command, options);
      finished++;
      return r;
    },
  });
  try {
    const h = await acquireLock(shell, home, owner('101'), { timeoutMs: 0, ttlMs: HOUR, heartbeatMs: 30 });
    const hb = startHeartbeat(slow, h);
    await until(() => running === 1, 2000, 'a beat to start');
    assert.equal(finished, 0);
    await hb.stop();
    assert.equal(finished, 1, 'stop() resolved only after the beat finished');
    await sleep(200);
    assert.equal(running, 1, 'no beat after stop()');
  } finally {
    await cleanup();
  }
});

test('a waiter takes over a lock whose heartbeat stopped at once, with a warning and an audit line', async () => {
  const { remote, home, cleanup } = await tempRemote();
  const file = join(home, 'lock/owner.json');
  try {
    const dead = await acquireLock(remote, home, owner('101'), { timeoutMs: 0, ttlMs: HOUR, heartbeatMs: 15_000 });
    execFileSync('touch', ['-d', '90 seconds ago', file]);
    const logs: string[] = [];
    const t0 = Date.now();
    const h = await acquireLock(remote, home, owner('303', 'carol'), {
      timeoutMs: 10 * 60_000,
      pollMs: 5000,
      ttlMs: HOUR,
      log: collectLog(logs),
    });
    assert.ok(Date.now() - t0 < 3000, 'no waiting for lock_timeout or lock_ttl');
    assert.equal(h.takenOver?.runId, '101');
    assert.match(
      logs.join('\n'),
      /warning: took over the deploy lock from run 101 by alice .*: its heartbeat stopped (89|9\d)s ago \(beats every 15s\)/,
    );
    assert.equal((JSON.parse(await readFile(file, 'utf8')) as LockOwner).runId, '303');
    const audit = parseAuditLog(await readFile(join(home, 'audit.log'), 'utf8'));
    assert.equal(audit.length, 1);
    assert.equal(audit[0]!.kind, 'lock-takeover');
    assert.equal(audit[0]!.actor, 'carol');
    assert.match(audit[0]!.detail!, /from run 101 .*heartbeat stopped/);
    // the dead holder, coming back, learns the lock is gone and cannot release the new one
    assert.equal(await lockHeldBy(remote, home, dead.token), false);
    assert.equal(await lockHeldBy(remote, home, h.token), true);
    const hb = startHeartbeat(remote, dead, { intervalMs: 30 });
    await until(() => hb.lost, 2000, 'the old holder to notice');
    await hb.stop();
    assert.equal(await releaseLock(remote, home, '101', dead.token), 'not-ours');
  } finally {
    await cleanup();
  }
});

test('a holder with a heartbeat silent for less than the stale limit is waited for', async () => {
  const { remote, home, cleanup } = await tempRemote();
  try {
    await acquireLock(remote, home, owner('101'), { timeoutMs: 0, ttlMs: HOUR, heartbeatMs: 15_000 });
    execFileSync('touch', ['-d', '45 seconds ago', join(home, 'lock/owner.json')]);
    await assert.rejects(acquireLock(remote, home, owner('202'), { timeoutMs: 300, pollMs: 50, ttlMs: HOUR }), (e: Error) => {
      assert.ok(e instanceof LockTimeoutError);
      assert.match(e.message, /or whose heartbeat stops for 60s/);
      return true;
    });
    assert.ok(!existsSync(join(home, 'audit.log')));
  } finally {
    await cleanup();
  }
});

test('a holder that beats between the look and the takeover keeps its lock', async () => {
  const { remote: shell, home, cleanup } = await tempRemote();
  const remote = new FlakyRemote(shell);
  const file = join(home, 'lock/owner.json');
  try {
    await acquireLock(shell, home, owner('101'), { timeoutMs: 0, ttlMs: HOUR, heartbeatMs: 15_000 });
    execFileSync('touch', ['-d', '5 minutes ago', file]);
    remote.before(isTakeover, () => execFileSync('touch', [file])); // the beat lands just before
    await assert.rejects(acquireLock(remote, home, owner('202'), { timeoutMs: 200, pollMs: 50, ttlMs: HOUR }), LockTimeoutError);
    assert.equal((JSON.parse(await readFile(file, 'utf8')) as LockOwner).runId, '101');
    assert.ok(!existsSync(join(home, 'audit.log')));
  } finally {
    await cleanup();
  }
});

test('acquiring again after a lost answer finds the lock ours instead of waiting for it', async () => {
  const { remote: shell, home, cleanup } = await tempRemote();
  const remote = new FlakyRemote(shell);
  try {
    // the mkdir ran on the host but its answer never came back
    remote.loseAnswer(isTry);
    const logs: string[] = [];
    const h = await acquireLock(remote, home, owner('101'), { timeoutMs: 0, pollMs: 10, ttlMs: HOUR, log: collectLog(logs) });
    assert.equal(remote.execs, 2);
    const stored = JSON.parse(await readFile(join(home, 'lock/owner.json'), 'utf8')) as LockOwner;
    assert.equal(stored.token, h.token);
    assert.equal(h.takenOver, undefined);
    assert.match(logs.join('\n'), /did not answer .*trying again[\s\S]*already ours/);
    // a caller that repeats the whole acquire passes the token of its first attempt
    const again = await acquireLock(shell, home, owner('101'), { timeoutMs: 0, ttlMs: HOUR, token: h.token });
    assert.equal(again.token, h.token);
    // another job of the same run (a matrix) has a different token and still waits
    await assert.rejects(acquireLock(shell, home, owner('101'), { timeoutMs: 0, ttlMs: HOUR }), LockTimeoutError);
    // a lost answer to the release: the repeat finds it gone
    remote.loseAnswer((c) => c.includes('RELEASED'));
    assert.equal(await releaseLock(remote, home, '101', h.token), 'not-held');
    assert.ok(!existsSync(join(home, 'lock')));
  } finally {
    await cleanup();
  }
});

test('a takeover whose answer was lost is recognised as won, with its warning and audit line', async () => {
  const { remote: shell, home, cleanup } = await tempRemote();
  const remote = new FlakyRemote(shell);
  try {
    await acquireLock(shell, home, owner('101'), { timeoutMs: 0, ttlMs: HOUR, heartbeatMs: 15_000 });
    execFileSync('touch', ['-d', '5 minutes ago', join(home, 'lock/owner.json')]);
    remote.loseAnswer(isTakeover);
    const logs: string[] = [];
    const h = await acquireLock(remote, home, owner('303', 'carol'), { timeoutMs: 0, pollMs: 10, ttlMs: HOUR, log: collectLog(logs) });
    assert.equal(h.takenOver?.runId, '101');
    assert.equal((JSON.parse(await readFile(join(home, 'lock/owner.json'), 'utf8')) as LockOwner).token, h.token);
    assert.match(logs.join('\n'), /warning: took over the deploy lock from run 101 by alice .*heartbeat stopped/);
    const audit = parseAuditLog(await readFile(join(home, 'audit.log'), 'utf8'));
    assert.equal(audit.filter((e) => e.kind === 'lock-takeover').length, 1);
  } finally {
    await cleanup();
  }
});

test('a host that stays unreachable fails the acquire after a few attempts, a spent reconnect at once', async () => {
  const { remote: shell, home, cleanup } = await tempRemote();
  const remote = new FlakyRemote(shell);
  try {
    remote.down = true;
    await assert.rejects(acquireLock(remote, home, owner('1'), { timeoutMs: 60_000, pollMs: 10, ttlMs: HOUR }), /connection lost/);
    assert.equal(remote.execs, 4);
    // a remote that already spent its own reconnect window is not asked again
    const spent = Object.assign(new Error('could not reconnect within 120 s'), { name: 'ReconnectFailedError' });
    let calls = 0;
    const gone: Remote = Object.assign(Object.create(shell) as ShellRemote, {
      exec: () => {
        calls++;
        return Promise.reject(spent);
      },
    });
    await assert.rejects(acquireLock(gone, home, owner('1'), { timeoutMs: 60_000, pollMs: 10, ttlMs: HOUR }), /could not reconnect/);
    assert.equal(calls, 1);
  } finally {
    await cleanup();
  }
});
