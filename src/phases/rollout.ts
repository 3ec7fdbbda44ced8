/**
 * The Rollout phase: each changed service rolled behind the proxy gate; on a failure with
 * failure_action rollback, the release that served before is rolled back through the same path.
 */
import { phase } from '../support/log.js';
import { activateRelease } from '../host/release-store.js';
import { pinImages } from '../engine/docker/images.js';
import { renderPlan, type Plan } from '../model/plan.js';
import type { ProxyGate } from '../proxy/gate.js';
import type { ReleaseManifest } from '../model/release.js';
import { rollOut, type RolloutContext } from '../rollout/rollout.js';
import { rolloutFloor, speedLine } from '../model/floor.js';
import type { ComposeProject } from '../engine/docker/compose-cli.js';
import { dockerEngine } from '../engine/docker/engine.js';
import { desiredState, makePlan } from './desired.js';
import { pinsOf, type History, type Release } from './release.js';
import { stackOf, type Session } from './session.js';

export interface ProxyRoute {
  gate: ProxyGate;
  proxyService?: string;
}

export interface RolloutOutcome {
  failure?: Error;
  failureAction: 'rollback' | 'pause' | 'continue';
}

/** What rollOut needs for this session: its engine over the stack, the proxy gate, the log. */
function rolloutContext(s: Session, stack: ComposeProject, routed: string[], proxy: ProxyRoute): RolloutContext {
  return {
    engine: dockerEngine({ remote: s.remote, flavor: s.flavor, stack }),
    gate: proxy.gate,
    timeline: s.timeline,
    log: s.log,
    healthTimeoutMs: s.inputs.healthTimeoutMs,
    proxyService: proxy.proxyService,
    routedServices: new Set(routed),
    ...(s.roundTrips ? { roundTrips: s.roundTrips } : {}),
    ...(s.report.batches ? { batches: s.report.batches } : {}),
  };
}

/** Roll the plan, then log how the batches it ran compare with their floor. */
async function rollOutMeasured(s: Session, ctx: RolloutContext, plan: Plan) {
  const first = ctx.batches?.length ?? 0;
  try {
    return await rollOut(ctx, plan);
  } finally {
    const line = speedLine(rolloutFloor(ctx.batches?.slice(first) ?? [], s.timeline.events));
    if (line) s.log.info(line);
  }
}

/** Roll the plan; a failure is returned (not thrown) so the probe and the record still run. */
export async function rolloutPhase(
  s: Session,
  release: Release,
  plan: Plan,
  routed: string[],
  proxy: ProxyRoute,
  before?: () => Promise<void>,
): Promise<RolloutOutcome> {
  const { inputs, remoteDir, timeline, log, report } = s;
  s.roundTrips?.enter('rollout');
  try {
    await before?.();
    timeline.add('deploy-start', { detail: release.id });
    const stack = stackOf(remoteDir, release.composeFiles, 'app', inputs.project);
    const result = await rollOutMeasured(s, rolloutContext(s, stack, routed, proxy), plan);
    report.servicesUpdated = result.updated;
    for (const f of result.failures) {
      await phase(`Failed containers of ${f.service}: health output and logs`, async () => log.info(f.logs || '(nothing collected)'));
    }
    if (result.ok) return { failureAction: 'rollback' };
    return {
      failure: new Error(`${result.failure?.service ?? 'the rollout'}: ${result.failure?.reason ?? 'failed'}`),
      failureAction: result.failure?.failureAction ?? 'rollback',
    };
  } catch (e) {
    return { failure: e instanceof Error ? e : new Error(String(e)), failureAction: 'rollback' };
  }
}

/** After a failed rollout: roll back to the release that served, as failure_action says. */
export async function handleFailure(
  s: Session,
  outcome: RolloutOutcome,
  history: History,
  routed: string[],
  proxy: ProxyRoute,
): Promise<void> {
  const { failure, failureAction } = outcome;
  if (!failure) return;
  s.timeline.add('failure', { detail: failure.message });
  s.log.error(failure.message);
  const previous = history.serving;
  if (failureAction !== 'rollback') {
    s.log.warning(`failure_action ${failureAction}: no rollback; the services keep what this deploy left (see the plan and the timeline)`);
  } else if (!previous) {
    s.log.warning('no earlier release to roll back to: the failed new containers were removed, and what ran before keeps running');
  } else {
    await phase(`Rollback to ${previous.id}`, async () => {
      s.report.rolledBack = await rollBackTo(s, previous, routed, proxy);
    });
  }
}

/**
 * Put release `previous` back: its images pinned, its files in app/, and each service rolled to it
 * from whatever runs now (health-gated, drained through the proxy). True when every service made it.
 */
export async function rollBackTo(s: Session, previous: ReleaseManifest, routed: string[], proxy: ProxyRoute): Promise<boolean> {
  const { remote, remoteDir, inputs, timeline, log } = s;
  timeline.add('rollback-start', { detail: previous.id });
  await pinImages(remote, pinsOf(previous));
  await activateRelease(remote, remoteDir, previous.id);
  await proxy.gate.activated?.();
  const prevStack = stackOf(remoteDir, previous.composeFiles, 'app', inputs.project);
  const back = await desiredState({ ...s }, { composeFiles: previous.composeFiles }, routed, previous);
  const backPlan = makePlan(s, back.desired, false, back.running);
  log.info(renderPlan(backPlan));
  const r = await rollOutMeasured(s, rolloutContext(s, prevStack, routed, proxy), backPlan);
  timeline.add('rollback-done', { detail: r.ok ? 'ok' : 'failed' });
  if (!r.ok) log.error(`the rollback to ${previous.id} failed too: ${r.failure?.reason ?? ''}`);
  return r.ok;
}
