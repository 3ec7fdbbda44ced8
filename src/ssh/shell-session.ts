/**
 * One long-lived shell on the host that runs the commands sent to it, so that a command costs one
 * round trip instead of two or three (an SSH exec opens a channel, then asks for the command, and
 * only then gets its output).
 *
 * Framing, runner to host: `<id> <seconds>`, the command's lines, then a line with this session's
 * random end token (shellScript). The command runs in the background (several at once) in the login
 * shell, as sshd would run it, with stdin /dev/null and under `timeout -s KILL` (its whole process
 * group) when the host's `timeout` takes fractions of a second (GNU's does; BusyBox's does too, but
 * checks only once a second). Host to runner: `R <id> <exit code> <stdout bytes> <stderr bytes>`,
 * then the bytes. Only commands with no stdin of their own and no live output go this way (see
 * SshRemote.exec): stdin that holds a secret never touches the host's disk.
 */
import { randomBytes } from 'node:crypto';
import type { ClientChannel } from 'ssh2';
import type { ChannelEnd } from './connection.js';

/**
 * The host side, for `sh -c`. The reader takes commands (a line `<id> <seconds>`, the command's
 * lines, then the line `end`: a random token of this session) and starts each in the background; the
 * emitter (in the foreground) answers each as it finishes, in the order they finish. Both talk
 * through a FIFO of one-line notices (writes under PIPE_BUF do not interleave). At the end of input
 * the reader waits for its commands before telling the emitter to stop. (A background list's stdin
 * is /dev/null unless redirected: hence fd 4.) Every process spawned costs milliseconds on a busy
 * host, so the framing is read with builtins, and an answer is one `wc`, one `cat` into a file and
 * one `cat` out (a single write: split writes meet Nagle's algorithm on sshd's side). An answer's
 * files are removed in the background, so removing the temp dir at the end tries again when one of
 * those raced it (BusyBox's `rm -rf` leaves the dir when a file went between its read and its unlink).
 */
export function shellScript(end: string): string {
  if (!/^[A-Za-z0-9_]+$/.test(end)) throw new Error('the shell session token must be alphanumeric');
  return `set -u
d=$(mktemp -d "\${TMPDIR:-/tmp}/handoff-shell.XXXXXX") || exit 97
bye() { for _ in 1 2 3 4 5; do rm -rf "$d" 2>/dev/null; [ -e "$d" ] || return 0; done; }
trap bye EXIT
trap 'bye; exit 1' HUP PIPE TERM
mkfifo "$d/done" || exit 99
T=; timeout -s KILL 1.5 true 2>/dev/null && T=1
S="\${SHELL:-/bin/sh}"
E=${end}
exec 3<>"$d/done" 4<&0
(
  exec 3>&- 4<&-
  while read -r id secs; do
    : >"$d/$id.c"
    while IFS= read -r l && [ "$l" != "$E" ]; do printf '%s\\n' "$l" >>"$d/$id.c"; done
    (
      if [ -n "$T" ]; then timeout -s KILL "$secs" "$S" "$d/$id.c" </dev/null >"$d/$id.o" 2>"$d/$id.e"
      else "$S" "$d/$id.c" </dev/null >"$d/$id.o" 2>"$d/$id.e"; fi
      echo "$id $?" >"$d/done"
    ) &
  done
  wait
  echo "end 0" >"$d/done"
) <&4 &
exec 4<&-
cd "$d" || exit 97
printf 'handoff-shell ready\\n'
while read -r id rc <&3; do
  [ "$id" = end ] && break
  : >>"$id.o"; : >>"$id.e"
  set -- $(wc -c "$id.o" "$id.e") 0 - 0 -
  { printf 'R %s %s %s %s\\n' "$id" "$rc" "$1" "$3"; cat "$id.o" "$id.e"; } >"$id.r"
  cat "$id.r"
  rm -f "$id.c" "$id.o" "$id.e" "$id.r" 2>/dev/null &
done
`;
}

/** What the runner writes for one command (see shellScript). */
export function commandFrame(id: number, seconds: string, command: string, end: string): string {
  return `${id} ${seconds}\n${command}\n${end}\n`;
}

const READY = 'handoff-shell ready\n';

/** Commands longer than this go through an exec channel (the shell reads its input a byte at a time). */
export const MAX_SHELL_COMMAND = 48 * 1024;

interface Pending {
  resolve: (end: ChannelEnd) => void;
  timer: NodeJS.Timeout;
}

/** Splits the host's answers out of the byte stream. Pure, for tests. */
export class AnswerReader {
  private buf: Buffer = Buffer.alloc(0);
  private ready = false;

