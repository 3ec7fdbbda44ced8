import http from 'node:http';
import https from 'node:https';
import { classify, type Attempt } from './classify.js';
import { DialAgent, type Dial } from './dial-agent.js';
import type { Lane, ProbeRecord } from './record.js';
import { dispatch, laneOf, makeSchedule, slotAt, timerStalled, type Schedule } from './schedule.js';
import { parseStatusSet, type StatusSet } from './status-set.js';

export interface ProbeOptions {
  url: string | URL;
  /** Requests per second, total over both lanes (each lane gets half). Default 20. */
  rate?: number;
  /** Per-request deadline in ms, from send to the last body byte. Default 2000. */
  timeoutMs?: number;
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Accepted statuses, e.g. "200-399" or "200,204,300-399". Default "200-399". */
  expectStatus?: string | StatusSet;
  /** A substring the body must contain. */
  bodyMarker?: string;
  /** Hard cap on the probe's duration; it stops by itself. Default 10 minutes. */
  maxDurationMs?: number;
  /** Hard cap on requests scheduled; it stops by itself. Default rate × maxDuration. */
  maxRequests?: number;
  /** Open every connection through this (e.g. an SSH tunnel: probe_via ssh). */
  dial?: Dial;
  /** For https: verify the server's certificate (default true). */
  rejectUnauthorized?: boolean;
  /** The lanes taking turns (default keepalive and fresh; the slow lane runs as a probe of its own). */
  lanes?: Lane[];
  /** Bounded pool of the keep-alive lane. Default 32. */
  keepAliveSockets?: number;
  /** Bound on concurrent fresh connections. Default 256. */
  freshSockets?: number;
  /** Clock for timestamps and the schedule (ms epoch). Timers stay real. */
  now?: () => number;
  /** Called with each record as its outcome is known (for live logging). */
  onRecord?: (record: ProbeRecord) => void;
}

export type StopReason = 'stopped' | 'max_duration' | 'max_requests';

export interface ProbeResult {
  url: string;
  rate: number;
  timeoutMs: number;
  startedAt: number;
  endedAt: number;
  stoppedBy: StopReason;
  /** Sorted by seq. */
  records: ProbeRecord[];
}

export interface ProbeRun {
  readonly startedAt: number;
  /** Resolves when the probe stopped (by stop() or a cap) and every request in flight finished. */
  readonly finished: Promise<ProbeResult>;
  /** Stop scheduling, wait for requests in flight (each bounded by its deadline), return the result. */
  stop(): Promise<ProbeResult>;
}

/** How long a keep-alive connection may sit idle in the pool before the prober closes it (see makeAgents). */
export const KEEPALIVE_IDLE_MS = 1000;

/** Enough of the body to find a marker near the top of a page; the rest is read and dropped. */
const BODY_CAP = 256 * 1024;

