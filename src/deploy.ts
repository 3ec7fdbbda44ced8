/**
 * One deploy, phase by phase: validate locally, connect, lock, upload the release, plan, check the
 * proxy config, activate, roll each changed service behind the probe, roll back on failure, record.
 * Each phase is a folded log group; every remote change happens after local validation passed.
 */
import * as core from '@actions/core';
import { posix } from 'node:path';
import type { ComposeFlavor, ComposeProject } from './compose-cli.js';
import { flavorOfLabel, readDesiredConfig } from './config-hash.js';
import { parseCompose, type ComposeModel, type ComposeService } from './compose.js';
import { listProjectContainers, type ContainerInfo } from './containers.js';
import { renderEnvFile } from './envfile.js';
import { readHostFacts } from './host.js';
import { missingPins, pinImages, repoDigests, resolveImages, type Pin } from './images.js';
import type { Inputs, SshTarget } from './inputs.js';
import { coreLog, phase, type Log } from './log.js';
import { planDeploy, renderPlan, renderPlanMarkdown, type DesiredService, type Plan } from './plan.js';
import { degradedGate, type ProxyGate } from './proxy.js';
import type { Duplex } from 'node:stream';
import type { Remote } from './remote.js';
import type { DeployReport } from './report.js';
import { checkPolicies } from './rollout-policy.js';
import { rollOut } from './rollout.js';
import { mkdirCommand } from './commands/files.js';
import { removeReleaseCommand } from './commands/release-store.js';
import { QUICK_COMMAND_MS } from './timeouts.js';
import { connect, ReconnectingRemote } from './ssh/index.js';
import { Timeline } from './timeline.js';
import { hookService, runHook } from './hooks.js';
import { dockerConfigDir, logoutCommand, registryLogin } from './registry.js';
import { collectFiles, type ReleaseFile } from './workspace.js';
import { findProxyService, findServerStateFile, locateRuntimeApi, routedServices } from './haproxy/config.js';
import { HaproxyGate } from './haproxy/drain.js';
import { checkConfig, reload } from './haproxy/reload.js';
import { missingImagesError, releaseId, rollbackHintMarkdown, selectRollbackTarget, type ReleaseManifest } from './release.js';
import {
  abandonIfPending,
  activateRelease,
  copyRelease,
  markAbandoned,
  pruneAuditEntries,
  listReleases,
  pruneReleases,
  readCurrent,
  resolveRemoteDir,
  setCurrent,
  updateManifest,
  uploadRelease,
} from './release-store.js';
import { acquireLock, DEFAULT_HEARTBEAT_MS, lockHeldBy, releaseLock, startHeartbeat, type LockHandle } from './lock.js';
import { appendAudit } from './audit.js';
import { startProbeSession, type ProbeSession } from './probe-session.js';

export interface RunContext {
  sha: string;
  ref: string;
  actor: string;
  runId: string;
  runUrl: string;
  workspace: string;
}

/** Where a release's Compose files and env file sit on the host, and where Compose resolves paths. */
export function stackOf(remoteDir: string, composeFiles: string[], base: 'app' | { release: string }, project: string): ComposeProject {
  const root = base === 'app' ? posix.join(remoteDir, 'app') : posix.join(remoteDir, 'releases', base.release);
  return {
    project,
    files: composeFiles.map((f) => posix.join(root, f)),
    envFile: posix.join(root, '.env'),
    // Always the live directory: bind-mount paths, and so config hashes, are those of app/.
    projectDirectory: posix.join(remoteDir, 'app', posix.dirname(composeFiles[0]!)),
  };
}

export interface Session {
  /** Run when the deploy ends, however it ends (e.g. stop a probe still running after an error). */
  cleanups: Array<() => Promise<void>>;
  inputs: Inputs;
  run: RunContext;
  remote: Remote;
  flavor: ComposeFlavor;
  remoteDir: string;
  timeline: Timeline;
  log: Log;
  report: DeployReport;
  /** Set from the first change to the live stack until the release is recorded: what the post step must finish. */
  interrupted?: InterruptedDeploy;
}

/** What the post step needs to restore the stack when the main step ends midway (saved as state `deploy`). */
export interface InterruptedDeploy {
  releaseId: string;
  /** The release that was serving before, to restore; none on a first deploy. */
  previous?: string;
}

