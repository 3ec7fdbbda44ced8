import { randomBytes } from 'node:crypto';
import { constants as osConstants } from 'node:os';
import { posix } from 'node:path';
import type { Duplex } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import ssh2 from 'ssh2';
import type { ClientChannel, ConnectConfig } from 'ssh2';
import { readFileByExec, RemoteCommandError, type ExecOptions, type ExecResult, type Remote } from '../host/remote.js';
import { writeFileCommand } from '../commands/files.js';
import { inlineStdin } from '../commands/stdin.js';
import { sleep } from '../support/time.js';
import { quietLog, type ProgressLog } from '../support/log.js';
import { LONG_COMMAND_MS } from '../support/timeouts.js';
import { fingerprint, hostKeyAlgorithms, pinnedKeyTypes, validateHostPin, verifyHostKey, type HostPin } from './hostkey.js';
import { parsePrivateKey } from './keys.js';
import { MAX_SHELL_COMMAND, ShellSession } from './shell-session.js';
import { shq } from '../commands/quote.js';

export type HostPinOption = HostPin | { insecure: true };

export interface JumpOptions {
  host: string;
  port?: number;
  username: string;
  /** Defaults to the main connection's key. */
  privateKey?: string;
  passphrase?: string;
  pin: HostPinOption;
}

export interface SshOptions {
  host: string;
  port?: number;
  username: string;
  privateKey: string;
  passphrase?: string;
  pin: HostPinOption;
  jump?: JumpOptions;
  /** Limit for TCP connect + SSH handshake + auth, per attempt. */
  connectTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  /** Default per-command timeout for exec(). */
  commandTimeoutMs?: number;
  /** Channels (exec, socket and TCP streams) open at once; sshd's MaxSessions defaults to 10. */
  maxChannels?: number;
  connectAttempts?: number;
  /** First retry delay; doubles each attempt. */
  retryDelayMs?: number;
  /** Start the long-lived host shell for short commands (default true); a connection only for streams needs none. */
  hostShell?: boolean;
  log?: ProgressLog;
}

const DEFAULTS = {
  port: 22,
  connectTimeoutMs: 20_000,
  keepaliveIntervalMs: 10_000,
  commandTimeoutMs: LONG_COMMAND_MS,
  maxChannels: 4,
  connectAttempts: 3,
  retryDelayMs: 1_000,
};

/** Output kept per stream; older output is dropped so the tail (where errors are) survives. */
const OUTPUT_CAP = 1024 * 1024;

/** Host key algorithms ssh2 can verify without its optional native modules (Node's crypto has them all). */
const HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

const TRANSIENT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'EAI_AGAIN']);

export class HostKeyMismatchError extends Error {
  constructor(
    readonly presented: string,
    readonly keyType: string,
    readonly revoked: boolean,
    which: string,
    /** Other keys the server offered when asked for other types, as "SHA256:... (type)". */
    readonly alsoPresented: string[] = [],
  ) {
    const also = alsoPresented.length ? ` (asked for its other key types, it also presented ${alsoPresented.join(', ')})` : '';
    super(
      revoked
        ? `host key verification failed: ${which} presented ${presented} (${keyType}), which known_hosts marks @revoked`
        : `host key verification failed: ${which} presented ${presented} (${keyType})${also}, which matches none of the pinned keys. ` +
            'If the host key changed on purpose, update known_hosts/fingerprint',
    );
    this.name = 'HostKeyMismatchError';
  }
}

export class SshAuthError extends Error {
  constructor(
    readonly username: string,
    which: string,
    keyFingerprint: string,
  ) {
    super(
      `authentication failed on ${which} for user "${username}": the server refused the key ${keyFingerprint}. ` +
        `Check that its public key is in ~${username}/.ssh/authorized_keys on ${which} and that the key input is the matching private key`,
    );
    this.name = 'SshAuthError';
  }
}

