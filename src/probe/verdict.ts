import type { Timeline, TimelineEvent } from '../timeline.js';
import type { LossKind } from './record.js';
import type { ProbeSummary } from './stats.js';

export interface Verdict {
  passed: boolean;
  message: string;
}

/** "drain app_app_2": what the event did and to what. */
export function describeEvent(e: TimelineEvent): string {
  return [e.action, e.container ?? e.service].filter(Boolean).join(' ');
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function kinds(byKind: Record<LossKind, number>): string {
  return Object.entries(byKind)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${n} ${k}`)
    .join(', ');
}

/**
 * Pass or fail the workflow on the probe's figures. The message names the first lost request and
 * the rollout event closest to it (by the time the request left), so a loss points at its cause.
 * A probe that sent nothing proves nothing and fails.
 */
export function verdict(summary: ProbeSummary, maxLost: number, timeline?: Timeline): Verdict {
  const { total } = summary;
  if (total.scheduled === 0) return { passed: false, message: 'the probe sent no requests: nothing proves the deploy kept serving' };
  const passed = total.lost <= maxLost;
  const p99 = total.latency.p99 === null ? '' : `, p99 ${Math.round(total.latency.p99)} ms`;
  const plural = total.lost === 1 ? 'request' : 'requests';
  if (total.lost === 0 || !summary.firstLost) {
    return { passed, message: `0 requests lost of ${total.scheduled} (max_lost ${maxLost})${p99}` };
  }
  const first = summary.firstLost;
  let message =
    `${total.lost} ${plural} lost of ${total.scheduled} (max_lost ${maxLost}; ${kinds(total.lostByKind)}): ` +
    `first at +${seconds(first.offsetMs)} on the ${first.lane} lane (${first.outcome})`;
  const event = timeline?.nearest(first.at);
  if (event) {
    const gap = first.at - event.at;
    message += `, ${seconds(Math.abs(gap))} ${gap >= 0 ? 'after' : 'before'} '${describeEvent(event)}'`;
  }
  return { passed, message };
}
