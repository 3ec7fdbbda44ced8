/**
 * One deploy, phase by phase (each in src/phases/): validate locally, connect, lock, upload the
 * release, plan, check the proxy config, run pre_deploy, activate, roll each changed service behind
 * the probe, roll back on failure, run post_deploy, record. Each phase is a folded log group; every
 * remote change happens after local validation passed.
 */
import { readHostSetup } from '../host/host.js';
import { describeEngine, onEngine } from '../engine/endpoint.js';
import type { Inputs } from '../action/inputs.js';
import { coreLog, phase, type Log } from '../support/log.js';
import type { DeployReport } from '../action/report.js';
import { removeReleaseCommand } from '../commands/release-store.js';
import { Timeline } from '../model/timeline.js';
import { countRoundTrips, describePhase, describeRoundTrips, RoundTrips } from '../host/round-trips.js';
import { hookService, runHook, type HookRun } from './hooks.js';
import { collectFiles, type ReleaseFile } from '../action/workspace.js';
import { activateRelease } from '../host/release-store.js';
import { connectHost } from './connect.js';
import { openProxy } from './gate.js';
import { withDeployLock } from './locked.js';
import { planPhase } from './plan.js';
import { startProbe } from './probe.js';
import { deploySwarmLocked } from './swarm.js';
import { checkProxyConfig } from './proxy-config.js';
import { recordPhase } from './record.js';
import { readHistory, rollbackRouting, uploadPhase } from './release.js';
import { handleFailure, rolloutPhase } from './rollout.js';
import { markInterrupted, planningView, stackOf, type RunContext, type Session } from './session.js';
import { validateLocally } from './validate.js';

export async function deploy(inputs: Inputs, run: RunContext, report: DeployReport, log: Log = coreLog): Promise<void> {
  const timeline = new Timeline();
  report.events = timeline.events;

  // Local validation: nothing on the host changes before this passes.
  let files: ReleaseFile[] = [];
  let routed: string[] = [];
  if (!inputs.rollback) {
    await phase('Validate', async () => {
      files = await collectFiles(run.workspace, inputs.composeFiles, inputs.files);
      const v = await validateLocally(inputs, files, log);
      routed = v.routed;
      log.info(
        `${files.length} files, services: ${v.model.services.map((x) => x.name).join(', ')}; routed by the proxy: ${routed.join(', ') || 'none'}`,
      );
    });
  }

  const remote = await phase('Connect', async () => {
    const r = await connectHost(inputs, log, { timeline });
    log.info(`connected to the host as ${inputs.username}`);
    return r;
  });
  // Every round trip to the host is counted (the lock and its heartbeat aside): a runner far from
  // its host pays each one.
  const roundTrips = new RoundTrips('host facts and remote dir');
  const counted = countRoundTrips(remote, roundTrips);
  report.batches = [];
  try {
    const { facts, remoteDir } = await readHostSetup(counted, { ...inputs, needsCompose: inputs.target !== 'swarm' });
    log.info(`${describeEngine(facts)}, Compose ${facts.compose} ${facts.composeVersion}`);
    const onHost = onEngine(counted, facts);
    const s: Session = {
      cleanups: [],
      inputs,
      run,
      remote: onHost,
      roundTrips,
      flavor: facts.compose,
      ...(facts.dockerHost ? { dockerHost: facts.dockerHost } : {}),
      remoteDir,
      timeline,
      log,
      report,
    };
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
  const { inputs, remote, remoteDir, report } = s;
  const history = await readHistory(s);
  const release = await uploadPhase(s, history, files);
  const routed = release.target ? await rollbackRouting(s, release) : validatedRouting;
  const { model, plan, proxyService } = await planPhase(s, release, routed, history);
  if (inputs.dryRun) {
    await remote.exec(removeReleaseCommand(remoteDir, release.id), { check: false });
    report.releaseId = undefined;
    return;
  }
  const proxyCfg = await checkProxyConfig(s, release, model);
  const hooks = hookRunner(s, model.services, routed);
  if (inputs.preDeploy && hooks) {
    // From the new release's own files and env, before app/ or any replica changes.
    const view = planningView(remoteDir, release.composeFiles, release.id, inputs.project);
    await phase('pre_deploy', () => runHook('pre_deploy', inputs.preDeploy!, { ...hooks, stack: view.load }));
  }

  // Opened before activation: the proxy's live files are still those it runs with.
  const proxyAction = plan.services.find((p) => p.service === proxyService)?.action;
  const opened = await openProxy(s, model, { ...release, files: release.manifest.files }, { ...proxyCfg, proxyAction });
  markInterrupted(s, { releaseId: release.id, ...(history.current ? { previous: history.current } : {}) });
  s.roundTrips?.enter('activate');
  await activateRelease(remote, remoteDir, release.id);
  report.proxyDrains = opened.gate.drains;
  if (opened.kind) report.proxyKind = opened.kind;
  const probe = await startProbe(s, plan);
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
  const postDeployError = outcome.failure ? undefined : await postDeploy(s, hooks, release.composeFiles);
  const verdict = await probe.finish();
  s.timeline.add('deploy-end');
  await recordPhase(s, release, model, history, outcome.failure, verdict, plan);

  if (outcome.failure) throw outcome.failure;
  if (verdict && !verdict.passed) throw new Error(verdict.message);
  if (postDeployError) throw postDeployError;
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
async function postDeploy(s: Session, hooks: Omit<HookRun, 'stack'> | undefined, composeFiles: string[]): Promise<Error | undefined> {
  if (!s.inputs.postDeploy || !hooks) return undefined;
  const stack = stackOf(s.remoteDir, composeFiles, 'app', s.inputs.project);
  try {
    await phase('post_deploy', () => runHook('post_deploy', s.inputs.postDeploy!, { ...hooks, stack }));
    return undefined;
  } catch (e) {
    const error = e instanceof Error ? e : new Error(String(e));
    s.log.error(error.message);
    return error;
  }
}
