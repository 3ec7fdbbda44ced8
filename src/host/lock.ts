/**
 * The per-project deploy lock on the host: `mkdir <remoteDir>/lock` (atomic) plus lock/owner.json
 * naming the run that holds it. A second deploy polls until lock_timeout, then fails naming the
 * holder. A lock older than lock_ttl (measured on the host's clock, from owner.json's mtime) is taken
 * over, with a warning and an audit line: a cancelled job whose post step never ran must not block
 * deploys for weeks.
 *
 * Takeovers and releases are serialized by a second directory, lock.takeover, held for one command:
 * a takeover re-checks, inside it, that the lock is still the very one it judged stale (same inode,
 * same owner.json), so two waiters can never both take over, and a release never removes a lock
 * someone took over in between. Plain acquirers only ever `mkdir lock`, which cannot disturb a held lock.
 *
 * A holder that records `heartbeatMs` in owner.json promises to refresh owner.json's mtime that often
 * (startHeartbeat); once it has been silent for max(4 beats, 60s) it is gone (a killed runner, a cut
 * network) and is taken over without waiting for lock_ttl. A holder that comes back finds the lock no
 * longer holds its token and reports the heartbeat lost.
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { appendAudit } from './audit.js';
import type { Log } from '../support/log.js';
import { heartbeatCommand, lockHeldByCommand, OWNER_SEP, releaseLockCommand, takeoverCommand, tryLockCommand } from '../commands/lock.js';
import type { Remote } from './remote.js';
import { sleep } from '../support/time.js';
import { INSTANT_COMMAND_MS, QUICK_COMMAND_MS } from '../support/timeouts.js';

export interface LockOwner {
  runId: string;
  runUrl: string;
  actor: string;
  sha: string;
  startedAt: string;
  /** Random per acquisition, so two jobs of one run (a matrix) never mistake each other's lock. */
  token?: string;
  /** The holder refreshes owner.json's mtime this often; absent for holders without a heartbeat (older versions). */
  heartbeatMs?: number;
}

export interface LockOptions {
  /** How long to wait for a held lock before failing. */
  timeoutMs: number;
  /** A lock held longer than this is taken over. */
  ttlMs: number;
  pollMs?: number;
  log?: Log | ((message: string) => void);
  /**
   * Record in owner.json that we beat this often. Only set it when startHeartbeat will run: waiters
   * take over a lock whose owner.json is older than max(4 × heartbeatMs, 60s).
   */
  heartbeatMs?: number;
  /**
   * Reuse the token of an earlier attempt, so acquiring again after a lost answer recognises a lock
   * that attempt created as ours. Default: a fresh random token.
   */
  token?: string;
}

/** What the post step needs to release the lock (for core.saveState). */
export interface LockHandle {
  remoteDir: string;
  runId: string;
  token: string;
  /** The holder whose stale lock was taken over, if any. */
  takenOver?: LockOwner;
  /** The heartbeat interval recorded in owner.json (LockOptions.heartbeatMs), if any. */
  heartbeatMs?: number;
}

export interface HeldLock {
  /** Undefined when owner.json is missing or unreadable. */
  owner?: LockOwner;
  /** Age on the host's clock: since owner.json was written (or the lock dir made, without one). */
  ageMs: number;
}

export type LockDecision = { action: 'wait' } | { action: 'take-over'; reason: string };

/** A lock dir without owner.json is normal for a moment (mkdir, then write); after this it is debris. */
const OWNERLESS_GRACE_MS = 60_000;

export const DEFAULT_HEARTBEAT_MS = 15_000;
/** Silence shorter than this is never taken for a dead holder: a slow host or a brief reconnect is not death. */
const MIN_STALE_MS = 60_000;

/** How long a holder beating every `heartbeatMs` may stay silent before it counts as gone. */
export function heartbeatStaleMs(heartbeatMs: number): number {
  return Math.max(4 * heartbeatMs, MIN_STALE_MS);
}

/**
 * `held.ageMs` is measured from owner.json's mtime, which a beating holder keeps fresh; so for a
 * heartbeat holder it is the time since its last beat.
 */
