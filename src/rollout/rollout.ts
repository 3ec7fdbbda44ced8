/**
 * The executor: runs a Plan on the host, service by service in dependency order, batch by batch.
 * Start-first: scale up beside the old replicas, health gate, proxy UP, drain + stop + remove old
 * by id (never scale down through Compose: it may pick the wrong containers), monitor, delay.
 * Stop-first: the old batch goes first. A failure returns a structured result; a full rollback
 * (previous release's files) is the caller's job, by calling rollOut again with that release's plan.
 */
import type { ContainerInfo, Engine, HealthResult } from '../engine/engine.js';
import { healthTimeoutMs } from '../engine/docker/health.js';
import { replicaIp } from '../engine/docker/containers.js';
import type { FailureAction } from '../model/compose.js';
import type { Batch, Plan, ServicePlan } from '../model/plan.js';
import type { Timeline } from '../model/timeline.js';
import type { ProxyGate, Replica } from '../proxy/gate.js';
import type { ProgressLog } from '../support/log.js';
import { sleep as defaultSleep } from '../support/time.js';
import { describeRoundTrips, type RoundTrips } from '../host/round-trips.js';
import { batchFloor, describeBatchFloor, type BatchSpan } from '../model/floor.js';

export interface RolloutContext {
  /** The container engine that runs the project's replicas (Docker with Compose today). */
  engine: Engine;
  gate: ProxyGate;
  timeline: Timeline;
  log: ProgressLog;
  /** Overrides the timeout derived from each healthcheck (ms). */
  healthTimeoutMs?: number;
  /** Networks the proxy is on: a replica's IP on one of them is what the proxy sees. */
  proxyNetworks?: string[];
  /** The proxy's Compose service: its networks are used when proxyNetworks is not given. */
  proxyService?: string;
  /** Services the proxy routes to; the gate is asked only about these. Undefined = all. */
  routedServices?: ReadonlySet<string>;
  pollMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  /** Counts the round trips to the host: each batch logs its own. */
  roundTrips?: RoundTrips;
  /** Each batch run is appended here (for the floor and the summary). */
  batches?: BatchSpan[];
}

export interface ServiceFailure {
  service: string;
  reason: string;
  /** Names of the containers that failed. */
  containers: string[];
  /** Health log and `docker logs` of the failed containers. */
  logs: string;
  failureAction: FailureAction;
}

export interface RolloutResult {
  ok: boolean;
  /** Services changed on the host (rolled, created, scaled, cleaned, removed). */
  updated: string[];
  failures: ServiceFailure[];
  /** The failure that stopped the rollout, or the last one tolerated (failure_action continue). */
  failure?: ServiceFailure;
  /** The service whose failure stopped the rollout (rollback/pause). */
  stoppedAt?: string;
}

class BatchFailure extends Error {
  constructor(
    readonly reason: string,
    readonly failed: ContainerInfo[],
  ) {
    super(reason);
  }
}

export async function rollOut(ctx: RolloutContext, plan: Plan): Promise<RolloutResult> {
  const result: RolloutResult = { ok: true, updated: [], failures: [] };
  const rolled = plan.services.filter((sp) => sp.action !== 'keep' && sp.action !== 'skip');
  let first: BatchHead | undefined;
  if (!ctx.proxyNetworks && ctx.proxyService) {
    // The proxy's networks and what the first batch reads first, side by side (nothing changes
    // between them unless a cleanup runs first).
    const head = rolled[0]?.batches.length && !rolled[0].cleanup.length ? rolled[0].service : undefined;
    const [networks, before] = await Promise.all([proxyNetworksOf(ctx, ctx.proxyService), head && ctx.engine.replicas(head)]);
    ctx = { ...ctx, proxyNetworks: networks };
    if (before) first = { before, parked: false, made: [] };
  }
  for (const sp of rolled) {
    ctx.log.info(`${sp.service}: ${sp.action} (${sp.order}; ${sp.reason})`);
    let failure: ServiceFailure | undefined;
    try {
      failure = await runService(ctx, sp, sp === rolled[0] ? first : undefined);
    } finally {
      if (gated(ctx, sp.service))
        await ctx.gate
          .unpark(sp.service)
          .catch((e: unknown) => ctx.log.warning(`${sp.service}: could not return parked proxy slots: ${(e as Error).message}`));
    }
    result.updated.push(sp.service);
    if (failure) {
      result.ok = false;
      result.failures.push(failure);
      result.failure = failure;
      if (failure.failureAction !== 'continue') {
        result.stoppedAt = sp.service;
        break;
      }
    }
  }
  return result;
}

