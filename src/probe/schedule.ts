import type { Lane } from './record.js';

/**
 * The open-loop schedule: request `seq` is due at start + seq × interval, whatever happened to
 * earlier requests, and the lanes take turns. Times come from the start, never from the previous
 * send, so timer drift cannot slow the probe down.
 *
 * A prober that falls behind (a busy runner, a GC pause) never skips a request: it sends the late
 * ones as soon as it can and their latency counts from the due time, so the stall shows as latency
 * and lag. Only a request whose deadline has already passed when the prober gets to it is not sent:
 * nothing can be learned from it about the deploy, and it is recorded as unmeasured.
 */
export interface Schedule {
  startAt: number;
  intervalMs: number;
  lanes: readonly Lane[];
}

export function makeSchedule(startAt: number, ratePerSecond: number, lanes: readonly Lane[] = ['keepalive', 'fresh']): Schedule {
  if (!(ratePerSecond > 0) || !Number.isFinite(ratePerSecond)) throw new Error(`probe rate must be > 0, got ${ratePerSecond}`);
  if (lanes.length === 0) throw new Error('a probe schedule needs at least one lane');
  return { startAt, intervalMs: 1000 / ratePerSecond, lanes };
}

export function slotAt(schedule: Schedule, seq: number): number {
  return schedule.startAt + seq * schedule.intervalMs;
}

export function laneOf(schedule: Schedule, seq: number): Lane {
  return schedule.lanes[seq % schedule.lanes.length]!;
}

export type Dispatch = { send: true; lagMs: number } | { send: false; lagMs: number };

/** What to do with request `seq` when the prober gets to it at `now`: send it late, or record it unmeasured. */
export function dispatch(schedule: Schedule, seq: number, now: number, deadlineMs: number): Dispatch {
  const lagMs = Math.max(0, now - slotAt(schedule, seq));
  return { send: lagMs < deadlineMs, lagMs };
}

/**
 * A deadline timer that fires well after it was due means the prober's own event loop was stalled:
 * an answer that arrived meanwhile is still unread and a request may not have left yet, so the
 * request gets the stolen time back before the timeout is decided (prober.ts).
 */
export function timerStalled(dueAt: number, firedAt: number, slackMs = 20): boolean {
  return firedAt - dueAt > slackMs;
}
