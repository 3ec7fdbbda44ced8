/**
 * The health gate: how long to wait for new replicas, and the wait itself, by wall-clock deadline.
 * Each wait is one round trip that blocks on the host until a container's state changes (`docker
 * events`, awaitChangeCommand), not a poll per second: a replica is seen healthy the moment Docker
 * says so, and a runner far from its host pays one round trip per change. A container without a
 * healthcheck has no real gate: it must merely stay running for a settle time, and the caller says
 * so loudly.
 */
import type { Healthcheck } from '../../model/compose.js';
import { checkInspect, inspectContainers, parseDockerInspect, type ContainerInfo } from './containers.js';
import { awaitChangeCommand, containerLogsCommand } from '../../commands/docker.js';
import type { Remote } from '../../host/remote.js';
import type { Timeline } from '../../model/timeline.js';
import { sleep as defaultSleep } from '../../support/time.js';
import { DOCKER_COMMAND_MS, QUICK_COMMAND_MS } from '../../support/timeouts.js';

const HEALTH_TIMEOUT_FLOOR_MS = 30_000;

/**
 * start_period + interval × retries + timeout: by then Docker has either seen a passing check or
 * marked the container unhealthy. Never below the floor; an explicit override (ms) wins.
 */
export function healthTimeoutMs(hc: Healthcheck | undefined, overrideMs?: number): number {
  if (overrideMs !== undefined && overrideMs > 0) return overrideMs;
  if (!hc || hc.disabled) return HEALTH_TIMEOUT_FLOOR_MS;
  const s = hc.startPeriodS + hc.intervalS * hc.retries + hc.timeoutS;
  return Math.max(HEALTH_TIMEOUT_FLOOR_MS, Math.ceil(s * 1000));
}

export interface HealthFailure {
  ok: false;
  reason: string;
  /** The containers that failed (or were still not healthy at the deadline). */
  containers: ContainerInfo[];
}

export type HealthResult = { ok: true; containers: ContainerInfo[] } | HealthFailure;

export interface WaitOptions {
  service?: string;
  /** How long a container without a healthcheck must stay running. Default 5 s. */
  settleMs?: number;
  /** The containers' state as just read (e.g. right after they were created): saves a first read. */
  seen?: ContainerInfo[];
  /** The least time between two reads when the host answers without a change. Default 1 s. */
  pollMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

/** Why a container counts as failed right now, or undefined. */
function failureOf(c: ContainerInfo | undefined, startedAt?: string): string | undefined {
  if (!c) return 'container disappeared';
  if (c.state === 'exited' || c.state === 'dead') return `exited with code ${c.exitCode}`;
  if (c.state === 'restarting') return `restarting (crash loop, exit code ${c.exitCode})`;
  if (c.health === 'unhealthy') return 'unhealthy';
  if (startedAt && c.startedAt && c.startedAt !== startedAt) return 'restarted (crashed)';
  if (c.state !== 'running' && c.state !== 'created') return `state ${c.state}`;
  return undefined;
}

/**
 * Resolve when every container is healthy (or, without a healthcheck, has stayed running for
 * settleMs). Any `unhealthy`, exit or restart fails at once; the deadline is wall-clock (epoch ms).
 */
export async function waitHealthy(
  remote: Remote,
  ids: string[],
  deadline: number,
  timeline: Timeline,
  options: WaitOptions = {},
): Promise<HealthResult> {
  const { settleMs = 5_000, now = Date.now, service } = options;
  const gate = new HealthGate(ids, settleMs, timeline, service);
  let last = options.seen?.length ? options.seen : await inspectContainers(remote, ids);
  for (;;) {
    const t = now();
    const failure = gate.poll(last, t);
    if (failure) return failure;
    if (gate.allPassed()) return { ok: true, containers: last };
    if (t >= deadline) return gate.timedOut(last);
    last = await nextChange(remote, ids, last, Math.min(deadline, gate.settledAt() ?? deadline), options);
  }
}

/**
 * The containers' state once it differs from `seen`, or at `until` (epoch ms), in one round trip.
 * A host that answers early without a change (its `docker events` failed) is read again no sooner
 * than pollMs later, so the wait degrades to the old poll instead of spinning.
 */
export async function nextChange(
  remote: Remote,
  ids: string[],
  seen: ContainerInfo[],
  until: number,
  { pollMs = 1_000, now = Date.now, sleep = defaultSleep }: Pick<WaitOptions, 'pollMs' | 'now' | 'sleep'> = {},
): Promise<ContainerInfo[]> {
  const asked = now();
  const waitMs = Math.max(0, until - asked);
  const r = await remote.exec(awaitChangeCommand(ids, stateSignature(ids, seen), waitMs), {
    timeoutMs: waitMs + DOCKER_COMMAND_MS,
    check: false,
  });
  checkInspect(r);
  const state = parseDockerInspect(r.stdout);
  const early = now() < Math.min(until, asked + pollMs);
  if (early && stateSignature(ids, state) === stateSignature(ids, seen)) await sleep(Math.min(until, asked + pollMs) - now());
  return state;
}

/** What awaitChangeCommand compares (STATE_SIGNATURE_FORMAT), from parsed containers, in `ids` order. */
export function stateSignature(ids: string[], containers: ContainerInfo[]): string {
  const byId = new Map(containers.map((c) => [c.id, c]));
  return ids
    .map((id) => byId.get(id))
    .filter((c): c is ContainerInfo => !!c)
    .map((c) => `${c.id} ${c.state} ${c.health} ${c.restartCount} ${c.startedAt}`)
    .join('\n');
}

/** What the health gate remembers between polls, and its verdict on each poll. */
class HealthGate {
  /** When a container without a healthcheck was first seen running (its settle time starts). */
  private readonly runningSince = new Map<string, number>();
  /** StartedAt when first seen running: a later one means it restarted. */
  private readonly firstStartedAt = new Map<string, string>();
  private readonly passed = new Set<string>();