/** Local checks: the Compose files parse, the plan's refusals, the proxy config is uploaded. */
export function validateLocally(inputs: Inputs, files: ReleaseFile[], log: Log): { model: ComposeModel; routed: string[] } {
  const composeFiles = inputs.composeFiles.map((name) => {
    const f = files.find((x) => x.path === name);
    if (!f) throw new Error(`input 'compose_files': ${name} was not found in the workspace`);
    return { name, text: f.data.toString("utf8") };
  });
  const model = parseCompose(composeFiles, { env: { ...inputs.env, ...inputs.secrets }, onWarning: (m) => log.warning(m) });
  const routed = proxyRouting(model, files, inputs);
  for (const m of missingMounts(model, files.map((f) => f.path), posix.dirname(inputs.composeFiles[0]!))) {
    log.warning(`service ${m.service} bind-mounts ${m.source} (${m.path} in the workspace), which is not uploaded: add it to the 'files' input, or Docker creates an empty directory there`);
  }
  // Warnings belong to services that change: the plan shows them once it knows which ones do.
  const check = checkPolicies(model, routed, inputs.services.length ? inputs.services : undefined);
  if (check.errors.length) throw new Error(`the deploy was refused before any change on the host:\n- ${check.errors.join('\n- ')}`);
  if (inputs.preDeploy || inputs.postDeploy) hookService(model.services, routed, inputs.hookService);
  return { model, routed };
}

/** Relative bind mounts whose source is not among the uploaded files (runtime dirs like ./run are fine empty, but worth a word). */
export function missingMounts(model: ComposeModel, paths: string[], composeDir: string): Array<{ service: string; source: string; path: string }> {
  const out: Array<{ service: string; source: string; path: string }> = [];
  for (const svc of model.services) {
    for (const v of svc.volumes) {
      if (v.type !== 'bind' || !v.source || v.source.startsWith('/') || v.source.startsWith('~')) continue;
      const rel = posix.normalize(posix.join(composeDir, v.source));
      if (rel.startsWith('..')) continue;
      if (!paths.some((p) => p === rel || p.startsWith(`${rel}/`)) && !/(^|\/)run$/.test(rel)) out.push({ service: svc.name, source: v.source, path: rel });
    }
  }
  return out;
}

/** The proxy service, its config text, and which services it routes to. */
function proxyRouting(model: ComposeModel, files: ReleaseFile[], inputs: Inputs): string[] {
  const proxy = findProxyService(model.services, inputs.proxyService);
  if (!proxy) return [];
  const composeDir = posix.dirname(inputs.composeFiles[0]!);
  const cfgPath = proxyConfigPath(files.map((f) => f.path), proxy, composeDir);
  const cfg = files.find((f) => f.path === cfgPath);
  if (!cfg) throw new Error(`service ${proxy.name} runs HAProxy but no haproxy.cfg is in the uploaded files: add its config directory to the 'files' input`);
  return routedServices(cfg.data.toString('utf8'), model.services.map((s) => s.name));
}

/**
 * The HAProxy config among the release's files: the `.cfg` the proxy service bind-mounts (a file, or
 * haproxy.cfg / any .cfg inside a mounted directory), else the first haproxy*.cfg uploaded.
 */
export function proxyConfigPath(paths: string[], proxy: ComposeService | undefined, composeDir: string): string | undefined {
  const cfgs = paths.filter((p) => p.endsWith('.cfg'));
  for (const v of proxy?.volumes ?? []) {
    if (v.type !== 'bind' || !v.source || v.source.startsWith('/') || v.source.startsWith('~')) continue;
    const rel = posix.normalize(posix.join(composeDir, v.source));
    const inside = cfgs.filter((p) => p === rel || p.startsWith(`${rel}/`));
    const hit = inside.find((p) => p === rel) ?? inside.find((p) => p.endsWith('/haproxy.cfg')) ?? inside[0];
    if (hit) return hit;
  }
  return cfgs.find((p) => /haproxy[^/]*\.cfg$/i.test(p));
}

/** What ssh2 needs to reach one endpoint, with its host key pin (or the logged opt-out). */
function sshEndpoint(t: SshTarget) {
  return {
    host: t.host,
    port: t.port,
    username: t.username,
    privateKey: t.key,
    passphrase: t.passphrase,
    pin: t.knownHosts || t.fingerprint ? { knownHosts: t.knownHosts, fingerprints: t.fingerprint ? [t.fingerprint] : undefined } : ({ insecure: true } as const),
  };
}

/** How long a dropped connection is retried before the step gives up (then the post step takes over). */
export const RECONNECT_WINDOW_MS = 90_000;