/** Could not reach the host (after the retries, if the cause looked transient). */
export class SshConnectError extends Error {
  constructor(
    message: string,
    readonly transient: boolean,
    readonly code?: string,
  ) {
    super(message);
    this.name = 'SshConnectError';
  }
}

export class CommandTimeoutError extends Error {
  constructor(
    readonly command: string,
    readonly timeoutMs: number,
    readonly result: ExecResult,
  ) {
    super(`remote command timed out after ${formatMs(timeoutMs)} and was killed: ${command.slice(0, 200)}`);
    this.name = 'CommandTimeoutError';
  }
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/** A counting semaphore: at most `size` holders; the rest wait in FIFO order. */
export class Semaphore {
  private active = 0;
  private readonly waiters: Array<() => void> = [];
  constructor(readonly size: number) {
    if (!(size >= 1)) throw new Error('maxChannels must be at least 1');
  }
  get inUse(): number {
    return this.active;
  }
  async acquire(): Promise<() => void> {
    if (this.active < this.size) this.active++;
    else await new Promise<void>((resolve) => this.waiters.push(resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiters.shift();
      // Hand the slot straight to the next waiter, so the count never dips and lets a newcomer jump the queue.
      if (next) next();
      else this.active--;
    };
  }
}

/** Tail-keeping text buffer for one output stream. */
class OutputTail {
  private text = '';
  private dropped = 0;
  private readonly decoder = new StringDecoder('utf8');
  push(chunk: Buffer): string {
    const s = this.decoder.write(chunk);
    this.text += s;
    if (this.text.length > OUTPUT_CAP) {
      this.dropped += this.text.length - OUTPUT_CAP;
      this.text = this.text.slice(-OUTPUT_CAP);
    }
    return s;
  }
  value(): string {
    this.text += this.decoder.end();
    return this.dropped ? `[... ${this.dropped} characters of output dropped]\n${this.text}` : this.text;
  }
}

interface Endpoint {
  host: string;
  port: number;
  username: string;
  key: { text: string; type: string; publicFingerprint: string };
  passphrase?: string;
  pin: HostPinOption;
  /** How messages name it: never the host name itself, which may be a secret. */
  which: string;
}

/** How long the host's shell (ssh/shell-session.ts) gets to come up before execs stop waiting for it. */
const SHELL_START_MS = 15_000;

export class SshRemote implements Remote {
  private readonly sem: Semaphore;
  private closed = false;
  /** The host's long-lived shell, once it is up: short commands run there (one round trip each). */
  private shell: ShellSession | undefined;

  constructor(
    private readonly client: ssh2.Client,
    private readonly jumpClient: ssh2.Client | undefined,
    private readonly opts: { commandTimeoutMs: number; maxChannels: number; log: ProgressLog },
  ) {
    this.sem = new Semaphore(opts.maxChannels);
    const onGone = (): void => {
      this.closed = true;
    };
    client.on('close', onGone);
    jumpClient?.on('close', onGone);
    // Errors after ready (e.g. keepalive timeout) surface through failing channels; don't crash on them.
    client.on('error', (err) => opts.log.info(`ssh connection error: ${err.message}`));
    jumpClient?.on('error', (err) => opts.log.info(`ssh jump connection error: ${err.message}`));
  }

  /** The SSH connection is gone (closed by either side, or dropped by a keepalive timeout). */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Drop the connection without a goodbye (it is judged dead): its channels fail at once. */
  destroy(): void {
    this.closed = true;
    try {
      (this.client as unknown as { destroy?: () => void }).destroy?.();
    } catch {
      /* already gone */
    }
    try {
      (this.jumpClient as unknown as { destroy?: () => void } | undefined)?.destroy?.();
    } catch {
      /* already gone */
    }
  }

  /** The host's shell is up and takes short commands (for tests and diagnostics). */
  get shellUp(): boolean {
    return !!this.shell && !this.shell.isClosed;
  }

  /** Channels currently open through this connection (for tests and diagnostics). */
  get openChannels(): number {
    return this.sem.inUse;
  }

