import { createRequire as __WEBPACK_EXTERNAL_createRequire } from "module";
/******/ // The require scope
/******/ var __nccwpck_require__ = {};
/******/ 
/************************************************************************/
/******/ /* webpack/runtime/compat get default export */
/******/ (() => {
/******/ 	// getDefaultExport function for compatibility with non-harmony modules
/******/ 	__nccwpck_require__.n = (module) => {
/******/ 		var getter = module && module.__esModule ?
/******/ 			() => (module['default']) :
/******/ 			() => (module);
/******/ 		__nccwpck_require__.d(getter, { a: getter });
/******/ 		return getter;
/******/ 	};
/******/ })();
/******/ 
/******/ /* webpack/runtime/define property getters */
/******/ (() => {
/******/ 	// define getter functions for harmony exports
/******/ 	__nccwpck_require__.d = (exports, definition) => {
/******/ 		for(var key in definition) {
/******/ 			if(__nccwpck_require__.o(definition, key) && !__nccwpck_require__.o(exports, key)) {
/******/ 				Object.defineProperty(exports, key, { enumerable: true, get: definition[key] });
/******/ 			}
/******/ 		}
/******/ 	};
/******/ })();
/******/ 
/******/ /* webpack/runtime/hasOwnProperty shorthand */
/******/ (() => {
/******/ 	__nccwpck_require__.o = (obj, prop) => (Object.prototype.hasOwnProperty.call(obj, prop))
/******/ })();
/******/ 
/************************************************************************/
var __webpack_exports__ = {};

;// CONCATENATED MODULE: external "node:worker_threads"
const external_node_worker_threads_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:worker_threads");
;// CONCATENATED MODULE: external "node:http"
const external_node_http_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:http");
var external_node_http_default = /*#__PURE__*/__nccwpck_require__.n(external_node_http_namespaceObject);
;// CONCATENATED MODULE: external "node:https"
const external_node_https_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:https");
var external_node_https_default = /*#__PURE__*/__nccwpck_require__.n(external_node_https_namespaceObject);
;// CONCATENATED MODULE: ./src/probe/classify.ts
/** A short, single-line description of an error for the record. */
function shortError(err) {
    if (err === undefined || err === null)
        return '';
    const e = err;
    const code = typeof e.code === 'string' ? e.code : '';
    const message = typeof e.message === 'string' ? e.message : String(err);
    const text = code && !message.includes(code) ? `${code}: ${message}` : message;
    return text.replace(/\s+/g, ' ').slice(0, 120);
}
/**
 * Map a transport error seen before any response byte to a loss kind.
 * Node reports a socket that closed (FIN) before a response as ECONNRESET with the message
 * "socket hang up"; a real TCP RST comes as "read ECONNRESET" (syscall read) or EPIPE on write.
 * The first is an empty response, the second a reset.
 */
