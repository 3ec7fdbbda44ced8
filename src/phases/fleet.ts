/**
 * A fleet deploy (`hosts`): one release rolled over several hosts with the same proof.
 *
 * Everything that can be checked everywhere is checked everywhere before the first host changes:
 * every host's key pin, then every host connected, locked, its history read, the release (one id for
 * all) uploaded, planned with images pulled and its proxy config checked. A host failing any of that
 * stops the deploy with nothing serving changed. Then pre_deploy once (on the first host), the probe
 * over the whole fleet, and the roll half host by host (`host_parallelism` at a time). A host whose
 * rollout fails rolls itself back (failure_action), and the hosts rolled before it are rolled back to
 * their previous release through the same health-gated path, so the fleet never stays on mixed
 * versions; hosts not reached never changed. Every host records its own result; every lock goes.
 */
import { hostProbeUrl, type Inputs } from '../action/inputs.js';
import { phase, type Log } from '../support/log.js';
import { newReport, type DeployReport, type HostRow } from '../action/report.js';
import { Timeline } from '../model/timeline.js';
import { describeRoundTrips, RoundTrips } from '../host/round-trips.js';
import type { ReleaseFile } from '../action/workspace.js';
import {
  commonRollbackTarget,
  freeReleaseId,
  hostLabel,
  hostsToRollBack,
  hostWaves,
  type FleetHost,
  type HostRollResult,
} from '../model/fleet.js';
import { normalizeFingerprint, validateHostPin } from '../ssh/hostkey.js';
import type { ReconnectingRemote } from '../ssh/index.js';
import type { Verdict } from '../probe/verdict.js';
import { connectHost } from './connect.js';
import { openSession, postDeploy, preDeploy, prepareHost, rollHost, validatePhase, type Prepared, type Rolled } from './host-deploy.js';
import { withDeployLock } from './locked.js';
import { startProbeIfServing, type RunningProbe } from './probe.js';
import { recordPhase } from './record.js';
import { readHistory, type History } from './release.js';
import { rollBackTo } from './rollout.js';
import type { RunContext, Session } from './session.js';

/** One host of the fleet as the deploy goes: its connection, session, prepared release and rollout. */
interface Member {
  host: FleetHost;
  label: string;
  remote?: ReconnectingRemote;
  roundTrips: RoundTrips;
  s?: Session;
  prepared?: Prepared;
  rolled?: Rolled;
  /** Why the rollout failed (a failed batch, or an error thrown while rolling). */
  failure?: Error;
  result: HostRollResult;
  /** What stopped this host before its rollout (e.g. `connect failed`), for its summary row. */
  note?: string;
  /** This host's own probe (probe_host_url), running for the whole fleet deploy. */
  probe?: RunningProbe;
  /** Set when this host went back to its previous release because another host failed. */
  rolledBackForFleet?: boolean;
  rollMs?: number;
}

/** The deploy's inputs as one host of the fleet sees them: its address and its own pin. */
function hostInputs(inputs: Inputs, h: FleetHost): Inputs {
  return { ...inputs, host: h.host, port: h.port, fingerprint: h.fingerprint };
}

export async function deployFleet(inputs: Inputs, run: RunContext, report: DeployReport, log: Log): Promise<void> {
  const timeline = new Timeline();
  report.events = timeline.events;
  const members: Member[] = inputs.fleet!.map((host) => ({
    host,
    label: hostLabel(host),
    roundTrips: new RoundTrips('host facts and remote dir'),
    result: 'not-reached',
  }));
  report.hosts = members.map((m) => ({ host: m.label, plan: '', result: 'not reached' }));
  const { files, routed } = await validatePhase(inputs, run, log);
  checkPins(inputs, members);
  try {
    await phase(`Connect (${members.length} hosts)`, () => connectAll(inputs, members, timeline, log));
    for (const m of members) {
      log.info(`host ${m.label}:`);
      const ctx = { inputs: hostInputs(inputs, m.host), run, timeline, log, report: hostReport(inputs) };
      m.s = await onHost(m, 'open', () => openSession(m.remote!, m.roundTrips, ctx));
    }
    await withLocks(members, 0, () => fleetLocked(members, files, routed, report));
  } finally {
    summarize(members, report);
    await Promise.all(members.map((m) => m.remote?.close().catch(() => {})));
  }
}