  /**
   * Start the host's shell (ssh/shell-session.ts) without waiting for it: execs use channels until it
   * is up, and for good when the host cannot run it.
   */
  startShell(): void {
    void ShellSession.start((script, cb) => this.client.exec(`sh -c ${shq(script)}`, cb), SHELL_START_MS).then((s) => {
      if (this.closed) s?.close();
      else this.shell = s;
    });
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const timeoutMs = options.timeoutMs ?? this.opts.commandTimeoutMs;
    const check = options.check ?? true;
    // Public stdin rides in the command: no wait for the exec's reply before sending it.
    const inline = options.stdinPublic && options.stdin !== undefined ? inlineStdin(command, options.stdin) : undefined;
    const viaShell = this.inShell(inline ?? command, options, inline !== undefined);
    if (viaShell) {
      const outcome = commandOutcome(command, fromShell(await viaShell(timeoutMs)), timeoutMs, check);
      if (outcome instanceof Error) throw outcome;
      return outcome;
    }
    const release = await this.sem.acquire();
    return await new Promise<ExecResult>((resolve, reject) => {
      // Listeners go on in the open callback itself: ssh2 may parse the output, exit status and
      // close from the same socket read, before any promise continuation would run.
      const onOpen = (channel: ClientChannel): void => {
        const stdout = new OutputTail();
        const stderr = new OutputTail();
        let code: number | null | undefined;
        let signal: string | undefined;
        let timedOut = false;
        let settled = false;

        const settle = (): void => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          release();
          const end = { code, signal, timedOut, stdout: stdout.value(), stderr: stderr.value() };
          const outcome = commandOutcome(command, end, timeoutMs, check);
          if (outcome instanceof Error) reject(outcome);
          else resolve(outcome);
        };
        const timer = setTimeout(() => {
          timedOut = true;
          killChannel(channel);
          // Do not wait for the server to confirm: a dead connection would never answer.
          settle();
        }, timeoutMs);

        collectOutput(channel, stdout, stderr, options.onOutput);
        const onExit = (c?: number | null, sig?: string): void => {
          if (c !== undefined && code === undefined) code = c;
          if (sig && !signal) signal = sig;
        };
        channel.on('exit', onExit);
        channel.on('close', (c?: number | null, sig?: string) => {
          onExit(c, sig);
          settle();
        });
        channel.on('error', () => {
          /* a close follows; the result carries what we know */
        });
        if (options.stdin !== undefined && !inline) channel.end(options.stdin);
        else channel.end();
      };
      this.openChannel(
        (cb) => this.client.exec(inline ?? command, cb),
        'run a command',
        onOpen,
        (err) => {
          release();
          reject(err);
        },
      );
    });
  }

  /** The host's shell, when it is up and this command suits it: no live output, no stdin it does not carry itself, short. */
  private inShell(line: string, options: ExecOptions, stdinInline: boolean): ((timeoutMs: number) => Promise<ChannelEnd>) | undefined {
    const shell = this.shell;
    if (!shell || shell.isClosed || options.onOutput || (options.stdin !== undefined && !stdinInline)) return undefined;
    if (line.length > MAX_SHELL_COMMAND) return undefined;
    return (timeoutMs) => shell.run(line, timeoutMs);
  }

  async writeFile(path: string, data: string | Buffer, mode = 0o644, options: { public?: boolean } = {}): Promise<void> {
    const dir = posix.dirname(path);
    const tmp = posix.join(dir, `.${posix.basename(path)}.handoff-${randomBytes(6).toString('hex')}.tmp`);
    await this.exec(writeFileCommand(path, tmp, mode), {
      stdin: typeof data === 'string' ? Buffer.from(data, 'utf8') : data,
      stdinPublic: options.public === true,
    });
  }

  readFile(path: string): Promise<string | undefined> {
    return readFileByExec(this, path);
  }

  openUnixSocket(path: string): Promise<Duplex> {
    return this.openStream((cb) => this.client.openssh_forwardOutStreamLocal(path, cb), `open the Unix socket ${path} on the host`);
  }

