/**
 * The floor of a rollout: the time its batches physically need, whoever runs them. Per batch, from
 * the timeline: the new replica's start to Docker-healthy (as Docker timed it), healthy to UP in the
 * proxy, the drain until the in-flight requests finished, the stop, and `monitor`; plus
 * `update_config.delay` between batches. What a batch took beyond that is handoff's own overhead
 * (round trips, Compose creating the container, polls), so rollout time / floor says how close to
 * the floor a deploy came. Pure: events in, figures out.
 */
import type { TimelineEvent } from './timeline.js';

/** One batch as it ran, on the runner's clock. */
export interface BatchSpan {
  service: string;
  /** 0-based, of `of` batches of the service. */
  index: number;
  of: number;
  startedAt: number;
  endedAt: number;
  ok: boolean;
  /** The service's `monitor` (ms): part of the floor when the batch started new replicas. */
  monitorMs: number;
  /** `update_config.delay` waited after this batch (ms), 0 after the last. */
  delayAfterMs?: number;
  /** Round trips to the host the batch took. */
  roundTrips?: number;
}

/** The floor's parts (ms). Parts that run per replica count their slowest replica (a batch runs them side by side). */
export interface FloorParts {
  health: number;
  up: number;
  drain: number;
  stop: number;
  monitor: number;
}

export interface BatchFloor extends BatchSpan {
  actualMs: number;
  floorMs: number;
  parts: FloorParts;
}

export interface RolloutFloor {
  batches: BatchFloor[];
  /** First batch start to last batch end. */
  rolloutMs: number;
  /** The batches' floors plus the delays between them. */
  floorMs: number;
  /** rolloutMs / floorMs (undefined when the floor is 0). */
  ratio?: number;
}

/** The floor of each batch and of the whole rollout. */
export function rolloutFloor(spans: BatchSpan[], events: TimelineEvent[]): RolloutFloor {
  const batches = spans.map((s) => batchFloor(s, events));
  if (!batches.length) return { batches, rolloutMs: 0, floorMs: 0 };
  const rolloutMs = Math.max(...batches.map((b) => b.endedAt)) - Math.min(...batches.map((b) => b.startedAt));
  const floorMs = batches.reduce((n, b) => n + b.floorMs + (b.delayAfterMs ?? 0), 0);
  return { batches, rolloutMs, floorMs, ...(floorMs > 0 ? { ratio: rolloutMs / floorMs } : {}) };
}

/** One batch: its wall time against the sum of its parts. */
export function batchFloor(span: BatchSpan, events: TimelineEvent[]): BatchFloor {
  const mine = events.filter((e) => e.service === span.service && e.at >= span.startedAt && e.at <= span.endedAt);
  const started = mine.some((e) => e.action === 'start');
  const parts: FloorParts = {
    health: slowest(mine, 'start', 'healthy', (e) => e.ms),
    up: slowest(mine, 'healthy', 'up-in-proxy'),
    drain: slowest(mine, 'drain', 'drained'),
    stop: slowest(mine, 'stop', 'remove'),
    monitor: started && span.ok ? span.monitorMs : 0,
  };
  const floorMs = parts.health + parts.up + parts.drain + parts.stop + parts.monitor;
  return { ...span, actualMs: span.endedAt - span.startedAt, floorMs, parts };
}

/**
 * The longest `from` → `to` of one container in these events; `measured` gives a duration the
 * host timed itself for the `to` event (used instead of the runner's clock when present).
 */
function slowest(
  events: TimelineEvent[],
  from: TimelineEvent['action'],
  to: TimelineEvent['action'],
  measured?: (e: TimelineEvent) => number | undefined,
): number {
  let longest = 0;
  for (const end of events) {
    if (end.action !== to) continue;
    const own = measured?.(end);
    const begin = events.find((e) => e.action === from && e.container === end.container && e.at <= end.at);
    const ms = own ?? (begin ? end.at - begin.at : 0);
    longest = Math.max(longest, ms);
  }
  return longest;
}

const s = (ms: number) => (ms / 1000).toFixed(1);

/** "12.3 s (floor 10.1 s: health 4.0, up 1.1, drain 0.2, stop 0.3, monitor 5.0; 1.22x)". */
export function describeBatchFloor(b: BatchFloor): string {
  const p = b.parts;
  const ratio = b.floorMs > 0 ? `; ${(b.actualMs / b.floorMs).toFixed(2)}x` : '';
  return `${s(b.actualMs)} s (floor ${s(b.floorMs)} s: health ${s(p.health)}, up ${s(p.up)}, drain ${s(p.drain)}, stop ${s(p.stop)}, monitor ${s(p.monitor)}${ratio})`;
}

/** "rollout 30.2 s, floor 27.0 s (1.12x); 18 round trips to the host in 3 batches (6.0 per batch)". */
export function speedLine(f: RolloutFloor): string | undefined {
  if (!f.batches.length) return undefined;
  const trips = f.batches.map((b) => b.roundTrips).filter((n): n is number => n !== undefined);
  const sum = trips.reduce((a, b) => a + b, 0);
  const ratio = f.ratio === undefined ? '' : ` (${f.ratio.toFixed(2)}x)`;
  const tripText = trips.length
    ? `; ${sum} round trips to the host in ${trips.length} batch(es) (${(sum / trips.length).toFixed(1)} per batch)`
    : '';
  return `rollout ${s(f.rolloutMs)} s, floor ${s(f.floorMs)} s${ratio}${tripText}`;
}
