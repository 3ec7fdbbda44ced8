import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { Duplex } from 'node:stream';
import { startProbe, type ProbeOptions } from '../../src/probe/prober.js';
import type { ProbeRecord } from '../../src/probe/record.js';

/** A server on 127.0.0.1 that misbehaves on purpose, per path. */
let server: http.Server;
let base = '';
let closedPort = 0;
const sockets = new Set<net.Socket>();

before(async () => {
  server = http.createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const socket = req.socket;
    switch (path) {
      case '/ok':
        res.writeHead(200, { 'x-served-by': 'app-1', 'x-app-version': 'v2', 'content-type': 'text/plain' });
        res.end('hello from v2 MARK');
        return;
      case '/cut':
        // Headers and part of the body, then a reset.
        res.writeHead(200, { 'content-length': '1000' });
        res.write('partial', () => setTimeout(() => socket.resetAndDestroy(), 20));
        return;
      case '/reset':
        socket.resetAndDestroy();
        return;
      case '/close':
        // FIN without a byte of response.
        socket.destroy();
        return;
      case '/hang':
        return; // never answers; the server's close cleans up
      case '/502':
        res.writeHead(502);
        res.end('bad gateway');
        return;
      case '/wrong-body':
        res.writeHead(200);
        res.end('hello from v1');
        return;
      default:
        res.writeHead(404);
        res.end();
    }
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  // A port that was just free: nothing listens there.
  const spare = net.createServer();
  await new Promise<void>((resolve) => spare.listen(0, '127.0.0.1', resolve));
  closedPort = (spare.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => spare.close(() => resolve()));
});