  openTcp(host: string, port: number): Promise<Duplex> {
    return this.openStream(
      (cb) => this.client.forwardOut('127.0.0.1', 0, host, port, cb),
      `open a TCP stream to ${host}:${port} from the host`,
    );
  }

  async close(): Promise<void> {
    this.shell?.close();
    if (!this.closed) await endClient(this.client);
    if (this.jumpClient) await endClient(this.jumpClient);
    this.closed = true;
  }

  private async openStream(open: (cb: (err: Error | undefined, ch: ClientChannel) => void) => void, what: string): Promise<Duplex> {
    const release = await this.sem.acquire();
    return await new Promise<Duplex>((resolve, reject) =>
      this.openChannel(
        open,
        what,
        (ch) => {
          ch.once('close', release);
          resolve(ch);
        },
        (err) => {
          release();
          reject(err);
        },
      ),
    );
  }

  /** Open a channel; onOpen runs synchronously in ssh2's callback (see exec). */
  private openChannel(
    open: (cb: (err: Error | undefined, ch: ClientChannel) => void) => void,
    what: string,
    onOpen: (ch: ClientChannel) => void,
    onError: (err: Error) => void,
  ): void {
    if (this.closed) return onError(new Error(`ssh: could not ${what}: the connection is closed`));
    try {
      open((err, ch) => (err ? onError(new Error(`ssh: could not ${what}: ${err.message}`)) : onOpen(ch)));
    } catch (err) {
      onError(new Error(`ssh: could not ${what}: ${(err as Error).message}`));
    }
  }
}

/** How a command's channel ended. */
export interface ChannelEnd {
  /** Undefined (or null) when the channel closed without an exit status. */
  code: number | null | undefined;
  signal: string | undefined;
  timedOut: boolean;
  stdout: string;
  stderr: string;
}

/** The result of a command whose channel ended, or the error exec rejects with. */
export function commandOutcome(command: string, end: ChannelEnd, timeoutMs: number, check: boolean): ExecResult | Error {
  const result: ExecResult = { code: end.code ?? -1, stdout: end.stdout, stderr: end.stderr };
  if (end.timedOut) return new CommandTimeoutError(command, timeoutMs, result);
  // Killed by a signal is a failure whatever `check` says: the command did not finish.
  if (end.signal) return new RemoteCommandError(command, result, end.signal);
  if (end.code === undefined || end.code === null) {
    const note = '\n(ssh: the channel closed without an exit status; the connection may have dropped)';
    return new RemoteCommandError(command, { ...result, stderr: result.stderr + note });
  }
  if (check && end.code !== 0) return new RemoteCommandError(command, result);
  return result;
}

/**
 * A command's end as the host's shell reported it, read as an exec channel would have: the output
 * tails kept the same way, and an exit status of 128+N where N is a signal read as killed by it
 * (the shell cannot tell `kill -9` from `exit 137`; nothing handoff runs exits above 128 itself).
 */
export function fromShell(end: ChannelEnd): ChannelEnd {
  const tail = (text: string) => {
    const t = new OutputTail();
    t.push(Buffer.from(text, 'utf8'));
    return t.value();
  };
  const out = { ...end, stdout: tail(end.stdout), stderr: tail(end.stderr) };
  if (typeof end.code === 'number' && end.code > 128) {
    const name = Object.entries(osConstants.signals).find(([, n]) => n === end.code! - 128)?.[0];
    if (name) return { ...out, code: undefined, signal: name };
  }
  return out;
}

/** Keep the channel's stdout and stderr tails, passing each decoded piece to onOutput. */
function collectOutput(channel: ClientChannel, stdout: OutputTail, stderr: OutputTail, onOutput: ExecOptions['onOutput']): void {
  channel.on('data', (chunk: Buffer) => {
    const s = stdout.push(chunk);
    if (s && onOutput) onOutput(s, 'stdout');
  });
  channel.stderr.on('data', (chunk: Buffer) => {
    const s = stderr.push(chunk);
    if (s && onOutput) onOutput(s, 'stderr');
  });
}

/** Ask the remote side to KILL the command, then close the channel. */
function killChannel(channel: ClientChannel): void {
  try {
    if (channel.writable) channel.signal('KILL');
    else {
      // ssh2's signal() refuses once stdin is ended, which it always is for our execs; the
      // protocol call underneath is the same request (RFC 4254 6.9).
      const c = channel as unknown as {
        outgoing?: { id: number; state: string };
        _client?: { _protocol?: { signal(id: number, s: string): void } };
      };
      if (c.outgoing?.state === 'open' || c.outgoing?.state === 'eof') c._client?._protocol?.signal(c.outgoing.id, 'KILL');
    }
  } catch {
    /* best effort */
  }
  try {
    channel.close();
  } catch {
    /* already closed */
  }
}

function endClient(client: ssh2.Client): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, 2000);
    client.once('close', () => {
      clearTimeout(t);
      resolve();
    });
    try {
      client.end();
    } catch {
      clearTimeout(t);
      resolve();
    }
  });
}