function classifyTransportError(err) {
    const e = (err ?? {});
    const code = typeof e.code === 'string' ? e.code : '';
    const message = typeof e.message === 'string' ? e.message : String(err);
    if (code === 'ECONNREFUSED' || /refused/i.test(message))
        return 'refused';
    // No route or no name: nothing listens where we point, like a refusal.
    if (['EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL'].includes(code))
        return 'refused';
    // The TLS handshake failed (certificate, protocol): no connection the client would use.
    if (/CERT|SELF_SIGNED|^ERR_TLS|^ERR_SSL/.test(code))
        return 'refused';
    if (code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT')
        return 'timeout';
    if (message === 'socket hang up')
        return 'empty';
    if (code === 'ERR_STREAM_PREMATURE_CLOSE')
        return 'empty';
    if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED')
        return 'reset';
    if (message === 'aborted')
        return 'cut';
    // A malformed response (HTTP parser error) is no usable response at all.
    if (code.startsWith('HPE_'))
        return 'empty';
    return 'reset';
}
/**
 * The outcome of one request. The deadline wins over anything else (a request that was still
 * going when the deadline fired is a timeout, whatever error the abort produced); then transport
 * errors; then an incomplete body; then the status set; then the body marker.
 */
function classify(attempt, expect, bodyMarker) {
    const error = attempt.error === undefined ? undefined : shortError(attempt.error);
    const withError = (outcome) => (error ? { outcome, error } : { outcome });
    if (attempt.timedOut)
        return withError('timeout');
    if (attempt.error !== undefined) {
        if (attempt.responseStarted && !attempt.complete)
            return withError('cut');
        return withError(classifyTransportError(attempt.error));
    }
    if (!attempt.responseStarted)
        return withError('empty');
    if (!attempt.complete)
        return withError('cut');
    const status = attempt.status ?? 0;
    if (!expect.has(status))
        return { outcome: 'bad_status', error: `status ${status} not in ${expect.text}` };
    if (bodyMarker && !(attempt.body ?? '').includes(bodyMarker)) {
        return { outcome: 'body_mismatch', error: `body lacks "${bodyMarker.slice(0, 40)}"` };
    }
    return { outcome: 'ok' };
}

;// CONCATENATED MODULE: external "node:tls"
const external_node_tls_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:tls");
var external_node_tls_default = /*#__PURE__*/__nccwpck_require__.n(external_node_tls_namespaceObject);
;// CONCATENATED MODULE: external "node:stream"
const external_node_stream_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:stream");
;// CONCATENATED MODULE: ./src/probe/dial-agent.ts



/**
 * An http.Agent whose connections come from an async dial function instead of net.connect.
 * Node's Agent accepts a createConnection that answers through its callback, so pooling,
 * keep-alive and maxSockets work as with ordinary sockets.
 */
class DialAgent extends (external_node_http_default()).Agent {
    dial;
    tlsOptions;
    constructor(options) {
        const { dial, tls: tlsOptions, ...agentOptions } = options;
        super(agentOptions);
        this.dial = dial;
        this.tlsOptions = tlsOptions;
        // ClientRequest checks the URL's protocol against the agent's.
        this.protocol = tlsOptions ? 'https:' : 'http:';
    }
    createConnection(options, callback) {
        const host = options.host ?? options.hostname ?? 'localhost';
        const port = Number(options.port ?? (this.tlsOptions ? 443 : 80));
        this.dial(host, port).then((stream) => {
            if (!this.tlsOptions) {
                const socket = socketLike(stream);
                // As net.createConnection does: the agent's idle limit, counted from the last byte either way.
                if (options.timeout)
                    socket.setTimeout(options.timeout);
                return callback?.(null, socket);
            }
            const secure = external_node_tls_default().connect({
                socket: stream,
                servername: this.tlsOptions.servername ?? host,
                rejectUnauthorized: this.tlsOptions.rejectUnauthorized ?? true,
                ca: this.tlsOptions.ca,
            });
            // Hand the TLS socket over at once: a handshake failure then surfaces as the request's error.
            callback?.(null, secure);
        }, (err) => callback?.(err instanceof Error ? err : new Error(String(err)), undefined));
        return undefined;
    }
}
/**
 * A dialed stream (an ssh2 channel) as the client net.Socket the agent and ClientRequest expect.
 * An ssh2 channel differs where the keep-alive pool relies on a socket:
 * - Channel.destroy() only sends EOF and CLOSE: `destroyed` stays false and 'close' comes when the
 *   server answers (a round trip through sshd, later still on a busy main thread). A pooled channel
 *   the agent had closed at its idle limit thus stayed in the pool looking alive, and the agent gave
 *   it to the next request, which hung until 'close' and failed as "socket hang up" without having
 *   been sent. Here destroy() is a stream's: `destroyed` at once and 'close' on the next tick, so
 *   the agent skips and drops it as it does a net.Socket; the channel closes behind it.
 * - it stays half-open after the server's EOF (allowHalfOpen) where a net.Socket closes: the pool
 *   kept a connection the server had closed. Here the peer's EOF ends and then destroys the socket.
 * - no setTimeout: here it has net.Socket's semantics (an idle timer refreshed by traffic in either
 *   direction, `timeout` set, setTimeout(0, cb) removes cb), so the agent's idle limit for pooled
 *   connections counts idle time and listeners do not pile up.
 * - setKeepAlive, setNoDelay, ref and unref exist (no-ops: the SSH connection carries the bytes).
 */
function socketLike(stream) {
    return new TunnelSocket(stream);
}
class TunnelSocket extends external_node_stream_namespaceObject.Duplex {
    timeout = 0;
    idleTimer;
    channel;
    constructor(channel) {
        super({ allowHalfOpen: false });
        this.channel = channel;
        channel.on('data', (chunk) => {
            this.touch();
            if (!this.push(chunk))
                channel.pause();
        });
        channel.once('end', () => this.push(null));
        // ssh2 emits 'close' after 'end'; a channel that closed without it (the SSH connection died) ends here too.
        channel.once('close', () => {
            if (!this.readableEnded)
                this.push(null);
            this.read(0);
        });
        channel.on('error', (err) => this.destroy(err));
        // The peer's EOF, once read: a client net.Socket (allowHalfOpen false) closes then.
        this.once('end', () => this.destroy());
        // An error after the agent let go of the socket (no listener left) must not crash the prober.
        this.on('error', () => { });
    }
    _read() {
        this.channel.resume();
    }
    _write(chunk, encoding, callback) {
        this.touch();
        this.channel.write(chunk, encoding, callback);
    }
    _final(callback) {
        this.channel.end();
        callback();
    }
    _destroy(err, callback) {
        clearTimeout(this.idleTimer);
        this.channel.destroy();
        callback(err);
    }
    /** net.Socket's: 'timeout' after `ms` without traffic; 0 disarms (and removes `callback`). */
    setTimeout(ms, callback) {
        this.timeout = ms;
        clearTimeout(this.idleTimer);
        this.idleTimer = undefined;
        if (ms === 0) {
            if (callback)
                this.removeListener('timeout', callback);
            return this;
        }
        if (callback)
            this.once('timeout', callback);
        if (!this.destroyed)
            this.idleTimer = setTimeout(() => this.emit('timeout'), ms).unref();
        return this;
    }
    setKeepAlive() {
        return this;
    }
    setNoDelay() {
        return this;
    }
    ref() {
        return this;
    }
    unref() {
        return this;
    }
    touch() {
        this.idleTimer?.refresh();
    }
}

;// CONCATENATED MODULE: ./src/probe/schedule.ts
function makeSchedule(startAt, ratePerSecond, lanes = ['keepalive', 'fresh']) {
    if (!(ratePerSecond > 0) || !Number.isFinite(ratePerSecond))
        throw new Error(`probe rate must be > 0, got ${ratePerSecond}`);
    if (lanes.length === 0)
        throw new Error('a probe schedule needs at least one lane');
    return { startAt, intervalMs: 1000 / ratePerSecond, lanes };
}
function slotAt(schedule, seq) {
    return schedule.startAt + seq * schedule.intervalMs;
}
function laneOf(schedule, seq) {
    return schedule.lanes[seq % schedule.lanes.length];
}
/** What to do with request `seq` when the prober gets to it at `now`: send it late, or record it unmeasured. */
function dispatch(schedule, seq, now, deadlineMs) {
    const lagMs = Math.max(0, now - slotAt(schedule, seq));
    return { send: lagMs < deadlineMs, lagMs };
}
/**
 * A deadline timer that fires well after it was due means the prober's own event loop was stalled:
 * an answer that arrived meanwhile is still unread and a request may not have left yet, so the
 * request gets the stolen time back before the timeout is decided (prober.ts).
 */
function timerStalled(dueAt, firedAt, slackMs = 20) {
    return firedAt - dueAt > slackMs;
}

;// CONCATENATED MODULE: ./src/probe/status-set.ts
function parseStatusSet(text) {
    const ranges = [];
    const parts = text.split(',').map((p) => p.trim());
    if (parts.every((p) => p === ''))
        throw new Error('empty status set (example: 200-399 or 200,204)');
    for (const part of parts) {
        if (part === '')
            continue;
        const m = /^(\d{3})(?:\s*-\s*(\d{3}))?$/.exec(part);
        if (!m)
            throw new Error(`"${part}" in status set "${text}" is not a status or a range (example: 200-399)`);
        const lo = Number(m[1]);
        const hi = m[2] === undefined ? lo : Number(m[2]);
        for (const n of [lo, hi]) {
            if (n < 100 || n > 599)
                throw new Error(`status ${n} in "${text}" is outside 100-599`);
        }
        if (hi < lo)
            throw new Error(`range "${part}" in "${text}" is reversed`);
        ranges.push([lo, hi]);
    }
    const canonical = ranges.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`)).join(',');
    return {
        text: canonical,
        has: (status) => ranges.some(([lo, hi]) => status >= lo && status <= hi),
    };
}

;// CONCATENATED MODULE: ./src/probe/prober.ts






/** How long a keep-alive connection may sit idle in the pool before the prober closes it (see makeAgents). */
const KEEPALIVE_IDLE_MS = 1000;
/** Enough of the body to find a marker near the top of a page; the rest is read and dropped. */
const BODY_CAP = 256 * 1024;
/** Start the request-loss probe: an open-loop request stream on its lanes, stopping by itself at its caps. */
function startProbe(options) {
    const now = options.now ?? preciseNow;
    const settings = probeSettings(options);
    const agents = makeAgents(settings.url, options);
    const startedAt = now();
    const schedule = makeSchedule(startedAt, settings.rate, options.lanes);
    const loop = new ProbeLoop({ settings, options, agents, now }, schedule, startedAt);
    loop.tick();
    return {
        startedAt,
        finished: loop.finished,
        stop() {
            loop.halt('stopped');
            return loop.finished;
        },
    };
}
function probeSettings(options) {
    const url = new URL(options.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
        throw new Error(`probe url must be http or https: ${url.href}`);
    const rate = options.rate ?? 20;
    const timeoutMs = options.timeoutMs ?? 2000;
    if (!(timeoutMs > 0))
        throw new Error(`probe timeout must be > 0 ms, got ${timeoutMs}`);
    const maxDurationMs = options.maxDurationMs ?? 600_000;
    const maxRequests = options.maxRequests ?? Math.ceil((rate * maxDurationMs) / 1000) + 1;
    const expect = typeof options.expectStatus === 'string' || options.expectStatus === undefined
        ? parseStatusSet(options.expectStatus ?? '200-399')
        : options.expectStatus;
    const method = (options.method ?? 'GET').toUpperCase();
    return { url, rate, timeoutMs, maxDurationMs, maxRequests, expect, method };
}
/** The open-loop send loop of one probe and its bookkeeping until every request in flight has its record. */
class ProbeLoop {
    finished;
    resolveFinished;
    records = [];
    nextSeq = 0;
    inFlight = 0;
    stopReason;
    timer;
    done = false;
    context;
    schedule;
    startedAt;
    constructor(context, schedule, startedAt) {
        this.context = context;
        this.schedule = schedule;
        this.startedAt = startedAt;
        this.finished = new Promise((resolve) => (this.resolveFinished = resolve));
    }
    /** Send (or record as unmeasured) every request that is due, then sleep until the next one or a cap. */
    tick() {
        this.timer = undefined;
        if (this.stopReason !== undefined)
            return;
        const { now, settings } = this.context;
        let t = now();
        while (slotAt(this.schedule, this.nextSeq) <= t) {
            if (this.nextSeq >= settings.maxRequests)
                return this.halt('max_requests');
            const scheduledAt = slotAt(this.schedule, this.nextSeq);
            if (scheduledAt - this.startedAt >= settings.maxDurationMs)
                return this.halt('max_duration');
            const seq = this.nextSeq++;
            const slot = { seq, lane: laneOf(this.schedule, seq), scheduledAt };
            const d = dispatch(this.schedule, seq, t, settings.timeoutMs);
            if (d.send)
                this.send(slot);
            else
                this.record(unmeasuredRecord(slot, t, d.lagMs));
            t = now();
        }
        this.waitForNextSlot(t);
    }
    halt(reason) {
        if (this.stopReason !== undefined)
            return;
        this.stopReason = reason;
        if (this.timer)
            clearTimeout(this.timer);
        this.timer = undefined;
        this.maybeFinish();
    }
    waitForNextSlot(t) {
        const { maxRequests, maxDurationMs } = this.context.settings;
        if (this.nextSeq >= maxRequests)
            return this.halt('max_requests');
        const next = slotAt(this.schedule, this.nextSeq);
        if (next - this.startedAt >= maxDurationMs) {
            // Wait out the last interval so the run lasts its full duration.
            this.timer = setTimeout(() => this.halt('max_duration'), Math.max(0, this.startedAt + maxDurationMs - t));
            return;
        }
        this.timer = setTimeout(() => this.tick(), Math.max(0, next - t));
    }
    send(slot) {
        this.inFlight++;
        sendRequest(this.context, slot, (r) => {
            this.record(r);
            this.inFlight--;
            this.maybeFinish();
        });
    }
    record(r) {
        this.records.push(r);
        this.context.options.onRecord?.(r);
    }
    maybeFinish() {
        if (this.done || this.stopReason === undefined || this.inFlight > 0)
            return;
        this.done = true;
        for (const agent of Object.values(this.context.agents))
            agent.destroy();
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
function unmeasuredRecord(slot, at, lagMs) {
    return {
        ...slot,
        doneAt: at,
        outcome: 'unmeasured',
        error: `the prober was ${Math.round(lagMs)} ms behind: past the deadline before it could send`,
    };
}
/** Send one request; `done` gets its record exactly once, however it ends (answer, error or deadline). */
function sendRequest(context, slot, done) {
    const { now, settings, options } = context;
    const sentAt = now();
    const attempt = { timedOut: false, responseStarted: false, complete: false };
    const answer = {};
    let settled = false;
    const settle = () => {
        if (settled)
            return;
        settled = true;
        cancelDeadline();
        const doneAt = now();
        done(sentRecord(slot, sentAt, doneAt, answer, classify(attempt, settings.expect, options.bodyMarker)));
    };
    const request = openRequest(context, slot);
    const cancelDeadline = armDeadline(now, sentAt, settings.timeoutMs, () => {
        if (settled)
            return;
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
function openRequest(context, slot) {
    const { settings, options, agents } = context;
    const request = settings.url.protocol === 'https:' && !options.dial ? (external_node_https_default()).request : (external_node_http_default()).request;
    return request(settings.url, { method: settings.method, headers: requestHeaders(options, slot), agent: agents[slot.lane] });
}
function requestHeaders(options, slot) {
    const headers = {
        'user-agent': 'handoff-probe',
        'x-handoff-probe': `${slot.seq} ${slot.lane}`,
        ...options.headers,
    };
    // The fresh lane must never reuse a connection, whatever the server would allow.
    if (slot.lane === 'fresh')
        headers.connection = 'close';
    if (options.body !== undefined)
        headers['content-length'] = String(Buffer.byteLength(options.body));
    return headers;
}
/**
 * Call `onTimeout` once the request's deadline has passed; returns the function that cancels it.
 * The deadline counts from the send: the server gets its full timeout however late the prober was.
 * A deadline timer that fires late means the prober itself was stalled meanwhile: its reads (an
 * answer that came in on time) and its writes (a request that could not leave yet) waited too.
 * The request gets the stolen time back once, then the deadline stands.
 */
function armDeadline(now, sentAt, timeoutMs, onTimeout) {
    let extended = false;
    let dueAt = sentAt + timeoutMs;
    const onDeadline = () => {
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
function readResponse(res, attempt, answer, bodyMarker, settle) {
    attempt.responseStarted = true;
    answer.status = res.statusCode;
    answer.servedBy = headerText(res.headers['x-served-by']);
    answer.version = headerText(res.headers['x-app-version']);
    attempt.status = answer.status;
    const chunks = [];
    let kept = 0;
    res.on('data', (chunk) => {
        if (kept < BODY_CAP) {
            chunks.push(chunk);
            kept += chunk.length;
        }
    });
    res.on('end', () => {
        attempt.complete = res.complete;
        if (bodyMarker)
            attempt.body = Buffer.concat(chunks).toString('utf8');
        settle();
    });
    res.on('error', (err) => {
        attempt.error ??= err;
        settle();
    });
    // Closed without 'end': the body was cut.
    res.on('close', () => {
        if (!attempt.complete && attempt.error === undefined)
            attempt.error = new Error('aborted');
        settle();
    });
}
/** The record of a request that was sent, once its outcome is known. */
function sentRecord(slot, sentAt, doneAt, answer, { outcome, error }) {
    const r = { ...slot, sentAt, doneAt, latencyMs: doneAt - slot.scheduledAt, outcome };
    if (answer.status !== undefined)
        r.status = answer.status;
    if (answer.servedBy !== undefined)
        r.servedBy = answer.servedBy;
    if (answer.version !== undefined)
        r.version = answer.version;
    if (error)
        r.error = error;
    return r;
}
/** ms epoch with sub-ms resolution, so latencies of fast local answers are not rounded to whole ms. */
function preciseNow() {
    return performance.timeOrigin + performance.now();
}
function headerText(value) {
    if (value === undefined)
        return undefined;
    return Array.isArray(value) ? value.join(', ') : value;
}
function makeAgents(url, options) {
    const keepAliveSockets = options.keepAliveSockets ?? 32;
    const freshSockets = options.freshSockets ?? 256;
    // An idle pooled connection is dropped after KEEPALIVE_IDLE_MS: a server closes idle ones too (HAProxy's
    // timeout http-keep-alive, gunicorn's 2 s), and a request sent on one at the moment the server's FIN
    // is under way is lost to the probe, not to the deploy. Real clients retry that case; the probe does
    // not retry, so it stays clear of it. Hot connections (reused every few ms) are unaffected.
    const keepalive = { keepAlive: true, maxSockets: keepAliveSockets, scheduling: 'lifo', timeout: KEEPALIVE_IDLE_MS };
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
            keepalive: new (external_node_https_default()).Agent({ ...keepalive, rejectUnauthorized }),
            fresh: new (external_node_https_default()).Agent({ ...fresh, rejectUnauthorized, maxCachedSessions: 0 }),
            slow: new (external_node_https_default()).Agent({ ...keepalive, rejectUnauthorized }),
        };
    }
    return { keepalive: new (external_node_http_default()).Agent(keepalive), fresh: new (external_node_http_default()).Agent(fresh), slow: new (external_node_http_default()).Agent(keepalive) };
}
/** One result from probes run side by side (the short lanes and the long-request lane). */
function mergeResults(results) {
    if (results.length === 0)
        throw new Error('no probe results to merge');
    const [first] = results;
    return {
        url: first.url,
        rate: results.reduce((n, r) => n + r.rate, 0),
        timeoutMs: first.timeoutMs,
        startedAt: Math.min(...results.map((r) => r.startedAt)),
        endedAt: Math.max(...results.map((r) => r.endedAt)),
        stoppedBy: first.stoppedBy,
        records: results.flatMap((r) => r.records).sort((a, b) => a.scheduledAt - b.scheduledAt),
    };
}

;// CONCATENATED MODULE: ./src/probe/worker.ts
/**
 * The probers in a worker thread: their open-loop schedules keep time on its own event loop, so
 * the deploy's work on the main thread (SSH crypto, parsing) cannot delay a single send.
 */


const runs = external_node_worker_threads_namespaceObject.workerData.map((options) => startProbe(options));
external_node_worker_threads_namespaceObject.parentPort.on('message', (message) => {
    if (message !== 'stop')
        return;
    void Promise.all(runs.map((run) => run.stop())).then((results) => external_node_worker_threads_namespaceObject.parentPort.postMessage(results));
});

