/**
 * The probe through a real SSH tunnel: an in-process ssh2 server forwards direct-tcpip channels to
 * a keep-alive HTTP server, and the prober's DialAgent dials them with an ssh2 client (the same
 * forwardOut a deploy uses, src/ssh/connection.ts openTcp). ssh2 channels are not net.Sockets:
 * Channel.destroy() only sends EOF and CLOSE (its `destroyed` stays false) and 'close' comes when
 * the server answers. These tests hold the tunnel to what the agent expects of a socket.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import { DialAgent } from '../../src/probe/dial-agent.js';
import { startProbe } from '../../src/probe/prober.js';

let web: http.Server;
let webPort = 0;
let sshd: ssh2.Server;
let client: ssh2.Client;
const channels: Duplex[] = [];

function dial(host: string, port: number): Promise<Duplex> {
  return new Promise((resolve, reject) =>
    client.forwardOut('127.0.0.1', 0, host, port, (err, ch) => {
      if (err) return reject(err);
      channels.push(ch);
      resolve(ch);
    }),
  );
}

before(async () => {
  web = http.createServer((_req, res) => res.end('version=v1'));
  web.keepAliveTimeout = 10_000; // like HAProxy's timeout http-keep-alive: the server never closes first here
  await new Promise<void>((resolve) => web.listen(0, '127.0.0.1', resolve));
  webPort = (web.address() as net.AddressInfo).port;
  const hostKey = ssh2.utils.generateKeyPairSync('ed25519').private;
  sshd = new ssh2.Server({ hostKeys: [hostKey] }, (conn) => {
    conn.on('authentication', (ctx) => ctx.accept());
    conn.on('ready', () =>
      conn.on('tcpip', (accept, _reject, info) => {
        const ch = accept();
        const s = net.connect(info.destPort, info.destIP);
        ch.pipe(s).pipe(ch);
        s.on('error', () => ch.close());
        ch.on('error', () => s.destroy());
      }),
    );
    conn.on('error', () => {});
  });
  await new Promise<void>((resolve) => sshd.listen(0, '127.0.0.1', resolve));
  client = new ssh2.Client();
  await new Promise<void>((resolve, reject) =>
    client
      .once('ready', resolve)
      .once('error', reject)
      .connect({ host: '127.0.0.1', port: (sshd.address() as net.AddressInfo).port, username: 'probe', password: 'x' }),
  );
});

after(async () => {
  client.end();
  await new Promise<void>((resolve) => sshd.close(() => resolve()));
  web.closeAllConnections();
  await new Promise<void>((resolve) => web.close(() => resolve()));
});

/** Keep the main thread busy, as ssh2's JavaScript crypto and a loaded runner do. */
function stall(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end);
}

function get(agent: http.Agent): Promise<string> {
  return new Promise((resolve) => {
    const req = http.request(`http://127.0.0.1:${webPort}/`, { agent }, (res) => {
      res.resume();
      res.on('end', () => resolve(`ok ${res.statusCode}`));
    });
    req.on('error', (err) => resolve(`error ${err.message}`));
    req.end();
  });
}

test('a pooled tunnel channel closed at the idle limit during a stall is never handed to the next request', async () => {
  // The prober's keep-alive agent (KEEPALIVE_IDLE_MS 1 s, LIFO). A channel goes back to the pool;
  // the main thread then stalls past its idle limit and past the next request's due time. After
  // the stall the agent's idle timer fires first and closes the channel, then the request is sent
  // in the same timers pass. A net.Socket is marked destroyed at once and the agent skips it; the
  // tunnel's channel must be too, or the request goes into a closing channel: "socket hang up".
  const agent = new DialAgent({ keepAlive: true, maxSockets: 32, scheduling: 'lifo', timeout: 1000, dial });
  try {
    const outcomes: string[] = [];
    for (let i = 0; i < 3; i++) {
      assert.equal(await get(agent), 'ok 200');
      await new Promise((resolve) => setImmediate(resolve)); // the channel is back in the pool
      const next = new Promise<string>((resolve) => setTimeout(() => void get(agent).then(resolve), 1050));
      stall(1200);
      outcomes.push(await next);
    }
    assert.deepEqual(outcomes, ['ok 200', 'ok 200', 'ok 200']);
  } finally {
    agent.destroy();
  }
});

