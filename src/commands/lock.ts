/**
 * The deploy lock's commands (the protocol is described in src/lock.ts, which runs them):
 * `mkdir <remoteDir>/lock` plus lock/owner.json, takeovers and releases serialized by
 * lock.takeover. Each prints one word the caller matches (ACQUIRED, HELD, TAKEN, RELEASED, BEAT…).
 */
import { posix } from 'node:path';
import { shq } from './quote.js';

/** Between the HELD fields and the raw owner.json in tryLockCommand's answer. */
export const OWNER_SEP = '\x1e';

const lockDir = (remoteDir: string) => shq(posix.join(remoteDir, 'lock'));
const mutexDir = (remoteDir: string) => shq(posix.join(remoteDir, 'lock.takeover'));
const ownerFile = (remoteDir: string) => shq(posix.join(remoteDir, 'lock', 'owner.json'));

/** Write stdin to $1/owner.json via a temp file, so owner.json is never seen half-written. */
const WRITE_OWNER = (dir: string) => `(umask 077; cat > ${dir}/.owner.tmp) && mv -f ${dir}/.owner.tmp ${dir}/owner.json`;

/** The mtime the age is measured from: owner.json's, or the lock dir's without one. */
const AGE_MTIME = (L: string) => `$(if [ -f ${L}/owner.json ]; then stat -c %Y ${L}/owner.json; else stat -c %Y ${L}; fi 2>/dev/null)`;

/**
 * Stdin: our owner.json. ACQUIRED (made the lock), RETRY (it went away under us), FAIL <why>, or
 * HELD with now=, ino= and mtime= lines, OWNER_SEP and the holder's owner.json.
 */
export function tryLockCommand(remoteDir: string): string {
  const L = lockDir(remoteDir);
  const dir = shq(remoteDir);
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
printf 'mtime=%s\\n' "${AGE_MTIME(L)}"
printf '${OWNER_SEP}'
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

/**
 * Stdin: our owner.json. Takes the lock over only if it is still the one judged stale: same inode,
 * same mtime (a holder that beat since we looked keeps its lock) and same owner.json. TAKEN, LOST,
 * CHANGED or BUSY. owner.json is replaced inside the lock directory, which never goes away meanwhile:
 * removing and re-making it let a waiter's plain mkdir win in between, unaudited.
 */
export function takeoverCommand(remoteDir: string, ino: string, mtime: string, rawOwner: string): string {
  const L = lockDir(remoteDir);
  return underMutex(
    mutexDir(remoteDir),
    `if [ "$(stat -c %i ${L} 2>/dev/null)" = ${shq(ino)} ] && [ "${AGE_MTIME(L)}" = ${shq(mtime)} ] && [ "$(cat ${L}/owner.json 2>/dev/null)" = ${shq(rawOwner.replace(/\n+$/, ''))} ]; then
  if ${WRITE_OWNER(L)}; then echo TAKEN; else echo LOST; fi
else
  echo CHANGED
fi`,
  );
}

/** The text owner.json holds for this token (or, without one, this run id). */
const ownerNeedle = (runId: string, token?: string) => (token ? `"token":${JSON.stringify(token)}` : `"runId":${JSON.stringify(runId)}`);

/** Removes the lock only if owner.json names us: RELEASED, NOTHELD, NOTOURS or BUSY. */
export function releaseLockCommand(remoteDir: string, runId: string, token?: string): string {
  const L = lockDir(remoteDir);
  const body = `if [ ! -d ${L} ]; then echo NOTHELD
else
  case "$(cat ${L}/owner.json 2>/dev/null)" in
  *${shq(ownerNeedle(runId, token))}*) rm -rf ${L} && echo RELEASED ;;
  *) echo NOTOURS ;;
  esac
fi`;
  return underMutex(mutexDir(remoteDir), body);
}

/** OURS when lock/owner.json holds this token, else NOTOURS. */
export function lockHeldByCommand(remoteDir: string, token: string): string {
  return `if grep -qF ${shq(ownerNeedle('', token))} ${ownerFile(remoteDir)} 2>/dev/null; then echo OURS; else echo NOTOURS; fi`;
}

/**
 * Refreshes owner.json's mtime while it holds our token: BEAT, FAIL, or GONE and the owner.json now
 * there. touch -c: never create owner.json in a lock dir someone else just made.
 */
export function heartbeatCommand(remoteDir: string, token: string): string {
  const f = ownerFile(remoteDir);
  return `if grep -qF ${shq(ownerNeedle('', token))} ${f} 2>/dev/null; then
  if touch -c ${f}; then echo BEAT; else echo FAIL; fi
else
  echo GONE; cat ${f} 2>/dev/null; true
fi`;
}
