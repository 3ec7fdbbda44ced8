/**
 * A client for HAProxy's Runtime API (the stats socket at `level admin`).
 * Non-interactive mode: one connection per command; we write `cmd\n`, HAProxy answers and closes.
 * Interactive mode (the gate's): one connection kept open in `prompt` mode, so a command costs one
 * round trip instead of two (opening a stream over SSH is a round trip of its own).
 * The stream comes from an opener, so the same client works over SSH (Remote.openUnixSocket /
 * openTcp) and against a local socket in tests (net.connect).
 */
import type { Duplex } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { parseServersState, parseShowStat, type ServerState, type StatRow } from './stats.js';

export type StreamOpener = () => Promise<Duplex>;

export type ServerAdminState = 'ready' | 'drain' | 'maint';

/** One slot's new admin state. */
export interface StateChange {
  backend: string;
  server: string;
  state: ServerAdminState;
}

export interface RuntimeApiOptions {
  /** Per command, from opening the stream to HAProxy closing it. Default 10 s. */
  timeoutMs?: number;
  /**
   * Tries per command when the stream fails (no answer in time, cut, could not open): every command
   * handoff sends (show, set state) is safe to repeat, and a stalled or reconnecting SSH link is
   * worth a second try. HAProxy refusing a command is never retried. Default 2.
   */
  attempts?: number;
  /**
   * Keep one connection open in HAProxy's interactive (`prompt`) mode and send every command on it.
   * It is closed after `idleMs` without a command; HAProxy's own `stats timeout` (10 s by default)
   * may close it first, and then the next command opens a new one. (2.6 does not always close an
   * idle interactive connection at its timeout: seen on the bench, hence our own idle limit.)
   * Default false.
   */
  interactive?: boolean;
  /** Interactive mode: close the idle connection after this long. Default 3 s. */
  idleMs?: number;
}

/** HAProxy refused a command (its answer is kept: it says why). */
export class RuntimeApiError extends Error {
  constructor(
    readonly command: string,
    readonly answer: string,
  ) {
    super(`HAProxy Runtime API: "${command}" failed: ${answer.trim().slice(0, 300) || '(empty answer)'}`);
    this.name = 'RuntimeApiError';
  }
}

// Names that reach a Runtime API command line: HAProxy splits on spaces and treats `;` as a
// command separator, so anything outside this set is refused instead of escaped.
const NAME = /^[A-Za-z0-9_.:-]+$/;