/**
 * Connect with the pinned host key (and jump host) from the inputs. The connection reconnects by
 * itself when it drops (ssh/reconnect.ts); `timeline` gets a note for each reconnect.
 */
export async function connectHost(
  inputs: Inputs,
  log: Log,
  options: { maxChannels?: number; timeline?: Timeline; retryFirst?: boolean } = {},
): Promise<ReconnectingRemote> {
  if (inputs.insecureIgnoreHostKey && !inputs.knownHosts && !inputs.fingerprint) {
    log.warning('insecure_ignore_host_key: the host key is not verified; anyone between the runner and the host can impersonate it. Pin it with known_hosts or fingerprint.');
  }
  const open = () =>
    connect({
      ...sshEndpoint(inputs),
      jump: inputs.jump ? sshEndpoint(inputs.jump) : undefined,
      connectTimeoutMs: inputs.connectTimeoutMs,
      commandTimeoutMs: inputs.commandTimeoutMs,
      maxChannels: options.maxChannels,
      log: (m) => log.info(m),
    });
  return ReconnectingRemote.open({
    connect: open,
    windowMs: RECONNECT_WINDOW_MS,
    retryFirst: options.retryFirst,
    log: (m) => log.info(m),
    onReconnect: ({ downMs }) => options.timeline?.add('reconnect', { detail: `connection back after ${(downMs / 1000).toFixed(1)} s` }),
  });
}

/**
 * How to read a release's desired config: loaded from the release's own directory (its env files),
 * hashed as the project will run from app/ (see config-hash.ts).
 */
export function planningView(remoteDir: string, composeFiles: string[], release: string, project: string) {
  const releaseRoot = posix.join(remoteDir, 'releases', release);
  const hashAs = stackOf(remoteDir, composeFiles, { release }, project);
  const load = { ...hashAs, projectDirectory: posix.join(releaseRoot, posix.dirname(composeFiles[0]!)) };
  return { load, hashAs, relocation: { from: releaseRoot, to: posix.join(remoteDir, 'app') } };
}

/** The desired state of a stack on the host: resolved Compose model, config hashes, image IDs. */
export async function desiredState(
  s: Session,
  target: { composeFiles: string[]; release?: string },
  routed: string[],
  serving?: ReleaseManifest,
): Promise<{ model: ComposeModel; desired: DesiredService[]; running: ContainerInfo[] }> {
  const { remote, flavor, inputs } = s;
  const appStack = stackOf(s.remoteDir, target.composeFiles, 'app', inputs.project);
  let config;
  let loadStack = appStack;
  if (target.release) {
    const view = planningView(s.remoteDir, target.composeFiles, target.release, inputs.project);
    // Compose may want the project directory to exist (empty on a first deploy).
    await remote.exec(mkdirCommand(view.hashAs.projectDirectory!), { timeoutMs: QUICK_COMMAND_MS });
    config = await readDesiredConfig(remote, flavor, view.load, { hashAs: view.hashAs, relocation: view.relocation });
    loadStack = view.load;
  } else {
    config = await readDesiredConfig(remote, flavor, appStack);
  }
  const model = parseCompose([{ name: 'compose config', text: config.modelText }], { interpolate: false });
  const ids = await resolveImages(remote, flavor, loadStack, model.services, inputs.pull, s.log, inputs.commandTimeoutMs);
  const check = checkPolicies(model, routed, inputs.services.length ? inputs.services : undefined);
  if (check.errors.length) throw new Error(`the deploy was refused before any change on the host:\n- ${check.errors.join('\n- ')}`);
  // Read once: adoption and the plan both look at what runs, and nothing changes in between.
  const running = await listProjectContainers(remote, inputs.project);
  const adopt = await adoptable(s, config.hashes, serving, running);
  const desired = model.services.map((service) => {
    const configHashes = config.hashes.get(service.name);
    if (!configHashes?.length) throw new Error(`compose config --hash printed no hash for service ${service.name}`);
    const adoptFrom = adopt.has(service.name) && serving ? { flavor, release: serving.id } : undefined;
    return { service, configHash: configHashes[0]!, configHashes, imageId: ids.get(service.name), policy: check.policies.get(service.name)!, adopt: adoptFrom };
  });
  return { model, desired, running };
}

/**
 * Services whose containers written by the other Compose flavor (a host upgraded from v1 to v2
 * between deploys) can be kept: their config is the same in the serving release, hashed now by
 * this Compose. Costs round trips only when such containers exist.
 */