async function runService(ctx: RolloutContext, sp: ServicePlan, first?: BatchHead): Promise<ServiceFailure | undefined> {
  const svc = sp.desired?.service;
  const grace = Math.ceil(svc?.stopGracePeriodS ?? 10);
  const uc = svc?.updateConfig;
  const failureAction: FailureAction = uc?.failureAction ?? 'rollback';
  const cleanupFailure = await cleanUp(ctx, sp, grace, failureAction);
  if (cleanupFailure) return cleanupFailure;
  let failedBatches = 0;
  let lastFailure: ServiceFailure | undefined;
  // The head the batch before handed on (an object: the hand-over happens inside a callback).
  const ahead: { head?: BatchHead | undefined } = { head: first };
  for (const [i, batch] of sp.batches.entries()) {
    const label = `${sp.service}: batch ${i + 1}/${sp.batches.length}`;
    const delayMs = delayAfter(sp, i);
    const handed = aheadOf(sp, i, delayMs, ahead);
    const failure = await measured(ctx, sp, { index: i, label, delayMs }, () =>
      runBatchOrClean(ctx, sp, batch, label, grace, failureAction, handed),
    );
    if (failure) {
      await dropHead(ctx, sp.service, ahead, grace);
      failedBatches++;
      lastFailure = failure;
      const ratio = failedBatches / sp.batches.length;
      if (failureAction !== 'continue' && ratio > (uc?.maxFailureRatio ?? 0)) return lastFailure;
      ctx.log.warning(
        `${label} failed (${failure.reason}); continuing (failure_action ${failureAction}, ${failedBatches}/${sp.batches.length} batches failed)`,
      );
      continue;
    }
    if (delayMs) {
      ctx.log.info(`${sp.service}: waiting update_config.delay ${delayMs / 1000}s`);
      await (ctx.sleep ?? defaultSleep)(delayMs);
    }
  }
  return lastFailure && failureAction === 'continue' ? lastFailure : undefined;
}

/**
 * What batch i was handed by the one before, and (start-first, no delay to wait out, not the last)
 * the next batch, whose head it makes during its monitor and leaves in `slot`.
 */
function aheadOf(sp: ServicePlan, i: number, delayMs: number, slot: { head?: BatchHead | undefined }): Ahead {
  const given = slot.head;
  slot.head = undefined;
  const batch = sp.batches[i + 1];
  if (sp.order === 'stop-first' || delayMs > 0 || !batch) return { given };
  return { given, next: { batch, take: (head) => (slot.head = head) } };
}

/** A failed batch takes the next batch's containers made ahead with it: nothing half-made stays. */
async function dropHead(ctx: RolloutContext, service: string, slot: { head?: BatchHead | undefined }, grace: number): Promise<void> {
  const made = slot.head?.made ?? [];
  slot.head = undefined;
  if (made.length) await removeQuietly(ctx, service, made, grace);
}

/** update_config.delay after batch i (ms): none after the last. */
function delayAfter(sp: ServicePlan, i: number): number {
  const delayS = sp.desired?.service.updateConfig.delayS ?? 0;
  return delayS && i < sp.batches.length - 1 ? delayS * 1000 : 0;
}

