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
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { appendAudit } from './audit.js';
import type { Log } from './log.js';
import { shq } from './quote.js';
import type { Remote } from './remote.js';

export interface LockOwner {
  runId: string;
  runUrl: string;
  actor: string;
  sha: string;
  startedAt: string;
  /** Random per acquisition, so two jobs of one run (a matrix) never mistake each other's lock. */
  token?: string;
}

export interface LockOptions {
  /** How long to wait for a held lock before failing. */
  timeoutMs: number;
  /** A lock held longer than this is taken over. */
  ttlMs: number;
  pollMs?: number;
  log?: Log | ((message: string) => void);
}

/** What the post step needs to release the lock (for core.saveState). */
export interface LockHandle {
  remoteDir: string;
  runId: string;
  token: string;
  /** The holder whose stale lock was taken over, if any. */
  takenOver?: LockOwner;
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

export function lockDecision(held: HeldLock, ttlMs: number): LockDecision {
  if (!held.owner) {
    const limit = Math.min(ttlMs, OWNERLESS_GRACE_MS);
    return held.ageMs > limit ? { action: 'take-over', reason: `the lock has no owner.json and is ${fmt(held.ageMs)} old` } : { action: 'wait' };
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
        `A lock older than lock_ttl is taken over automatically; to free it now, remove ${lockDir} on the host.`,
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
      };
    }
  } catch {
    // unreadable: treated like a missing owner
  }
  return undefined;
}

const SEP = '\x1e';

/** Write stdin to $1/owner.json via a temp file, so owner.json is never seen half-written. */
const WRITE_OWNER = (dir: string) => `(umask 077; cat > ${dir}/.owner.tmp) && mv -f ${dir}/.owner.tmp ${dir}/owner.json`;

function tryScript(L: string, dir: string): string {
  return `if err=$(mkdir ${L} 2>&1); then
  if ${WRITE_OWNER(L)}; then echo ACQUIRED; else rm -rf ${L}; echo "FAIL could not write owner.json"; fi
  exit 0
fi
if [ ! -d ${L} ]; then
  if [ -d ${dir} ] && [ -w ${dir} ]; then echo RETRY; else echo "FAIL $err"; fi
  exit 0
fi
echo HELD
printf 'now=%s\\n' "$(date +%s)"
printf 'ino=%s\\n' "$(stat -c %i ${L} 2>/dev/null)"
if [ -f ${L}/owner.json ]; then printf 'mtime=%s\\n' "$(stat -c %Y ${L}/owner.json 2>/dev/null)"; else printf 'mtime=%s\\n' "$(stat -c %Y ${L} 2>/dev/null)"; fi
printf '${SEP}'
cat ${L}/owner.json 2>/dev/null
true`;
}

/** Run `body` holding lock.takeover; prints BUSY when someone else holds it. A leftover older than 60s is cleared. */
function underMutex(M: string, body: string): string {
  return `if ! mkdir ${M} 2>/dev/null; then
  t=$(stat -c %Y ${M} 2>/dev/null || date +%s)
  if [ $(( $(date +%s) - t )) -gt 60 ]; then rm -rf ${M}; fi
  echo BUSY; exit 0
fi
${body}
rmdir ${M}`;
}

