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
import { quietLog, type ProgressLog } from '../support/log.js';
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
  log?: ProgressLog;
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

function describeOwner(owner: LockOwner | undefined): string {
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
      // owner.json is no secret (stdinPublic): it may ride in the command line.
      const input = stdin !== undefined ? { stdin, stdinPublic: true } : {};
      return (await remote.exec(command, { ...input, timeoutMs: QUICK_COMMAND_MS })).stdout;
    } catch (e) {
      if (attempt >= EXEC_ATTEMPTS || isFinal(e)) throw e;
      onRetry(e);
      await sleep(Math.min(pauseMs, 1000 * 2 ** (attempt - 1)));
    }
  }
}

const errText = (e: unknown) => (e instanceof Error ? e.message : String(e)).split('\n')[0];

/** A held lock as tryLockCommand reports it: the holder and age, and the inode and mtime a takeover must still find. */
export interface LockLook {
  held: HeldLock;
  ino: string;
  /** owner.json's mtime in epoch seconds, as the host printed it ('' when missing). */
  mtimeText: string;
  /** The holder's owner.json as printed, for the takeover to compare. */
  raw: string;
}

/** Parse tryLockCommand's HELD answer: now=, ino= and mtime= lines in `head`, the holder's owner.json in `raw`. */
export function parseLockLook(head: string, raw: string): LockLook {
  const field = (k: string) => new RegExp(`^${k}=(\\d*)$`, 'm').exec(head)?.[1] ?? '';
  const now = Number(field('now'));
  const mtimeText = field('mtime');
  // No mtime (the lock went away as we looked): age 0.
  const mtime = Number(mtimeText || field('now'));
  const held: HeldLock = { owner: parseOwner(raw), ageMs: Math.max(0, (now - mtime) * 1000) };
  return { held, ino: field('ino'), mtimeText, raw };
}

/** After one look at a held lock: acquired, look again at once, or wait a poll interval. */
type LookOutcome = LockHandle | 'look-again' | 'wait';

export async function acquireLock(remote: Remote, remoteDir: string, owner: LockOwner, options: LockOptions): Promise<LockHandle> {
  return new LockAcquisition(remote, remoteDir, owner, options).run();
}

/** One acquireLock call: the loop of looks, and what it remembers between them. */
class LockAcquisition {
  private readonly log: ProgressLog;
  private readonly pollMs: number;
  private readonly lockDir: string;
  private readonly token: string;
  private readonly stdin: string;
  private readonly started = Date.now();
  private readonly deadline: number;
  private lastHolder: LockOwner | undefined;
  private lastLog = 0;
  // A takeover whose answer was lost: if the lock turns out ours, it was this takeover that won.
  private pendingTakeover: { held: HeldLock; reason: string } | undefined;
  private lostTakeovers = 0;

  constructor(
    private readonly remote: Remote,
    private readonly remoteDir: string,
    private readonly owner: LockOwner,
    private readonly options: LockOptions,
  ) {
    this.log = options.log ?? quietLog;
    this.pollMs = options.pollMs ?? 5000;
    this.lockDir = posix.join(remoteDir, 'lock');
    this.token = options.token ?? randomBytes(12).toString('hex');
    const hb = options.heartbeatMs;
    const mine: LockOwner = { ...owner, token: this.token, ...(hb !== undefined ? { heartbeatMs: hb } : {}) };
    this.stdin = `${JSON.stringify(mine)}\n`;
    this.deadline = this.started + options.timeoutMs;
  }

  async run(): Promise<LockHandle> {
    for (;;) {
      const out = await execRepeatable(this.remote, tryLockCommand(this.remoteDir), this.stdin, this.pollMs, this.onRetry);
      const [head = '', raw = ''] = out.split(OWNER_SEP);
      if (/^ACQUIRED$/m.test(head)) return this.handle();
      if (/^FAIL/m.test(head)) throw new Error(`cannot create the deploy lock ${this.lockDir}: ${head.replace(/^FAIL\s*/m, '').trim()}`);
      if (/^RETRY$/m.test(head)) continue; // released between our mkdir and our look: try again at once
      const next = await this.onHeld(parseLockLook(head, raw));
      if (next === 'look-again') continue;
      if (next !== 'wait') return next;
      const left = this.deadline - Date.now();
      if (left <= 0) throw new LockTimeoutError(this.lockDir, this.lastHolder, Date.now() - this.started);
      await sleep(Math.max(0, Math.min(this.pollMs, left)));
    }
  }