async function adoptable(s: Session, hashes: Map<string, string[]>, serving: ReleaseManifest | undefined, running: ContainerInfo[]): Promise<Set<string>> {
  if (!serving) return new Set();
  if (!running.some((c) => c.composeVersion && flavorOfLabel(c.composeVersion) !== s.flavor)) return new Set();
  const view = planningView(s.remoteDir, serving.composeFiles, serving.id, s.inputs.project);
  const before = (await readDesiredConfig(s.remote, s.flavor, view.load, { hashAs: view.hashAs, relocation: view.relocation })).hashes;
  const out = new Set<string>();
  for (const [svc, now] of hashes) if ((before.get(svc) ?? []).some((h) => now.includes(h))) out.add(svc);
  return out;
}

export function makePlan(s: Session, desired: DesiredService[], force: boolean, running: ContainerInfo[]): Plan {
  return planDeploy({ desired, running, only: s.inputs.services.length ? s.inputs.services : undefined, force });
}

/** The gate for the proxy: HAProxy's Runtime API when it can be reached, else degraded. */
export async function proxyGate(s: Session, model: ComposeModel, cfgText: string | undefined): Promise<{ gate: ProxyGate; proxyService?: string; opener?: () => Promise<Duplex> }> {
  const proxy = findProxyService(model.services, s.inputs.proxyService);
  if (!proxy || !cfgText) {
    s.report.warnings.push('No HAProxy service found: replicas are not drained through a proxy; requests may be lost during the rollout.');
    return { gate: degradedGate };
  }
  const projectDir = posix.join(s.remoteDir, 'app', posix.dirname(s.inputs.composeFiles[0]!));
  let where = locateRuntimeApi(proxy, cfgText, projectDir);
  if (s.inputs.haproxySocket) {
    const v = s.inputs.haproxySocket;
    where = v.startsWith('tcp:')
      ? { kind: 'tcp', host: '127.0.0.1', port: Number(v.slice(4)) }
      : { kind: 'unix', hostPath: posix.resolve(projectDir, v) };
  }
  if (where.kind === 'none') {
    s.report.warnings.push(`HAProxy's Runtime API is not reachable (${where.reason}): the rollout relies on retries and health checks only, and requests may be lost.`);
    return { gate: degradedGate, proxyService: proxy.name };
  }
  // Nothing serves before the proxy runs (a first deploy): there is nothing to drain or wait on.
  const running = (await listProjectContainers(s.remote, s.inputs.project)).some((c) => c.service === proxy.name && c.state === 'running');
  if (!running) {
    s.log.info(`the proxy (${proxy.name}) is not running yet: nothing to drain in this deploy`);
    return { gate: degradedGate, proxyService: proxy.name };
  }
  const loc = where;
  const opener = () => (loc.kind === 'unix' ? s.remote.openUnixSocket(loc.hostPath) : s.remote.openTcp(loc.host, loc.port));
  return {
    gate: new HaproxyGate({ opener, drainTimeoutMs: s.inputs.drainTimeoutMs, log: s.log, timeline: s.timeline }),
    proxyService: proxy.name,
    opener,
  };
}

