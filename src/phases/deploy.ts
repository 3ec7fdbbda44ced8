/**
 * One deploy, phase by phase (each in src/phases/): validate locally, connect, lock, upload the
 * release, plan, check the proxy config, run pre_deploy, activate, roll each changed service behind
 * the probe, roll back on failure, run post_deploy, record. Each phase is a folded log group; every
 * remote change happens after local validation passed. The per-host halves (prepare, roll) are in
 * host-deploy.ts; several hosts (`hosts`) go through fleet.ts.
 */
import type { Inputs } from '../action/inputs.js';
import { coreLog, phase, type Log } from '../support/log.js';
import type { DeployReport } from '../action/report.js';
import { Timeline } from '../model/timeline.js';
import { describePhase, describeRoundTrips, RoundTrips } from '../host/round-trips.js';
import type { ReleaseFile } from '../action/workspace.js';
import { connectHost } from './connect.js';
import { deployFleet } from './fleet.js';
import { openSession, postDeploy, preDeploy, prepareHost, rollHost, validatePhase } from './host-deploy.js';
import { withDeployLock } from './locked.js';
import { startProbe, type RunningProbe } from './probe.js';
import { deploySwarmLocked } from './swarm.js';
import { recordPhase } from './record.js';
import { readHistory } from './release.js';
import type { RunContext, Session } from './session.js';

export async function deploy(inputs: Inputs, run: RunContext, report: DeployReport, log: Log = coreLog): Promise<void> {
  if (inputs.fleet) return deployFleet(inputs, run, report, log);
  const timeline = new Timeline();
  report.events = timeline.events;

  // Local validation: nothing on the host changes before this passes.
  const { files, routed } = await validatePhase(inputs, run, log);

  const remote = await phase('Connect', async () => {
    const r = await connectHost(inputs, log, { timeline });
    log.info(`connected to the host as ${inputs.username}`);
    return r;
  });
  // Every round trip to the host is counted (the lock and its heartbeat aside): a runner far from
  // its host pays each one.
  const roundTrips = new RoundTrips('host facts and remote dir');
  report.batches = [];
  try {
    const s = await openSession(remote, roundTrips, { inputs, run, timeline, log, report });
    await withDeployLock(s, remote, () =>
      inputs.target === 'swarm' ? deploySwarmLocked(s, files, routed) : deployLocked(s, files, routed),
    );
  } finally {
    report.roundTrips = roundTrips.total;
    log.info(`round trips to the host in this deploy: ${describeRoundTrips(roundTrips.current())} (the lock's heartbeat aside)`);
    for (const p of roundTrips.byPhase()) log.debug(`round trips in ${describePhase(p)}`);
    await remote.close();
  }
}

async function deployLocked(s: Session, files: ReleaseFile[], validatedRouting: string[]): Promise<void> {
  const history = await readHistory(s);
  const p = await prepareHost(s, files, validatedRouting, history);
  if (!p) return;
  await preDeploy(p);
  let probe: RunningProbe | undefined;
  const { outcome } = await rollHost(p, async () => {
    probe = await startProbe(s, p.plan);
  });
  const postDeployError = outcome.failure ? undefined : await postDeploy(p);
  const verdict = await probe?.finish();
  s.timeline.add('deploy-end');
  await recordPhase(s, p.release, p.model, history, outcome.failure, verdict, p.plan);

  if (outcome.failure) throw outcome.failure;
  if (verdict && !verdict.passed) throw new Error(verdict.message);
  if (postDeployError) throw postDeployError;
}