after(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function probe(path: string, extra: Partial<ProbeOptions> = {}): Promise<ProbeRecord[]> {
  // Generous deadline and lag: the unit suite runs tests in parallel on a small machine, and
  // these tests check classification, not punctuality.
  const run = startProbe({ url: `${base}${path}`, rate: 50, maxRequests: 6, timeoutMs: 1500, bodyMarker: 'MARK', ...extra });
  const result = await run.finished;
  assert.equal(result.stoppedBy, 'max_requests');
  return result.records;
}

function outcomesByLane(records: ProbeRecord[]): Record<string, string[]> {
  const out: Record<string, string[]> = { keepalive: [], fresh: [] };
  for (const r of records) out[r.lane]!.push(r.outcome);
  return out;
}

const cases: Array<[string, string]> = [
  ['/ok', 'ok'],
  ['/cut', 'cut'],
  ['/reset', 'reset'],
  ['/close', 'empty'],
  ['/hang', 'timeout'],
  ['/502', 'bad_status'],
  ['/wrong-body', 'body_mismatch'],
];

for (const [path, expected] of cases) {
  test(`${path} is classified ${expected} on both lanes`, async () => {
    const records = await probe(path, path === '/hang' ? { timeoutMs: 300 } : {});
    assert.equal(records.length, 6);
    assert.deepEqual(outcomesByLane(records), { keepalive: [expected, expected, expected], fresh: [expected, expected, expected] });
    for (const r of records) {
      assert.ok(r.sentAt !== undefined && r.doneAt >= r.sentAt);
      if (expected !== 'ok') assert.ok(r.error, `a loss carries an error text (${r.outcome})`);
    }
  });
}

test('a closed port is refused on both lanes', async () => {
  const records = await probe('/ok', { url: `http://127.0.0.1:${closedPort}/ok` });
  assert.deepEqual(outcomesByLane(records), { keepalive: ['refused', 'refused', 'refused'], fresh: ['refused', 'refused', 'refused'] });
});

test('records carry status, served-by and version; the fresh lane sends Connection: close', async () => {
  const records = await probe('/ok');
  const r = records[0]!;
  assert.equal(r.status, 200);
  assert.equal(r.servedBy, 'app-1');
  assert.equal(r.version, 'v2');
  assert.deepEqual(
    records.map((x) => x.seq),
    [0, 1, 2, 3, 4, 5],
  );
  assert.deepEqual(
    records.map((x) => x.lane),
    ['keepalive', 'fresh', 'keepalive', 'fresh', 'keepalive', 'fresh'],
  );
  // Schedule: 50/s → slots 20 ms apart, from the start.
  assert.equal(Math.round(records[5]!.scheduledAt - records[0]!.scheduledAt), 100);
});

test('keep-alive lane reuses connections, the fresh lane opens one per request', async () => {
  const seen = { keepalive: new Set<number>(), fresh: new Set<number>() };
  const listener = (req: http.IncomingMessage): void => {
    const lane = String(req.headers['x-handoff-probe'] ?? '').split(' ')[1] as 'keepalive' | 'fresh';
    seen[lane]?.add(req.socket.remotePort ?? 0);
  };
  server.on('request', listener);
  try {
    await probe('/ok', { maxRequests: 10, rate: 40 });
  } finally {
    server.off('request', listener);
  }
  assert.equal(seen.fresh.size, 5);
  assert.ok(seen.keepalive.size < 5, `keep-alive used ${seen.keepalive.size} connections for 5 requests`);
});

test('open loop: a hanging server does not slow the schedule', async () => {
  const result = await startProbe({ url: `${base}/hang`, rate: 100, timeoutMs: 300, maxDurationMs: 1000 }).finished;
  assert.equal(result.stoppedBy, 'max_duration');
  const sent = result.records.filter((r) => r.outcome !== 'unmeasured');
  assert.ok(result.records.length >= 98 && result.records.length <= 100, `scheduled ${result.records.length}`);
  // Late sends are sent all the same: only a stall past the 300 ms deadline leaves one unmeasured.
  assert.ok(sent.length >= 95, `sent ${sent.length} of ~100`);
  assert.ok(result.records.every((r) => r.outcome === 'timeout' || r.outcome === 'unmeasured'));
  const lags = sent.map((r) => r.sentAt! - r.scheduledAt).sort((a, b) => a - b);
  // Loose: the machine may be busy with other tests; a closed loop would lag by whole deadlines.
  const p50 = lags[Math.floor(lags.length * 0.5)]!;
  assert.ok(p50 < 50, `p50 send lag ${p50} ms`);
});

test('a blocked event loop: late requests are sent late with latency from their due time; past the deadline they are unmeasured, never lost', async () => {
  // Generous margins: the unit suite may share the machine with other work.
  const run = startProbe({ url: `${base}/ok`, rate: 50, timeoutMs: 400, maxDurationMs: 1800 });
  await new Promise((r) => setTimeout(r, 100));
  const blockedFrom = performance.timeOrigin + performance.now();
  const until = Date.now() + 1000;
  while (Date.now() < until) {
    // busy: the prober cannot send, and cannot read answers
  }
  const result = await run.finished;
  assert.equal(result.records.filter((r) => r.outcome !== 'ok' && r.outcome !== 'unmeasured').length, 0, 'nothing counts as lost');
  const unmeasured = result.records.filter((r) => r.outcome === 'unmeasured');
  // Due more than 400 ms before the loop was free again: past their deadline.
  assert.ok(unmeasured.length >= 15, `unmeasured ${unmeasured.length}`);
  assert.ok(unmeasured.every((r) => r.sentAt === undefined && /behind: past the deadline/.test(r.error ?? '')));
  // Due within the last 400 ms of the stall: sent late, and their latency shows the wait.
  const late = result.records.filter((r) => r.outcome === 'ok' && r.scheduledAt >= blockedFrom && r.sentAt! - r.scheduledAt > 20);
  assert.ok(late.length >= 5, `late sends ${late.length}`);
  for (const r of late) assert.ok(r.latencyMs! >= r.sentAt! - r.scheduledAt, 'latency counts from the due time');
  // Requests in flight when the loop blocked were answered meanwhile: a late timer must not call them timeouts.
  assert.ok(result.records.every((r) => r.outcome !== 'timeout'));
});

test('stop() ends the probe early and waits for requests in flight', async () => {
  const run = startProbe({ url: `${base}/hang`, rate: 20, timeoutMs: 200, maxDurationMs: 60_000 });
  await new Promise((r) => setTimeout(r, 120));
  const t0 = Date.now();
  const result = await run.stop();
  assert.equal(result.stoppedBy, 'stopped');
  assert.ok(Date.now() - t0 < 1000, 'bounded by the per-request deadline, not the 60 s cap');
  assert.ok(result.records.length >= 2 && result.records.length <= 8, `records ${result.records.length}`);
  assert.ok(result.records.every((r) => r.outcome === 'timeout'));
  assert.equal(await run.stop(), result, 'stop is idempotent');
});

test('dial: traffic goes through the dial function on both lanes', async () => {
  const dialed: string[] = [];
  const dial = async (host: string, port: number): Promise<Duplex> => {
    dialed.push(`${host}:${port}`);
    return net.connect({ host, port });
  };
  const port = new URL(base).port;
  // The URL's host is what the tunnel connects to on the far side.
  const records = await probe('/ok', { url: `http://127.0.0.1:${port}/ok`, dial });
  assert.deepEqual(outcomesByLane(records), { keepalive: ['ok', 'ok', 'ok'], fresh: ['ok', 'ok', 'ok'] });
  assert.ok(dialed.length >= 4 && dialed.every((d) => d === `127.0.0.1:${port}`));
});

test('dial: a plain Duplex (like an ssh2 channel) works, and a failed dial is a loss', async () => {
  const port = Number(new URL(base).port);
  // Duplex.from gives a stream without net.Socket's methods, as an ssh2 channel is.
  const dial = async (host: string, p: number): Promise<Duplex> => {
    const socket = net.connect({ host, port: p });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return Duplex.from({ readable: socket, writable: socket });
  };
  const records = await probe('/ok', { dial });
  assert.deepEqual(outcomesByLane(records), { keepalive: ['ok', 'ok', 'ok'], fresh: ['ok', 'ok', 'ok'] });
  const refused = await probe('/ok', {
    url: `http://127.0.0.1:${port}/ok`,
    dial: async () => {
      throw new Error('(SSH) Channel open failure: Connection refused');
    },
  });
  assert.ok(refused.every((r) => r.outcome === 'refused'));
});

test('dial: a tunnel stream the server half-closes (EOF, as an ssh2 channel gets from sshd) leaves the keep-alive pool at once', async () => {
  // A server that closes idle keep-alive connections quickly (FIN), like HAProxy's timeout http-keep-alive.
  const quick = net.createServer((c) => {
    let idle: NodeJS.Timeout | undefined;
    c.on('data', () => {
      clearTimeout(idle);
      c.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok');
      idle = setTimeout(() => c.end(), 30);
    });
    c.on('error', () => {});
  });
  await new Promise<void>((resolve) => quick.listen(0, '127.0.0.1', resolve));
  const port = (quick.address() as net.AddressInfo).port;
  // allowHalfOpen: after the server's FIN the stream emits 'end' but stays writable and does not
  // close, which is what an SSH channel does until both sides sent EOF.
  const dial = async (host: string, p: number): Promise<Duplex> => {
    const socket = net.connect({ host, port: p, allowHalfOpen: true });
    await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return Duplex.from({ readable: socket, writable: socket });
  };
  try {
    // 10/s per lane: every keep-alive request finds its pooled connection closed by the server.
    const result = await startProbe({ url: `http://127.0.0.1:${port}/`, rate: 20, maxRequests: 16, timeoutMs: 1000, dial }).finished;
    const bad = result.records.filter((r) => r.outcome !== 'ok');
    assert.deepEqual(
      bad.map((r) => `${r.seq} ${r.lane} ${r.outcome}`),
      [],
      'no request is written into a half-closed tunnel and left to time out',
    );
  } finally {
    await new Promise<void>((resolve) => quick.close(() => resolve()));
  }
});

test('a keep-alive connection idle longer than the pool limit is closed by the prober, direct and through a dial', async () => {
  for (const viaDial of [false, true]) {
    const ports = new Set<number>();
    const listener = (req: http.IncomingMessage): void => {
      if (String(req.headers['x-handoff-probe'] ?? '').endsWith('keepalive')) ports.add(req.socket.remotePort ?? 0);
    };
    server.on('request', listener);
    const dial = async (host: string, p: number): Promise<Duplex> => {
      const socket = net.connect({ host, port: p });
      await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
      return Duplex.from({ readable: socket, writable: socket });
    };
    try {
      // 1.6 requests/s over two lanes: the keep-alive lane sends every 1.25 s, past the 1 s idle limit.
      const result = await startProbe({ url: `${base}/ok`, rate: 1.6, maxRequests: 6, timeoutMs: 1000, ...(viaDial ? { dial } : {}) })
        .finished;
      assert.ok(
        result.records.every((r) => r.outcome === 'ok'),
        JSON.stringify(result.records.map((r) => r.outcome)),
      );
    } finally {
      server.off('request', listener);
    }
    assert.equal(ports.size, 3, `${viaDial ? 'dial' : 'direct'}: three keep-alive requests, each on a new connection`);
  }
});

test('POST with a body and custom headers', async () => {
  let seen = '';
  const listener = (req: http.IncomingMessage): void => {
    if (req.method === 'POST') req.on('data', (c: Buffer) => (seen += c.toString()));
  };
  server.on('request', listener);
  try {
    const records = await probe('/ok', { method: 'post', body: 'ping', headers: { 'x-test': '1' }, maxRequests: 2 });
    assert.ok(records.every((r) => r.outcome === 'ok'));
  } finally {
    server.off('request', listener);
  }
  assert.equal(seen, 'pingping');
});

test('options are validated', () => {
  assert.throws(() => startProbe({ url: 'ftp://x/' }), /http or https/);
  assert.throws(() => startProbe({ url: `${base}/ok`, rate: 0 }), /rate must be > 0/);
  assert.throws(() => startProbe({ url: `${base}/ok`, expectStatus: 'abc' }), /not a status/);
});