function prepareEndpoint(
  e: { host: string; port?: number; username: string; privateKey: string; passphrase?: string; pin: HostPinOption },
  which: string,
  keyLabel: string,
  log: ProgressLog,
): Endpoint {
  const port = e.port ?? DEFAULTS.port;
  if (!e.host) throw new Error(`no address given for ${which}`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`the port for ${which} must be 1-65535`);
  if (!e.username) throw new Error(`no username given for ${which}`);
  const key = parsePrivateKey(e.privateKey, e.passphrase, keyLabel);
  const parsed = ssh2.utils.parseKey(key.text, e.passphrase || undefined);
  const pub = (Array.isArray(parsed) ? parsed[0] : parsed) as ssh2.ParsedKey;
  if ('insecure' in e.pin && e.pin.insecure) {
    log.warning(`the host key of ${which} is NOT verified (insecure opt-out); anyone in the network path could impersonate it`);
  } else {
    validateHostPin(e.pin as HostPin, e.host, port);
  }
  return {
    host: e.host,
    port,
    username: e.username,
    key: { text: key.text, type: key.type, publicFingerprint: `${fingerprint(pub.getPublicSSH())} (${key.type})` },
    passphrase: e.passphrase || undefined,
    pin: e.pin,
    which,
  };
}

/** Connect one client (optionally over `sock`), mapping failures to clear errors. */
function connectClient(
  ep: Endpoint,
  timeouts: { connectTimeoutMs: number; keepaliveIntervalMs: number },
  sock?: Duplex,
  serverHostKey?: string[],
): Promise<ssh2.Client> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    let mismatch: HostKeyMismatchError | undefined;
    let done = false;
    const pin = 'insecure' in ep.pin ? undefined : (ep.pin as HostPin);
    const config: ConnectConfig = {
      host: ep.host,
      port: ep.port,
      username: ep.username,
      privateKey: ep.key.text,
      passphrase: ep.passphrase,
      readyTimeout: timeouts.connectTimeoutMs,
      keepaliveInterval: timeouts.keepaliveIntervalMs,
      keepaliveCountMax: 3,
      // Public key only: no agent, no password, no keyboard-interactive prompts.
      authHandler: ['publickey'],
      hostVerifier: (key: Buffer): boolean => {
        if (!pin) return true;
        const r = verifyHostKey(key, pin, ep.host, ep.port);
        if (!r.ok) mismatch = new HostKeyMismatchError(r.presented, r.keyType, !!r.revoked, ep.which);
        return r.ok;
      },
    };
    const algos = serverHostKey ?? (pin ? hostKeyAlgorithms(pin, ep.host, ep.port, HOST_KEY_ALGORITHMS) : undefined);
    if (algos) config.algorithms = { serverHostKey: algos as NonNullable<ConnectConfig['algorithms']>['serverHostKey'] };
    if (sock) config.sock = sock as ConnectConfig['sock'];

    const fail = (err: Error): void => {
      if (done) return;
      done = true;
      client.removeAllListeners('ready');
      try {
        client.end();
      } catch {
        /* not connected */
      }
      reject(err);
    };
    client.once('ready', () => {
      if (done) return;
      done = true;
      resolve(client);
    });
    client.on('error', (err: Error & { level?: string; code?: string }) => {
      if (mismatch) return fail(mismatch);
      fail(classify(err, ep));
    });
    client.on('close', () => fail(mismatch ?? new SshConnectError(`the connection to ${ep.which} closed during the handshake`, true)));
    try {
      client.connect(config);
    } catch (err) {
      fail(new SshConnectError(`could not start connecting to ${ep.which}: ${(err as Error).message}`, false));
    }
  });
}

