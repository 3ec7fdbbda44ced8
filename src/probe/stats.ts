import { LANES, LOSS_KINDS, type Lane, type LossKind, type Outcome, type ProbeRecord } from './record.js';
import type { ProbeResult } from './prober.js';

/** Latency figures of the ok requests, in ms; null when there were none. */
export interface LatencyStats {
  count: number;
  p50: number | null;
  p95: number | null;
  p99: number | null;
  max: number | null;
}

export interface Counts {
  /** Requests the schedule asked for: ok + lost + unmeasured. */
  scheduled: number;
  /** Requests that actually left (scheduled minus unmeasured). */
  sent: number;
  ok: number;
  /** Sent and failed: the deploy's losses. */
  lost: number;
  /** Not sent: the prober was past their deadline before it could send them (see schedule.ts). */
  unmeasured: number;
  lostByKind: Record<LossKind, number>;
  latency: LatencyStats;
}

export interface SecondBucket {
  /** Whole seconds since the probe started (by scheduled send time). */
  second: number;
  sent: number;
  ok: number;
  lost: number;
  /** p99 latency of the ok requests in this second, ms. */
  p99: number | null;
}

export interface BackendSeen {
  servedBy: string;
  count: number;
  versions: string[];
  /** ms since the probe started. */
  firstMs: number;
  lastMs: number;
}

export interface FirstLost {
  seq: number;
  lane: Lane;
  outcome: LossKind;
  /** ms epoch: when it left. */
  at: number;
  /** ms since the probe started. */
  offsetMs: number;
  error?: string;
}

export interface ProbeSummary {
  startedAt: number;
  endedAt: number;
  durationMs: number;
  total: Counts;
  /** The keep-alive and fresh lanes together: the latency users feel on short requests (outputs, verdict). */
  short: Counts;
  lanes: Record<Lane, Counts>;
  seconds: SecondBucket[];
  backends: BackendSeen[];
  /** Stretches in which the prober could not send (it was starved), with the rollout events inside. */
  unmeasured: UnmeasuredWindow[];
  late: {
    /** Requests that left more than thresholdMs behind their slot, plus the unmeasured ones. */
    count: number;
    share: number;
    thresholdMs: number;
    /** p99 and max of sentAt - scheduledAt over the sent requests, ms. */
    lagP99: number | null;
    lagMax: number | null;
  };
  firstLost?: FirstLost;
}

export interface UnmeasuredWindow {
  /** ms since the probe started, by due time of the first and last unmeasured request. */
  startMs: number;
  endMs: number;
  requests: number;
}

export interface SummaryOptions {
  startedAt: number;
  endedAt: number;
  /** A send more than this many ms behind its slot counts as late. Default 10. */
  lateThresholdMs?: number;
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function latencyStats(latencies: readonly number[]): LatencyStats {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1]! : null,
  };
}

function emptyByKind(): Record<LossKind, number> {
  return Object.fromEntries(LOSS_KINDS.map((k) => [k, 0])) as Record<LossKind, number>;
}

function isLoss(outcome: Outcome): outcome is LossKind {
  return outcome !== 'ok' && outcome !== 'unmeasured';
}

/**
 * Unmeasured requests grouped into windows: a gap of more than `gapMs` between two of them (by due
 * time) starts a new window.
 */
function unmeasuredWindows(records: readonly ProbeRecord[], startedAt: number, gapMs = 500): UnmeasuredWindow[] {
  const due = records
    .filter((r) => r.outcome === 'unmeasured')
    .map((r) => r.scheduledAt - startedAt)
    .sort((a, b) => a - b);
  const out: UnmeasuredWindow[] = [];
  for (const t of due) {
    const last = out[out.length - 1];
    if (last && t - last.endMs <= gapMs) {
      last.endMs = t;
      last.requests++;
    } else out.push({ startMs: t, endMs: t, requests: 1 });
  }
  return out;
}

function counts(records: readonly ProbeRecord[]): Counts {
  const lostByKind = emptyByKind();
  const latencies: number[] = [];
  let ok = 0;
  let unmeasured = 0;
  for (const r of records) {
    if (r.outcome === 'unmeasured') unmeasured++;
    else if (isLoss(r.outcome)) lostByKind[r.outcome]++;
    else {
      ok++;
      if (r.latencyMs !== undefined) latencies.push(r.latencyMs);
    }
  }
  return {
    scheduled: records.length,
    sent: records.length - unmeasured,
    ok,
    lost: records.length - ok - unmeasured,
    unmeasured,
    lostByKind,
    latency: latencyStats(latencies),
  };
}

