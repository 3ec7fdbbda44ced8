/**
 * Finishing an interrupted deploy (the post step): the main step ended after the live stack began
 * to change and before the release was recorded (a network cut it could not ride out, a killed or
 * cancelled runner). On a fresh connection, and only while the deploy lock is still this run's:
 * roll every service back to the release that served before (its containers kept, the interrupted
 * batch's replaced), put back the proxy slots the lost process had parked or drained, and mark the
 * interrupted release abandoned with what happened. Every step is safe to repeat, so a post step
 * cut in turn by the network retries on a new connection and finishes.
 */
import { posix } from 'node:path';
import { appendAudit, auditEntry } from '../host/audit.js';
import { readHostFacts } from '../host/host.js';
import { onEngine } from '../engine/endpoint.js';
import type { Inputs } from '../action/inputs.js';
import { lockHeldBy } from '../host/lock.js';
import type { Log } from '../support/log.js';
import { listProjectContainers, replicaIp } from '../engine/docker/containers.js';
import { HaproxyGate } from '../proxy/haproxy/drain.js';
import { abandonIfPending, listReleases, readCurrent } from '../host/release-store.js';
import { newReport } from '../action/report.js';
import { Timeline } from '../model/timeline.js';
import type { Replica } from '../proxy/gate.js';
import type { ReleaseManifest } from '../model/release.js';
import type { ComposeModel } from '../model/compose.js';
import type { Remote } from '../host/remote.js';
import { desiredState } from './desired.js';
import { openProxy, selectedProxy } from './gate.js';
import { releaseRouting } from './release.js';
import { rollBackTo } from './rollout.js';
import type { InterruptedDeploy, RunContext, Session } from './session.js';
import type { ComposeFlavor } from '../engine/docker/compose-cli.js';

export interface RecoveryResult {
  /** What was done, for the log. */
  outcome: 'restored' | 'restore-failed' | 'nothing-to-restore' | 'not-our-lock';
  message: string;
}

export async function recoverInterrupted(
  remote: Remote,
  inputs: Inputs,
  run: RunContext,
  lock: { remoteDir: string; token: string },
  interrupted: InterruptedDeploy,
  log: Log,
): Promise<RecoveryResult> {
  const { remoteDir } = lock;
  if (!(await lockHeldBy(remote, remoteDir, lock.token))) {
    return {
      outcome: 'not-our-lock',
      message: "the deploy lock is no longer this run's (taken over or freed): the stack is left to its holder",
    };
  }
  const releases = await listReleases(remote, remoteDir);
  const previous = interrupted.previous ? releases.find((r) => r.id === interrupted.previous) : undefined;
  if (!previous) {
    const why = interrupted.previous ? `release ${interrupted.previous} is not on the host` : 'nothing served before this first deploy';
    await abandonIfPending(remote, remoteDir, interrupted.releaseId, `interrupted before it was recorded; not restored: ${why}`);
    return {
      outcome: 'nothing-to-restore',
      message: `the interrupted release ${interrupted.releaseId} is marked abandoned; ${why}, so there is nothing to restore (the next deploy converges from what runs)`,
    };
  }
  // The current pointer only moves when a deploy is recorded: it still names the release that served.
  const current = await readCurrent(remote, remoteDir);
  if (current && current !== previous.id) {
    return { outcome: 'nothing-to-restore', message: `release ${current} was recorded since (not ${previous.id}): nothing to restore` };
  }
  const s = await recoverySession(remote, inputs, run, remoteDir, log);
  const failure = await restore(s, previous);
  const what = failure === undefined ? `restored release ${previous.id}` : `tried to restore release ${previous.id}: ${failure}`;
  await abandonIfPending(remote, remoteDir, interrupted.releaseId, `interrupted before it was recorded; the post step ${what}`);
  await appendAudit(
    remote,
    remoteDir,
    auditEntry('rollback', run, {
      release: previous.id,
      sha: previous.sha,
      result: failure === undefined ? 'success' : 'failed',
      detail: `post step after the interrupted deploy of ${interrupted.releaseId}: ${what}`,
    }),
  );
  return failure === undefined
    ? {
        outcome: 'restored',
        message: `the interrupted deploy of ${interrupted.releaseId} was rolled back: release ${previous.id} serves again`,
      }
    : {
        outcome: 'restore-failed',
        message: `the interrupted deploy of ${interrupted.releaseId} could not be rolled back cleanly: ${failure}`,
      };
}