export async function deploy(inputs: Inputs, run: RunContext, report: DeployReport, log: Log = coreLog): Promise<void> {
  const timeline = new Timeline();
  report.events = timeline.events;

  // 1. Local validation: nothing on the host changes before this passes.
  let files: ReleaseFile[] = [];
  let routed: string[] = [];
  if (!inputs.rollback) {
    await phase('Validate', async () => {
      files = await collectFiles(run.workspace, inputs.composeFiles, inputs.files);
      const v = validateLocally(inputs, files, log);
      routed = v.routed;
      log.info(`${files.length} files, services: ${v.model.services.map((x) => x.name).join(', ')}; routed by the proxy: ${routed.join(', ') || 'none'}`);
    });
  }

  const remote = await phase('Connect', async () => {
    const r = await connectHost(inputs, log, { timeline });
    log.info(`connected to the host as ${inputs.username}`);
    return r;
  });
  try {
    const facts = await readHostFacts(remote, inputs.username, inputs.compose);
    log.info(`Docker ${facts.dockerVersion}, Compose ${facts.compose} ${facts.composeVersion}`);
    const remoteDir = await resolveRemoteDir(remote, inputs.remoteDir);
    const s: Session = { cleanups: [], inputs, run, remote, flavor: facts.compose, remoteDir, timeline, log, report };
    let lockToken: string | undefined;
    let lockHandle: LockHandle | undefined;

    await phase('Lock', async () => {
      const handle = await acquireLock(remote, remoteDir, { runId: run.runId, runUrl: run.runUrl, actor: run.actor, sha: run.sha, startedAt: new Date().toISOString() }, {
        timeoutMs: inputs.lockTimeoutMs,
        ttlMs: inputs.lockTtlMs,
        heartbeatMs: DEFAULT_HEARTBEAT_MS,
        log,
      });
      lockHandle = handle;
      lockToken = handle.token;
      core.saveState('lock', JSON.stringify(handle));
    });
    // A connection that comes back after a cut is used only while the lock is still ours.
    const token = lockToken!;
    remote.setVerify(async (fresh) => {
      if (!(await lockHeldBy(fresh, remoteDir, token))) throw new Error('the deploy lock was taken over while the connection to the host was down: stopping here');
    });
    const heartbeat = startHeartbeat(remote, lockHandle!, { log });
    let registryDir: string | undefined;
    try {
      if (inputs.registry) {
        const registry = inputs.registry;
        registryDir = dockerConfigDir(remoteDir, run.runId);
        core.saveState('registry', registryDir);
        s.remote = await phase('Registry login', async () => {
          const r = await registryLogin(remote, registryDir!, registry);
          log.info(`logged in to ${registry.server} as ${registry.username} (for this deploy only)`);
          return r;
        });
      }
      await deployLocked(s, files, routed);
    } catch (e) {
      // Stopped before its Record phase: say so in the release itself, while the lock is still ours
      // (unless the post step restores the stack: it writes what happened).
      if (report.releaseId && !s.interrupted) {
        await abandonIfPending(remote, remoteDir, report.releaseId, e instanceof Error ? e.message : String(e)).catch(() => false);
      }
      throw e;
    } finally {
      for (const cleanup of s.cleanups) await cleanup().catch(() => {});
      if (registryDir && !s.interrupted) {
        // The post step still needs the login to restore the stack; it removes the directory after.
        await remote.exec(logoutCommand(registryDir), { check: false }).catch((e: unknown) => log.warning(`could not remove the registry login: ${String(e)}`));
        core.saveState('registry', '');
      }
      await heartbeat.stop();
      if (s.interrupted) {
        // The lock stays held (and its heartbeat stops): the post step restores on a fresh connection, then frees it.
        log.warning(
          `the deploy stopped before the stack was consistent again: the post step ${s.interrupted.previous ? `restores release ${s.interrupted.previous}` : 'cleans up'} on a fresh connection, then frees the deploy lock`,
        );
      } else {
        await releaseLock(remote, remoteDir, run.runId, lockToken).catch((e: unknown) => log.warning(`could not release the lock: ${String(e)}`));
        core.saveState('lock', '');
      }
    }
  } finally {
    await remote.close();
  }
}