/** Start the request-loss probe: an open-loop request stream on its lanes, stopping by itself at its caps. */
export function startProbe(options: ProbeOptions): ProbeRun {
  const now = options.now ?? preciseNow;
  const url = new URL(options.url);
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`probe url must be http or https: ${url.href}`);
  const rate = options.rate ?? 20;
  const timeoutMs = options.timeoutMs ?? 2000;
  if (!(timeoutMs > 0)) throw new Error(`probe timeout must be > 0 ms, got ${timeoutMs}`);
  const maxDurationMs = options.maxDurationMs ?? 600_000;
  const maxRequests = options.maxRequests ?? Math.ceil((rate * maxDurationMs) / 1000) + 1;
  const expect =
    typeof options.expectStatus === 'string' || options.expectStatus === undefined
      ? parseStatusSet(options.expectStatus ?? '200-399')
      : options.expectStatus;
  const agents = makeAgents(url, options);
  const method = (options.method ?? 'GET').toUpperCase();
  const startedAt = now();
  const schedule: Schedule = makeSchedule(startedAt, rate, options.lanes);

  const records: ProbeRecord[] = [];
  let nextSeq = 0;
  let inFlight = 0;
  let stopReason: StopReason | undefined;
  let timer: NodeJS.Timeout | undefined;
  let resolveFinished!: (result: ProbeResult) => void;
  const finished = new Promise<ProbeResult>((resolve) => (resolveFinished = resolve));
  let done = false;

  const record = (r: ProbeRecord): void => {
    records.push(r);
    options.onRecord?.(r);
  };

  const maybeFinish = (): void => {
    if (done || stopReason === undefined || inFlight > 0) return;
    done = true;
    for (const agent of Object.values(agents)) agent.destroy();
    records.sort((a, b) => a.seq - b.seq);
    resolveFinished({
      url: url.href,
      rate,
      timeoutMs,
      startedAt,
      endedAt: now(),
      stoppedBy: stopReason,
      records,
    });
  };

  const halt = (reason: StopReason): void => {
    if (stopReason !== undefined) return;
    stopReason = reason;
    if (timer) clearTimeout(timer);
    timer = undefined;
    maybeFinish();
  };

  const send = (seq: number, lane: Lane, scheduledAt: number): void => {
    inFlight++;
    const sentAt = now();
    const attempt: Attempt = { timedOut: false, responseStarted: false, complete: false };
    let settled = false;
    let status: number | undefined;
    let servedBy: string | undefined;
    let version: string | undefined;

    const settle = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      const doneAt = now();
      const { outcome, error } = classify(attempt, expect, options.bodyMarker);
      const r: ProbeRecord = { seq, lane, scheduledAt, sentAt, doneAt, latencyMs: doneAt - scheduledAt, outcome };
      if (status !== undefined) r.status = status;
      if (servedBy !== undefined) r.servedBy = servedBy;
      if (version !== undefined) r.version = version;
      if (error) r.error = error;
      record(r);
      inFlight--;
      maybeFinish();
    };

    const headers: Record<string, string> = {
      'user-agent': 'handoff-probe',
      'x-handoff-probe': `${seq} ${lane}`,
      ...options.headers,
    };
    // The fresh lane must never reuse a connection, whatever the server would allow.
    if (lane === 'fresh') headers.connection = 'close';
    if (options.body !== undefined) headers['content-length'] = String(Buffer.byteLength(options.body));

    const request = (url.protocol === 'https:' && !options.dial ? https.request : http.request)(url, {
      method,
      headers,
      agent: agents[lane],
    });
    // The deadline counts from the send: the server gets its full timeout however late the prober was.
    const timeOut = (): void => {
      if (settled) return;
      attempt.timedOut = true;
      attempt.error ??= new Error(`no complete response within ${timeoutMs} ms`);
      settle();
      request.destroy();
    };
    // A deadline timer that fires late means the prober itself was stalled meanwhile: its reads (an
    // answer that came in on time) and its writes (a request that could not leave yet) waited too.
    // The request gets the stolen time back once, then the deadline stands.
    let extended = false;
    let dueAt = sentAt + timeoutMs;
    const onDeadline = (): void => {
      const firedAt = now();
      if (!extended && timerStalled(dueAt, firedAt)) {
        extended = true;
        const stolen = Math.min(firedAt - dueAt, timeoutMs);
        dueAt = firedAt + stolen;
        deadline = setTimeout(onDeadline, stolen);
        return;
      }
      timeOut();
    };
    let deadline = setTimeout(onDeadline, timeoutMs);

    request.on('error', (err) => {
      attempt.error ??= err;
      settle();
    });
    request.on('response', (res) => {
      attempt.responseStarted = true;
      status = res.statusCode;
      servedBy = headerText(res.headers['x-served-by']);
      version = headerText(res.headers['x-app-version']);
      attempt.status = status;
      const chunks: Buffer[] = [];
      let kept = 0;
      res.on('data', (chunk: Buffer) => {
        if (kept < BODY_CAP) {
          chunks.push(chunk);
          kept += chunk.length;
        }
      });
      res.on('end', () => {
        attempt.complete = res.complete;
        if (options.bodyMarker) attempt.body = Buffer.concat(chunks).toString('utf8');
        settle();
      });
      res.on('error', (err) => {
        attempt.error ??= err;
        settle();
      });
      // Closed without 'end': the body was cut.
      res.on('close', () => {
        if (!attempt.complete && attempt.error === undefined) attempt.error = new Error('aborted');
        settle();
      });
    });
    request.end(options.body);
  };

  const tick = (): void => {
    timer = undefined;
    if (stopReason !== undefined) return;
    let t = now();
    while (slotAt(schedule, nextSeq) <= t) {
      if (nextSeq >= maxRequests) return halt('max_requests');
      const scheduledAt = slotAt(schedule, nextSeq);
      if (scheduledAt - startedAt >= maxDurationMs) return halt('max_duration');
      const seq = nextSeq++;
      const lane = laneOf(schedule, seq);
      const d = dispatch(schedule, seq, t, timeoutMs);
      if (d.send) send(seq, lane, scheduledAt);
      else
        record({
          seq,
          lane,
          scheduledAt,
          doneAt: t,
          outcome: 'unmeasured',
          error: `the prober was ${Math.round(d.lagMs)} ms behind: past the deadline before it could send`,
        });
      t = now();
    }
    if (nextSeq >= maxRequests) return halt('max_requests');
    if (slotAt(schedule, nextSeq) - startedAt >= maxDurationMs) {
      // Wait out the last interval so the run lasts its full duration.
      timer = setTimeout(() => halt('max_duration'), Math.max(0, startedAt + maxDurationMs - t));
      return;
    }
    timer = setTimeout(tick, Math.max(0, slotAt(schedule, nextSeq) - t));
  };

  tick();

  return {
    startedAt,
    finished,
    stop(): Promise<ProbeResult> {
      halt('stopped');
      return finished;
    },
  };
}