/** Run one batch, then log and keep its wall time and round trips to the host. */
async function measured(
  ctx: RolloutContext,
  sp: ServicePlan,
  { index, label, delayMs }: { index: number; label: string; delayMs: number },
  run: () => Promise<ServiceFailure | undefined>,
): Promise<ServiceFailure | undefined> {
  const startedAt = now(ctx);
  const before = ctx.roundTrips?.snapshot();
  const failure = await run();
  const endedAt = now(ctx);
  const roundTrips = before && ctx.roundTrips?.since(before);
  const span: BatchSpan = {
    service: sp.service,
    index,
    of: sp.batches.length,
    startedAt,
    endedAt,
    ok: !failure,
    monitorMs: (sp.desired?.service.updateConfig.monitorS ?? 5) * 1000,
    delayAfterMs: failure ? 0 : delayMs,
    ...(roundTrips ? { roundTrips: roundTrips.total } : {}),
  };
  ctx.batches?.push(span);
  ctx.log.info(
    `${label}: ${failure ? 'failed after' : 'took'} ${describeBatchFloor(batchFloor(span, ctx.timeline.events))}` +
      (roundTrips ? `; ${describeRoundTrips(roundTrips)} round trips to the host` : ''),
  );
  return failure;
}

/** Exited or crashed containers an earlier run left: removed before the first batch. */
async function cleanUp(ctx: RolloutContext, sp: ServicePlan, grace: number, failureAction: FailureAction) {
  if (!sp.cleanup.length) return undefined;
  try {
    ctx.log.info(`${sp.service}: removing ${sp.cleanup.length} exited/crashed container(s) left from an earlier run`);
    await stopAndRemove(ctx, sp.service, sp.cleanup, grace);
    return undefined;
  } catch (e) {
    return fail(ctx, sp, failureAction, (e as Error).message, []);
  }
}

/** One batch; when it fails, its failure (diagnostics first) and no new container of it left behind. */
async function runBatchOrClean(
  ctx: RolloutContext,
  sp: ServicePlan,
  batch: Batch,
  label: string,
  grace: number,
  failureAction: FailureAction,
  ahead: Ahead = {},
): Promise<ServiceFailure | undefined> {
  let created: ContainerInfo[] = [];
  try {
    await runBatch(ctx, sp, batch, label, grace, (c) => (created = c), ahead);
    return undefined;
  } catch (e) {
    const failed = e instanceof BatchFailure ? e.failed : [];
    // Their health output and logs first: once removed, a container has nothing left to tell.
    const failure = await fail(ctx, sp, failureAction, (e as Error).message, failed);
    // Leave no failed new container behind: drain what the proxy may already send to, then remove.
    if (created.length) {
      ctx.log.warning(`${label} failed: removing its ${created.length} new container(s)`);
      await removeQuietly(ctx, sp.service, created, grace);
    }
    return failure;
  }
}

/**
 * A batch's first steps on the host: the service's containers read, its empty proxy slots parked,
 * and its new containers created (not started). The batch before does them while its own monitor
 * runs, so they cost the next batch no time.
 */
interface BatchHead {
  before: ContainerInfo[];
  parked: boolean;
  /** Created ahead, not started: the batch starts exactly these (empty: it scales up itself). */
  made: ContainerInfo[];
}

/** The head this batch was given by the one before, and the next batch with where to hand its head. */
interface Ahead {
  given?: BatchHead | undefined;
  next?: { batch: Batch; take: (head: BatchHead) => void };
}

/**
 * Start-first: new replicas up and UP in the proxy, then the old ones drained and removed.
 * Stop-first: the old batch goes first. Then the new ones are watched for `monitor`.
 */
