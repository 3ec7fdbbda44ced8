import http from 'node:http';
import https from 'node:https';
import { classify, type Attempt, type Classified } from './classify.js';
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
const KEEPALIVE_IDLE_MS = 1000;

/** Enough of the body to find a marker near the top of a page; the rest is read and dropped. */
const BODY_CAP = 256 * 1024;

/** Start the request-loss probe: an open-loop request stream on its lanes, stopping by itself at its caps. */
export function startProbe(options: ProbeOptions): ProbeRun {
  const now = options.now ?? preciseNow;
  const settings = probeSettings(options);
  const agents = makeAgents(settings.url, options);
  const startedAt = now();
  const schedule: Schedule = makeSchedule(startedAt, settings.rate, options.lanes);
  const loop = new ProbeLoop({ settings, options, agents, now }, schedule, startedAt);
  loop.tick();
  return {
    startedAt,
    finished: loop.finished,
    stop(): Promise<ProbeResult> {
      loop.halt('stopped');
      return loop.finished;
    },
  };
}

/** The options with their defaults filled in and checked. */
interface ProbeSettings {
  url: URL;
  rate: number;
  timeoutMs: number;
  maxDurationMs: number;
  maxRequests: number;
  expect: StatusSet;
  method: string;
}

function probeSettings(options: ProbeOptions): ProbeSettings {
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
  const method = (options.method ?? 'GET').toUpperCase();
  return { url, rate, timeoutMs, maxDurationMs, maxRequests, expect, method };
}

/** What every request of one probe shares. */
interface ProbeContext {
  settings: ProbeSettings;
  options: ProbeOptions;
  agents: LaneAgents;
  now: () => number;
}

/** One place in the schedule: which request, on which lane, due when (ms epoch). */
interface Slot {
  seq: number;
  lane: Lane;
  scheduledAt: number;
}

/** The open-loop send loop of one probe and its bookkeeping until every request in flight has its record. */
class ProbeLoop {
  readonly finished: Promise<ProbeResult>;
  private resolveFinished!: (result: ProbeResult) => void;
  private readonly records: ProbeRecord[] = [];
  private nextSeq = 0;
  private inFlight = 0;
  private stopReason: StopReason | undefined;
  private timer: NodeJS.Timeout | undefined;
  private done = false;
  private readonly context: ProbeContext;
  private readonly schedule: Schedule;
  private readonly startedAt: number;

  constructor(context: ProbeContext, schedule: Schedule, startedAt: number) {
    this.context = context;
    this.schedule = schedule;
    this.startedAt = startedAt;
    this.finished = new Promise<ProbeResult>((resolve) => (this.resolveFinished = resolve));
  }

  /** Send (or record as unmeasured) every request that is due, then sleep until the next one or a cap. */
  tick(): void {
    this.timer = undefined;
    if (this.stopReason !== undefined) return;
    const { now, settings } = this.context;
    let t = now();
    while (slotAt(this.schedule, this.nextSeq) <= t) {
      if (this.nextSeq >= settings.maxRequests) return this.halt('max_requests');
      const scheduledAt = slotAt(this.schedule, this.nextSeq);
      if (scheduledAt - this.startedAt >= settings.maxDurationMs) return this.halt('max_duration');
      const seq = this.nextSeq++;
      const slot: Slot = { seq, lane: laneOf(this.schedule, seq), scheduledAt };
      const d = dispatch(this.schedule, seq, t, settings.timeoutMs);
      if (d.send) this.send(slot);
      else this.record(unmeasuredRecord(slot, t, d.lagMs));
      t = now();
    }
    this.waitForNextSlot(t);
  }

  halt(reason: StopReason): void {
    if (this.stopReason !== undefined) return;
    this.stopReason = reason;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.maybeFinish();
  }

  private waitForNextSlot(t: number): void {
    const { maxRequests, maxDurationMs } = this.context.settings;
    if (this.nextSeq >= maxRequests) return this.halt('max_requests');
    const next = slotAt(this.schedule, this.nextSeq);
    if (next - this.startedAt >= maxDurationMs) {
      // Wait out the last interval so the run lasts its full duration.
      this.timer = setTimeout(() => this.halt('max_duration'), Math.max(0, this.startedAt + maxDurationMs - t));
      return;
    }
    this.timer = setTimeout(() => this.tick(), Math.max(0, next - t));
  }

  private send(slot: Slot): void {
    this.inFlight++;
    sendRequest(this.context, slot, (r) => {
      this.record(r);
      this.inFlight--;
      this.maybeFinish();
    });
  }

  private record(r: ProbeRecord): void {
    this.records.push(r);
    this.context.options.onRecord?.(r);
  }