export function lockDecision(held: HeldLock, ttlMs: number): LockDecision {
  if (!held.owner) {
    const limit = Math.min(ttlMs, OWNERLESS_GRACE_MS);
    return held.ageMs > limit
      ? { action: 'take-over', reason: `the lock has no owner.json and is ${fmt(held.ageMs)} old` }
      : { action: 'wait' };
  }
  const hb = held.owner.heartbeatMs;
  if (hb !== undefined && held.ageMs > heartbeatStaleMs(hb)) {
    return { action: 'take-over', reason: `its heartbeat stopped ${fmt(held.ageMs)} ago (beats every ${fmt(hb)})` };
  }
  if (held.ageMs > ttlMs) return { action: 'take-over', reason: `it is ${fmt(held.ageMs)} old, past lock_ttl (${fmt(ttlMs)})` };
  return { action: 'wait' };
}

function fmt(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  return `${(s / 3600).toFixed(1)}h`;
}

export function describeOwner(owner: LockOwner | undefined): string {
  if (!owner) return 'an unknown holder (no owner.json)';
  return `run ${owner.runId} by ${owner.actor} (sha ${owner.sha.slice(0, 7)}) since ${owner.startedAt} — ${owner.runUrl}`;
}

export class LockTimeoutError extends Error {
  constructor(
    readonly lockDir: string,
    readonly owner: LockOwner | undefined,
    waitedMs: number,
  ) {
    super(
      `the deploy lock ${lockDir} is held by ${describeOwner(owner)}; waited ${fmt(waitedMs)} (lock_timeout). ` +
        `A lock older than lock_ttl${owner?.heartbeatMs ? ` (or whose heartbeat stops for ${fmt(heartbeatStaleMs(owner.heartbeatMs))})` : ''} is taken over automatically; to free it now, remove ${lockDir} on the host.`,
    );
    this.name = 'LockTimeoutError';
  }
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const o = JSON.parse(text) as Record<string, unknown>;
    if (o && typeof o.runId === 'string' && typeof o.actor === 'string') {
      return {
        runId: o.runId,
        actor: o.actor,
        runUrl: String(o.runUrl ?? ''),
        sha: String(o.sha ?? ''),
        startedAt: String(o.startedAt ?? ''),
        ...(typeof o.token === 'string' ? { token: o.token } : {}),
        ...(typeof o.heartbeatMs === 'number' && Number.isFinite(o.heartbeatMs) && o.heartbeatMs > 0 ? { heartbeatMs: o.heartbeatMs } : {}),
      };
    }
  } catch {
    // unreadable: treated like a missing owner
  }
  return undefined;
}

function logger(log: LockOptions['log']): { info: (m: string) => void; warning: (m: string) => void } {
  if (!log) return { info: () => {}, warning: () => {} };
  if (typeof log === 'function') return { info: log, warning: (m) => log(`warning: ${m}`) };
  return { info: (m) => log.info(m), warning: (m) => log.warning(m) };
}

/**
 * A command whose answer never came (the connection dropped, the remote reconnects by itself) is
 * tried again this many times in all; every script here is safe to repeat.
 */
const EXEC_ATTEMPTS = 4;
/** By name, so this module stays free of ssh2: a remote that already spent its reconnect window, or a host that refuses us, will not answer a repeat. */
const FINAL_ERRORS = new Set(['ReconnectFailedError', 'HostKeyMismatchError', 'SshAuthError', 'PrivateKeyError']);
const isFinal = (e: unknown) => e instanceof Error && FINAL_ERRORS.has(e.name);

/** remote.exec, with a lost answer tried again after a growing pause (1s, 2s, 4s; at most pollMs). */
async function execRepeatable(
  remote: Remote,
  command: string,
  stdin: string | undefined,
  pauseMs: number,
  onRetry: (e: unknown) => void,
): Promise<string> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await remote.exec(command, { ...(stdin !== undefined ? { stdin } : {}), timeoutMs: QUICK_COMMAND_MS })).stdout;
    } catch (e) {
      if (attempt >= EXEC_ATTEMPTS || isFinal(e)) throw e;
      onRetry(e);
      await sleep(Math.min(pauseMs, 1000 * 2 ** (attempt - 1)));
    }
  }
}

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0];

