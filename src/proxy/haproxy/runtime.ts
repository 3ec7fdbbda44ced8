/**
 * A client for HAProxy's Runtime API (the stats socket at `level admin`).
 * Non-interactive mode: one connection per command; we write `cmd\n`, HAProxy answers and closes.
 * The stream comes from an opener, so the same client works over SSH (Remote.openUnixSocket /
 * openTcp) and against a local socket in tests (net.connect).
 */
import type { Duplex } from 'node:stream';
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

  constructor(
    private readonly open: StreamOpener,
    options: RuntimeApiOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.attempts = Math.max(1, options.attempts ?? 2);
  }

  /** Send one command, return HAProxy's whole answer. */
  async command(cmd: string): Promise<string> {
    if (/[\r\n]/.test(cmd)) throw new Error('a Runtime API command must be a single line');
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.once(cmd);
      } catch (e) {
        if (attempt >= this.attempts) throw e;
      }
    }
  }

  private async once(cmd: string): Promise<string> {
    let stream: Duplex | undefined;
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        timedOut = true;
        stream?.destroy();
        reject(new Error(`HAProxy Runtime API: no answer to "${cmd}" within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
    });
    try {
      const opening = this.open().then((s) => {
        stream = s;
        // Opened after we gave up: close it, nobody will read it.
        if (timedOut) s.destroy();
        return s;
      });
      opening.catch(() => {}); // a late failure to open, after the timeout, is not unhandled
      const opened = await Promise.race([opening, timeout]);
      return await Promise.race([exchange(opened, cmd), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Several commands in one connection (one round trip over SSH): HAProxy runs `a; b; c` in order
   * and ends each answer with an empty line. Returns the answers in order; a missing one means the
   * stream was cut (rejected, and the whole line is sent again: every command here is repeatable).
   */
  async pipeline(cmds: string[]): Promise<string[]> {
    if (cmds.length === 0) return [];
    if (cmds.length === 1) return [await this.command(cmds[0]!)];
    for (const c of cmds) if (c.includes(';')) throw new Error(`a pipelined Runtime API command cannot contain ';': ${c}`);
    const line = cmds.join('; ');
    const answers = splitAnswers(await this.command(line));
    if (answers.length < cmds.length)
      throw new Error(`HAProxy Runtime API: "${line}": ${answers.length} answers to ${cmds.length} commands`);
    return answers.slice(0, cmds.length);
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