/** ms epoch with sub-ms resolution, so latencies of fast local answers are not rounded to whole ms. */
function preciseNow(): number {
  return performance.timeOrigin + performance.now();
}

function headerText(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value.join(', ') : value;
}

type LaneAgents = Record<Lane, http.Agent>;

function makeAgents(url: URL, options: ProbeOptions): LaneAgents {
  const keepAliveSockets = options.keepAliveSockets ?? 32;
  const freshSockets = options.freshSockets ?? 256;
  // An idle pooled connection is dropped after KEEPALIVE_IDLE_MS: a server closes idle ones too (HAProxy's
  // timeout http-keep-alive, gunicorn's 2 s), and a request sent on one at the moment the server's FIN
  // is under way is lost to the probe, not to the deploy. Real clients retry that case; the probe does
  // not retry, so it stays clear of it. Hot connections (reused every few ms) are unaffected.
  const keepalive = { keepAlive: true, maxSockets: keepAliveSockets, scheduling: 'lifo' as const, timeout: KEEPALIVE_IDLE_MS };
  const fresh = { keepAlive: false, maxSockets: freshSockets };
  const secure = url.protocol === 'https:';
  if (options.dial) {
    const tlsOptions = secure ? { servername: url.hostname, rejectUnauthorized: options.rejectUnauthorized } : undefined;
    return {
      keepalive: new DialAgent({ ...keepalive, dial: options.dial, tls: tlsOptions }),
      fresh: new DialAgent({ ...fresh, dial: options.dial, tls: tlsOptions }),
      slow: new DialAgent({ ...keepalive, dial: options.dial, tls: tlsOptions }),
    };
  }
  if (secure) {
    const rejectUnauthorized = options.rejectUnauthorized ?? true;
    // maxCachedSessions 0: a fresh connection does a full handshake, like a new client would.
    return {
      keepalive: new https.Agent({ ...keepalive, rejectUnauthorized }),
      fresh: new https.Agent({ ...fresh, rejectUnauthorized, maxCachedSessions: 0 }),
      slow: new https.Agent({ ...keepalive, rejectUnauthorized }),
    };
  }
  return { keepalive: new http.Agent(keepalive), fresh: new http.Agent(fresh), slow: new http.Agent(keepalive) };
}

/** One result from probes run side by side (the short lanes and the long-request lane). */
export function mergeResults(results: readonly ProbeResult[]): ProbeResult {
  if (results.length === 0) throw new Error('no probe results to merge');
  const [first] = results;
  return {
    url: first!.url,
    rate: results.reduce((n, r) => n + r.rate, 0),
    timeoutMs: first!.timeoutMs,
    startedAt: Math.min(...results.map((r) => r.startedAt)),
    endedAt: Math.max(...results.map((r) => r.endedAt)),
    stoppedBy: first!.stoppedBy,
    records: results.flatMap((r) => r.records).sort((a, b) => a.scheduledAt - b.scheduledAt),
  };
}
