import type { Timeline } from '../model/timeline.js';
import { LANES, type Lane, type LossKind } from './record.js';
import type { Counts, LatencyStats, ProbeSummary } from './stats.js';
import { describeEvent } from './verdict.js';

/** Markdown pieces of the job summary for the probe. Pure; the lead assembles the page. */

/** Most points a chart gets; longer runs are bucketed into wider intervals. */
const MAX_CHART_POINTS = 60;
const MAX_LEGEND_EVENTS = 12;

function ms(value: number | null): string {
  if (value === null) return '–';
  return value < 10 ? `${value.toFixed(1)} ms` : `${Math.round(value)} ms`;
}

function lostKinds(byKind: Record<LossKind, number>): string {
  const parts = Object.entries(byKind)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${n} ${k}`);
  return parts.length ? parts.join(', ') : '–';
}

/** Table cells come from the app (headers) or error text: keep them on one line and out of the table syntax. */
function cell(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').replace(/\|/g, '\\|');
}

function row(name: string, c: Counts): string {
  const l: LatencyStats = c.latency;
  return `| ${name} | ${c.scheduled} | ${c.sent} | ${c.ok} | ${c.lost} | ${lostKinds(c.lostByKind)} | ${c.unmeasured} | ${ms(l.p50)} | ${ms(l.p95)} | ${ms(l.p99)} | ${ms(l.max)} |`;
}

const LANE_NAMES: Record<Lane, string> = { keepalive: 'keep-alive', fresh: 'fresh connection', slow: 'long requests' };

export function renderProbeTable(summary: ProbeSummary): string {
  const lanes = LANES.filter((lane) => lane !== 'slow' || summary.lanes.slow.scheduled > 0);
  const lines = [
    '| lane | requests | sent | ok | lost | lost by kind | unmeasured | p50 | p95 | p99 | max |',
    '| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |',
    ...lanes.map((lane) => row(LANE_NAMES[lane], summary.lanes[lane])),
    row('**total**', summary.total),
    '',
    `Latency of ok requests, counted from the time each request was due (a prober that sent late shows it here). ` +
      `${summary.late.count} of ${summary.total.scheduled} requests (${(summary.late.share * 100).toFixed(1)} %) ` +
      `left more than ${summary.late.thresholdMs} ms behind schedule or not at all; send lag p99 ${ms(summary.late.lagP99)}, max ${ms(summary.late.lagMax)}.`,
  ];
  if (summary.unmeasured.length) {
    const windows = summary.unmeasured
      .slice(0, 10)
      .map((w) => `+${(w.startMs / 1000).toFixed(1)} s for ${((w.endMs - w.startMs) / 1000).toFixed(1)} s (${w.requests})`);
    lines.push(
      '',
      `**Unmeasured:** ${summary.total.unmeasured} requests could not be sent before their deadline (the runner starved the prober), ` +
        `in ${summary.unmeasured.length} window(s): ${windows.join('; ')}${summary.unmeasured.length > 10 ? '; …' : ''}. They are not losses; nothing is known about those moments.`,
    );
  }
  return lines.join('\n');
}

/**
 * A Mermaid xychart-beta: bars are requests ok, the line is requests lost, per second (or per
 * wider bucket on long runs, so the chart keeps at most MAX_CHART_POINTS points). Buckets in which
 * a rollout event happened get a `*` on their label, explained under the chart.
 */
export function renderProbeChart(summary: ProbeSummary, timeline?: Timeline): string {
  const { seconds } = summary;
  if (seconds.length === 0) return '_The probe sent no requests._';
  const width = Math.max(1, Math.ceil(seconds.length / MAX_CHART_POINTS));
  const buckets: Array<{ start: number; ok: number; lost: number; marked: boolean }> = [];
  for (let i = 0; i < seconds.length; i += width) {
    const slice = seconds.slice(i, i + width);
    buckets.push({
      start: i,
      ok: slice.reduce((n, s) => n + s.ok, 0),
      lost: slice.reduce((n, s) => n + s.lost, 0),
      marked: false,
    });
  }
  const events = (timeline?.events ?? [])
    .map((e) => ({ e, offset: e.at - summary.startedAt }))
    .filter(({ offset }) => offset >= 0 && offset < seconds.length * 1000)
    .sort((a, b) => a.offset - b.offset);
  for (const { offset } of events) buckets[Math.floor(offset / 1000 / width)]!.marked = true;

  const unit = width === 1 ? 'second' : `${width} s`;
  const labels = buckets.map((b) => `"${b.start}${b.marked ? '*' : ''}"`);
  const lines = [
    '```mermaid',
    'xychart-beta',
    `    title "Probe: requests ok (bars) and lost (line) per ${unit}"`,
    `    x-axis "seconds since probe start" [${labels.join(', ')}]`,
    `    y-axis "requests per ${unit}"`,
    `    bar [${buckets.map((b) => b.ok).join(', ')}]`,
    `    line [${buckets.map((b) => b.lost).join(', ')}]`,
    '```',
  ];
  if (events.length) {
    const shown = events.slice(0, MAX_LEGEND_EVENTS).map(({ e, offset }) => `+${(offset / 1000).toFixed(1)} s ${cell(describeEvent(e))}`);
    const more = events.length > MAX_LEGEND_EVENTS ? `; and ${events.length - MAX_LEGEND_EVENTS} more` : '';
    lines.push('', `\\* rollout events: ${shown.join('; ')}${more}`);
  }
  return lines.join('\n');
}

export function renderBackends(summary: ProbeSummary): string {
  if (summary.backends.length === 0) {
    return '_No backend identified itself (the app sends no `X-Served-By` header)._';
  }
  const at = (offsetMs: number): string => `+${(offsetMs / 1000).toFixed(1)} s`;
  return [
    '| backend | version | requests | first seen | last seen |',
    '| --- | --- | ---: | ---: | ---: |',
    ...summary.backends.map(
      (b) =>
        `| ${cell(b.servedBy)} | ${b.versions.length ? cell(b.versions.join(', ')) : '–'} | ${b.count} | ${at(b.firstMs)} | ${at(b.lastMs)} |`,
    ),
  ].join('\n');
}
