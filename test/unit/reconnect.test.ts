import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileByExec, RemoteCommandError, type ExecOptions, type ExecResult } from '../../src/host/remote.js';
import { ConnectionLostError, ReconnectFailedError, ReconnectingRemote } from '../../src/ssh/reconnect.js';
import { SshAuthError, SshConnectError, type SshRemote } from '../../src/ssh/connection.js';

/** A stand-in for one SSH connection: runs commands through `behave`, can be cut. */
class FakeConnection {
  isClosed = false;
  ran: string[] = [];
  closedByUs = false;
  constructor(
    readonly n: number,
    private readonly behave: (conn: FakeConnection, command: string) => Promise<ExecResult>,
  ) {}
  async exec(command: string, _options?: ExecOptions): Promise<ExecResult> {
    if (this.isClosed) throw new Error('ssh: could not run a command: the connection is closed');
    this.ran.push(command);
    return this.behave(this, command);
  }
  /** What SshRemote does when the link dies under a command: the channel closes without a status. */
  cut(command: string): never {
    this.isClosed = true;
    throw new RemoteCommandError(command, {
      code: -1,
      stdout: '',
      stderr: '\n(ssh: the channel closed without an exit status; the connection may have dropped)',
    });
  }
  destroy(): void {
    this.isClosed = true;
  }
  async close(): Promise<void> {
    this.closedByUs = true;
    this.isClosed = true;
  }
  async writeFile(): Promise<void> {}
  readFile(path: string): Promise<string | undefined> {
    return readFileByExec(this, path);
  }
  async openUnixSocket(): Promise<never> {
    throw new Error('not used');
  }
  async openTcp(): Promise<never> {
    throw new Error('not used');
  }
}

const ok = (stdout = ''): ExecResult => ({ code: 0, stdout, stderr: '' });
const noSleep = async () => {};

function factory(behave: (conn: FakeConnection, command: string) => Promise<ExecResult>, failFirst: Array<Error> = []) {
  const conns: FakeConnection[] = [];
  let calls = 0;
  const connect = async (): Promise<SshRemote> => {
    calls++;
    const err = failFirst.shift();
    if (err) throw err;
    const c = new FakeConnection(conns.length + 1, behave);
    conns.push(c);
    return c as unknown as SshRemote;
  };
  return { conns, connect, calls: () => calls };
}

test('a command cut by a dropped connection is run again on a new connection', async () => {
  const f = factory(async (conn, command) => (conn.n === 1 && command === 'step' ? conn.cut(command) : ok(`done on ${conn.n}`)));
  const reconnects: number[] = [];
  const remote = await ReconnectingRemote.open({ connect: f.connect, sleep: noSleep, onReconnect: ({ count }) => reconnects.push(count) });
  const r = await remote.exec('step');
  assert.equal(r.stdout, 'done on 2');
  assert.deepEqual(
    f.conns.map((c) => c.ran),
    [['step'], ['step']],
  );
  assert.equal(remote.reconnects, 1);
  assert.deepEqual(reconnects, [1]);
  // Later commands use the new connection without reconnecting again.
  assert.equal((await remote.exec('next')).stdout, 'done on 2');
  assert.equal(f.calls(), 2);
});

test('a command marked not repeatable is not run again: its outcome is unknown', async () => {
  const f = factory(async (conn, command) => (conn.n === 1 ? conn.cut(command) : ok()));
  const remote = await ReconnectingRemote.open({ connect: f.connect, sleep: noSleep });
  await assert.rejects(remote.exec('append once', { repeatable: false }), ConnectionLostError);
  assert.deepEqual(
    f.conns.map((c) => c.ran),
    [['append once']],
  );
  // The next command reconnects as usual.
  await remote.exec('read');
  assert.deepEqual(f.conns[1]!.ran, ['read']);
});

test('a command that fails on the host is not repeated', async () => {
  const f = factory(async (_conn, command) => {
    throw new RemoteCommandError(command, { code: 1, stdout: '', stderr: 'no such file' });
  });
  const remote = await ReconnectingRemote.open({ connect: f.connect, sleep: noSleep });
  await assert.rejects(remote.exec('cat x'), /exit 1/);
  assert.equal(f.calls(), 1);
  assert.deepEqual(f.conns[0]!.ran, ['cat x']);
});

test('a file read cut by a dropped connection is read again on a new connection; a missing file is undefined', async () => {
  const f = factory(async (conn, command) => {
    if (conn.n === 1) return conn.cut(command);
    return command.includes('/h/missing') ? { code: 3, stdout: '', stderr: '' } : ok('text\n');
  });
  const remote = await ReconnectingRemote.open({ connect: f.connect, sleep: noSleep });
  assert.equal(await remote.readFile('/h/current'), 'text\n');
  assert.equal(await remote.readFile('/h/missing'), undefined);
  assert.equal(f.calls(), 2);
  assert.equal(f.conns[0]!.ran.length, 1);
});