export class RuntimeApi {
  private readonly timeoutMs: number;
  private readonly attempts: number;
  private readonly interactive: boolean;
  private readonly idleMs: number;
  /** Interactive mode: the open connection, if any. */
  private session: PromptSession | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  /** Interactive mode: one exchange at a time on the one connection. */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly open: StreamOpener,
    options: RuntimeApiOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.attempts = Math.max(1, options.attempts ?? 2);
    this.interactive = options.interactive ?? false;
    this.idleMs = options.idleMs ?? 3_000;
  }

  /** Send one command, return HAProxy's whole answer. */
  async command(cmd: string): Promise<string> {
    if (/[\r\n]/.test(cmd)) throw new Error('a Runtime API command must be a single line');
    return (await this.send([cmd]))[0]!;
  }

  /**
   * Several commands in one round trip, their answers in order (an empty answer for a silent
   * success). Non-interactive: one line `a; b; c`, whose answers each end with an empty line.
   * Interactive: a line each, written at once. A missing answer means the stream was cut: the
   * commands are sent again (every command here is repeatable).
   */
  async pipeline(cmds: string[]): Promise<string[]> {
    if (cmds.length === 0) return [];
    for (const c of cmds) {
      if (/[\r\n]/.test(c)) throw new Error('a Runtime API command must be a single line');
      if (cmds.length > 1 && c.includes(';')) throw new Error(`a pipelined Runtime API command cannot contain ';': ${c}`);
    }
    return this.send(cmds);
  }

  /** Close the interactive connection (the next command opens a new one), e.g. after a reload: the old worker would keep answering on it. */
  close(): void {
    clearTimeout(this.idleTimer);
    this.session?.destroy();
    this.session = undefined;
  }

  private async send(cmds: string[]): Promise<string[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return this.interactive ? await this.queued(cmds) : await this.once(cmds);
      } catch (e) {
        if (attempt >= this.attempts) throw e;
      }
    }
  }

  /** Non-interactive: a connection for this line, closed by HAProxy after its answers. */
  private async once(cmds: string[]): Promise<string[]> {
    const line = cmds.join('; ');
    const text = await this.withTimeout(line, async (track) => exchange(await this.openTracked(track), line));
    if (cmds.length === 1) return [text];
    const answers = splitAnswers(text);
    if (answers.length < cmds.length)
      throw new Error(`HAProxy Runtime API: "${line}": ${answers.length} answers to ${cmds.length} commands`);
    return answers.slice(0, cmds.length);
  }

  private queued(cmds: string[]): Promise<string[]> {
    const run = this.queue.then(() => this.onSession(cmds));
    this.queue = run.catch(() => {});
    return run;
  }

  /** Interactive: on the open connection, or on a new one (also when HAProxy closed the idle one as we wrote). */
  private async onSession(cmds: string[]): Promise<string[]> {
    clearTimeout(this.idleTimer);
    const what = cmds.join('; ');
    try {
      const open = this.session;
      if (open && !open.closed) {
        try {
          return await open.exchange(cmds, this.timeoutMs, what);
        } catch (e) {
          this.close();
          if (!(e instanceof StreamCutError)) throw e;
        }
      }
      return await this.withTimeout(what, async (track) => {
        const session = new PromptSession(await this.openTracked(track));
        this.session = session;
        // `prompt` answers with a prompt of its own: one more answer, dropped.
        return (await session.exchange(['prompt', ...cmds], this.timeoutMs, what)).slice(1);
      });
    } catch (e) {
      this.close();
      throw e;
    } finally {
      this.idleTimer = setTimeout(() => this.close(), this.idleMs);
      this.idleTimer.unref();
    }
  }

  /** Open a stream; `track` learns it at once, so a timeout can close one that opens late. */
  private async openTracked(track: (s: Duplex) => void): Promise<Duplex> {
    const s = await this.open();
    track(s);
    return s;
  }

  /** `work` within the command timeout; at the timeout the stream it opened (even late) is destroyed. */
  private async withTimeout<T>(what: string, work: (track: (s: Duplex) => void) => Promise<T>): Promise<T> {
    let stream: Duplex | undefined;
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        stream?.destroy();
        reject(noAnswer(what, this.timeoutMs));
      }, this.timeoutMs);
    });
    const working = work((s) => {
      stream = s;
      // Opened after we gave up: close it, nobody will read it.
      if (timedOut) s.destroy();
    });
    working.catch(() => {}); // a late failure, after the timeout, is not unhandled
    try {
      return await Promise.race([working, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** `set server … state` for each slot, in one round trip. */
  async setStates(changes: StateChange[]): Promise<void> {
    const sets = changes.map((c) => setStateCommand(c.backend, c.server, c.state));
    const answers = await this.pipeline(sets);
    sets.forEach((cmd, i) => {
      if (answers[i]!.trim() !== '') throw new RuntimeApiError(cmd, answers[i]!);
    });
  }

  /** `set server … state` for each slot, then `show servers state`, in one round trip; the state after the changes. */
  async setStatesThenShow(changes: StateChange[]): Promise<ServerState[]> {
    return parseServersStateAnswer(await this.setStatesThen(changes, 'show servers state'));
  }

  /** `set server … state` for each slot, then `show stat`, in one round trip. */
  async setStatesThenStat(changes: StateChange[]): Promise<StatRow[]> {
    return parseShowStat(await this.setStatesThen(changes, 'show stat'));
  }

  /** The changes, then one read in the same line: the read's answer, once every change was accepted. */
  private async setStatesThen(changes: StateChange[], read: string): Promise<string> {
    const sets = changes.map((c) => setStateCommand(c.backend, c.server, c.state));
    const answers = await this.pipeline([...sets, read]);
    sets.forEach((cmd, i) => {
      if (answers[i]!.trim() !== '') throw new RuntimeApiError(cmd, answers[i]!);
    });
    return answers.at(-1)!;
  }

  async showStat(): Promise<StatRow[]> {
    return parseShowStat(await this.command('show stat'));
  }

  async showServersState(backend?: string): Promise<ServerState[]> {
    if (backend !== undefined) checkName(backend, 'backend');
    return parseServersStateAnswer(await this.command(backend === undefined ? 'show servers state' : `show servers state ${backend}`));
  }

  /** `set server BE/SRV state ready|drain|maint`: answers nothing on success. */
  async setServerState(backend: string, server: string, state: ServerAdminState): Promise<void> {
    const cmd = setStateCommand(backend, server, state);
    const answer = await this.command(cmd);
    if (answer.trim() !== '') throw new RuntimeApiError(cmd, answer);
  }
}

function setStateCommand(backend: string, server: string, state: ServerAdminState): string {
  checkName(backend, 'backend');
  checkName(server, 'server');
  return `set server ${backend}/${server} state ${state}`;
}

function parseServersStateAnswer(answer: string): ServerState[] {
  // An unknown backend answers with a message instead of the version line.
  if (!/^\s*1\s*$/m.test(answer.split('\n')[0] ?? '')) throw new RuntimeApiError('show servers state', answer);
  return parseServersState(answer);
}

/** The answers of a pipelined line: each ends with an empty line (an empty answer is that line alone). */
export function splitAnswers(text: string): string[] {
  const answers: string[] = [];
  let current: string[] = [];
  const lines = text.split('\n');
  // The text's own final newline leaves one '' at the end: not a line.
  if (lines.at(-1) === '') lines.pop();
  for (const line of lines) {
    if (line === '') {
      answers.push(current.length ? current.join('\n') + '\n' : '');
      current = [];
    } else current.push(line);
  }
  if (current.length) answers.push(current.join('\n') + '\n');
  return answers;
}

function checkName(name: string, what: string): void {
  if (!NAME.test(name)) throw new Error(`invalid HAProxy ${what} name ${JSON.stringify(name)}`);
}

function noAnswer(what: string, timeoutMs: number): Error {
  return new Error(`HAProxy Runtime API: no answer to "${what}" within ${timeoutMs} ms`);
}

/** The stream ended before every answer came (a cut SSH channel, or HAProxy closing an idle connection). */
class StreamCutError extends Error {}

/** What ends each answer in interactive mode: the empty line, then the prompt. */
const PROMPT = '\n> ';

/**
 * One connection in HAProxy's interactive mode (`prompt`): every command line is answered, then
 * HAProxy prints the prompt and waits for the next. 2.6 and 3.x alike print one prompt per line
 * written (for `a; b` on one line, 3.x prints a single prompt), so commands go a line each.
 */
class PromptSession {
  private text = '';
  private readonly decoder = new StringDecoder('utf8');
  closed = false;
  private waiting: { count: number; resolve: (answers: string[]) => void; reject: (e: Error) => void } | undefined;

  constructor(private readonly stream: Duplex) {
    stream.on('data', (c: Buffer | string) => {
      this.text += typeof c === 'string' ? c : this.decoder.write(c);
      this.settle();
    });
    const gone = (err?: Error): void => {
      if (this.closed) return;
      this.closed = true;
      const w = this.waiting;
      this.waiting = undefined;
      w?.reject(new StreamCutError(`HAProxy Runtime API: the stream closed before the answer${err ? `: ${err.message}` : ''}`));
    };
    stream.on('end', () => gone());
    stream.on('close', () => gone());
    stream.on('error', (e: Error) => gone(e));
  }

  /** Write the lines at once; resolve with one answer per line. */
  exchange(lines: string[], timeoutMs: number, what: string): Promise<string[]> {
    if (this.closed) return Promise.reject(new StreamCutError('HAProxy Runtime API: the stream is closed'));
    return new Promise<string[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        this.destroy();
        reject(noAnswer(what, timeoutMs));
      }, timeoutMs);
      this.waiting = {
        count: lines.length,
        resolve: (answers) => {
          clearTimeout(timer);
          resolve(answers);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.stream.write(lines.map((l) => `${l}\n`).join(''));
    });
  }

  destroy(): void {
    this.closed = true;
    this.stream.destroy();
  }

  private settle(): void {
    const w = this.waiting;
    if (!w) return;
    const parts = this.text.split(PROMPT);
    if (parts.length - 1 < w.count) return;
    this.waiting = undefined;
    this.text = parts.slice(w.count).join(PROMPT);
    w.resolve(parts.slice(0, w.count));
  }
}

/** Write the command, collect everything until HAProxy closes its side. */
function exchange(stream: Duplex, cmd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      stream.destroy();
      if (err) reject(err);
      // HAProxy ends every answer with a newline, even an empty one: no byte at all means the
      // stream was cut (a dropped SSH link), not that the command succeeded.
      else if (chunks.length === 0) reject(new Error(`HAProxy Runtime API: "${cmd}": the stream closed without an answer`));
      else resolve(Buffer.concat(chunks).toString('utf8'));
    };
    stream.on('data', (c: Buffer | string) => chunks.push(typeof c === 'string' ? Buffer.from(c) : c));
    stream.on('end', () => finish());
    stream.on('close', () => finish());
    stream.on('error', (e) => finish(new Error(`HAProxy Runtime API: "${cmd}": ${e.message}`)));
    // Non-interactive mode: HAProxy runs the line and closes the connection after its answer.
    stream.write(`${cmd}\n`);
  });
}