async function runBatch(
  ctx: RolloutContext,
  sp: ServicePlan,
  batch: Batch,
  label: string,
  grace: number,
  onCreated: (c: ContainerInfo[]) => void,
  ahead: Ahead,
): Promise<void> {
  const before = ahead.given?.before ?? (await ctx.engine.replicas(sp.service));
  const old = before.filter((c) => batch.remove.includes(c.id));
  let created: ContainerInfo[] = [];
  if (sp.order === 'stop-first') await retire(ctx, sp.service, old, grace);
  if (batch.start > 0) {
    // Start-first: the old batch is drained right after, so the gate may swap them in one change.
    const replacing = sp.order === 'stop-first' ? [] : old;
    // What runs now is what ran before minus what retire removed: no second read of the host.
    const current = sp.order === 'stop-first' ? before.filter((c) => !old.includes(c)) : before;
    const { parked = false, made = [] } = ahead.given ?? {};
    created = await startNew(ctx, sp, batch, label, { current, replacing, parked, made }, onCreated);
  }
  const watch = async () => {
    if (!created.length) return;
    const monitorMs = (sp.desired?.service.updateConfig.monitorS ?? 5) * 1000;
    const ids = created.map((c) => c.id);
    check(await ctx.engine.monitor(ids, monitorMs, ctx.timeline, { service: sp.service, seen: created, ...timing(ctx) }));
  };
  const next = ahead.next;
  const readAhead = next ? () => readHead(ctx, sp.service, next.batch).then(next.take, () => undefined) : undefined;
  if (sp.order !== 'stop-first') await retire(ctx, sp.service, old, grace, watch, readAhead);
  else await watch();
}

/**
 * The next batch's head: what runs now, the empty slots parked, its containers created. A failure
 * leaves the rest to the batch itself; a container created anyway is one Compose's `up` starts then.
 */
async function readHead(ctx: RolloutContext, service: string, batch: Batch): Promise<BatchHead> {
  const before = await ctx.engine.replicas(service);
  if (gated(ctx, service))
    await ctx.gate.park(
      service,
      before.map((c) => toReplica(ctx, c)),
    );
  const head: BatchHead = { before, parked: gated(ctx, service), made: [] };
  const { createAhead, start } = ctx.engine;
  if (!createAhead || !start || batch.start === 0) return head;
  try {
    const known = new Set(before.map((c) => c.id));
    const made = (await createAhead(service, before.length + batch.start)).filter((c) => !known.has(c.id));
    // Anything but exactly the batch's count (another deploy's container?) is left to the batch's own scale-up.
    if (made.length === batch.start && made.every((c) => c.state === 'created')) head.made = made;
  } catch (e) {
    ctx.log.info(`${service}: creating the next batch ahead failed (${(e as Error).message}); the batch scales up itself`);
  }
  return head;
}

/**
 * Old replicas out of the proxy (drained), stopped and removed, their proxy slots returned.
 * `alongside` (the new replicas' monitor) runs while the slots are returned: that waits for Docker's
 * DNS to drop the old IPs, which has nothing to do with the new replicas, so it adds no time.
 * `afterRelease` (the next batch's reads) runs once the slots are back, still beside the monitor.
 */
async function retire(
  ctx: RolloutContext,
  service: string,
  old: ContainerInfo[],
  grace: number,
  alongside?: () => Promise<void>,
  afterRelease?: () => Promise<void>,
) {
  if (!old.length) return alongside?.();
  const replicas = old.map((c) => toReplica(ctx, c));
  // The gate records drain/drained per replica, with its proxy slot.
  if (gated(ctx, service)) await ctx.gate.drain(service, replicas);
  await stopAndRemove(
    ctx,
    service,
    old.map((c) => c.id),
    grace,
    old,
  );
  const release = async () => {
    if (gated(ctx, service)) await ctx.gate.release(service, replicas);
    await afterRelease?.();
  };
  const [released, watched] = await Promise.allSettled([release(), alongside?.()]);
  // The monitor's failure names the failed containers: it wins over the gate's.
  if (watched.status === 'rejected') throw watched.reason;
  if (released.status === 'rejected') throw released.reason;
}