test('commands cut together share one reconnect', async () => {
  let cutDone = false;
  const f = factory(async (conn, command) => {
    if (conn.n === 1) {
      await new Promise((r) => setTimeout(r, 5));
      if (!cutDone) {
        cutDone = true;
        return conn.cut(command);
      }
      throw new Error('ssh: could not run a command: the connection is closed');
    }
    return ok(command);
  });
  const remote = await ReconnectingRemote.open({ connect: f.connect, sleep: noSleep });
  const results = await Promise.all(['a', 'b', 'c'].map((c) => remote.exec(c)));
  assert.deepEqual(
    results.map((r) => r.stdout),
    ['a', 'b', 'c'],
  );
  assert.equal(f.calls(), 2, 'one first connection, one reconnect');
});

test('an unreachable host is retried with backoff within the window, then the step fails', async () => {
  const refused = () => new SshConnectError('could not connect to the host (ECONNREFUSED), after 3 attempts', true, 'ECONNREFUSED');
  const waits: number[] = [];
  let clock = 0;
  const f = factory(async (conn, command) => (conn.n === 1 ? conn.cut(command) : ok()), []);
  const remote = await ReconnectingRemote.open({
    connect: async () => {
      if (f.calls() >= 1) {
        clock += 1000;
        throw refused();
      }
      return f.connect();
    },
    windowMs: 60_000,
    sleep: async (ms) => {
      waits.push(ms);
      clock += ms;
    },
  });
  // Date.now drives the window: advance it with the fake clock.
  const realNow = Date.now;
  const base = realNow();
  Date.now = () => base + clock;
  try {
    await assert.rejects(
      remote.exec('step'),
      (e: unknown) => e instanceof ReconnectFailedError && /within 60 s/.test(e.message) && /ECONNREFUSED/.test(e.message),
    );
  } finally {
    Date.now = realNow;
  }
  assert.deepEqual(waits.slice(0, 5), [1000, 2000, 4000, 8000, 10_000], 'the waits double up to 10 s');
  assert.ok(clock >= 60_000 && clock < 75_000, `gave up once the window closed (${clock} ms)`);
});

test('a reconnect refused for a reason that will not pass (auth, host key) fails at once', async () => {
  let n = 0;
  const f = factory(async (conn, command) => (conn.n === 1 ? conn.cut(command) : ok()));
  const remote = await ReconnectingRemote.open({
    connect: async () => (n++ === 0 ? f.connect() : Promise.reject(new SshAuthError('deploy', 'the host', 'SHA256:x (ssh-ed25519)'))),
    sleep: noSleep,
  });
  await assert.rejects(remote.exec('step'), SshAuthError);
  assert.equal(n, 2);
});

test('a fresh connection is checked before use; a failed check fails the step and closes it', async () => {
  const f = factory(async (conn, command) => (conn.n === 1 && command === 'step' ? conn.cut(command) : ok()));
  const remote = await ReconnectingRemote.open({ connect: f.connect, sleep: noSleep });
  remote.setVerify(async () => {
    throw new Error('the deploy lock was taken over while the connection to the host was down');
  });
  await assert.rejects(remote.exec('step'), /lock was taken over/);
  assert.equal(f.conns[1]!.closedByUs, true, 'the connection that failed the check is closed');
  assert.deepEqual(f.conns[1]!.ran, [], 'nothing ran on it');
});

test('retryFirst: the first connection is retried too (the post step after a cut)', async () => {
  const f = factory(async () => ok('hi'), [new SshConnectError('timed out connecting to the host', true, 'ETIMEDOUT')]);
  const remote = await ReconnectingRemote.open({ connect: f.connect, sleep: noSleep, retryFirst: true });
  assert.equal((await remote.exec('x')).stdout, 'hi');
  assert.equal(f.calls(), 2);
  await assert.rejects(
    ReconnectingRemote.open({ connect: factory(async () => ok(), [new SshConnectError('timed out', true)]).connect, sleep: noSleep }),
    /timed out/,
  );
});

test('a connection that keeps dropping under one command is not retried forever', async () => {
  const f = factory(async (conn, command) => conn.cut(command));
  const remote = await ReconnectingRemote.open({ connect: f.connect, sleep: noSleep });
  await assert.rejects(remote.exec('step'), (e: unknown) => e instanceof ReconnectFailedError && /5 times in a row/.test(e.message));
  assert.equal(f.calls(), 5);
});