  private maybeFinish(): void {
    if (this.done || this.stopReason === undefined || this.inFlight > 0) return;
    this.done = true;
    for (const agent of Object.values(this.context.agents)) agent.destroy();
    this.records.sort((a, b) => a.seq - b.seq);
    const { settings, now } = this.context;
    this.resolveFinished({
      url: settings.url.href,
      rate: settings.rate,
      timeoutMs: settings.timeoutMs,
      startedAt: this.startedAt,
      endedAt: now(),
      stoppedBy: this.stopReason,
      records: this.records,
    });
  }
}

/** The record of a request the prober was too far behind to send (see dispatch in schedule.ts). */
function unmeasuredRecord(slot: Slot, at: number, lagMs: number): ProbeRecord {
  return {
    ...slot,
    doneAt: at,
    outcome: 'unmeasured',
    error: `the prober was ${Math.round(lagMs)} ms behind: past the deadline before it could send`,
  };
}

/** What a response said about who answered it, for the record. */
interface Answer {
  status?: number;
  servedBy?: string;
  version?: string;
}

/** Send one request; `done` gets its record exactly once, however it ends (answer, error or deadline). */
function sendRequest(context: ProbeContext, slot: Slot, done: (record: ProbeRecord) => void): void {
  const { now, settings, options } = context;
  const sentAt = now();
  const attempt: Attempt = { timedOut: false, responseStarted: false, complete: false };
  const answer: Answer = {};
  let settled = false;

  const settle = (): void => {
    if (settled) return;
    settled = true;
    cancelDeadline();
    const doneAt = now();
    done(sentRecord(slot, sentAt, doneAt, answer, classify(attempt, settings.expect, options.bodyMarker)));
  };

  const request = openRequest(context, slot);
  const cancelDeadline = armDeadline(now, sentAt, settings.timeoutMs, () => {
    if (settled) return;
    attempt.timedOut = true;
    attempt.error ??= new Error(`no complete response within ${settings.timeoutMs} ms`);
    settle();
    request.destroy();
  });
  request.on('error', (err) => {
    attempt.error ??= err;
    settle();
  });
  request.on('response', (res) => readResponse(res, attempt, answer, options.bodyMarker, settle));
  request.end(options.body);
}

/** The request for one slot, not yet ended (its body goes with end()). */
function openRequest(context: ProbeContext, slot: Slot): http.ClientRequest {
  const { settings, options, agents } = context;
  const request = settings.url.protocol === 'https:' && !options.dial ? https.request : http.request;
  return request(settings.url, { method: settings.method, headers: requestHeaders(options, slot), agent: agents[slot.lane] });
}

export function requestHeaders(options: Pick<ProbeOptions, 'headers' | 'body'>, slot: Pick<Slot, 'seq' | 'lane'>): Record<string, string> {
  const headers: Record<string, string> = {
    'user-agent': 'handoff-probe',
    'x-handoff-probe': `${slot.seq} ${slot.lane}`,
    ...options.headers,
  };
  // The fresh lane must never reuse a connection, whatever the server would allow.
  if (slot.lane === 'fresh') headers.connection = 'close';
  if (options.body !== undefined) headers['content-length'] = String(Buffer.byteLength(options.body));
  return headers;
}

/**
 * Call `onTimeout` once the request's deadline has passed; returns the function that cancels it.
 * The deadline counts from the send: the server gets its full timeout however late the prober was.
 * A deadline timer that fires late means the prober itself was stalled meanwhile: its reads (an
 * answer that came in on time) and its writes (a request that could not leave yet) waited too.
 * The request gets the stolen time back once, then the deadline stands.
 */
export function armDeadline(now: () => number, sentAt: number, timeoutMs: number, onTimeout: () => void): () => void {
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
    onTimeout();
  };
  let deadline = setTimeout(onDeadline, timeoutMs);
  return () => clearTimeout(deadline);
}

/** Fill `attempt` and `answer` from the response as it streams in; `settle` once it ends, fails or closes. */
function readResponse(
  res: http.IncomingMessage,
  attempt: Attempt,
  answer: Answer,
  bodyMarker: string | undefined,
  settle: () => void,
): void {
  attempt.responseStarted = true;
  answer.status = res.statusCode;
  answer.servedBy = headerText(res.headers['x-served-by']);
  answer.version = headerText(res.headers['x-app-version']);
  attempt.status = answer.status;
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
    if (bodyMarker) attempt.body = Buffer.concat(chunks).toString('utf8');
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
}

/** The record of a request that was sent, once its outcome is known. */
function sentRecord(slot: Slot, sentAt: number, doneAt: number, answer: Answer, { outcome, error }: Classified): ProbeRecord {
  const r: ProbeRecord = { ...slot, sentAt, doneAt, latencyMs: doneAt - slot.scheduledAt, outcome };
  if (answer.status !== undefined) r.status = answer.status;
  if (answer.servedBy !== undefined) r.servedBy = answer.servedBy;
  if (answer.version !== undefined) r.version = answer.version;
  if (error) r.error = error;
  return r;
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