/** Every host's pin checked before any host is dialed (a fleet with one bad pin changes nothing). */
function checkPins(inputs: Inputs, members: Member[]): void {
  if (inputs.insecureIgnoreHostKey && !inputs.knownHosts && !members.some((m) => m.host.fingerprint)) return;
  for (const m of members) {
    if (!inputs.knownHosts && !m.host.fingerprint) continue; // insecure_ignore_host_key (inputs.ts checked)
    try {
      const fp = m.host.fingerprint ? [normalizeFingerprint(m.host.fingerprint)] : undefined;
      validateHostPin({ knownHosts: inputs.knownHosts, fingerprints: fp }, m.host.host, m.host.port);
    } catch (e) {
      throw new Error(`input 'hosts': host #${m.host.index}: ${(e as Error).message}; nothing was changed on any host`, { cause: e });
    }
  }
}

/** Connect every host at once; one that cannot be reached stops the deploy before any change. */
async function connectAll(inputs: Inputs, members: Member[], timeline: Timeline, log: Log): Promise<void> {
  const results = await Promise.allSettled(members.map((m) => connectHost(hostInputs(inputs, m.host), log, { timeline })));
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') members[i]!.remote = r.value;
  });
  const failed = results.findIndex((r) => r.status === 'rejected');
  if (failed >= 0) {
    const m = members[failed]!;
    m.note = 'connect failed';
    const reason = (results[failed] as PromiseRejectedResult).reason as Error;
    throw new Error(`host ${m.label}: could not connect (${reason.message}); nothing was changed on any host`);
  }
  log.info(`connected to ${members.length} hosts as ${inputs.username}`);
}

/** Run a step of one host, its errors naming the host (and its summary row the step). */
async function onHost<T>(m: Member, step: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    m.note ??= `${step} failed`;
    throw new Error(message.startsWith('host #') ? message : `host ${m.label}: ${message}`, { cause: e });
  }
}

/** Each host's lock taken in listed order, each held until the whole fleet deploy is over. */
function withLocks(members: Member[], i: number, body: () => Promise<void>): Promise<void> {
  if (i === members.length) return body();
  const m = members[i]!;
  m.s!.log.info(`host ${m.label}: lock`);
  return withDeployLock(m.s!, m.remote!, () => withLocks(members, i + 1, body));
}

/** A host's own report (its plan, batches, result): the fleet's report gathers them. */
function hostReport(inputs: Inputs): DeployReport {
  const r = newReport(inputs.project, inputs.rollback ? 'rollback' : 'deploy');
  r.batches = [];
  return r;
}

async function fleetLocked(members: Member[], files: ReleaseFile[], routed: string[], report: DeployReport): Promise<void> {
  const first = members[0]!;
  const ready = await prepareAll(members, files, routed, report);
  if (!ready) return;
  const s1 = first.s!;
  await onHost(first, 'pre_deploy', () => preDeploy(first.prepared!));
  // One probe for the whole fleet (the public URL): it reports into the fleet's report.
  const serving = members.some((m) => m.prepared!.plan.services.some((p) => p.oldReplicas > 0));
  const probe = await startProbeIfServing({ ...s1, report }, serving);
  await startHostProbes(members);
  const failed = await rollWaves(members, s1.inputs.hostParallelism);
  if (failed) await rollBackFleet(members, failed);
  const postDeployError = failed ? undefined : await postDeploy(first.prepared!);
  const verdict = await probe.finish();
  const hostVerdicts = await finishHostProbes(members);
  s1.timeline.add('deploy-end');
  await recordAll(members, failed, verdict, report);
  if (failed) throw fleetFailure(failed);
  if (verdict && !verdict.passed) throw new Error(verdict.message);
  const lossy = hostVerdicts.find((v) => !v.verdict.passed);
  if (lossy) throw new Error(`host ${lossy.m.label}: ${lossy.verdict.message}`);
  if (postDeployError) throw postDeployError;
}