/** Host key algorithms grouped by the key type they present. */
const KEY_FAMILIES: Array<{ type: string; algorithms: string[] }> = [
  { type: 'ssh-ed25519', algorithms: ['ssh-ed25519'] },
  { type: 'ecdsa-sha2-nistp256', algorithms: ['ecdsa-sha2-nistp256'] },
  { type: 'ecdsa-sha2-nistp384', algorithms: ['ecdsa-sha2-nistp384'] },
  { type: 'ecdsa-sha2-nistp521', algorithms: ['ecdsa-sha2-nistp521'] },
  { type: 'ssh-rsa', algorithms: ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] },
];

/**
 * Connect and verify. A fingerprint doesn't say which key type it pins, so when the server's
 * preferred key doesn't match, ask for each other type in turn (known_hosts pins are handled by
 * ordering the algorithms instead). Each try needs a fresh socket, hence openSock.
 */
async function connectPinned(
  ep: Endpoint,
  timeouts: { connectTimeoutMs: number; keepaliveIntervalMs: number },
  openSock: () => Promise<Duplex | undefined>,
): Promise<ssh2.Client> {
  try {
    return await connectClient(ep, timeouts, await openSock());
  } catch (err) {
    const byTypeOnly = !('insecure' in ep.pin) && pinnedKeyTypes(ep.pin as HostPin, ep.host, ep.port).length === 0;
    if (!(err instanceof HostKeyMismatchError) || err.revoked || !byTypeOnly) throw err;
    const also: string[] = [];
    for (const family of KEY_FAMILIES) {
      if (family.type === err.keyType) continue;
      try {
        return await connectClient(ep, timeouts, await openSock(), family.algorithms);
      } catch (e) {
        if (e instanceof HostKeyMismatchError) {
          if (e.revoked) throw e;
          also.push(`${e.presented} (${e.keyType})`);
        } else if (!(e instanceof SshConnectError) || e.transient) {
          throw e;
        }
        // Otherwise the server has no key of this type: try the next.
      }
    }
    throw new HostKeyMismatchError(err.presented, err.keyType, false, ep.which, also);
  }
}

function classify(err: Error & { level?: string; code?: string }, ep: Endpoint): Error {
  if (err.level === 'client-authentication') return new SshAuthError(ep.username, ep.which, ep.key.publicFingerprint);
  if (err.level === 'client-timeout') {
    return new SshConnectError(`timed out connecting to ${ep.which} (no SSH handshake within the connect timeout)`, true, 'ETIMEDOUT');
  }
  if (err.code && TRANSIENT_CODES.has(err.code)) {
    return new SshConnectError(`could not connect to ${ep.which} (${err.code})`, true, err.code);
  }
  if (err.code === 'ENOTFOUND') return new SshConnectError(`could not resolve the address of ${ep.which} (ENOTFOUND)`, false, err.code);
  // ssh2's protocol errors (e.g. no common algorithm) name algorithms, not hosts or secrets.
  const msg = redact(err.message, ep.host);
  const transient = /Connection lost before handshake|socket hang up|read ECONNRESET/i.test(msg);
  return new SshConnectError(`ssh connection to ${ep.which} failed: ${msg}`, transient, err.code);
}

