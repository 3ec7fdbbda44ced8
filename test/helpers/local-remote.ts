/** A Remote over the local shell, for tests of the edge code against the bench's Docker. */
import { spawn } from 'node:child_process';
import { rename, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { readFileByExec, RemoteCommandError, type ExecOptions, type ExecResult, type Remote } from '../../src/host/remote.js';

export class LocalRemote implements Remote {
  readonly commands: string[] = [];

  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    this.commands.push(command);
    return new Promise((resolve, reject) => {
      const child = spawn('sh', ['-c', command], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      let killed: string | undefined;
      const timer = options.timeoutMs
        ? setTimeout(() => {
            killed = 'SIGKILL';
            child.kill('SIGKILL');
          }, options.timeoutMs)
        : undefined;
      child.stdout.on('data', (d: Buffer) => {
        stdout += d;
        options.onOutput?.(d.toString(), 'stdout');
      });
      child.stderr.on('data', (d: Buffer) => {
        stderr += d;
        options.onOutput?.(d.toString(), 'stderr');
      });
      child.stdin.end(options.stdin ?? '');
      child.on('error', reject);
      child.on('close', (code) => {
        if (timer) clearTimeout(timer);
        const result = { code: code ?? -1, stdout, stderr };
        if (killed || (options.check !== false && result.code !== 0)) reject(new RemoteCommandError(command, result, killed));
        else resolve(result);
      });
    });
  }

  async writeFile(path: string, data: string | Buffer, mode = 0o644): Promise<void> {
    const tmp = `${path}.tmp-${process.pid}`;
    await writeFile(tmp, data, { mode });
    await rename(tmp, path);
  }

  readFile(path: string): Promise<string | undefined> {
    return readFileByExec(this, path);
  }

  async openUnixSocket(path: string): Promise<Duplex> {
    return connect(path);
  }

  async openTcp(host: string, port: number): Promise<Duplex> {
    return connect(port, host);
  }

  async close(): Promise<void> {}
}
