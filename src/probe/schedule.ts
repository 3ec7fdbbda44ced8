import type { Lane } from './record.js';

/**
 * The open-loop schedule: request `seq` leaves at start + seq × interval, whatever happened to
 * earlier requests, and the lanes alternate so each gets half the rate. Times come from the start,
 * never from the previous send, so timer drift cannot slow the probe down.
 */
export interface Schedule {
  startAt: number;
  intervalMs: number;
  /**
   * A request that cannot leave within this many ms of its slot is not sent and counts as lost
   * (not_sent): the prober fell behind (blocked event loop, starved CPU), and sending the backlog
   * as a burst later would hide the gap. Default: one interval + 50 ms, which absorbs ordinary
   * timer jitter at every rate.
   */
  maxLagMs: number;
}

export function makeSchedule(startAt: number, ratePerSecond: number, maxLagMs?: number): Schedule {
  if (!(ratePerSecond > 0) || !Number.isFinite(ratePerSecond)) throw new Error(`probe rate must be > 0, got ${ratePerSecond}`);
  const intervalMs = 1000 / ratePerSecond;
  return { startAt, intervalMs, maxLagMs: maxLagMs ?? intervalMs + 50 };
}

export function slotAt(schedule: Schedule, seq: number): number {
  return schedule.startAt + seq * schedule.intervalMs;
}

export function laneOf(seq: number): Lane {
  return seq % 2 === 0 ? 'keepalive' : 'fresh';
}

/** Whether request `seq`, due at its slot, must be dropped as not_sent when dispatched at `now`. */
export function tooLate(schedule: Schedule, seq: number, now: number): boolean {
  return now - slotAt(schedule, seq) > schedule.maxLagMs;
}
