/**
 * The post step (runs on success, failure and cancellation). When the main step ended while it
 * still held the project's deploy lock, finish its job on a fresh connection: if the live stack was
 * left midway (state `deploy`), restore the release that served before (recover.ts), then release
 * the lock. The connection reconnects by itself, and every step is safe to repeat.
 */
import './esm-shims.js';
import * as core from '@actions/core';
import { connectHost } from '../phases/connect.js';
import type { InterruptedDeploy } from '../phases/session.js';
import { runContext } from './run-context.js';
import { readInputs, secretsOf } from './inputs.js';
import { coreLog, phase } from '../support/log.js';
import { releaseLock, startHeartbeat, type LockHandle } from '../host/lock.js';
import { recoverInterrupted } from '../phases/recover.js';
import { DockerConfigRemote, logoutCommand } from '../host/registry.js';

async function post(): Promise<void> {
  const state = core.getState('lock');
  if (!state) return;
  const handle = JSON.parse(state) as LockHandle;
  const { remoteDir, runId, token } = handle;
  const deployState = core.getState('deploy');
  const interrupted = deployState ? (JSON.parse(deployState) as InterruptedDeploy) : undefined;
  const inputs = readInputs((name) => core.getInput(name), process.env);
  for (const s of secretsOf(inputs)) core.setSecret(s);
  // The link that failed the main step may still be down: retry the first connection too.
  const connected = await connectHost(inputs, coreLog, { retryFirst: true });
  // The main step's registry login, if it left one: used to restore, then removed.
  const registryDir = core.getState('registry');
  const remote = registryDir ? new DockerConfigRemote(connected, registryDir) : connected;
  try {
    if (interrupted) {
      const heartbeat = startHeartbeat(remote, handle, { log: coreLog });
      try {
        const result = await phase(`Restore after the interrupted deploy of ${interrupted.releaseId}`, () =>
          recoverInterrupted(remote, inputs, runContext(process.env), { remoteDir, token }, interrupted, coreLog),
        );
        if (result.outcome === 'restored' || result.outcome === 'nothing-to-restore') core.info(result.message);
        else core.warning(result.message);
        if (result.outcome === 'not-our-lock') return;
      } finally {
        await heartbeat.stop();
      }
    }
    const outcome = await releaseLock(remote, remoteDir, runId, token);
    if (outcome === 'released') core.info('released the deploy lock left by the main step');
  } finally {
    if (registryDir) await connected.exec(logoutCommand(registryDir), { check: false }).catch(() => {});
    await remote.close();
  }
}

try {
  await post();
} catch (e) {
  core.warning(`post: could not finish the interrupted deploy or release the deploy lock: ${e instanceof Error ? e.message : String(e)}`);
}
