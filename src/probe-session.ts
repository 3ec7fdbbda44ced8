/**
 * The probe as one deploy uses it: started a window before the first change, stopped a window after
 * the last old replica is gone, judged against max_lost, with its records saved for an artifact.
 */
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Inputs } from './inputs.js';
import type { Log } from './log.js';
import type { Remote } from './remote.js';
import type { DeployReport } from './report.js';
import type { Timeline } from './timeline.js';
import { startProbe } from './probe/prober.js';
import { summarize } from './probe/stats.js';
import { verdict, type Verdict } from './probe/verdict.js';
import { renderBackends, renderProbeChart, renderProbeTable } from './probe/report.js';

export interface ProbeSession {
  /** Wait the trailing window, stop, judge, and fill the report. */
  finish(maxLost: number, report: DeployReport): Promise<Verdict>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startProbeSession(options: NonNullable<Inputs['probe']>, remote: Remote, timeline: Timeline, log: Log): Promise<ProbeSession> {
  const run = startProbe({
    url: options.url,
    rate: options.rate,
    timeoutMs: options.timeoutMs,
    method: options.method,
    headers: options.headers,
    expectStatus: options.expectStatus,
    bodyMarker: options.bodyMarker,
    // Hard cap: the probe stops by itself even if the deploy hangs.
    maxDurationMs: 60 * 60 * 1000,
    dial: options.via === 'ssh' ? (host, port) => remote.openTcp(host, port) : undefined,
  });
  log.info(`probe: ${options.rate} requests/s to ${options.url}${options.via === 'ssh' ? ' through an SSH tunnel' : ''}; waiting ${options.windowMs} ms before the first change`);
  await sleep(options.windowMs);
  return {
    async finish(maxLost, report) {
      await sleep(options.windowMs);
      const result = await run.stop();
      const summary = summarize(result.records, { startedAt: result.startedAt, endedAt: result.endedAt });
      const v = verdict(summary, maxLost, timeline);
      const recordsPath = join(process.env.RUNNER_TEMP || tmpdir(), `handoff-probe-${process.pid}-${result.startedAt}.json`);
      await writeFile(recordsPath, JSON.stringify({ url: result.url, rate: result.rate, startedAt: result.startedAt, endedAt: result.endedAt, records: result.records }));
      report.probe = {
        sent: summary.total.sent,
        lost: summary.total.lost,
        p99Ms: summary.total.latency.p99 ?? undefined,
        recordsPath,
        passed: v.passed,
        message: v.message,
      };
      report.probeMarkdown = [renderProbeTable(summary), renderProbeChart(summary, timeline), renderBackends(summary), '', v.message].join('\n\n');
      (v.passed ? log.info : log.error)(`probe: ${v.message}`);
      return v;
    },
  };
}
