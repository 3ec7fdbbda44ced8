import type { Duplex } from 'node:stream';
import { NO_FILE, readFileCommand } from '../commands/files.js';
import { QUICK_COMMAND_MS } from '../support/timeouts.js';

/** What a command run on the host returned. */
export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Wall-clock limit in ms; the command is killed and the call rejects after it. */
  timeoutMs?: number;
  /** Bytes written to the command's stdin, then stdin is closed. */
  stdin?: string | Buffer;
  /**
   * `stdin` holds no secret: over SSH it may travel inside the command line (shown in the host's
   * process list while it runs), which saves a round trip (commands/stdin.ts).
   */
  stdinPublic?: boolean;
  /** Called with each chunk of output as it arrives (for streaming into the job log). */
  onOutput?: (chunk: string, stream: 'stdout' | 'stderr') => void;
  /** When false, a non-zero exit resolves instead of rejecting. Default true. */
  check?: boolean;
  /**
   * Whether running the command again gives the same end state, so it may be re-run when the
   * connection drops mid-command (see ssh/reconnect.ts). Default true: write commands that way.
   */
  repeatable?: boolean;
}

/**
 * The host, as the rest of the action sees it: a thin edge over SSH.
 * Commands are strings for `sh -c`; every value in them goes through shq().
 */
export interface Remote {
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
  /**
   * Write a file atomically (temp file in the same directory, then rename), with this mode.
   * `options.public`: the data holds no secret (see ExecOptions.stdinPublic).
   */
  writeFile(path: string, data: string | Buffer, mode?: number, options?: { public?: boolean }): Promise<void>;
  /**
   * A file's text, or undefined when there is no readable regular file at the path (missing, a
   * directory, unreadable). Any other failure (the command could not run) rejects.
   */
  readFile(path: string): Promise<string | undefined>;
  /** A stream to a Unix socket on the host (OpenSSH's streamlocal forwarding). */
  openUnixSocket(path: string): Promise<Duplex>;
  /** A stream to a TCP port as seen from the host (e.g. 127.0.0.1:8080). */
  openTcp(host: string, port: number): Promise<Duplex>;
  close(): Promise<void>;
}

/** A remote command that failed: names the command, its exit code and the end of its stderr. */
export class RemoteCommandError extends Error {
  constructor(
    readonly command: string,
    readonly result: ExecResult,
    readonly signal?: string,
  ) {
    const tail = result.stderr.trim().split('\n').slice(-5).join('\n');
    super(
      `remote command failed (${signal ? `killed by ${signal}` : `exit ${result.code}`}): ${command.slice(0, 200)}` +
        (tail ? `\n${tail}` : ''),
    );
    this.name = 'RemoteCommandError';
  }
}

/**
 * Remote.readFile over exec (readFileCommand): the one implementation, shared by SshRemote and the
 * test remotes that run real shell commands.
 */
export async function readFileByExec(
  remote: Pick<Remote, 'exec'>,
  path: string,
  timeoutMs = QUICK_COMMAND_MS,
): Promise<string | undefined> {
  const command = readFileCommand(path);
  const r = await remote.exec(command, { check: false, timeoutMs });
  if (r.code === 0) return r.stdout;
  if (r.code === NO_FILE) return undefined;
  throw new RemoteCommandError(command, r);
}

/**
 * A Remote whose every command runs after a shell prefix (e.g. `DOCKER_HOST=…; export DOCKER_HOST\n`);
 * files and streams go to the inner Remote unchanged.
 */
export class PrefixedRemote implements Remote {
  constructor(
    private readonly inner: Remote,
    private readonly prefix: string,
  ) {}
  exec(command: string, options?: ExecOptions): Promise<ExecResult> {
    return this.inner.exec(`${this.prefix}${command}`, options);
  }
  readFile(path: string): Promise<string | undefined> {
    return this.inner.readFile(path);
  }
  writeFile(path: string, data: string | Buffer, mode?: number, options?: { public?: boolean }): Promise<void> {
    return this.inner.writeFile(path, data, mode, options);
  }
  openUnixSocket(path: string): Promise<Duplex> {
    return this.inner.openUnixSocket(path);
  }
  openTcp(host: string, port: number): Promise<Duplex> {
    return this.inner.openTcp(host, port);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