/** The batch's new replicas: parked in the proxy, started, healthy, then let in (UP). */
async function startNew(
  ctx: RolloutContext,
  sp: ServicePlan,
  batch: Batch,
  label: string,
  { current, replacing, parked, made }: { current: ContainerInfo[]; replacing: ContainerInfo[]; parked: boolean; made: ContainerInfo[] },
  onCreated: (c: ContainerInfo[]) => void,
): Promise<ContainerInfo[]> {
  const { service } = sp;
  const known = new Set(current.map((c) => c.id));
  if (gated(ctx, service) && !parked)
    await ctx.gate.park(
      service,
      current.map((c) => toReplica(ctx, c)),
    );
  let created = await launch(ctx, service, label, current.length + batch.start, { known, made }, onCreated);
  for (const c of created) ctx.timeline.add('start', { service, container: c.name });
  if (created.length !== batch.start) {
    throw new BatchFailure(`expected ${batch.start} new container(s) for ${service}, Compose created ${created.length}`, created);
  }
  const svc = sp.desired?.service;
  const hc = svc?.healthcheck;
  const monitorMs = (svc?.updateConfig.monitorS ?? 5) * 1000;
  const deadline = now(ctx) + healthTimeoutMs(hc, ctx.healthTimeoutMs);
  if (!hc || hc.disabled) {
    ctx.log.warning(
      `${service}: no healthcheck in the Compose file: no health gate; waiting for ${monitorMs / 1000}s of "running" instead (or the image's own HEALTHCHECK)`,
    );
  }
  const health = await ctx.engine.waitHealthy(
    created.map((c) => c.id),
    deadline,
    ctx.timeline,
    { service, settleMs: monitorMs, seen: created, ...timing(ctx) },
  );
  check(health);
  created = health.containers;
  onCreated(created);
  if (gated(ctx, service)) await waitUpOrExplain(ctx, service, created, deadline, replacing);
  return created;
}

/** The batch's new containers running: the ones created ahead started, or Compose scaling up. */
async function launch(
  ctx: RolloutContext,
  service: string,
  label: string,
  target: number,
  { known, made }: { known: Set<string>; made: ContainerInfo[] },
  onCreated: (c: ContainerInfo[]) => void,
): Promise<ContainerInfo[]> {
  if (made.length && ctx.engine.start) {
    ctx.log.info(`${label}: starting ${made.length} new replica(s) created during the last monitor: ${made.map((c) => c.name).join(', ')}`);
    onCreated(made);
    const started = await ctx.engine.start(made.map((c) => c.id));
    onCreated(started);
    return started;
  }
  ctx.log.info(`${label}: starting ${target - known.size} new replica(s) (scale ${service}=${target})`);
  await ctx.engine.scaleTo(service, target, (chunk) => ctx.log.info(chunk.trimEnd()));
  const created = (await ctx.engine.replicas(service)).filter((c) => !known.has(c.id));
  onCreated(created);
  return created;
}

/**
 * The proxy's UP gate. When it fails, a new replica that died meanwhile (healthy, then crashed before
 * the proxy saw it UP: Docker's DNS drops it, so "in no slot") is the real cause: name it.
 */
async function waitUpOrExplain(
  ctx: RolloutContext,
  service: string,
  created: ContainerInfo[],
  deadline: number,
  replacing: ContainerInfo[],
): Promise<void> {
  try {
    await ctx.gate.waitUp(
      service,
      created.map((c) => toReplica(ctx, c)),
      deadline,
      replacing.map((c) => toReplica(ctx, c)),
    );
  } catch (e) {
    const now = await ctx.engine.inspect(created.map((c) => c.id)).catch(() => [] as ContainerInfo[]);
    const dead = created.filter((c) => {
      const n = now.find((x) => x.id === c.id);
      return !n || n.state !== 'running' || n.restartCount > c.restartCount;
    });
    if (!dead.length) throw e;
    const what = dead.map((c) => {
      const n = now.find((x) => x.id === c.id);
      return n
        ? `${c.name} ${n.state === 'running' ? `restarted (${n.restartCount} restarts)` : `${n.state}, exit code ${n.exitCode}`}`
        : `${c.name} gone`;
    });
    throw new BatchFailure(`new ${service} replica crashed before the proxy had it UP: ${what.join('; ')}`, created);
  }
}

