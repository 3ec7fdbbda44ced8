/**
 * Everything between taking the project's deploy lock and letting it go: the lock (with its
 * heartbeat, and a reconnect that checks it is still ours), the registry login of this deploy, and
 * what must happen however the deploy ends: the release abandoned if it stopped before its record,
 * cleanups run, the login removed, and the lock released — unless the post step must restore the
 * stack first, in which case both are left for it.
 */
import { onEngine } from '../engine/endpoint.js';
import * as core from '@actions/core';
import { acquireLock, DEFAULT_HEARTBEAT_MS, lockHeldBy, releaseLock, startHeartbeat, type LockHandle } from '../host/lock.js';
import { phase } from '../support/log.js';
import { dockerConfigDir, logoutCommand, registryLogin } from '../host/registry.js';
import { abandonIfPending } from '../host/release-store.js';
import type { ReconnectingRemote } from '../ssh/index.js';
import type { Session } from './session.js';
import { countRoundTrips } from '../host/round-trips.js';

export async function withDeployLock(s: Session, remote: ReconnectingRemote, body: () => Promise<void>): Promise<void> {
  const { inputs, run, remoteDir, log, report } = s;
  s.roundTrips?.enter('lock');
  const handle = await phase('Lock', async () => {
    const h = await acquireLock(
      counted(s, remote),
      remoteDir,
      { runId: run.runId, runUrl: run.runUrl, actor: run.actor, sha: run.sha, startedAt: new Date().toISOString() },
      {
        timeoutMs: inputs.lockTimeoutMs,
        ttlMs: inputs.lockTtlMs,
        heartbeatMs: DEFAULT_HEARTBEAT_MS,
        log,
      },
    );
    core.saveState('lock', JSON.stringify(h));
    return h;
  });
  // A connection that comes back after a cut is used only while the lock is still ours.
  remote.setVerify(async (fresh) => {
    if (!(await lockHeldBy(fresh, remoteDir, handle.token)))
      throw new Error('the deploy lock was taken over while the connection to the host was down: stopping here');
  });
  const heartbeat = startHeartbeat(remote, handle, { log });
  let registryDir: string | undefined;
  try {
    if (inputs.registry) {
      registryDir = dockerConfigDir(remoteDir, run.runId);
      core.saveState('registry', registryDir);
      const login = await registryPhase(s, remote, registryDir);
      s.remote = s.roundTrips ? countRoundTrips(login, s.roundTrips) : login;
    }
    await body();
  } catch (e) {
    // Stopped before its Record phase: say so in the release itself, while the lock is still ours
    // (unless the post step restores the stack: it writes what happened).
    if (report.releaseId && !s.interrupted) {
      await abandonIfPending(remote, remoteDir, report.releaseId, e instanceof Error ? e.message : String(e)).catch(() => false);
    }
    throw e;
  } finally {
    for (const cleanup of s.cleanups) await cleanup().catch(() => {});
    await heartbeat.stop();
    await letGo(s, remote, handle, registryDir);
  }
}

/** The lock's own commands are on the deploy's path (its heartbeat is not): counted with the rest. */
function counted(s: Session, remote: ReconnectingRemote) {
  return s.roundTrips ? countRoundTrips(remote, s.roundTrips) : remote;
}

async function registryPhase(s: Session, remote: ReconnectingRemote, dir: string) {
  const registry = s.inputs.registry!;
  return phase('Registry login', async () => {
    // `docker login` goes through the engine (it asks the daemon), so it needs DOCKER_HOST for Podman.
    const r = await registryLogin(onEngine(remote, s), dir, registry);
    s.log.info(`logged in to ${registry.server} as ${registry.username} (for this deploy only)`);
    return r;
  });
}

/** The login and the lock go, unless the post step must restore the stack with them first. */
async function letGo(s: Session, remote: ReconnectingRemote, handle: LockHandle, registryDir: string | undefined): Promise<void> {
  const { log } = s;
  if (s.interrupted) {
    // The lock stays held (its heartbeat stopped): the post step restores on a fresh connection, then frees it.
    log.warning(
      `the deploy stopped before the stack was consistent again: the post step ${s.interrupted.previous ? `restores release ${s.interrupted.previous}` : 'cleans up'} on a fresh connection, then frees the deploy lock`,
    );
    return;
  }
  if (registryDir) {
    await remote
      .exec(logoutCommand(registryDir), { check: false })
      .catch((e: unknown) => log.warning(`could not remove the registry login: ${String(e)}`));
    core.saveState('registry', '');
  }
  s.roundTrips?.enter('unlock');
  await releaseLock(counted(s, remote), s.remoteDir, s.run.runId, handle.token).catch((e: unknown) =>
    log.warning(`could not release the lock: ${String(e)}`),
  );
  core.saveState('lock', '');
}
