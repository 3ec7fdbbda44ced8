/** One probe request, as the prober records it and the stats read it. */

/**
 * keepalive and fresh: short requests on reused and on new connections. slow: the optional lane for
 * requests that stay in flight a while (probe_slow_url), which sees responses cut by a stop.
 */
export type Lane = 'keepalive' | 'fresh' | 'slow';
export const LANES: readonly Lane[] = ['keepalive', 'fresh', 'slow'];

/** Every way a request can be lost: it was sent and failed (see classify.ts). */
export type LossKind = 'refused' | 'reset' | 'empty' | 'cut' | 'timeout' | 'bad_status' | 'body_mismatch';
export const LOSS_KINDS: readonly LossKind[] = ['refused', 'reset', 'empty', 'cut', 'timeout', 'bad_status', 'body_mismatch'];

/**
 * ok, a loss, or unmeasured: the prober itself fell so far behind (a starved runner) that the
 * request's deadline passed before it could leave. That says nothing about the deploy, so it is
 * not a loss; such stretches are reported as unmeasured windows.
 */
export type Outcome = 'ok' | LossKind | 'unmeasured';

export interface ProbeRecord {
  seq: number;
  lane: Lane;
  /** ms epoch: when the open-loop schedule wanted it to leave. */
  scheduledAt: number;
  /** ms epoch when it left; absent for unmeasured. */
  sentAt?: number;
  /** ms epoch when the outcome was known. */
  doneAt: number;
  /**
   * doneAt - scheduledAt: latency from the schedule, so a prober that sent late shows the delay as
   * latency instead of hiding it (the coordinated-omission correction). Absent for unmeasured.
   */
  latencyMs?: number;
  outcome: Outcome;
  status?: number;
  /** X-Served-By response header: which backend answered. */
  servedBy?: string;
  /** X-App-Version response header. */
  version?: string;
  /** Short error text for losses. */
  error?: string;
}