function takeoverScript(L: string, M: string, ino: string, raw: string): string {
  return underMutex(
    M,
    `if [ "$(stat -c %i ${L} 2>/dev/null)" = ${shq(ino)} ] && [ "$(cat ${L}/owner.json 2>/dev/null)" = ${shq(raw.replace(/\n+$/, ''))} ]; then
  if rm -rf ${L} && mkdir ${L} 2>/dev/null && ${WRITE_OWNER(L)}; then echo TAKEN; else echo LOST; fi
else
  echo CHANGED
fi`,
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function logger(log: LockOptions['log']): { info: (m: string) => void; warning: (m: string) => void } {
  if (!log) return { info: () => {}, warning: () => {} };
  if (typeof log === 'function') return { info: log, warning: (m) => log(`warning: ${m}`) };
  return { info: (m) => log.info(m), warning: (m) => log.warning(m) };
}

export async function acquireLock(remote: Remote, remoteDir: string, owner: LockOwner, options: LockOptions): Promise<LockHandle> {
  const log = logger(options.log);
  const pollMs = options.pollMs ?? 5000;
  const lockDir = posix.join(remoteDir, 'lock');
  const L = shq(lockDir);
  const M = shq(posix.join(remoteDir, 'lock.takeover'));
  const token = randomBytes(12).toString('hex');
  const mine: LockOwner = { ...owner, token };
  const stdin = `${JSON.stringify(mine)}\n`;
  const started = Date.now();
  const deadline = started + options.timeoutMs;
  let lastHolder: LockOwner | undefined;
  let lastLog = 0;

  for (;;) {
    const r = await remote.exec(tryScript(L, shq(remoteDir)), { stdin, timeoutMs: 30_000 });
    const [head = '', raw = ''] = r.stdout.split(SEP);
    if (/^ACQUIRED$/m.test(head)) return { remoteDir, runId: owner.runId, token };
    if (/^FAIL/m.test(head)) throw new Error(`cannot create the deploy lock ${lockDir}: ${head.replace(/^FAIL\s*/m, '').trim()}`);
    if (/^RETRY$/m.test(head)) {
      continue; // released between our mkdir and our look: try again at once
    } else {
      const field = (k: string) => new RegExp(`^${k}=(\\d*)$`, 'm').exec(head)?.[1] ?? '';
      const now = Number(field('now'));
      const mtime = Number(field('mtime') || field('now'));
      const ino = field('ino');
      const held: HeldLock = { owner: parseOwner(raw), ageMs: Math.max(0, (now - mtime) * 1000) };
      lastHolder = held.owner;
      const decision = lockDecision(held, options.ttlMs);
      if (decision.action === 'take-over' && ino) {
        const t = await remote.exec(takeoverScript(L, M, ino, raw), { stdin, timeoutMs: 30_000 });
        if (/^TAKEN$/m.test(t.stdout)) {
          log.warning(`took over the deploy lock from ${describeOwner(held.owner)}: ${decision.reason}`);
          await appendAudit(remote, remoteDir, {
            at: new Date().toISOString(),
            kind: 'lock-takeover',
            sha: owner.sha,
            actor: owner.actor,
            runUrl: owner.runUrl,
            result: 'taken-over',
            detail: `from ${describeOwner(held.owner)}: ${decision.reason}`,
          }).catch((e: unknown) => log.warning(`could not write the audit log: ${String(e)}`));
          return { remoteDir, runId: owner.runId, token, ...(held.owner ? { takenOver: held.owner } : {}) };
        }
        // someone else moved first: look again after the poll interval
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
    await sleep(Math.min(pollMs, left));
  }
}

export type ReleaseOutcome = 'released' | 'not-held' | 'not-ours';

/**
 * Remove the lock only if we hold it (owner.json names our run, and our token when given). Safe to
 * call twice (the main step and the post step).
 */
export async function releaseLock(remote: Remote, remoteDir: string, runId: string, token?: string): Promise<ReleaseOutcome> {
  const L = shq(posix.join(remoteDir, 'lock'));
  const M = shq(posix.join(remoteDir, 'lock.takeover'));
  const needle = token ? `"token":${JSON.stringify(token)}` : `"runId":${JSON.stringify(runId)}`;
  const body = `if [ ! -d ${L} ]; then echo NOTHELD
else
  case "$(cat ${L}/owner.json 2>/dev/null)" in
  *${shq(needle)}*) rm -rf ${L} && echo RELEASED ;;
  *) echo NOTOURS ;;
  esac
fi`;
  for (let i = 0; i < 50; i++) {
    const r = await remote.exec(underMutex(M, body), { timeoutMs: 30_000 });
    if (/^RELEASED$/m.test(r.stdout)) return 'released';
    if (/^NOTHELD$/m.test(r.stdout)) return 'not-held';
    if (/^NOTOURS$/m.test(r.stdout)) return 'not-ours';
    await sleep(200); // BUSY: a takeover is mid-flight
  }
  throw new Error('could not release the deploy lock: lock.takeover stayed busy');
}
