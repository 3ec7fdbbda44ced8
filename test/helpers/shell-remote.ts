/**
 * A `Remote` over a local `sh -c`, so the host-side edges (release store, lock, audit) run their real
 * shell commands against a temp dir. HOME is pointed at the temp dir so relative remote dirs land there.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rename, rm, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, basename } from 'node:path';
import type { Duplex } from 'node:stream';
import { readFileByExec, RemoteCommandError, type ExecOptions, type ExecResult, type Remote } from '../../src/host/remote.js';

export class ShellRemote implements Remote {
  /** Every command run, in order (tests assert on round trips). */
  readonly commands: string[] = [];

  constructor(readonly home: string) {}

  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    this.commands.push(command);
    return new Promise((resolve, reject) => {
      const child = spawn('sh', ['-c', command], {
        env: { ...process.env, HOME: this.home },
        cwd: this.home,
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      let timer: NodeJS.Timeout | undefined;
      let killed: string | undefined;
      if (options.timeoutMs) {
        timer = setTimeout(() => {
          killed = 'SIGKILL';
          child.kill('SIGKILL');
        }, options.timeoutMs);
      }
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString();
        options.onOutput?.(c.toString(), 'stdout');
      });
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString();
        options.onOutput?.(c.toString(), 'stderr');
      });
      child.stdin.on('error', () => {}); // the command may exit without reading stdin
      child.stdin.end(options.stdin ?? '');
      child.on('error', reject);
      child.on('close', (code) => {
        if (timer) clearTimeout(timer);
        const result = { code: code ?? -1, stdout, stderr };
        if (killed) return reject(new RemoteCommandError(command, result, killed));
        if (options.check !== false && result.code !== 0) return reject(new RemoteCommandError(command, result));
        resolve(result);
      });
    });
  }

  async writeFile(path: string, data: string | Buffer, mode = 0o600): Promise<void> {
    const abs = path.startsWith('/') ? path : join(this.home, path);
    const tmp = join(dirname(abs), `.${basename(abs)}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
    await writeFile(tmp, data, { mode });
    await chmod(tmp, mode);
    await rename(tmp, abs);
  }

  readFile(path: string): Promise<string | undefined> {
    return readFileByExec(this, path);
  }

  openUnixSocket(): Promise<Duplex> {
    return Promise.reject(new Error('ShellRemote: no sockets'));
  }

  openTcp(): Promise<Duplex> {
    return Promise.reject(new Error('ShellRemote: no TCP'));
  }

  async close(): Promise<void> {}
}

/** A fresh temp dir as the "host" home, with a cleanup. */
export async function tempRemote(): Promise<{ remote: ShellRemote; home: string; cleanup: () => Promise<void> }> {
  const home = await mkdtemp(join(tmpdir(), 'handoff-remote-'));
  return { remote: new ShellRemote(home), home, cleanup: () => rm(home, { recursive: true, force: true }) };
}
