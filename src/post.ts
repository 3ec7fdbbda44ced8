/**
 * The post step (runs on success, failure and cancellation): if the main step was killed while it
 * held the project's lock on the host, release it so the next deploy doesn't wait for the TTL.
 */
import './esm-shims.js';
import * as core from '@actions/core';
import { connectHost } from './deploy.js';
import { readInputs, secretsOf } from './inputs.js';
import { coreLog } from './log.js';
import { releaseLock } from './lock.js';

async function post(): Promise<void> {
  const state = core.getState('lock');
  if (!state) return;
  const { remoteDir, runId, token } = JSON.parse(state) as { remoteDir: string; runId: string; token?: string };
  const inputs = readInputs((name) => core.getInput(name), process.env);
  for (const s of secretsOf(inputs)) core.setSecret(s);
  const remote = await connectHost(inputs, coreLog);
  try {
    const outcome = await releaseLock(remote, remoteDir, runId, token);
    if (outcome !== 'released') return;
    core.info('released the deploy lock left by the main step');
  } finally {
    await remote.close();
  }
}

try {
  await post();
} catch (e) {
  core.warning(`post: could not release the deploy lock: ${e instanceof Error ? e.message : String(e)}`);
}
