/**
 * The probe as one deploy uses it: started a window before the first change, stopped a window after
 * the last old replica is gone, judged against max_lost, with its records saved for an artifact.
 */
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Inputs } from '../action/inputs.js';
import type { Log } from '../support/log.js';
import type { Remote } from '../host/remote.js';
import type { DeployReport } from '../action/report.js';
import type { Timeline } from '../model/timeline.js';
import { sleep } from '../support/time.js';
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { mergeResults, startProbe, type ProbeOptions, type ProbeResult } from './prober.js';
import { summarize } from './stats.js';
import { verdict, type Verdict } from './verdict.js';
import { renderBackends, renderProbeChart, renderProbeTable } from './report.js';

export interface ProbeSession {
  /** Wait the trailing window, stop, judge, and fill the report. */
  finish(maxLost: number, report: DeployReport): Promise<Verdict>;
  /** Stop without a verdict (the deploy ended with an error before the probe could finish). */
  abort(): Promise<void>;
}

export async function startProbeSession(options: ProbeInputs, remote: Remote, timeline: Timeline, log: Log): Promise<ProbeSession> {
  const probes = probesFor(options);
  const run =
    options.via === 'ssh'
      ? // The tunnel lives on the main thread's SSH connection, so this probe shares its event loop.
        inProcess(probes.map((p) => ({ ...p, dial: (host: string, port: number) => remote.openTcp(host, port) })))
      : inWorker(probes);
  log.info(startMessage(options, run.where));
  await sleep(options.windowMs);
  return {
    async abort() {
      await run.stop();
    },
    async finish(maxLost, report) {
      await sleep(options.windowMs);
      return judge(await run.stop(), maxLost, report, { options, timeline, log });
    },
  };
}

type ProbeInputs = NonNullable<Inputs['probe']>;

/** The probes one deploy runs: the short lanes, and the long-request lane when probe_slow_url is set. */
export function probesFor(options: ProbeInputs): ProbeOptions[] {
  const probeOptions: ProbeOptions = {
    url: options.url,
    rate: options.rate,
    timeoutMs: options.timeoutMs,
    method: options.method,
    headers: options.headers,
    expectStatus: options.expectStatus,
    bodyMarker: options.bodyMarker,
    // Hard cap: the probe stops by itself even if the deploy hangs.
    maxDurationMs: 60 * 60 * 1000,
  };
  const probes = [probeOptions];
  if (options.slow) {
    probes.push({
      ...probeOptions,
      url: options.slow.url,
      rate: options.slow.rate,
      timeoutMs: options.slow.timeoutMs,
      method: 'GET',
      bodyMarker: undefined,
      lanes: ['slow'],
    });
  }
  return probes;
}

function startMessage(options: ProbeInputs, where: RunningProbe['where']): string {
  const slowNote = options.slow ? `, and ${options.slow.rate}/s long requests to ${options.slow.url}` : '';
  const tunnelNote = options.via === 'ssh' ? ' through an SSH tunnel' : '';
  return `probe: ${options.rate} requests/s to ${options.url}${slowNote}${tunnelNote} (${where}); waiting ${options.windowMs} ms before the first change`;
}

/** What judging a finished probe needs from its session. */
interface SessionContext {
  options: ProbeInputs;
  timeline: Timeline;
  log: Log;
}

/** Judge the run against max_lost, save its records for the artifact, and fill the report. */
async function judge(
  result: ProbeResult,
  maxLost: number,
  report: DeployReport,
  { options, timeline, log }: SessionContext,
): Promise<Verdict> {
  const summary = summarize(result.records, { startedAt: result.startedAt, endedAt: result.endedAt });
  const v = verdict(summary, maxLost, timeline, {
    unmeasured: options.unmeasured,
    timeoutMs: Math.max(options.timeoutMs, options.slow?.timeoutMs ?? 0),
  });
  const recordsPath = await saveRecords(result);
  report.probe = {
    sent: summary.total.sent,
    lost: summary.total.lost,
    unmeasured: summary.total.unmeasured,
    p99Ms: summary.short.latency.p99 ?? undefined,
    recordsPath,
    passed: v.passed,
    message: v.message,
  };
  report.probeMarkdown = [renderProbeTable(summary), renderProbeChart(summary, timeline), renderBackends(summary), '', v.message].join(
    '\n\n',
  );
  (v.passed ? log.info : log.error)(`probe: ${v.message}`);
  if (v.passed && v.warning) {
    log.warning(`probe: ${v.warning}. Give the runner more CPU, or set probe_unmeasured: fail to fail on this.`);
    report.warnings.push(`Probe: ${v.warning}.`);
  }
  return v;
}

/** Write the run's records to a JSON file under the runner's temp dir; returns its path. */
async function saveRecords(result: ProbeResult): Promise<string> {
  const recordsPath = join(process.env.RUNNER_TEMP || tmpdir(), `handoff-probe-${process.pid}-${Math.round(result.startedAt)}.json`);
  const { url, rate, startedAt, endedAt, records } = result;
  await writeFile(recordsPath, JSON.stringify({ url, rate, startedAt, endedAt, records }));
  return recordsPath;
}

interface RunningProbe {
  stop(): Promise<ProbeResult>;
  where: 'worker thread' | 'in-process';
}

function inProcess(options: ProbeOptions[]): RunningProbe {
  const runs = options.map((o) => startProbe(o));
  return { stop: async () => mergeResults(await Promise.all(runs.map((r) => r.stop()))), where: 'in-process' };
}

/** The bundled worker sits beside the bundle (dist/probe-worker); from sources, run in-process. */
function inWorker(options: ProbeOptions[]): RunningProbe {
  const file = `${dirname(fileURLToPath(import.meta.url))}/../probe-worker/index.js`;
  if (!existsSync(file)) return inProcess(options);
  const worker = new Worker(file, { workerData: options });
  const result = new Promise<ProbeResult>((resolve, reject) => {
    worker.once('message', (r: ProbeResult[]) => resolve(mergeResults(r)));
    worker.once('error', reject);
  });
  return {
    where: 'worker thread',
    async stop() {
      worker.postMessage('stop');
      try {
        return await result;
      } finally {
        await worker.terminate();
      }
    },
  };
}
