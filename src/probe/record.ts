/** One probe request, as the prober records it and the stats read it. */

export type Lane = 'keepalive' | 'fresh';
export const LANES: readonly Lane[] = ['keepalive', 'fresh'];

/** Every way a request can be lost (see classify.ts for how errors map onto them). */
export type LossKind =
  | 'refused'
  | 'reset'
  | 'empty'
  | 'cut'
  | 'timeout'
  | 'bad_status'
  | 'body_mismatch'
  | 'not_sent';
export const LOSS_KINDS: readonly LossKind[] = [
  'refused',
  'reset',
  'empty',
  'cut',
  'timeout',
  'bad_status',
  'body_mismatch',
  'not_sent',
];

export type Outcome = 'ok' | LossKind;

export interface ProbeRecord {
  seq: number;
  lane: Lane;
  /** ms epoch: when the open-loop schedule wanted it to leave. */
  scheduledAt: number;
  /** ms epoch when it left; absent for not_sent. */
  sentAt?: number;
  /** ms epoch when the outcome was known. */
  doneAt: number;
  /** doneAt - sentAt; absent for not_sent. */
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
