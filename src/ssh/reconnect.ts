/**
 * A Remote that survives a network cut: when the SSH connection drops, it connects again (same
 * host-key pins, bounded retries with backoff) and re-runs the command that was cut, since every
 * command handoff sends is written to be safe to repeat (a scale-up converges, a stop skips what is
 * gone, files are replaced atomically). A command marked `repeatable: false` is not re-run: its
 * outcome is unknown, so the caller gets a ConnectionLostError and checks the host's state.
 */
import type { Duplex } from 'node:stream';
import { RemoteCommandError, type ExecOptions, type ExecResult, type Remote } from '../host/remote.js';
import { SshConnectError, type SshRemote } from './connection.js';
import { sleep } from '../support/time.js';
import { quietLog, type ProgressLog } from '../support/log.js';

export interface ReconnectOptions {
  /** Opens a fresh connection (the caller's pins, jump host and timeouts). */
  connect: () => Promise<SshRemote>;
  /** How long to keep trying to get a connection back before failing. Default 120 s. */
  windowMs?: number;
  /** First wait between tries; doubles up to maxDelayMs. */
  retryDelayMs?: number;
  maxDelayMs?: number;
  log?: ProgressLog;
  /**
   * Run on a fresh connection before it is used (e.g. check the deploy lock is still ours); when it
   * throws, the command that was cut fails with that error.
   */
  verify?: (connection: SshRemote) => Promise<void>;
  /** Told after each successful reconnect (for the timeline). */
  onReconnect?: (info: { downMs: number; count: number }) => void;
  sleep?: (ms: number) => Promise<void>;
  /** Retry the first connection too, within the window (the post step: the link may still be down). */
  retryFirst?: boolean;
}

/** The connection dropped while a command that must not be repeated was running: its outcome is unknown. */
export class ConnectionLostError extends Error {
  constructor(readonly command: string) {
    super(`the SSH connection dropped while this command ran, and it is not safe to repeat blindly: ${command.slice(0, 200)}`);
    this.name = 'ConnectionLostError';
  }
}

/** Could not get a connection back within the window. */
export class ReconnectFailedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReconnectFailedError';
  }
}

/** A command cut by the connection going away, not one that failed on the host. */
export function isConnectionLoss(err: unknown, remote: { isClosed: boolean }): boolean {
  if (remote.isClosed) return true;
  if (err instanceof RemoteCommandError) return err.result.stderr.includes('the channel closed without an exit status');
  const msg = err instanceof Error ? err.message : String(err);
  return /connection is closed|Not connected|No response from server|Keepalive timeout|ECONNRESET|EPIPE|Unable to exec/i.test(msg);
}

/** How long to try to get a connection back, unless told (ReconnectOptions.windowMs). */
const DEFAULT_WINDOW_MS = 120_000;
/** The longest wait between two tries, unless told (ReconnectOptions.maxDelayMs). */
const DEFAULT_MAX_DELAY_MS = 10_000;

/** Per command: a cut repeated this often in a row is not a blip. */
const MAX_REPEATS = 5;

export class ReconnectingRemote implements Remote {
  private current: SshRemote;
  private reconnecting?: Promise<SshRemote>;
  private closed = false;
  private readonly windowMs: number;
  private readonly retryDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly log: ProgressLog;
  private readonly sleep: (ms: number) => Promise<void>;
  /** Reconnects so far (for the report). */
  reconnects = 0;

  private constructor(
    first: SshRemote,
    private readonly options: ReconnectOptions,
  ) {
    this.current = first;
    this.windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
    this.retryDelayMs = options.retryDelayMs ?? 1000;
    this.maxDelayMs = options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
    this.log = options.log ?? quietLog;
    this.sleep = options.sleep ?? sleep;
  }

  /** Connect the first time: errors here (auth, host key, unreachable) fail at once, as before. */
  static async open(options: ReconnectOptions): Promise<ReconnectingRemote> {
    if (!options.retryFirst) return new ReconnectingRemote(await options.connect(), options);
    const first = await connectWithin({ ...options, log: options.log ?? quietLog });
    return new ReconnectingRemote(first, options);
  }

  /** From now on, a fresh connection is checked with this before use (see ReconnectOptions.verify). */
  setVerify(verify: ReconnectOptions['verify']): void {
    this.options.verify = verify;
  }