  constructor(
    private readonly ids: string[],
    private readonly settleMs: number,
    private readonly timeline: Timeline,
    private readonly service: string | undefined,
  ) {}

  /** Check each container not yet passed at time t: the first failure, or undefined. */
  poll(containers: ContainerInfo[], t: number): HealthFailure | undefined {
    const byId = new Map(containers.map((c) => [c.id, c]));
    for (const id of this.ids) {
      if (this.passed.has(id)) continue;
      const failure = this.check(id, byId.get(id), t);
      if (failure) return failure;
    }
    return undefined;
  }

  allPassed(): boolean {
    return this.passed.size === this.ids.length;
  }

  /** When the first container without a healthcheck still waiting will have run for the settle time. */
  settledAt(): number | undefined {
    const pending = this.ids.filter((id) => !this.passed.has(id) && this.runningSince.has(id));
    return pending.length ? Math.min(...pending.map((id) => this.runningSince.get(id)! + this.settleMs)) : undefined;
  }

  /** The deadline passed: fail with the containers still waiting. */
  timedOut(containers: ContainerInfo[]): HealthFailure {
    const waiting = containers.filter((c) => !this.passed.has(c.id));
    const detail = waiting.map((c) => `${c.name} (${c.health === 'none' ? c.state : c.health})`).join(', ');
    this.timeline.add('failure', { service: this.service, detail: `health timeout: ${detail}` });
    return { ok: false, reason: `not healthy before the health timeout: ${detail}${neverChecked(waiting)}`, containers: waiting };
  }

  private check(id: string, c: ContainerInfo | undefined, t: number): HealthFailure | undefined {
    if (c?.startedAt && !this.firstStartedAt.has(id) && c.state === 'running') this.firstStartedAt.set(id, c.startedAt);
    const why = failureOf(c, this.firstStartedAt.get(id));
    if (why) {
      this.timeline.add('failure', { service: this.service, container: c?.name ?? id, detail: why });
      return { ok: false, reason: `${c?.name ?? id}: ${why}`, containers: c ? [c] : [] };
    }
    // failureOf fails a missing container, so c is here.
    if (this.hasPassed(id, c!, t)) this.pass(id, c!);
    else if (c!.health === 'none' && c!.state === 'running' && !this.runningSince.has(id)) this.runningSince.set(id, t);
    return undefined;
  }