/** Keep the host name (possibly a secret) out of messages. */
function redact(message: string, host: string): string {
  return host.length >= 3 ? message.split(host).join('<host>') : message;
}

function isTransient(err: unknown): boolean {
  return err instanceof SshConnectError && err.transient;
}

/** SshOptions' timeouts, limits and retries, defaults filled in. */
function connectSettings(options: SshOptions) {
  return {
    connectTimeoutMs: options.connectTimeoutMs ?? DEFAULTS.connectTimeoutMs,
    keepaliveIntervalMs: options.keepaliveIntervalMs ?? DEFAULTS.keepaliveIntervalMs,
    commandTimeoutMs: options.commandTimeoutMs ?? DEFAULTS.commandTimeoutMs,
    maxChannels: options.maxChannels ?? DEFAULTS.maxChannels,
    connectAttempts: Math.max(1, options.connectAttempts ?? DEFAULTS.connectAttempts),
    retryDelayMs: options.retryDelayMs ?? DEFAULTS.retryDelayMs,
  };
}

/** The jump host's endpoint, if any: its own key, else the main key (and that key's passphrase). */
function prepareJumpEndpoint(options: SshOptions, log: ProgressLog): Endpoint | undefined {
  if (!options.jump) return undefined;
  return prepareEndpoint(
    {
      ...options.jump,
      privateKey: options.jump.privateKey ?? options.privateKey,
      passphrase: options.jump.privateKey ? options.jump.passphrase : (options.jump.passphrase ?? options.passphrase),
    },
    'the jump host',
    "the jump host's SSH key",
    log,
  );
}

/** A stream to the host forwarded by the jump host's connection. */
function forwardThrough(jc: ssh2.Client, main: Endpoint): Promise<Duplex> {
  return new Promise<Duplex>((resolve, reject) =>
    jc.forwardOut('127.0.0.1', 0, main.host, main.port, (err, ch) =>
      err
        ? reject(new SshConnectError(`the jump host could not open a connection to the host: ${redact(err.message, main.host)}`, true))
        : resolve(ch),
    ),
  );
}

/**
 * Connect to the host (through the jump host if given), verifying host keys, with a bounded
 * retry on transient network errors only. Auth failures and host key mismatches fail at once.
 */
export async function connect(options: SshOptions): Promise<SshRemote> {
  const log = options.log ?? quietLog;
  const cfg = connectSettings(options);
  const main = prepareEndpoint(options, 'the host', 'the SSH key', log);
  const jump = prepareJumpEndpoint(options, log);

  for (let attempt = 1; ; attempt++) {
    let jumpClient: ssh2.Client | undefined;
    try {
      const jc = jump ? (jumpClient = await connectPinned(jump, cfg, async () => undefined)) : undefined;
      // Through the jump host, each handshake try needs its own forwarded stream.
      const openSock = async (): Promise<Duplex | undefined> => jc && forwardThrough(jc, main);
      const client = await connectPinned(main, cfg, openSock);
      log.info(`connected as ${main.username}${jump ? ' through the jump host' : ''}`);
      const remote = new SshRemote(client, jumpClient, { commandTimeoutMs: cfg.commandTimeoutMs, maxChannels: cfg.maxChannels, log });
      if (options.hostShell !== false) remote.startShell();
      return remote;
    } catch (err) {
      if (jumpClient) await endClient(jumpClient);
      if (!isTransient(err) || attempt >= cfg.connectAttempts) {
        if (isTransient(err) && cfg.connectAttempts > 1) {
          throw new SshConnectError(`${(err as Error).message}, after ${attempt} attempts`, true, (err as SshConnectError).code);
        }
        throw err;
      }
      const delay = cfg.retryDelayMs * 2 ** (attempt - 1);
      log.info(`ssh: ${(err as Error).message}; retrying in ${formatMs(delay)} (attempt ${attempt + 1} of ${cfg.connectAttempts})`);
      await sleep(delay);
    }
  }
}