/** Everything the verdict and the report need, from the raw records. Pure. */
export function summarize(records: readonly ProbeRecord[], options: SummaryOptions): ProbeSummary {
  const { startedAt, endedAt } = options;
  // By due time: the slow lane's probe numbers its requests on its own.
  const ordered = [...records].sort((a, b) => a.scheduledAt - b.scheduledAt || a.seq - b.seq);
  const lanes = Object.fromEntries(LANES.map((lane) => [lane, counts(ordered.filter((r) => r.lane === lane))])) as Record<Lane, Counts>;
  const first = firstLost(ordered, startedAt);
  const summary: ProbeSummary = {
    startedAt,
    endedAt,
    durationMs: endedAt - startedAt,
    total: counts(ordered),
    short: counts(ordered.filter((r) => r.lane !== 'slow')),
    lanes,
    seconds: secondBuckets(ordered, startedAt, endedAt),
    backends: backendsSeen(ordered, startedAt),
    unmeasured: unmeasuredWindows(ordered, startedAt),
    late: lateness(ordered, options.lateThresholdMs ?? 10),
  };
  if (first) summary.firstLost = first;
  return summary;
}

/** Per-second buckets, every second present so gaps show as zeros. */
function secondBuckets(ordered: readonly ProbeRecord[], startedAt: number, endedAt: number): SecondBucket[] {
  const lastSecond = Math.max(0, Math.ceil((endedAt - startedAt) / 1000) - 1, ...ordered.map((r) => secondOf(r, startedAt)));
  const perSecond: ProbeRecord[][] = Array.from({ length: lastSecond + 1 }, () => []);
  for (const r of ordered) perSecond[secondOf(r, startedAt)]!.push(r);
  return perSecond.map((bucket, second) => {
    const c = counts(bucket);
    return { second, sent: c.sent, ok: c.ok, lost: c.lost, p99: c.latency.p99 };
  });
}

/** Each backend that answered (X-Served-By), in order of first answer. */
function backendsSeen(ordered: readonly ProbeRecord[], startedAt: number): BackendSeen[] {
  const backends = new Map<string, BackendSeen>();
  for (const r of ordered) {
    if (r.servedBy === undefined) continue;
    const offset = (r.doneAt ?? r.scheduledAt) - startedAt;
    let b = backends.get(r.servedBy);
    if (!b) {
      b = { servedBy: r.servedBy, count: 0, versions: [], firstMs: offset, lastMs: offset };
      backends.set(r.servedBy, b);
    }
    b.count++;
    b.firstMs = Math.min(b.firstMs, offset);
    b.lastMs = Math.max(b.lastMs, offset);
    if (r.version !== undefined && !b.versions.includes(r.version)) b.versions.push(r.version);
  }
  return [...backends.values()].sort((a, b) => a.firstMs - b.firstMs);
}

/** How far behind its schedule the prober sent. */
function lateness(ordered: readonly ProbeRecord[], thresholdMs: number): ProbeSummary['late'] {
  const lags = ordered.filter((r) => r.sentAt !== undefined).map((r) => r.sentAt! - r.scheduledAt);
  const count = ordered.filter(
    (r) => r.outcome === 'unmeasured' || (r.sentAt !== undefined && r.sentAt - r.scheduledAt > thresholdMs),
  ).length;
  const lagStats = latencyStats(lags);
  return {
    count,
    share: ordered.length ? count / ordered.length : 0,
    thresholdMs,
    lagP99: lagStats.p99,
    lagMax: lagStats.max,
  };
}

/** The loss that left first (by send time; by due time if it never left). */
function firstLost(ordered: readonly ProbeRecord[], startedAt: number): FirstLost | undefined {
  const first = ordered
    .filter((r) => isLoss(r.outcome))
    .map((r) => ({ r, at: r.sentAt ?? r.scheduledAt }))
    .sort((a, b) => a.at - b.at)[0];
  if (!first) return undefined;
  return {
    seq: first.r.seq,
    lane: first.r.lane,
    outcome: first.r.outcome as LossKind,
    at: first.at,
    offsetMs: first.at - startedAt,
    ...(first.r.error ? { error: first.r.error } : {}),
  };
}

function secondOf(r: ProbeRecord, startedAt: number): number {
  return Math.max(0, Math.floor((r.scheduledAt - startedAt) / 1000));
}

/** summarize() for a finished probe run. */
export function summarizeRun(result: Pick<ProbeResult, 'records' | 'startedAt' | 'endedAt'>, lateThresholdMs?: number): ProbeSummary {
  return summarize(result.records, { startedAt: result.startedAt, endedAt: result.endedAt, lateThresholdMs });
}
