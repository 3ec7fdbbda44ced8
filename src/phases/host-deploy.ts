/**
 * One host's deploy in two halves, so a fleet can run the first on every host before the second
 * on any: *prepare* (history read, release uploaded, plan from the host's truth with images pulled,
 * proxy config checked: nothing serving changes) and *roll* (proxy gate opened, release activated,
 * services rolled behind the gate, a failure rolled back). deploy.ts runs them back to back for one
 * host; fleet.ts runs prepare everywhere, then roll host by host.
 */
import { readHostSetup } from '../host/host.js';
import { describeEngine, onEngine } from '../engine/endpoint.js';
import type { Inputs } from '../action/inputs.js';
import { phase, type Log } from '../support/log.js';
import type { DeployReport } from '../action/report.js';
import { removeReleaseCommand } from '../commands/release-store.js';
import type { Timeline } from '../model/timeline.js';
import type { ComposeModel } from '../model/compose.js';
import type { Plan } from '../model/plan.js';
import { countRoundTrips, type RoundTrips } from '../host/round-trips.js';
import type { ReconnectingRemote } from '../ssh/index.js';
import { hookService, runHook, type HookRun } from './hooks.js';
import { collectFiles, type ReleaseFile } from '../action/workspace.js';
import { activateRelease } from '../host/release-store.js';
import { openProxy } from './gate.js';
import { planPhase } from './plan.js';
import { checkProxyConfig, type ProxyConfig } from './proxy-config.js';
import { rollbackRouting, uploadPhase, type History, type Release } from './release.js';
import { handleFailure, rolloutPhase, type ProxyRoute, type RolloutOutcome } from './rollout.js';
import { markInterrupted, planningView, stackOf, type RunContext, type Session } from './session.js';
import { validateLocally } from './validate.js';

/** Local validation: nothing on any host changes before this passes. Nothing to validate for a rollback. */
export async function validatePhase(inputs: Inputs, run: RunContext, log: Log): Promise<{ files: ReleaseFile[]; routed: string[] }> {
  if (inputs.rollback) return { files: [], routed: [] };
  return phase('Validate', async () => {
    const files = await collectFiles(run.workspace, inputs.composeFiles, inputs.files);
    const v = await validateLocally(inputs, files, log);
    log.info(
      `${files.length} files, services: ${v.model.services.map((x) => x.name).join(', ')}; routed by the proxy: ${v.routed.join(', ') || 'none'}`,
    );
    return { files, routed: v.routed };
  });
}

/** The session of one connected host: its engine and Compose (host facts) and the project's directory. */
export async function openSession(
  remote: ReconnectingRemote,
  roundTrips: RoundTrips,
  ctx: { inputs: Inputs; run: RunContext; timeline: Timeline; log: Log; report: DeployReport },
): Promise<Session> {
  const { inputs, log } = ctx;
  const counted = countRoundTrips(remote, roundTrips);
  const { facts, remoteDir } = await readHostSetup(counted, { ...inputs, needsCompose: inputs.target !== 'swarm' });
  log.info(`${describeEngine(facts)}, Compose ${facts.compose} ${facts.composeVersion}`);
  return {
    ...ctx,
    cleanups: [],
    remote: onEngine(counted, facts),
    roundTrips,
    flavor: facts.compose,
    ...(facts.dockerHost ? { dockerHost: facts.dockerHost } : {}),
    remoteDir,
  };
}

/** A host ready to roll: its release uploaded and planned, its proxy config checked. */
export interface Prepared {
  s: Session;
  history: History;
  release: Release;
  model: ComposeModel;
  plan: Plan;
  proxyService?: string;
  routed: string[];
  proxyCfg: ProxyConfig;
  hooks?: Omit<HookRun, 'stack'>;
}

/**
 * The prepare half: upload (or copy, for a rollback) the release as `id` (default: a fresh one for
 * this host), plan it (images pulled), check a changed proxy config. Nothing serving changes. A dry
 * run removes its release and ends here (undefined).
 */