export async function acquireLock(remote: Remote, remoteDir: string, owner: LockOwner, options: LockOptions): Promise<LockHandle> {
  const log = logger(options.log);
  const pollMs = options.pollMs ?? 5000;
  const lockDir = posix.join(remoteDir, 'lock');
  const token = options.token ?? randomBytes(12).toString('hex');
  const hb = options.heartbeatMs;
  const mine: LockOwner = { ...owner, token, ...(hb !== undefined ? { heartbeatMs: hb } : {}) };
  const stdin = `${JSON.stringify(mine)}\n`;
  const handle = (takenOver?: LockOwner): LockHandle => ({
    remoteDir,
    runId: owner.runId,
    token,
    ...(hb !== undefined ? { heartbeatMs: hb } : {}),
    ...(takenOver ? { takenOver } : {}),
  });
  const onRetry = (e: unknown) => log.info(`the host did not answer the lock command (${errText(e)}); trying again`);
  const started = Date.now();
  const deadline = started + options.timeoutMs;
  let lastHolder: LockOwner | undefined;
  let lastLog = 0;
  // A takeover whose answer was lost: if the lock turns out ours, it was this takeover that won.
  let pendingTakeover: { held: HeldLock; reason: string } | undefined;
  let lostTakeovers = 0;

  const tookOver = async (held: HeldLock, reason: string): Promise<LockHandle> => {
    log.warning(`took over the deploy lock from ${describeOwner(held.owner)}: ${reason}`);
    await appendAudit(remote, remoteDir, {
      at: new Date().toISOString(),
      kind: 'lock-takeover',
      sha: owner.sha,
      actor: owner.actor,
      runUrl: owner.runUrl,
      result: 'taken-over',
      detail: `from ${describeOwner(held.owner)}: ${reason}`,
    }).catch((e: unknown) => log.warning(`could not write the audit log: ${String(e)}`));
    return handle(held.owner);
  };

  for (;;) {
    const out = await execRepeatable(remote, tryLockCommand(remoteDir), stdin, pollMs, onRetry);
    const [head = '', raw = ''] = out.split(OWNER_SEP);
    if (/^ACQUIRED$/m.test(head)) return handle();
    if (/^FAIL/m.test(head)) throw new Error(`cannot create the deploy lock ${lockDir}: ${head.replace(/^FAIL\s*/m, '').trim()}`);
    if (/^RETRY$/m.test(head)) {
      continue; // released between our mkdir and our look: try again at once
    } else {
      const field = (k: string) => new RegExp(`^${k}=(\\d*)$`, 'm').exec(head)?.[1] ?? '';
      const now = Number(field('now'));
      const mtimeText = field('mtime');
      const mtime = Number(mtimeText || field('now'));
      const ino = field('ino');
      const held: HeldLock = { owner: parseOwner(raw), ageMs: Math.max(0, (now - mtime) * 1000) };
      if (held.owner?.token === token) {
        // An earlier attempt of ours created it and its answer was lost.
        if (pendingTakeover) return tookOver(pendingTakeover.held, pendingTakeover.reason);
        log.info('the deploy lock is already ours (the answer to an earlier attempt was lost)');
        return handle();
      }
      pendingTakeover = undefined;
      lastHolder = held.owner;
      const decision = lockDecision(held, options.ttlMs);
      if (decision.action === 'take-over' && ino) {
        // Not repeated blindly: a repeat of a takeover that won would answer CHANGED. The next look
        // tells instead (our token: it won).
        let t: string;
        try {
          t = (
            await remote.exec(takeoverCommand(remoteDir, ino, mtimeText, raw), { stdin, timeoutMs: QUICK_COMMAND_MS, repeatable: false })
          ).stdout;
        } catch (e) {
          if (++lostTakeovers >= EXEC_ATTEMPTS || isFinal(e)) throw e;
          onRetry(e);
          pendingTakeover = { held, reason: decision.reason };
          continue;
        }
        if (/^TAKEN$/m.test(t)) return tookOver(held, decision.reason);
        // someone else moved first (or the holder beat since we looked): look again after the poll interval
      } else if (!held.owner && held.ageMs < 10_000 && Date.now() + 500 < deadline) {
        // The holder created the directory a moment ago and is writing owner.json: look again
        // shortly, so the log names the holder instead of "unknown".
        await sleep(500);
        continue;
      } else if (Date.now() - lastLog >= 60_000) {
        log.info(`waiting for the deploy lock held by ${describeOwner(held.owner)}`);
        lastLog = Date.now();
      }
    }
    const left = deadline - Date.now();
    if (left <= 0) throw new LockTimeoutError(lockDir, lastHolder, Date.now() - started);
    await sleep(Math.max(0, Math.min(pollMs, left)));
  }
}

export type ReleaseOutcome = 'released' | 'not-held' | 'not-ours';

/**
 * Remove the lock only if we hold it (owner.json names our run, and our token when given). Safe to
 * call twice (the main step and the post step), and to repeat after a lost answer: the repeat finds
 * the lock gone ('not-held'), or someone else's ('not-ours'), and removes nothing of theirs.
 */