test('a tunnel socket keeps one idle timer and no pile of timeout listeners, however often it is reused', async () => {
  const agent = new DialAgent({ keepAlive: true, maxSockets: 1, scheduling: 'lifo', timeout: 1000, dial });
  try {
    let socket: (Duplex & { timeout?: number }) | undefined;
    agent.on('free', (s: Duplex) => (socket = s));
    for (let i = 0; i < 30; i++) assert.equal(await get(agent), 'ok 200');
    await new Promise((resolve) => setImmediate(resolve));
    assert.ok(socket, 'the keep-alive connection went back to the pool');
    // net.Socket semantics: setTimeout(0, cb) removes cb, `timeout` says what is armed; the
    // agent's own listener and at most one request's remain.
    assert.ok(socket.listenerCount('timeout') <= 2, `${socket.listenerCount('timeout')} 'timeout' listeners`);
    assert.equal(socket.timeout, 1000);
    assert.equal(Object.values(agent.sockets).flat().length + Object.values(agent.freeSockets).flat().length, 1, 'one connection reused');
  } finally {
    agent.destroy();
  }
});

test('a pooled tunnel connection idle past the limit is closed by its idle timer, a busy one is not', async () => {
  const agent = new DialAgent({ keepAlive: true, maxSockets: 1, scheduling: 'lifo', timeout: 300, dial });
  try {
    const ports = new Set<number>();
    const listener = (req: http.IncomingMessage): void => void ports.add(req.socket.remotePort ?? 0);
    web.on('request', listener);
    // Busy: a request every 100 ms for 1 s on one connection (traffic keeps it alive).
    for (let i = 0; i < 10; i++) {
      assert.equal(await get(agent), 'ok 200');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(ports.size, 1, 'one connection while busy');
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal(Object.values(agent.freeSockets).flat().length, 0, 'the idle one left the pool');
    assert.equal(await get(agent), 'ok 200');
    assert.equal(ports.size, 2, 'a new connection after the idle limit');
    web.off('request', listener);
  } finally {
    agent.destroy();
  }
});

test('the prober through the tunnel loses nothing while the main thread stalls (no request goes into a closing channel)', async () => {
  // Open loop at 40/s for 10 s; the main thread stalls for 0.5-1.2 s about every 2 s (ssh2's crypto
  // and a loaded runner). After each stall, the backlog opens extra keep-alive channels that then
  // sit in the pool and reach their idle limit one by one while the lane keeps sending.
  const stalls: number[] = [];
  const started = Date.now();
  const loop = (): void => {
    if (Date.now() - started > 8500) return;
    setTimeout(() => {
      const ms = [900, 1100, 500, 1200][stalls.length % 4]!;
      stall(ms);
      stalls.push(ms);
      loop();
    }, 1300);
  };
  loop();
  const result = await startProbe({
    url: `http://127.0.0.1:${webPort}/`,
    rate: 40,
    timeoutMs: 2000,
    bodyMarker: 'version=',
    maxDurationMs: 10_000,
    dial,
  }).finished;
  const lost = result.records.filter((r) => r.outcome !== 'ok' && r.outcome !== 'unmeasured');
  assert.ok(stalls.length >= 3, `${stalls.length} stalls`);
  assert.ok(result.records.length >= 390, `${result.records.length} requests`);
  assert.deepEqual(
    lost.map((r) => `${r.seq} ${r.lane} ${r.outcome} ${r.error ?? ''}`),
    [],
  );
});