  /** Feed bytes; returns the answers completed by them (and whether the ready line came). */
  push(chunk: Buffer): { ready: boolean; answers: Array<{ id: number; code: number; stdout: string; stderr: string }> } {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    const answers: Array<{ id: number; code: number; stdout: string; stderr: string }> = [];
    let readyNow = false;
    if (!this.ready) {
      const nl = this.buf.indexOf(0x0a);
      if (nl < 0) return { ready: false, answers };
      const line = this.buf.subarray(0, nl + 1).toString('utf8');
      if (line !== READY) throw new Error(`unexpected first line from the host's shell: ${JSON.stringify(line.slice(0, 80))}`);
      this.buf = this.buf.subarray(nl + 1);
      this.ready = readyNow = true;
    }
    for (;;) {
      const nl = this.buf.indexOf(0x0a);
      if (nl < 0) break;
      const m = /^R (\d+) (\d+) (\d+) (\d+)$/.exec(this.buf.subarray(0, nl).toString('utf8'));
      if (!m)
        throw new Error(
          `unexpected answer header from the host's shell: ${JSON.stringify(this.buf.subarray(0, Math.min(nl, 80)).toString())}`,
        );
      const [outLen, errLen] = [Number(m[3]), Number(m[4])];
      const end = nl + 1 + outLen + errLen;
      if (this.buf.length < end) break;
      answers.push({
        id: Number(m[1]),
        code: Number(m[2]),
        stdout: this.buf.subarray(nl + 1, nl + 1 + outLen).toString('utf8'),
        stderr: this.buf.subarray(nl + 1 + outLen, end).toString('utf8'),
      });
      this.buf = this.buf.subarray(end);
    }
    return { ready: readyNow, answers };
  }
}

export class ShellSession {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private closed = false;

  private constructor(
    private readonly channel: ClientChannel,
    /** The line that ends a command (random per session: no command holds it). */
    private readonly end: string,
  ) {}

  /**
   * Start the shell on an exec channel (`open` runs the script it is given with `sh -c`); undefined when the host cannot run
   * it (no mkfifo or writable temp dir) or it did not come up within `timeoutMs`: execs then
   * go through channels as before.
   */
  static start(
    open: (script: string, cb: (err: Error | undefined, ch: ClientChannel) => void) => void,
    timeoutMs: number,
  ): Promise<ShellSession | undefined> {
    const end = `handoff_end_${randomBytes(16).toString('hex')}`;
    return new Promise((resolve) => {
      let settled = false;
      const done = (s: ShellSession | undefined) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(s);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      try {
        open(shellScript(end), (err, ch) => {
          if (err) return done(undefined);
          const session = new ShellSession(ch, end);
          const reader = new AnswerReader();
          ch.on('data', (chunk: Buffer) => {
            let got;
            try {
              got = reader.push(chunk);
            } catch {
              // Not our shell's output (a banner, or garbage mid-stream): it is not used, now or again.
              session.shutDown();
              try {
                ch.close();
              } catch {
                /* already closed */
              }
              return done(undefined);
            }
            if (got.ready) done(session);
            for (const a of got.answers)
              session.answer(a.id, { code: a.code, signal: undefined, timedOut: false, stdout: a.stdout, stderr: a.stderr });
          });
          ch.stderr.on('data', () => {});
          ch.on('close', () => {
            session.shutDown();
            done(undefined);
          });
          ch.on('error', () => {});
        });
      } catch {
        done(undefined);
      }
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Run a command; resolves with how it ended (timedOut, or no exit status when the shell went away). */
  run(command: string, timeoutMs: number): Promise<ChannelEnd> {
    return new Promise((resolve) => {
      if (this.closed) return resolve(lost());
      const id = this.nextId++;
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ code: undefined, signal: undefined, timedOut: true, stdout: '', stderr: '' });
      }, timeoutMs);
      this.pending.set(id, { resolve, timer });
      // The host kills it at the same limit (the runner's own timer, started first, answers first).
      const seconds = (timeoutMs / 1000).toFixed(3);
      this.channel.write(commandFrame(id, seconds, command, this.end));
    });
  }

  /** End the shell: it finishes the commands it runs, then exits. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    try {
      this.channel.end();
    } catch {
      /* already gone */
    }
  }

  private answer(id: number, end: ChannelEnd): void {
    const p = this.pending.get(id);
    if (!p) return; // timed out already
    this.pending.delete(id);
    clearTimeout(p.timer);
    p.resolve(end);
  }

  /** The channel is gone: every command still waiting ends without an exit status. */
  private shutDown(): void {
    this.closed = true;
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.resolve(lost());
    }
  }
}

function lost(): ChannelEnd {
  return { code: undefined, signal: undefined, timedOut: false, stdout: '', stderr: '' };
}
