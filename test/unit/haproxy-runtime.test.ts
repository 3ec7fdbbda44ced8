// Against a real HAProxy (Debian 12's 2.6) started on a temp Unix socket: fails, not skips, when
// /usr/sbin/haproxy is missing.
import assert from 'node:assert/strict';
import net from 'node:net';
import { Duplex, PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { RuntimeApi, RuntimeApiError, splitAnswers } from '../../src/proxy/haproxy/runtime.js';
import { freePort, startHaproxy, startReplica, type FakeReplica, type LocalHaproxy } from '../fixtures/haproxy-local.js';

let hp: LocalHaproxy;
let replica: FakeReplica;
let api: RuntimeApi;

before(async () => {
  const port = await freePort();
  replica = await startReplica('127.0.0.2', port);
  hp = await startHaproxy(
    ({ socketPath, frontendPort }) => `
global
    stats socket ${socketPath} mode 600 level admin
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend web
    bind 127.0.0.1:${frontendPort}
    default_backend app
backend app
    option httpchk GET /health
    server s1 127.0.0.2:${port} check inter 200ms
    server s2 127.0.0.3:${port}
`,
  );
  api = new RuntimeApi(hp.opener, { timeoutMs: 3000 });
});

after(async () => {
  await hp?.stop();
  await replica?.close();
});

test('showServersState lists the configured servers', async () => {
  const states = await api.showServersState('app');
  assert.deepEqual(
    states.map((s) => [s.server, s.addr]),
    [
      ['s1', '127.0.0.2'],
      ['s2', '127.0.0.3'],
    ],
  );
  assert.ok(states.every((s) => s.backend === 'app'));
});

test('showStat returns frontend, servers and backend rows', async () => {
  const rows = await api.showStat();
  const names = rows.map((r) => `${r.pxname}/${r.svname}`);
  assert.ok(names.includes('web/FRONTEND'));
  assert.ok(names.includes('app/s1'));
  assert.ok(names.includes('app/BACKEND'));
  assert.equal(rows.find((r) => r.svname === 's1')!.addr, `127.0.0.2:${replica.port}`);
});

test('setServerState maint / drain / ready changes the admin state', async () => {
  await api.setServerState('app', 's2', 'maint');
  let s2 = (await api.showServersState('app')).find((s) => s.server === 's2')!;
  assert.equal(s2.adminState & 0x01, 0x01);
  assert.equal((await api.showStat()).find((r) => r.svname === 's2')!.status, 'MAINT');

  await api.setServerState('app', 's2', 'drain');
  s2 = (await api.showServersState('app')).find((s) => s.server === 's2')!;
  assert.equal(s2.adminState & 0x01, 0, 'drain leaves maintenance');
  assert.equal(s2.adminState & 0x08, 0x08);

  await api.setServerState('app', 's2', 'ready');
  s2 = (await api.showServersState('app')).find((s) => s.server === 's2')!;
  assert.equal(s2.adminState, 0);
});

test('HAProxy refusals become RuntimeApiError with its message', async () => {
  await assert.rejects(api.setServerState('app', 'nope', 'ready'), (e: unknown) => {
    assert.ok(e instanceof RuntimeApiError);
    assert.match(e.message, /No such server/);
    return true;
  });
  await assert.rejects(api.showServersState('nope'), /Can't find backend/);
});

test('names that could smuggle a second command are refused before sending', async () => {
  await assert.rejects(api.setServerState('app', 's1; shutdown sessions server app/s1', 'maint'), /invalid HAProxy server name/);
  await assert.rejects(api.command('show stat\nshow info'), /single line/);
});

test('one command per connection: several in parallel each get their own answer', async () => {
  const answers = await Promise.all([api.command('show servers state app'), api.command('show stat'), api.command('show info')]);
  assert.match(answers[0], /^1\n# be_id/);
  assert.match(answers[1], /^# pxname,svname/);
  assert.match(answers[2], /^Name: HAProxy/m);
});

test('a stream that never answers times out', async () => {
  const silent = new RuntimeApi(async () => new PassThrough({ readableObjectMode: false }) as unknown as net.Socket, { timeoutMs: 200 });
  const started = Date.now();
  await assert.rejects(silent.command('show stat'), /no answer to "show stat" within 200 ms/);
  assert.ok(Date.now() - started < 2000);
});

test('HAProxy answers even a silent success with a newline (so no byte at all means a cut stream)', async () => {
  assert.equal(await api.command('set server app/s2 state ready'), '\n');
});

/** An opener whose first stream takes the command, then ends without a byte (a dropped SSH channel); later ones reach HAProxy. */
function cutFirst(): { opener: () => Promise<net.Socket>; opened: () => number } {
  let n = 0;
  return {
    opened: () => n,
    opener: async () => {
      if (++n > 1) return hp.opener();
      const cut = new Duplex({
        read() {},
        write(_c, _e, cb) {
          cb();
          setImmediate(() => this.push(null));
        },
      });
      return cut as unknown as net.Socket;
    },
  };
}

test('a stream cut before the answer is tried again on a new stream; a refusal is not', async () => {
  const first = cutFirst();
  const flaky = new RuntimeApi(first.opener, { timeoutMs: 3000 });
  assert.match(await flaky.command('show servers state app'), /^1\n# be_id/);
  assert.equal(first.opened(), 2);

  let refusals = 0;
  const counting = new RuntimeApi(async () => {
    refusals++;
    return hp.opener();
  });
  await assert.rejects(counting.setServerState('app', 'nosuch', 'maint'), RuntimeApiError);
  assert.equal(refusals, 1, 'HAProxy refusing a command is an answer, not a cut');

  let silentOpens = 0;
  const silent = new RuntimeApi(
    async () => {
      silentOpens++;
      return new PassThrough() as unknown as net.Socket;
    },
    { timeoutMs: 100, attempts: 3 },
  );
  await assert.rejects(silent.command('show stat'), /no answer/);
  assert.equal(silentOpens, 3);
});

test('an opener that fails rejects with its error', async () => {
  const broken = new RuntimeApi(
    () =>
      new Promise<net.Socket>((resolve, reject) => {
        const s = net.connect('/nonexistent/admin.sock');
        s.once('connect', () => resolve(s));
        s.once('error', reject);
      }),
    { timeoutMs: 1000 },
  );
  await assert.rejects(broken.showStat(), /ENOENT/);
});

test('pipeline: several commands in one connection, each answer apart (an empty answer for a silent success, a refusal kept)', async () => {
  let opened = 0;
  const counting = new RuntimeApi(
    async () => {
      opened++;
      return hp.opener();
    },
    { timeoutMs: 3000 },
  );
  const [set, refused, state] = await counting.pipeline([
    'set server app/s2 state maint',
    'set server app/zz state maint',
    'show servers state app',
  ]);
  assert.equal(opened, 1);
  assert.equal(set, '');
  assert.match(refused!, /No such server/);
  assert.match(state!, /^1\n# be_id/);
  const after = await counting.setStatesThenShow([{ backend: 'app', server: 's2', state: 'ready' }]);
  assert.equal(after.find((s) => s.server === 's2')!.adminState & 1, 0, 's2 left forced maint');
  const stats = await counting.setStatesThenStat([{ backend: 'app', server: 's2', state: 'maint' }]);
  assert.ok(stats.some((r) => r.pxname === 'app' && r.svname === 's2' && /MAINT/.test(r.status)));
  await counting.setStates([{ backend: 'app', server: 's2', state: 'ready' }]);
  await assert.rejects(counting.setStates([{ backend: 'app', server: 'zz', state: 'ready' }]), RuntimeApiError);
  assert.equal(opened, 5);
  await assert.rejects(counting.pipeline(['show stat', 'show info; show stat']), /cannot contain ';'/);
});

/** An opener that counts the connections it opened. */
function counted(): { opener: () => Promise<net.Socket>; opened: () => number } {
  let n = 0;
  return {
    opener: async () => {
      n++;
      return hp.opener();
    },
    opened: () => n,
  };
}

test('interactive: every command on one kept connection, with the same answers as one connection per command', async () => {
  const c = counted();
  const kept = new RuntimeApi(c.opener, { timeoutMs: 3000, interactive: true });
  try {
    assert.deepEqual(await kept.showServersState('app'), await api.showServersState('app'));
    assert.ok((await kept.showStat()).some((r) => r.pxname === 'app' && r.svname === 's1'));
    await kept.setServerState('app', 's2', 'maint');
    assert.equal((await api.showServersState('app')).find((s) => s.server === 's2')!.adminState & 1, 1);
    await assert.rejects(kept.setServerState('app', 'nope', 'ready'), /No such server/);
    const [set, refused, state] = await kept.pipeline([
      'set server app/s2 state ready',
      'set server app/zz state maint',
      'show servers state app',
    ]);
    assert.equal(set, '');
    assert.match(refused!, /^No such server\.\n$/);
    assert.match(state!, /^1\n# be_id/);
    // Callers that do not wait for each other still get their own answers, in turn.
    const answers = await Promise.all([kept.command('show servers state app'), kept.command('show stat'), kept.command('show info')]);
    assert.match(answers[0], /^1\n# be_id/);
    assert.match(answers[1], /^# pxname,svname/);
    assert.match(answers[2], /^Name: HAProxy/m);
    assert.equal(c.opened(), 1, 'one connection for all of them');
  } finally {
    kept.close();
  }
});

/**
 * A kept connection that answers its first line with prompts (`prompt` and one command), then ends:
 * right away (`idleClose`, HAProxy's stats timeout while we wait) or at our next write (the close
 * crossing it). Later connections reach the real HAProxy.
 */
function closingOnce(how: 'idleClose' | 'atNextWrite'): { opener: () => Promise<net.Socket>; opened: () => number } {
  let n = 0;
  return {
    opened: () => n,
    opener: async () => {
      if (++n > 1) return hp.opener();
      let writes = 0;
      const fake = new Duplex({
        read() {},
        write(chunk: Buffer, _e, cb) {
          cb();
          if (++writes > 1) return void setImmediate(() => this.push(null));
          const prompts = chunk.toString().split('\n').length - 1;
          setImmediate(() => {
            this.push('\n> '.repeat(prompts));
            if (how === 'idleClose') this.push(null);
          });
        },
      });
      return fake as unknown as net.Socket;
    },
  };
}

test('interactive: the kept connection closed by HAProxy (idle, or as we write) costs a new connection, not a failed command', async () => {
  for (const how of ['idleClose', 'atNextWrite'] as const) {
    const c = closingOnce(how);
    // One attempt: the reconnect must not use up the retry.
    const kept = new RuntimeApi(c.opener, { timeoutMs: 3000, interactive: true, attempts: 1, idleMs: 60_000 });
    assert.equal(await kept.command('set server app/s2 state ready'), '', how);
    await new Promise((r) => setImmediate(r));
    assert.match(await kept.command('show servers state app'), /^1\n# be_id/, how);
    assert.equal(c.opened(), 2, how);
    kept.close();
  }
});

test('interactive: the connection is closed after idleMs without a command, and by close()', async () => {
  const c = counted();
  const kept = new RuntimeApi(c.opener, { timeoutMs: 3000, interactive: true, idleMs: 100 });
  await kept.showStat();
  await kept.showStat();
  assert.equal(c.opened(), 1);
  await new Promise((r) => setTimeout(r, 250));
  await kept.showStat();
  assert.equal(c.opened(), 2, 'idle: a new connection');
  kept.close();
  await kept.showStat();
  assert.equal(c.opened(), 3, 'closed: a new connection');
  kept.close();
});

test('interactive: a stream cut before the answer is tried again on a new one; a silent one times out', async () => {
  const first = cutFirst();
  const flaky = new RuntimeApi(first.opener, { timeoutMs: 3000, interactive: true });
  assert.match(await flaky.command('show servers state app'), /^1\n# be_id/);
  assert.equal(first.opened(), 2);
  flaky.close();

  let silentOpens = 0;
  const silent = new RuntimeApi(
    async () => {
      silentOpens++;
      return new PassThrough() as unknown as net.Socket;
    },
    { timeoutMs: 100, attempts: 2, interactive: true },
  );
  await assert.rejects(silent.command('show stat'), /no answer to "show stat" within 100 ms/);
  assert.equal(silentOpens, 2);
});

test('splitAnswers: answers end with an empty line', () => {
  assert.deepEqual(splitAnswers('\n\n'), ['', '']);
  assert.deepEqual(splitAnswers('No such server.\n\n1\n# x\n2 a\n\n'), ['No such server.\n', '1\n# x\n2 a\n']);
  assert.deepEqual(splitAnswers('\n1\n# x\n'), ['', '1\n# x\n']);
});
