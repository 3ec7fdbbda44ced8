/**
 * What one run of the action found and did, filled in phase by phase. It is the single source of
 * the outputs and the job summary, so both always say the same thing.
 */
import type { TimelineEvent } from '../model/timeline.js';
import type { BatchSpan } from '../model/floor.js';
import { renderSpeed } from './speed.js';

export interface DeployReport {
  project: string;
  mode: 'deploy' | 'rollback' | 'dry-run';
  startedAt: number;
  finishedAt?: number;
  releaseId?: string;
  previousReleaseId?: string;
  /** Plain-text plan for the log and markdown plan for the summary. */
  planText?: string;
  planMarkdown?: string;
  planJson?: unknown;
  servicesUpdated: string[];
  rolledBack: boolean;
  warnings: string[];
  /** Markdown pieces rendered by the probe's report module. */
  probeMarkdown?: string;
  probe?: { sent: number; lost: number; unmeasured?: number; p99Ms?: number; recordsPath?: string; passed: boolean; message?: string };
  proxyDrains?: boolean;
  /** Which proxy's gate ran (haproxy, caddy, nginx); undefined without a proxy. */
  proxyKind?: string;
  error?: string;
  events: TimelineEvent[];
  rollbackHint?: string;
  /** Every batch rolled (rollbacks' too), for the floor and the speed section. */
  batches?: BatchSpan[];
  /** Round trips to the host in the whole deploy. */
  roundTrips?: number;
  /** A fleet deploy (`hosts`): one row per host, in rollout order. */
  hosts?: HostRow[];
}

/** One host of a fleet deploy in the summary: what it planned, how long its rollout took, how it ended. */
export interface HostRow {
  host: string;
  plan: string;
  /** The host's rollout in seconds, its rollbacks included; unset when it was not rolled. */
  durationS?: number;
  result: string;
  /** The host's own probe (probe_host_url): lost of sent. */
  probe?: string;
}

export function newReport(project: string, mode: DeployReport['mode'], now = Date.now()): DeployReport {
  return { project, mode, startedAt: now, servicesUpdated: [], rolledBack: false, warnings: [], events: [] };
}

export function durationS(r: DeployReport): number {
  return Math.round((((r.finishedAt ?? Date.now()) - r.startedAt) / 1000) * 10) / 10;
}

/** The action's outputs, as strings. */
export function reportOutputs(r: DeployReport): Record<string, string> {
  return {
    release_id: r.releaseId ?? '',
    previous_release_id: r.previousReleaseId ?? '',
    services_updated: r.servicesUpdated.join(','),
    requests_sent: String(r.probe?.sent ?? 0),
    requests_lost: String(r.probe?.lost ?? 0),
    requests_unmeasured: String(r.probe?.unmeasured ?? 0),
    latency_p99_ms: r.probe?.p99Ms === undefined ? '' : String(Math.round(r.probe.p99Ms)),
    duration_s: String(durationS(r)),
    rolled_back: String(r.rolledBack),
    probe_records: r.probe?.recordsPath ?? '',
    plan: r.planJson === undefined ? '' : JSON.stringify(r.planJson),
    hosts: r.hosts ? JSON.stringify(r.hosts) : '',
  };
}

function escapeCell(s: string): string {
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function renderTimeline(events: TimelineEvent[], origin: number): string {
  if (events.length === 0) return '';
  const rows = events.map(
    (e) =>
      `| +${((e.at - origin) / 1000).toFixed(1)} s | ${e.action} | ${escapeCell(e.service ?? '')} | ${escapeCell(e.container ?? '')} | ${escapeCell(e.detail ?? '')} |`,
  );
  return ['| time | event | service | container | detail |', '|---|---|---|---|---|', ...rows].join('\n');
}

/** Which proxy gate ran: the proxy's kind when it drained, else why losses are possible. */
export function proxyDrainFact(r: Pick<DeployReport, 'proxyDrains' | 'proxyKind'>): string | undefined {
  if (r.proxyDrains === false)
    return `| proxy drain | none (${r.proxyKind ? `${r.proxyKind} gate degraded` : 'no proxy'}): losses are possible |`;
  if (r.proxyDrains && r.proxyKind) return `| proxy drain | ${r.proxyKind} |`;
  return undefined;
}

function renderHosts(rows: HostRow[]): string {
  const lines = rows.map(
    (h) =>
      `| ${escapeCell(h.host)} | ${escapeCell(h.plan || '—')} | ${h.durationS === undefined ? '—' : `${h.durationS} s`} | ${escapeCell(h.probe ?? '—')} | ${escapeCell(h.result)} |`,
  );
  return ['| host | plan | rollout | host probe | result |', '|---|---|---|---|---|', ...lines].join('\n');
}

/** The summary's title: the one verdict of the run (of every host, for a fleet). */
function summaryTitle(r: DeployReport): string {
  if (r.mode === 'dry-run') return `handoff: plan for ${r.project} (dry run, nothing changed)`;
  const what = `${r.mode === 'rollback' ? 'rollback of' : 'deploy of'} ${r.project}${r.hosts ? ` to ${r.hosts.length} hosts` : ''}`;
  return `handoff: ${what} ${r.error ? 'failed' : r.rolledBack ? 'failed and was rolled back' : 'succeeded'}`;
}

/** The whole job summary, in markdown. */
export function renderSummary(r: DeployReport): string {
  const ok = !r.error;
  const out: string[] = [`## ${ok ? '✅' : '❌'} ${summaryTitle(r)}`, ''];
  const facts: string[] = [];
  if (r.releaseId) facts.push(`| release | \`${r.releaseId}\` |`);
  if (r.previousReleaseId) facts.push(`| previous release | \`${r.previousReleaseId}\` |`);
  facts.push(`| services updated | ${r.servicesUpdated.length ? r.servicesUpdated.join(', ') : 'none'} |`);
  if (r.probe) facts.push(`| requests sent / lost | ${r.probe.sent} / ${r.probe.lost} |`);
  facts.push(`| duration | ${durationS(r)} s |`);
  if (r.rolledBack) facts.push('| rolled back | yes |');
  const drain = proxyDrainFact(r);
  if (drain) facts.push(drain);
  out.push('| | |', '|---|---|', ...facts, '');
  if (r.hosts) out.push('### Hosts', '', renderHosts(r.hosts), '');
  if (r.error) out.push('### Error', '', '```', r.error, '```', '');
  if (r.warnings.length) out.push('### Warnings', '', ...r.warnings.map((w) => `- ${w}`), '');
  if (r.planMarkdown) out.push('### Plan', '', r.planMarkdown, '');
  if (r.probeMarkdown) out.push('### Request-loss probe', '', r.probeMarkdown, '');
  const speed = r.batches ? renderSpeed(r.batches, r.events, r.roundTrips) : '';
  if (speed) out.push('### Speed', '', speed, '');
  const timeline = renderTimeline(r.events, r.startedAt);
  if (timeline) out.push('### Rollout timeline', '', '<details><summary>events</summary>', '', timeline, '', '</details>', '');
  if (r.rollbackHint) out.push('### Roll back', '', r.rollbackHint, '');
  return out.join('\n');
}
