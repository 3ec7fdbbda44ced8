import type { LossKind, Outcome } from './record.js';
import type { StatusSet } from './status-set.js';

/** What the prober observed about one request; classify() turns it into an outcome. Pure. */
export interface Attempt {
  /** Our own per-request deadline fired before the outcome was known. */
  timedOut: boolean;
  /** The status line and headers arrived. */
  responseStarted: boolean;
  /** The body arrived in full (the response emitted 'end' with complete framing). */
  complete: boolean;
  status?: number;
  /** The body text (possibly truncated to a cap), when complete. */
  body?: string;
  error?: unknown;
}

export interface Classified {
  outcome: Outcome;
  error?: string;
}

interface ErrorLike {
  code?: unknown;
  message?: unknown;
  syscall?: unknown;
}

/** A short, single-line description of an error for the record. */
export function shortError(err: unknown): string {
  if (err === undefined || err === null) return '';
  const e = err as ErrorLike;
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
export function classifyTransportError(err: unknown): LossKind {
  const e = (err ?? {}) as ErrorLike;
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : String(err);
  if (code === 'ECONNREFUSED' || /refused/i.test(message)) return 'refused';
  // No route or no name: nothing listens where we point, like a refusal.
  if (['EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL'].includes(code)) return 'refused';
  // The TLS handshake failed (certificate, protocol): no connection the client would use.
  if (/CERT|SELF_SIGNED|^ERR_TLS|^ERR_SSL/.test(code)) return 'refused';
  if (code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT') return 'timeout';
  if (message === 'socket hang up') return 'empty';
  if (code === 'ERR_STREAM_PREMATURE_CLOSE') return 'empty';
  if (code === 'ECONNRESET' || code === 'EPIPE' || code === 'ECONNABORTED') return 'reset';
  if (message === 'aborted') return 'cut';
  // A malformed response (HTTP parser error) is no usable response at all.
  if (code.startsWith('HPE_')) return 'empty';
  return 'reset';
}

/**
 * The outcome of one request. The deadline wins over anything else (a request that was still
 * going when the deadline fired is a timeout, whatever error the abort produced); then transport
 * errors; then an incomplete body; then the status set; then the body marker.
 */
export function classify(attempt: Attempt, expect: StatusSet, bodyMarker?: string): Classified {
  const error = attempt.error === undefined ? undefined : shortError(attempt.error);
  const withError = (outcome: Outcome): Classified => (error ? { outcome, error } : { outcome });
  if (attempt.timedOut) return withError('timeout');
  if (attempt.error !== undefined) {
    if (attempt.responseStarted && !attempt.complete) return withError('cut');
    return withError(classifyTransportError(attempt.error));
  }
  if (!attempt.responseStarted) return withError('empty');
  if (!attempt.complete) return withError('cut');
  const status = attempt.status ?? 0;
  if (!expect.has(status)) return { outcome: 'bad_status', error: `status ${status} not in ${expect.text}` };
  if (bodyMarker && !(attempt.body ?? '').includes(bodyMarker)) {
    return { outcome: 'body_mismatch', error: `body lacks "${bodyMarker.slice(0, 40)}"` };
  }
  return { outcome: 'ok' };
}