async function deployLocked(s: Session, files: ReleaseFile[], routed: string[]): Promise<void> {
  const { inputs, run, remote, remoteDir, log, report, timeline } = s;
  const listed = await listReleases(remote, remoteDir);
  const found = inputs.dryRun ? { releases: listed, marked: [] } : await markAbandoned(remote, remoteDir, listed, inputs.project);
  const releases = found.releases;
  if (found.marked.length) {
    for (const m of found.marked) log.warning(`release ${m.id} was left pending: ${m.reason}; marked abandoned`);
    await appendAudit(remote, remoteDir, found.marked.map((m) => ({ at: new Date().toISOString(), kind: 'abandon' as const, release: m.id, sha: m.sha, actor: m.actor, runUrl: m.runUrl, result: 'abandoned', detail: m.reason })));
  }
  const current = await readCurrent(remote, remoteDir);
  report.previousReleaseId = current;
  const id = freshReleaseId(run.sha, releases);
  report.releaseId = id;
  let composeFiles = inputs.composeFiles;
  let target: ReleaseManifest | undefined;

  const manifest: ReleaseManifest = {
    id,
    project: inputs.project,
    sha: run.sha,
    ref: run.ref,
    actor: run.actor,
    runUrl: run.runUrl,
    createdAt: new Date().toISOString(),
    files: files.map((f) => f.path),
    composeFiles,
    services: {},
    result: 'pending',
  };

  await phase('Upload', async () => {
    if (inputs.rollback) {
      target = selectRollbackTarget(releases, current, inputs.release);
      // Before the copy: a rollback whose images cannot be had changes nothing on the host.
      const missing = await missingPins(remote, pinsOf(target), inputs.pull !== 'never', inputs.commandTimeoutMs);
      if (missing.length) throw missingImagesError(target, missing, releases, current, inputs.pull !== 'never');
      log.info(`rolling back to release ${target.id} (${target.sha.slice(0, 7)}, ${target.createdAt})`);
      composeFiles = target.composeFiles;
      manifest.files = target.files;
      manifest.composeFiles = target.composeFiles;
      manifest.rollbackOf = target.id;
      await copyRelease(remote, remoteDir, target.id, id, manifest);
    } else {
      await uploadRelease(remote, remoteDir, id, files, renderEnvFile({ ...inputs.env, ...inputs.secrets }), manifest, { dryRun: inputs.dryRun });
    }
    timeline.add('upload', { detail: id });
  });

  const appStack = stackOf(remoteDir, composeFiles, 'app', inputs.project);
  if (inputs.rollback && target) {
    await pinImages(remote, pinsOf(target));
    const cfgPath = proxyConfigPath(target.files, undefined, posix.dirname(composeFiles[0]!));
    const cfg = cfgPath ? await remote.readFile(posix.join(remoteDir, 'releases', id, cfgPath)) : undefined;
    routed = cfg ? routedFromCfg(cfg, target) : [];
  }

  const serving = current ? releases.find((r) => r.id === current) : undefined;
  const { model, desired, running } = await phase('Plan', async () => desiredState(s, { composeFiles, release: id }, routed, serving));
  const plan = makePlan(s, desired, inputs.force, running);
  const proxyService = findProxyService(model.services, inputs.proxyService)?.name;
  const proxyRolls = plan.services.find((p) => p.service === proxyService && p.action === 'roll');
  if (proxyRolls) {
    proxyRolls.warnings.push(`the proxy (${proxyService}) itself changes: recreating it drops the connections open through it; change only its config (reloaded hitlessly) when you can`);
  }
  for (const p of plan.services) if (p.action !== 'keep' && p.action !== 'skip') for (const w of p.warnings) log.warning(w);
  report.planText = renderPlan(plan);
  report.planMarkdown = renderPlanMarkdown(plan);
  report.planJson = plan.services.map((p) => ({ service: p.service, action: p.action, order: p.order, old: p.oldReplicas, new: p.newReplicas, batches: p.batches.length }));
  log.info(report.planText);
  if (inputs.dryRun) {
    await remote.exec(removeReleaseCommand(remoteDir, id), { check: false });
    report.releaseId = undefined;
    return;
  }

  // The proxy config: validated in a throwaway container before it can reach the running proxy.
  const proxy = findProxyService(model.services, inputs.proxyService);
  const cfgPath = proxyConfigPath(manifest.files, proxy, posix.dirname(composeFiles[0]!));
  const cfgRel = cfgPath ? posix.join(remoteDir, 'releases', id, cfgPath) : undefined;
  const newCfg = cfgRel ? await remote.readFile(cfgRel) : undefined;
  const liveCfg = cfgPath ? await remote.readFile(posix.join(remoteDir, 'app', cfgPath)) : undefined;
  const proxyImage = proxy?.image;
  const cfgChanged = !!newCfg && newCfg !== liveCfg;
  if (cfgChanged && proxyImage && cfgRel) {
    await phase('Proxy config', async () => {
      await checkConfig(remote, proxyImage, posix.dirname(cfgRel), posix.basename(cfgRel));
      log.info('the new HAProxy config is valid');
    });
  }

  // Hooks run in the service named by hook_service (checked before anything changed).
  const hooks = inputs.preDeploy || inputs.postDeploy ? { service: hookService(model.services, routed, inputs.hookService), timeoutMs: inputs.hookTimeoutMs, remote, flavor: s.flavor, log, timeline } : undefined;
  if (inputs.preDeploy && hooks) {
    // From the new release's own files and env, before app/ or any replica changes.
    const view = planningView(remoteDir, composeFiles, id, inputs.project);
    await phase('pre_deploy', () => runHook('pre_deploy', inputs.preDeploy!, { ...hooks, stack: view.load }));
  }

  s.interrupted = { releaseId: id, ...(current ? { previous: current } : {}) };
  core.saveState('deploy', JSON.stringify(s.interrupted));
  await activateRelease(remote, remoteDir, id);
  const { gate, opener } = await proxyGate(s, model, newCfg);
  report.proxyDrains = gate.drains;

  // Losses can only be counted against a service that was serving: a first deploy has no baseline.
  const wasServing = plan.services.some((p) => p.oldReplicas > 0);
  if (inputs.probe && !wasServing) {
    const note = 'Probe skipped: nothing of this project was running before this deploy, so no request could be dropped. It runs from the next deploy on.';
    log.info(note);
    report.warnings.push(note);
  }
  // The tunnel gets its own connection, so probe requests never queue behind deploy commands; its
  // channels are TCP forwards, which sshd's MaxSessions does not count, so it may open many.
  const tunnel = inputs.probe?.via === 'ssh' && wasServing ? await connectHost(inputs, log, { maxChannels: 128 }) : undefined;
  const probe: ProbeSession | undefined = inputs.probe && wasServing ? await startProbeSession(inputs.probe, tunnel ?? remote, timeline, log) : undefined;
  let probeFinished = false;
  s.cleanups.push(async () => {
    if (probe && !probeFinished) await probe.abort();
    await tunnel?.close();
  });

  let failure: Error | undefined;
  let failureAction: 'rollback' | 'pause' | 'continue' = 'rollback';
  try {
    // A reload loses runtime state (maint/drain), so it happens before the rollout, never during it.
    const proxyPlan = plan.services.find((p) => p.service === proxyService);
    if (cfgChanged && liveCfg !== undefined && proxyPlan && proxyPlan.action === 'keep') {
      const running = (await listProjectContainers(remote, inputs.project)).filter((c) => c.service === proxyService && c.state === 'running');
      for (const c of running) {
        await reload(remote, c.id, { opener, stateFile: newCfg ? findServerStateFile(newCfg) : undefined, log });
        timeline.add('proxy-reload', { service: proxyService, container: c.name });
        log.info(`reloaded HAProxy in ${c.name}`);
      }
    }
    timeline.add('deploy-start', { detail: id });
    const result = await rollOut({ remote, flavor: s.flavor, stack: appStack, gate, timeline, log, healthTimeoutMs: inputs.healthTimeoutMs, proxyService, routedServices: new Set(routed) }, plan);
    report.servicesUpdated = result.updated;
    for (const f of result.failures) {
      await phase(`Failed containers of ${f.service}: health output and logs`, async () => log.info(f.logs || '(nothing collected)'));
    }
    if (!result.ok) {
      failure = new Error(`${result.failure?.service ?? 'the rollout'}: ${result.failure?.reason ?? 'failed'}`);
      failureAction = result.failure?.failureAction ?? 'rollback';
    }
  } catch (e) {
    failure = e instanceof Error ? e : new Error(String(e));
  }

  if (failure) {
    timeline.add('failure', { detail: failure.message });
    log.error(failure.message);
    const previous = current ? releases.find((r) => r.id === current) : undefined;
    if (failureAction !== 'rollback') {
      log.warning(`failure_action ${failureAction}: no rollback; the services keep what this deploy left (see the plan and the timeline)`);
    } else if (!previous) {
      log.warning('no earlier release to roll back to: the failed new containers were removed, and what ran before keeps running');
    } else {
      await phase(`Rollback to ${previous.id}`, async () => {
        report.rolledBack = await rollBackTo(s, previous, routed, { gate, proxyService });
      });
    }
  }

  // After a successful rollout only; its failure fails the job but rolls nothing back.
  let postDeployError: Error | undefined;
  if (!failure && inputs.postDeploy && hooks) {
    await phase('post_deploy', () => runHook('post_deploy', inputs.postDeploy!, { ...hooks, stack: appStack })).catch((e: unknown) => {
      postDeployError = e instanceof Error ? e : new Error(String(e));
      log.error(postDeployError.message);
    });
  }

  const verdict = probe ? await phase('Probe', async () => probe.finish(inputs.maxLost, report)) : undefined;
  probeFinished = true;
  timeline.add('deploy-end');

  await phase('Record', async () => {
    const imagesAfter = await resolveServicesImages(s, model);
    const ok = !failure && (verdict?.passed ?? true);
    await updateManifest(remote, remoteDir, id, {
      services: imagesAfter,
      result: failure ? (report.rolledBack ? 'rolled-back' : 'failed') : ok ? 'success' : 'failed',
      probe: report.probe ? { sent: report.probe.sent, lost: report.probe.lost, p99Ms: report.probe.p99Ms ?? 0 } : undefined,
      durationS: Math.round((Date.now() - report.startedAt) / 1000),
    });
    if (!failure) await setCurrent(remote, remoteDir, id);
    await appendAudit(remote, remoteDir, {
      at: new Date().toISOString(),
      kind: inputs.rollback ? 'rollback' : 'deploy',
      release: id,
      sha: run.sha,
      actor: run.actor,
      runUrl: run.runUrl,
      result: failure ? 'failed' : ok ? 'success' : 'probe-failed',
      detail: failure?.message ?? verdict?.message,
    });
    // Failed releases never push a good one out (release.ts), so a failed deploy prunes too: they stay bounded.
    const serving = failure ? current : id;
    const pruned = await pruneReleases(remote, remoteDir, inputs.project, inputs.keepReleases, serving, (m) => log.warning(m)).catch((e: unknown) => {
      log.warning(`could not prune old releases: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    });
    if (pruned) {
      for (const p of pruned.pruned) log.info(`pruned release ${p.id} (${p.result})${p.imagesRemoved.length ? `, images ${p.imagesRemoved.join(', ')}` : ''}`);
      await appendAudit(remote, remoteDir, pruneAuditEntries(pruned, new Date().toISOString(), run.actor, run.runUrl));
    }
    report.rollbackHint = rollbackHintMarkdown(pruned?.kept ?? releases, serving);
    s.interrupted = undefined;
    core.saveState('deploy', '');
  });

  if (failure) throw failure;
  if (verdict && !verdict.passed) throw new Error(verdict.message);
  if (postDeployError) throw postDeployError;
}

/**
 * Put release `previous` back: its images pinned, its files in app/, and each service rolled to it
 * from whatever runs now (health-gated, drained through the proxy). True when every service made it.
 */
export async function rollBackTo(s: Session, previous: ReleaseManifest, routed: string[], proxy: { gate: ProxyGate; proxyService?: string }): Promise<boolean> {
  const { remote, remoteDir, inputs, timeline, log } = s;
  timeline.add('rollback-start', { detail: previous.id });
  await pinImages(remote, pinsOf(previous));
  await activateRelease(remote, remoteDir, previous.id);
  const prevStack = stackOf(remoteDir, previous.composeFiles, 'app', inputs.project);
  const back = await desiredState({ ...s }, { composeFiles: previous.composeFiles }, routed, previous);
  const backPlan = makePlan(s, back.desired, false, back.running);
  log.info(renderPlan(backPlan));
  const r = await rollOut(
    { remote, flavor: s.flavor, stack: prevStack, gate: proxy.gate, timeline, log, healthTimeoutMs: inputs.healthTimeoutMs, proxyService: proxy.proxyService, routedServices: new Set(routed) },
    backPlan,
  );
  timeline.add('rollback-done', { detail: r.ok ? 'ok' : 'failed' });
  if (!r.ok) log.error(`the rollback to ${previous.id} failed too: ${r.failure?.reason ?? ''}`);
  return r.ok;
}

async function resolveServicesImages(s: Session, model: ComposeModel): Promise<ReleaseManifest['services']> {
  const out: ReleaseManifest['services'] = {};
  const running = await listProjectContainers(s.remote, s.inputs.project);
  for (const svc of model.services) {
    const c = running.find((x) => x.service === svc.name && x.state === 'running');
    if (svc.image) out[svc.name] = { image: svc.image, imageId: c?.imageId ?? '' };
  }
  const digests = await repoDigests(s.remote, Object.values(out)).catch(() => new Map<string, string>());
  for (const x of Object.values(out)) {
    const d = digests.get(`${x.image} ${x.imageId}`);
    if (d) x.digest = d;
  }
  return out;
}

/** The image IDs a release ran, to re-point its tags at before redeploying it. */
export function pinsOf(release: ReleaseManifest): Pin[] {
  return Object.entries(release.services)
    .filter(([, x]) => x.imageId)
    .map(([service, x]) => ({ service, image: x.image, imageId: x.imageId, ...(x.digest ? { digest: x.digest } : {}) }));
}

/** A release id not taken yet (two runs of one commit within a second get distinct ids). */
function freshReleaseId(sha: string, taken: ReleaseManifest[]): string {
  const ids = new Set(taken.map((r) => r.id));
  let t = Date.now();
  let id = releaseId(new Date(t), sha);
  while (ids.has(id)) id = releaseId(new Date((t += 1000)), sha);
  return id;
}

export function routedFromCfg(cfg: string, target: ReleaseManifest): string[] {
  return routedServices(cfg, Object.keys(target.services));
}