/** A session of the post step, for the rollback path the main step would have taken. */
async function recoverySession(remote: Remote, inputs: Inputs, run: RunContext, remoteDir: string, log: Log): Promise<Session> {
  const facts = await readHostFacts(remote, inputs.username, inputs.compose, inputs.engine, inputs.podmanSocket);
  return {
    cleanups: [],
    inputs,
    run,
    remote: onEngine(remote, facts),
    ...(facts.dockerHost ? { dockerHost: facts.dockerHost } : {}),
    flavor: facts.compose as ComposeFlavor,
    remoteDir,
    timeline: new Timeline(),
    log,
    report: newReport(inputs.project, 'rollback'),
  };
}

/** Roll back to `previous` through its own proxy gate; undefined when it worked, else why not. */
async function restore(s: Session, previous: ReleaseManifest): Promise<string | undefined> {
  const { log } = s;
  // The previous release's proxy config says which services it routes (its files are on the host).
  const routed = await releaseRouting(s, previous);
  const { model } = await desiredState(s, { composeFiles: previous.composeFiles, release: previous.id }, routed, previous);
  const cfg = await proxyConfigText(s, model, previous);
  const proxy = await openProxy(s, model, previous, { ...(cfg !== undefined ? { next: cfg, live: cfg } : {}), changed: false });
  const gate = proxy.gate instanceof HaproxyGate ? proxy.gate : undefined;
  const proxyName = proxy.proxyService;
  if (gate) for (const [service, replicas] of await servingReplicas(s, routed, proxyName)) await gate.claimParked(service, replicas);
  let failure: string | undefined;
  try {
    if (!(await rollBackTo(s, previous, routed, proxy))) failure = 'a service did not come back healthy (see the log above)';
  } catch (e) {
    failure = e instanceof Error ? e.message : String(e);
  }
  // Whatever the rollout did, no replica that serves may stay parked or drained.
  if (gate) {
    for (const [service, replicas] of await servingReplicas(s, routed, proxyName)) {
      await gate
        .restore(service, replicas)
        .catch((e: unknown) => log.warning(`${service}: could not put proxy slots back: ${e instanceof Error ? e.message : String(e)}`));
    }
  }
  return failure;
}

/** The text of a release's proxy config on the host (undefined: no proxy or no config). */
async function proxyConfigText(s: Session, model: ComposeModel, release: ReleaseManifest): Promise<string | undefined> {
  const selected = selectedProxy(s.inputs, model);
  const cfgPath = selected?.driver.configPath(release.files, selected.service, posix.dirname(release.composeFiles[0]!));
  return cfgPath ? s.remote.readFile(posix.join(s.remoteDir, 'releases', release.id, cfgPath)) : undefined;
}

/** The running replicas of each routed service, with the IP the proxy sees them by. */
async function servingReplicas(s: Session, routed: string[], proxyName: string | undefined): Promise<Map<string, Replica[]>> {
  const running = (await listProjectContainers(s.remote, s.inputs.project)).filter((c) => c.state === 'running');
  const networks = [...new Set(running.filter((c) => c.service === proxyName).flatMap((c) => Object.keys(c.ips)))];
  return new Map(
    routed.map((service) => [
      service,
      running.filter((c) => c.service === service).map((c) => ({ id: c.id, name: c.name, ip: replicaIp(c, networks) })),
    ]),
  );
}