/**
 * probe_host_url: each host's own probe (the URL with its address; with probe_via ssh, through a
 * tunnel to it), from before the first host rolls until the fleet is done (its rollback included).
 * It reports into the host's own report.
 */
async function startHostProbes(members: Member[]): Promise<void> {
  for (const m of members) {
    const { inputs } = m.s!;
    if (!inputs.probeHostUrl || !inputs.probe) continue;
    const probe = { ...inputs.probe, url: hostProbeUrl(inputs.probeHostUrl, m.host.host) };
    const serving = m.prepared!.plan.services.some((p) => p.oldReplicas > 0);
    m.probe = await onHost(m, 'probe', () => startProbeIfServing({ ...m.s!, inputs: { ...inputs, probe } }, serving));
  }
}

async function finishHostProbes(members: Member[]): Promise<Array<{ m: Member; verdict: Verdict }>> {
  const out: Array<{ m: Member; verdict: Verdict }> = [];
  for (const m of members) {
    if (m.probe) m.s!.log.info(`host ${m.label}: its own probe (probe_host_url)`);
    const verdict = await m.probe?.finish();
    if (verdict) out.push({ m, verdict });
  }
  return out;
}

/**
 * The prepare half on every host, with one release id free in every host's history. A rollback must
 * return every host to the same release. False for a dry run (nothing more to do).
 */
async function prepareAll(members: Member[], files: ReleaseFile[], routed: string[], report: DeployReport): Promise<boolean> {
  const histories: History[] = [];
  for (const m of members) histories.push(await onHost(m, 'history', () => readHistory(m.s!)));
  const s1 = members[0]!.s!;
  const id = freeReleaseId(
    s1.run.sha,
    histories.flatMap((h) => h.releases.map((r) => r.id)),
    Date.now(),
  );
  for (const [i, m] of members.entries()) {
    s1.log.info(`host ${m.label}: prepare release ${id}`);
    const p = await onHost(m, 'prepare', () => prepareHost(m.s!, files, routed, histories[i]!, id));
    if (!p) continue;
    m.prepared = p;
    report.hosts![i]!.plan = planBrief(p);
  }
  report.releaseId = s1.inputs.dryRun ? undefined : id;
  report.previousReleaseId = histories[0]!.current;
  if (s1.inputs.dryRun) return false;
  if (s1.inputs.rollback) commonRollbackTarget(members.map((m) => m.prepared!.release.target?.id));
  return true;
}

/** The plan of one host in a few words: what changes, or that nothing does. */
function planBrief(p: Prepared): string {
  const changes = p.plan.services.filter((x) => x.action !== 'keep' && x.action !== 'skip');
  if (changes.length === 0) return 'no change';
  return changes.map((x) => `${x.service}: ${x.action} ${x.oldReplicas}→${x.newReplicas} (${x.batches.length} batches)`).join('; ');
}

/** The roll half, wave by wave; the first failing host stops it (returned). */
async function rollWaves(members: Member[], parallelism: number): Promise<Member | undefined> {
  for (const wave of hostWaves(members, parallelism)) {
    await Promise.all(
      wave.map(async (m) => {
        const started = Date.now();
        m.s!.log.info(`host ${m.label}: roll release ${m.prepared!.release.id}`);
        m.s!.timeline.add('note', { detail: `host ${m.label}: roll starts` });
        try {
          m.rolled = await rollHost(m.prepared!);
          m.failure = m.rolled.outcome.failure;
        } catch (e) {
          m.failure = e instanceof Error ? e : new Error(String(e));
        } finally {
          m.result = m.failure ? 'failed' : 'rolled';
          m.rollMs = Date.now() - started;
          m.s!.timeline.add('note', { detail: `host ${m.label}: ${m.result}` });
          m.s!.log.info(`host ${m.label}: ${m.result} in ${(m.rollMs / 1000).toFixed(1)} s`);
        }
      }),
    );
    const failed = wave.find((m) => m.result === 'failed');
    if (failed) return failed;
  }
  return undefined;
}