  private hasPassed(id: string, c: ContainerInfo, t: number): boolean {
    if (c.health === 'healthy') return true;
    return c.health === 'none' && c.state === 'running' && t - (this.runningSince.get(id) ?? t) >= this.settleMs;
  }

  private pass(id: string, c: ContainerInfo): void {
    this.passed.add(id);
    const ms = c.health === 'none' ? this.settleMs : startToHealthyMs(c);
    this.timeline.add('healthy', {
      service: this.service,
      container: c.name,
      detail: c.health === 'none' ? `no healthcheck: running for ${Math.round(this.settleMs / 1000)}s` : 'healthy',
      ...(ms !== undefined ? { ms } : {}),
    });
  }
}

/**
 * Start to healthy by Docker's own clock: StartedAt to the end of the latest passing check (the one
 * that made it healthy, since the wait sees the change at once). Undefined when Docker kept none.
 */
export function startToHealthyMs(c: ContainerInfo): number | undefined {
  const passing = c.healthLog.filter((e) => e.exitCode === 0).at(-1);
  const start = Date.parse(c.startedAt);
  const end = passing ? Date.parse(passing.end) : NaN;
  return Number.isFinite(start) && Number.isFinite(end) && end >= start ? end - start : undefined;
}

/**
 * Watch containers for `durationMs`: any exit, restart or `unhealthy` is a failure (a crash right
 * after the old replicas are gone). Resolves ok at the end of the window.
 */
export async function monitorContainers(
  remote: Remote,
  ids: string[],
  durationMs: number,
  timeline: Timeline,
  options: Omit<WaitOptions, 'settleMs'> = {},
): Promise<HealthResult> {
  const { now = Date.now, service } = options;
  const end = now() + durationMs;
  const startedAt = new Map<string, string>();
  let last = options.seen?.length ? options.seen : await inspectContainers(remote, ids);
  for (;;) {
    const byId = new Map(last.map((c) => [c.id, c]));
    for (const id of ids) {
      const c = byId.get(id);
      if (c?.startedAt && !startedAt.has(id)) startedAt.set(id, c.startedAt);
      const why = failureOf(c, startedAt.get(id));
      if (why) {
        timeline.add('failure', { service, container: c?.name ?? id, detail: `during monitor: ${why}` });
        return { ok: false, reason: `${c?.name ?? id} during monitor: ${why}`, containers: c ? [c] : [] };
      }
    }
    if (now() >= end) {
      timeline.add('monitor-ok', { service, detail: `${ids.length} container(s) stayed up for ${Math.round(durationMs / 1000)}s` });
      return { ok: true, containers: last };
    }
    last = await nextChange(remote, ids, last, end, options);
  }
}

/** The failed containers' last health check outputs and the end of their logs, for the job log. */
export async function collectDiagnostics(remote: Remote, containers: ContainerInfo[], tail = 50): Promise<string> {
  const parts: string[] = [];
  for (const c of containers) {
    parts.push(`--- ${c.name} (${c.id.slice(0, 12)}): state ${c.state}, health ${c.health}, exit code ${c.exitCode}`);
    for (const e of c.healthLog.slice(-3)) parts.push(`health check at ${e.start}: exit ${e.exitCode}: ${e.output.trim()}`);
    const logs = await remote.exec(containerLogsCommand(c.id, tail), { timeoutMs: QUICK_COMMAND_MS, check: false });
    parts.push(`last ${tail} log lines:`, logs.stdout.trimEnd() || '(none)');
  }
  return parts.join('\n');
}

/**
 * Why a health wait can end with no check run at all: Podman runs healthchecks from systemd timers,
 * so on a host without systemd the status stays `starting` with an empty log (Docker runs them itself).
 */
export function neverChecked(waiting: ContainerInfo[]): string {
  const idle = waiting.length > 0 && waiting.every((c) => c.state === 'running' && c.health === 'starting' && c.healthLog.length === 0);
  return idle
    ? '. No health check ran at all: the engine is not running them (Podman runs healthchecks from systemd timers; on a host without systemd they never run)'
    : '';
}