function check(r: HealthResult): asserts r is Extract<HealthResult, { ok: true }> {
  if (!r.ok) throw new BatchFailure(r.reason, r.containers);
}

async function fail(
  ctx: RolloutContext,
  sp: ServicePlan,
  failureAction: FailureAction,
  reason: string,
  failed: ContainerInfo[],
): Promise<ServiceFailure> {
  let logs: string;
  try {
    logs = failed.length ? await ctx.engine.diagnostics(failed) : '';
  } catch (e) {
    logs = `(could not collect logs: ${(e as Error).message})`;
  }
  ctx.timeline.add('failure', { service: sp.service, detail: reason });
  return { service: sp.service, reason, containers: failed.map((c) => c.name), logs, failureAction };
}

/** Stop with the service's grace period, then remove: by id, never through Compose's scale. */
async function stopAndRemove(ctx: RolloutContext, service: string, ids: string[], grace: number, infos?: ContainerInfo[]): Promise<void> {
  if (!ids.length) return;
  const labels = ids.map((id) => infos?.find((c) => c.id === id)?.name ?? id.slice(0, 12));
  for (const container of labels) ctx.timeline.add('stop', { service, container, detail: `grace ${grace}s` });
  await ctx.engine.stopAndRemove(ids, grace);
  for (const container of labels) ctx.timeline.add('remove', { service, container });
}

/** Best effort: a failed batch's new containers go, even if the proxy or Docker complains. */
async function removeQuietly(ctx: RolloutContext, service: string, cs: ContainerInfo[], grace: number): Promise<void> {
  const replicas = cs.map((c) => toReplica(ctx, c)).filter((r) => r.ip);
  try {
    if (gated(ctx, service) && replicas.length) await ctx.gate.drain(service, replicas);
  } catch (e) {
    ctx.log.warning(`${service}: draining the failed containers: ${(e as Error).message}`);
  }
  try {
    await stopAndRemove(
      ctx,
      service,
      cs.map((c) => c.id),
      grace,
      cs,
    );
  } catch (e) {
    ctx.log.warning(`${service}: removing the failed containers: ${(e as Error).message}`);
  }
  try {
    if (gated(ctx, service) && replicas.length) await ctx.gate.release(service, replicas);
  } catch (e) {
    ctx.log.warning(`${service}: releasing proxy slots: ${(e as Error).message}`);
  }
}

async function proxyNetworksOf(ctx: RolloutContext, proxyService: string): Promise<string[]> {
  const proxies = (await ctx.engine.replicas(proxyService)).filter((c) => c.state === 'running');
  return [...new Set(proxies.flatMap((c) => Object.keys(c.ips)))];
}

function toReplica(ctx: RolloutContext, c: ContainerInfo): Replica {
  return { id: c.id, name: c.name, ip: replicaIp(c, ctx.proxyNetworks) };
}

function gated(ctx: RolloutContext, service: string): boolean {
  return !ctx.routedServices || ctx.routedServices.has(service);
}

function now(ctx: RolloutContext): number {
  return (ctx.now ?? Date.now)();
}

function timing(ctx: RolloutContext) {
  const t: { pollMs?: number; now?: () => number; sleep?: (ms: number) => Promise<void> } = {};
  if (ctx.pollMs !== undefined) t.pollMs = ctx.pollMs;
  if (ctx.now) t.now = ctx.now;
  if (ctx.sleep) t.sleep = ctx.sleep;
  return t;
}