export async function releaseLock(remote: Remote, remoteDir: string, runId: string, token?: string): Promise<ReleaseOutcome> {
  const command = releaseLockCommand(remoteDir, runId, token);
  for (let i = 0; i < 50; i++) {
    const out = await execRepeatable(remote, command, undefined, 2000, () => {});
    if (/^RELEASED$/m.test(out)) return 'released';
    if (/^NOTHELD$/m.test(out)) return 'not-held';
    if (/^NOTOURS$/m.test(out)) return 'not-ours';
    await sleep(200); // BUSY: a takeover is mid-flight
  }
  throw new Error('could not release the deploy lock: lock.takeover stayed busy');
}

/** Whether <remoteDir>/lock/owner.json still holds this token (e.g. on a fresh connection after a cut). */
export async function lockHeldBy(remote: Remote, remoteDir: string, token: string): Promise<boolean> {
  const r = await remote.exec(lockHeldByCommand(remoteDir, token), { timeoutMs: QUICK_COMMAND_MS });
  return /^OURS$/m.test(r.stdout);
}

export interface HeartbeatOptions {
  /** Default: the handle's heartbeatMs (what owner.json promises), else DEFAULT_HEARTBEAT_MS. */
  intervalMs?: number;
  log?: Log | ((message: string) => void);
  /** Called once when the host says the lock is no longer ours. */
  onLost?: (reason: string) => void;
}

export interface Heartbeat {
  /** Stops the beats; resolves once a beat in flight has finished. */
  stop(): Promise<void>;
  /** The host said the lock is no longer ours (taken over or removed); no more beats are sent. */
  readonly lost: boolean;
  /** Date.now() of the last beat the host confirmed (the start time before the first). */
  readonly lastBeatAt: number;
}

/**
 * Refreshes owner.json's mtime every intervalMs while it still holds our token, so waiters can tell
 * a live holder from a dead one. A beat that cannot reach the host is skipped (the next tries again);
 * only the host saying the lock is gone sets `lost`.
 */
export function startHeartbeat(remote: Remote, handle: LockHandle, options: HeartbeatOptions = {}): Heartbeat {
  const log = logger(options.log);
  const intervalMs = options.intervalMs ?? handle.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  const lockDir = posix.join(handle.remoteDir, 'lock');
  const command = heartbeatCommand(handle.remoteDir, handle.token);
  let lost = false;
  let lastBeatAt = Date.now();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;
  let missed = 0;

  const beat = async (): Promise<void> => {
    let out: string;
    try {
      out = (await remote.exec(command, { timeoutMs: Math.max(INSTANT_COMMAND_MS, intervalMs) })).stdout;
    } catch (e) {
      // Once per outage: the remote reconnects by itself and the next beat tries again.
      if (missed++ === 0) log.info(`lock heartbeat: could not reach the host (${errText(e)}); trying again every ${fmt(intervalMs)}`);
      return;
    }
    if (/^BEAT$/m.test(out)) {
      if (missed > 0) log.info(`lock heartbeat: the host answers again (after ${missed} missed beat${missed === 1 ? '' : 's'})`);
      missed = 0;
      lastBeatAt = Date.now();
    } else if (/^GONE$/m.test(out)) {
      lost = true;
      const now = parseOwner(out.slice(out.indexOf('GONE') + 4));
      const since = `our last confirmed beat was ${fmt(Date.now() - lastBeatAt)} ago`;
      const reason = now
        ? `${lockDir} is now held by ${describeOwner(now)}; ${since}`
        : `${lockDir} is gone or no longer names us; ${since}`;
      log.warning(`the deploy lock is no longer ours: ${reason}`);
      options.onLost?.(reason);
    } else if (missed++ === 0) {
      log.info(
        `lock heartbeat: could not refresh ${lockDir}/owner.json (${out.trim() || 'no answer'}); trying again every ${fmt(intervalMs)}`,
      );
    }
  };

  const schedule = () => {
    if (stopped || lost) return;
    timer = setTimeout(() => {
      inFlight = beat().finally(() => {
        inFlight = undefined;
        schedule();
      });
    }, intervalMs);
    timer.unref();
  };
  schedule();

  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await inFlight;
    },
    get lost() {
      return lost;
    },
    get lastBeatAt() {
      return lastBeatAt;
    },
  };
}
