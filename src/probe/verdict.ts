import type { EventAction, Timeline, TimelineEvent } from '../model/timeline.js';
import type { LossKind } from './record.js';
import type { ProbeSummary, UnmeasuredWindow } from './stats.js';

export interface Verdict {
  passed: boolean;
  message: string;
  /** Unmeasured windows around a moment where requests could be lost: something to look at. */
  warning?: string;
}

/**
 * What an unmeasured window around a drain, stop or reload does to the verdict (`probe_unmeasured`):
 * warn (the default: a correct deploy on a busy runner passes, and the window is named), or fail
 * (the proof must cover every moment where a request could be lost).
 */
export type UnmeasuredPolicy = 'warn' | 'fail';

export interface VerdictOptions {
  unmeasured?: UnmeasuredPolicy;
  /** The probe's per-request deadline: an event this close to a window may have cut what the window hid. */
  timeoutMs?: number;
}

/** The moments of a rollout at which a request in flight can be lost. */
const RISKY: readonly EventAction[] = ['drain', 'stop', 'remove', 'proxy-reload'];

export interface WindowAtRisk {
  window: UnmeasuredWindow;
  events: TimelineEvent[];
}

/** Unmeasured windows with the risky rollout events that happened in them (or within a deadline of them). */
function windowsAtRisk(summary: ProbeSummary, timeline: Timeline | undefined, timeoutMs = 2000): WindowAtRisk[] {
  return summary.unmeasured
    .map((window) => {
      const from = summary.startedAt + window.startMs - timeoutMs;
      const to = summary.startedAt + window.endMs + timeoutMs;
      return { window, events: (timeline?.events ?? []).filter((e) => RISKY.includes(e.action) && e.at >= from && e.at <= to) };
    })
    .filter((w) => w.events.length > 0);
}

function describeWindows(summary: ProbeSummary, atRisk: WindowAtRisk[]): string {
  const n = summary.total.unmeasured;
  const windows = summary.unmeasured.length;
  let text = `${n} request${n === 1 ? '' : 's'} unmeasured in ${windows} window${windows === 1 ? '' : 's'} (the prober was starved past their deadline; not counted as lost)`;
  if (atRisk.length) {
    const first = atRisk[0]!;
    text += `; around ${atRisk.map((w) => w.events.map(describeEvent).join(', ')).join('; ')} (first window +${seconds(first.window.startMs)}, ${seconds(first.window.endMs - first.window.startMs)} long): requests lost there would not have been seen`;
  }
  return text;
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
export function verdict(summary: ProbeSummary, maxLost: number, timeline?: Timeline, options: VerdictOptions = {}): Verdict {
  const v = lossVerdict(summary, maxLost, timeline);
  if (summary.total.unmeasured === 0) return v;
  const atRisk = windowsAtRisk(summary, timeline, options.timeoutMs);
  const note = describeWindows(summary, atRisk);
  if (atRisk.length && options.unmeasured === 'fail') return { passed: false, message: `${v.message}; ${note} (probe_unmeasured: fail)` };
  return { ...v, message: `${v.message}; ${note}`, ...(atRisk.length ? { warning: note } : {}) };
}

function lossVerdict(summary: ProbeSummary, maxLost: number, timeline?: Timeline): Verdict {
  const { total } = summary;
  if (total.sent === 0) return { passed: false, message: 'the probe sent no requests: nothing proves the deploy kept serving' };
  const passed = total.lost <= maxLost;
  const shortP99 = summary.short.latency.p99;
  const p99 = shortP99 === null ? '' : `, p99 ${Math.round(shortP99)} ms`;
  const plural = total.lost === 1 ? 'request' : 'requests';
  if (total.lost === 0 || !summary.firstLost) {
    return { passed, message: `0 requests lost of ${total.sent} sent (max_lost ${maxLost})${p99}` };
  }
  const first = summary.firstLost;
  let message =
    `${total.lost} ${plural} lost of ${total.sent} sent (max_lost ${maxLost}; ${kinds(total.lostByKind)}): ` +
    `first at +${seconds(first.offsetMs)} on the ${first.lane} lane (${first.outcome})`;
  const event = timeline?.nearest(first.at);
  if (event) {
    const gap = first.at - event.at;
    message += `, ${seconds(Math.abs(gap))} ${gap >= 0 ? 'after' : 'before'} '${describeEvent(event)}'`;
  }
  return { passed, message };
}