export async function prepareHost(
  s: Session,
  files: ReleaseFile[],
  validatedRouting: string[],
  history: History,
  id?: string,
): Promise<Prepared | undefined> {
  const { inputs, remote, remoteDir, report } = s;
  const release = await uploadPhase(s, history, files, id);
  const routed = release.target ? await rollbackRouting(s, release) : validatedRouting;
  const { model, plan, proxyService } = await planPhase(s, release, routed, history);
  if (inputs.dryRun) {
    await remote.exec(removeReleaseCommand(remoteDir, release.id), { check: false });
    report.releaseId = undefined;
    return undefined;
  }
  const proxyCfg = await checkProxyConfig(s, release, model);
  const hooks = hookRunner(s, model.services, routed);
  return { s, history, release, model, plan, routed, proxyCfg, ...(proxyService ? { proxyService } : {}), ...(hooks ? { hooks } : {}) };
}

/** pre_deploy, from the new release's own files and env, before app/ or any replica changes. */
export async function preDeploy(p: Prepared): Promise<void> {
  const { inputs, remoteDir } = p.s;
  if (!inputs.preDeploy || !p.hooks) return;
  const view = planningView(remoteDir, p.release.composeFiles, p.release.id, inputs.project);
  await phase('pre_deploy', () => runHook('pre_deploy', inputs.preDeploy!, { ...p.hooks!, stack: view.load }));
}

export interface Rolled {
  outcome: RolloutOutcome;
  proxy: ProxyRoute;
}

/**
 * The roll half: open the proxy gate, activate the release, roll every changed service, and on a
 * failure roll this host back as failure_action says. `onActivated` runs once the release is live
 * and before the first batch (a one-host deploy starts its probe there).
 */
export async function rollHost(p: Prepared, onActivated?: () => Promise<void>): Promise<Rolled> {
  const { s, release, model, plan, proxyService, routed, history } = p;
  // Opened before activation: the proxy's live files are still those it runs with.
  const proxyAction = plan.services.find((x) => x.service === proxyService)?.action;
  const opened = await openProxy(s, model, { ...release, files: release.manifest.files }, { ...p.proxyCfg, proxyAction });
  markInterrupted(s, { releaseId: release.id, ...(history.current ? { previous: history.current } : {}) });
  s.roundTrips?.enter('activate');
  await activateRelease(s.remote, s.remoteDir, release.id);
  s.report.proxyDrains = opened.gate.drains;
  if (opened.kind) s.report.proxyKind = opened.kind;
  await onActivated?.();
  const proxy = { gate: opened.gate, ...(proxyService ? { proxyService } : {}) };
  const outcome = await rolloutPhase(s, release, plan, routed, proxy, opened.before);
  await handleFailure(s, outcome, history, routed, proxy);
  if (!outcome.failure && opened.after) {
    await opened
      .after()
      .catch((e: unknown) =>
        s.log.warning(
          `the proxy could not be switched to its replicas by IP (${(e as Error).message}): the next deploy does it before its rollout`,
        ),
      );
  }
  return { outcome, proxy };
}

/** What pre_deploy and post_deploy need, when either is set (hook_service was checked before any change). */
function hookRunner(s: Session, services: Parameters<typeof hookService>[0], routed: string[]): Omit<HookRun, 'stack'> | undefined {
  const { inputs } = s;
  if (!inputs.preDeploy && !inputs.postDeploy) return undefined;
  return {
    service: hookService(services, routed, inputs.hookService),
    timeoutMs: inputs.hookTimeoutMs,
    remote: s.remote,
    flavor: s.flavor,
    log: s.log,
    timeline: s.timeline,
  };
}

/** After a successful rollout only; its failure fails the job but rolls nothing back. */
export async function postDeploy(p: Prepared): Promise<Error | undefined> {
  const { s, hooks } = p;
  if (!s.inputs.postDeploy || !hooks) return undefined;
  const stack = stackOf(s.remoteDir, p.release.composeFiles, 'app', s.inputs.project);
  try {
    await phase('post_deploy', () => runHook('post_deploy', s.inputs.postDeploy!, { ...hooks, stack }));
    return undefined;
  } catch (e) {
    const error = e instanceof Error ? e : new Error(String(e));
    s.log.error(error.message);
    return error;
  }
}