  private async onHeld(look: LockLook): Promise<LookOutcome> {
    const { held } = look;
    if (held.owner?.token === this.token) return this.alreadyOurs();
    this.pendingTakeover = undefined;
    this.lastHolder = held.owner;
    const decision = lockDecision(held, this.options.ttlMs);
    if (decision.action === 'take-over' && look.ino) return this.takeOver(look, decision.reason);
    if (!held.owner && held.ageMs < 10_000 && Date.now() + 500 < this.deadline) {
      // The holder created the directory a moment ago and is writing owner.json: look again
      // shortly, so the log names the holder instead of "unknown".
      await sleep(500);
      return 'look-again';
    }
    if (Date.now() - this.lastLog >= 60_000) {
      this.log.info(`waiting for the deploy lock held by ${describeOwner(held.owner)}`);
      this.lastLog = Date.now();
    }
    return 'wait';
  }

  /** An earlier attempt of ours created it and its answer was lost. */
  private alreadyOurs(): Promise<LockHandle> | LockHandle {
    if (this.pendingTakeover) return this.tookOver(this.pendingTakeover.held, this.pendingTakeover.reason);
    this.log.info('the deploy lock is already ours (the answer to an earlier attempt was lost)');
    return this.handle();
  }

  private async takeOver(look: LockLook, reason: string): Promise<LookOutcome> {
    // Not repeated blindly: a repeat of a takeover that won would answer CHANGED. The next look
    // tells instead (our token: it won).
    let t: string;
    try {
      const command = takeoverCommand(this.remoteDir, look.ino, look.mtimeText, look.raw);
      const options = { stdin: this.stdin, stdinPublic: true, timeoutMs: QUICK_COMMAND_MS, repeatable: false };
      t = (await this.remote.exec(command, options)).stdout;
    } catch (e) {
      if (++this.lostTakeovers >= EXEC_ATTEMPTS || isFinal(e)) throw e;
      this.onRetry(e);
      this.pendingTakeover = { held: look.held, reason };
      return 'look-again';
    }
    if (/^TAKEN$/m.test(t)) return this.tookOver(look.held, reason);
    // someone else moved first (or the holder beat since we looked): look again after the poll interval
    return 'wait';
  }

  private async tookOver(held: HeldLock, reason: string): Promise<LockHandle> {
    this.log.warning(`took over the deploy lock from ${describeOwner(held.owner)}: ${reason}`);
    await appendAudit(this.remote, this.remoteDir, {
      at: new Date().toISOString(),
      kind: 'lock-takeover',
      sha: this.owner.sha,
      actor: this.owner.actor,
      runUrl: this.owner.runUrl,
      result: 'taken-over',
      detail: `from ${describeOwner(held.owner)}: ${reason}`,
    }).catch((e: unknown) => this.log.warning(`could not write the audit log: ${String(e)}`));
    return this.handle(held.owner);
  }

  private handle(takenOver?: LockOwner): LockHandle {
    const hb = this.options.heartbeatMs;
    return {
      remoteDir: this.remoteDir,
      runId: this.owner.runId,
      token: this.token,
      ...(hb !== undefined ? { heartbeatMs: hb } : {}),
      ...(takenOver ? { takenOver } : {}),
    };
  }

  private readonly onRetry = (e: unknown) => this.log.info(`the host did not answer the lock command (${errText(e)}); trying again`);
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
  log?: ProgressLog;
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

/** Why the lock is no longer ours, from heartbeatCommand's GONE answer (followed by the owner.json now there, if any). */
function lostReason(out: string, lockDir: string, sinceBeatMs: number): string {
  const now = parseOwner(out.slice(out.indexOf('GONE') + 4));
  const since = `our last confirmed beat was ${fmt(sinceBeatMs)} ago`;
  return now ? `${lockDir} is now held by ${describeOwner(now)}; ${since}` : `${lockDir} is gone or no longer names us; ${since}`;
}

/**
 * Refreshes owner.json's mtime every intervalMs while it still holds our token, so waiters can tell
 * a live holder from a dead one. A beat that cannot reach the host is skipped (the next tries again);
 * only the host saying the lock is gone sets `lost`.
 */
export function startHeartbeat(remote: Remote, handle: LockHandle, options: HeartbeatOptions = {}): Heartbeat {
  const log = options.log ?? quietLog;
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
      const reason = lostReason(out, lockDir, Date.now() - lastBeatAt);
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