/** After host `failed` failed: the hosts rolled before it go back to their previous release (failure_action rollback). */
async function rollBackFleet(members: Member[], failed: Member): Promise<void> {
  const action = failed.rolled?.outcome.failureAction ?? 'rollback';
  const back = hostsToRollBack(members, action);
  if (action !== 'rollback') {
    failed.s!.log.warning(
      `failure_action ${action}: the hosts rolled before ${failed.label} keep the new release; the hosts after it were not changed`,
    );
  }
  for (const m of back) {
    const previous = m.prepared!.history.serving;
    if (!previous || !m.rolled?.proxy) {
      m.s!.log.warning(`host ${m.label}: no earlier release to roll back to; it keeps the new release`);
      continue;
    }
    const started = Date.now();
    await phase(`Rollback of host ${m.label} to ${previous.id} (host ${failed.label} failed)`, async () => {
      m.s!.report.rolledBack = await rollBackTo(m.s!, previous, m.prepared!.routed, m.rolled!.proxy);
      m.rolledBackForFleet = true;
    });
    m.rollMs = (m.rollMs ?? 0) + Date.now() - started;
  }
}

function fleetFailure(failed: Member): Error {
  return new Error(`host ${failed.label}: ${failed.failure!.message}`);
}

/** Every rolled host records its result (with the fleet's probe figures); hosts not reached are left to the lock's abandon. */
async function recordAll(members: Member[], failed: Member | undefined, verdict: Verdict | undefined, report: DeployReport): Promise<void> {
  for (const m of members) {
    if (m.result === 'not-reached' || !m.prepared) continue;
    const p = m.prepared;
    // The host's own probe figures when it had one, else the fleet's.
    if (report.probe && !m.s!.report.probe) m.s!.report.probe = report.probe;
    const own = m.result === 'failed' ? m.failure : undefined;
    const failure = own ?? (m.rolledBackForFleet && failed ? fleetFailure(failed) : undefined);
    await onHost(m, 'record', () => recordPhase(m.s!, p.release, p.model, p.history, failure, verdict, p.plan));
  }
}

/** The fleet's report from its hosts': one row per host, the union of what changed, the batches, the round trips. */
function summarize(members: Member[], r: DeployReport): void {
  r.hosts = members.map((m, i): HostRow => {
    return {
      host: m.label,
      plan: r.hosts?.[i]?.plan ?? '',
      ...(m.rollMs !== undefined ? { durationS: Math.round(m.rollMs / 100) / 10 } : {}),
      result: hostResult(m),
      ...(m.probe && m.s?.report.probe ? { probe: `${m.s.report.probe.lost} lost of ${m.s.report.probe.sent}` } : {}),
    };
  });
  const reports = members.map((m) => m.s?.report).filter((x): x is DeployReport => !!x);
  r.servicesUpdated = [...new Set(reports.flatMap((x) => x.servicesUpdated))];
  r.rolledBack = reports.some((x) => x.rolledBack);
  r.batches = reports.flatMap((x) => x.batches ?? []);
  r.roundTrips = members.reduce((n, m) => n + m.roundTrips.total, 0);
  const h1 = reports[0];
  if (h1) {
    r.planJson = h1.planJson;
    r.planText = h1.planText;
    if (h1.proxyDrains !== undefined) r.proxyDrains = h1.proxyDrains;
    if (h1.proxyKind) r.proxyKind = h1.proxyKind;
  }
  r.planMarkdown = members
    .filter((m) => m.s?.report.planMarkdown)
    .map((m) => `#### host ${m.label}\n\n${m.s!.report.planMarkdown}`)
    .join('\n\n');
  for (const x of reports) r.warnings.push(...x.warnings.filter((w) => !r.warnings.includes(w)));
  if (!r.rollbackHint && h1?.rollbackHint) r.rollbackHint = h1.rollbackHint;
  const log = members[0]?.s?.log;
  log?.info(
    `round trips to the hosts in this deploy: ${members.map((m) => `${m.label} ${describeRoundTrips(m.roundTrips.current())}`).join('; ')}`,
  );
}

function hostResult(m: Member): string {
  if (m.result === 'failed') return m.s?.report.rolledBack ? 'failed, rolled back' : 'failed';
  if (m.result === 'rolled') return m.rolledBackForFleet ? 'rolled, then rolled back' : 'rolled';
  return m.note ?? (m.prepared ? 'not reached (unchanged)' : 'not changed');
}