  /** For tests: the connection in use now. */
  get connection(): SshRemote {
    return this.current;
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    return this.withConnection(command, options.repeatable !== false, (r) => r.exec(command, options));
  }

  async writeFile(path: string, data: string | Buffer, mode?: number, options?: { public?: boolean }): Promise<void> {
    // A temp file renamed into place: repeating it writes the same file.
    await this.withConnection(`write ${path}`, true, (r) => r.writeFile(path, data, mode, options));
  }

  readFile(path: string): Promise<string | undefined> {
    return this.withConnection(`read ${path}`, true, (r) => r.readFile(path));
  }

  openUnixSocket(path: string): Promise<Duplex> {
    return this.withConnection(`open ${path}`, true, (r) => r.openUnixSocket(path));
  }

  openTcp(host: string, port: number): Promise<Duplex> {
    return this.withConnection(`open ${host}:${port}`, true, (r) => r.openTcp(host, port));
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.current.close();
  }

  private async withConnection<T>(what: string, repeatable: boolean, run: (r: SshRemote) => Promise<T>): Promise<T> {
    for (let repeat = 0; ; repeat++) {
      const r = await this.live();
      try {
        return await run(r);
      } catch (err) {
        if (this.closed || !isConnectionLoss(err, r)) throw err;
        // A channel can close before the client notices the connection is gone: make it so.
        if (!r.isClosed) r.destroy();
        if (!repeatable) throw new ConnectionLostError(what);
        if (repeat + 1 >= MAX_REPEATS)
          throw new ReconnectFailedError(`the SSH connection dropped ${MAX_REPEATS} times in a row during: ${what.slice(0, 200)}`);
        this.log.info(`the SSH connection dropped during a remote step; reconnecting to repeat it (it is safe to repeat)`);
      }
    }
  }

  /** The live connection, reconnecting first when it is gone (one reconnect shared by all callers). */
  private async live(): Promise<SshRemote> {
    if (this.closed) throw new Error('ssh: the connection was closed by handoff');
    if (!this.current.isClosed) return this.current;
    this.reconnecting ??= this.reconnect().finally(() => {
      this.reconnecting = undefined;
    });
    return this.reconnecting;
  }

  private async reconnect(): Promise<SshRemote> {
    const started = Date.now();
    const next = await connectWithin({
      ...this.options,
      windowMs: this.windowMs,
      retryDelayMs: this.retryDelayMs,
      maxDelayMs: this.maxDelayMs,
      log: this.log,
      sleep: this.sleep,
    });
    if (this.options.verify) {
      try {
        await this.options.verify(next);
      } catch (err) {
        await next.close().catch(() => {});
        throw err;
      }
    }
    this.current = next;
    this.reconnects++;
    const downMs = Date.now() - started;
    this.log.info(`reconnected to the host after ${(downMs / 1000).toFixed(1)} s (reconnect ${this.reconnects})`);
    this.options.onReconnect?.({ downMs, count: this.reconnects });
    return next;
  }
}

/** Connect, retrying what may pass (timeouts, refused, reset) with backoff until the window closes. */
async function connectWithin(options: ReconnectOptions & { log: ProgressLog }): Promise<SshRemote> {
  const windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
  const wait = options.sleep ?? sleep;
  const started = Date.now();
  let delay = options.retryDelayMs ?? 1000;
  let last: unknown;
  for (;;) {
    try {
      return await options.connect();
    } catch (err) {
      last = err;
      // A wrong key or host key will not fix itself: stop at once.
      if (!isRetryableConnectError(err)) throw err;
    }
    const left = windowMs - (Date.now() - started);
    if (left <= 0) break;
    options.log.info(
      `the host is unreachable (${last instanceof Error ? last.message : String(last)}); trying again in ${Math.ceil(Math.min(delay, left) / 1000)} s`,
    );
    await wait(Math.min(delay, left));
    delay = Math.min(delay * 2, options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS);
  }
  throw new ReconnectFailedError(
    `the SSH connection to the host could not be (re-)established within ${Math.round(windowMs / 1000)} s: ${last instanceof Error ? last.message : String(last)}`,
  );
}

function isRetryableConnectError(err: unknown): boolean {
  if (err instanceof SshConnectError) return err.transient;
  return err instanceof Error && /timed out|ECONN|EHOST|ENETUNREACH|closed during the handshake/i.test(err.message);
}
