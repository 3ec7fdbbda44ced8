// HaproxyGate against a real HAProxy 2.6 whose `app` name is resolved by a fake DNS server, with
// Node HTTP servers on 127.0.0.x as replicas: the same mechanics as Docker's DNS, without Docker.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, afterEach, before, beforeEach, test } from 'node:test';
import { HaproxyGate } from '../../src/proxy/haproxy/drain.js';
import { RuntimeApi } from '../../src/proxy/haproxy/runtime.js';
import { AdminFlag, type ServerState } from '../../src/proxy/haproxy/stats.js';
import type { Replica } from '../../src/proxy/gate.js';
import { Timeline } from '../../src/model/timeline.js';
import {
  dnsBackendCfg,
  freePort,
  startDns,
  startHaproxy,
  startReplica,
  type FakeDns,
  type FakeReplica,
  type LocalHaproxy,
} from '../fixtures/haproxy-local.js';

let dns: FakeDns;
let appPort: number;
let hp: LocalHaproxy;
let api: RuntimeApi;
const replicas = new Map<string, FakeReplica>();
let logs: string[];
let timeline: Timeline;

const IPS = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5'];
const replica = (ip: string): Replica => ({ id: `id-${ip}`, name: `app-${ip.split('.')[3]}`, ip });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function gate(options: Partial<ConstructorParameters<typeof HaproxyGate>[0]> = {}) {
  return new HaproxyGate({
    opener: hp.opener,
    pollMs: 50,
    drainTimeoutMs: 5000,
    releaseTimeoutMs: 3000,
    log: { info: (m) => logs.push(`info: ${m}`), warning: (m) => logs.push(`warning: ${m}`) },
    timeline,
    ...options,
  });
}

function get(path: string): Promise<{ status: number; servedBy: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: hp.frontendPort, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, servedBy: String(res.headers['x-served-by'] ?? ''), body }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timeout')));
  });
}

async function slot(ip: string): Promise<ServerState | undefined> {
  return (await api.showServersState('app')).find((s) => s.addr === ip);
}

async function waitFor(what: string, check: () => Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

before(async () => {
  dns = await startDns();
  appPort = await freePort();
  for (const ip of IPS) replicas.set(ip, await startReplica(ip, appPort));
});

after(async () => {
  for (const r of replicas.values()) await r.close();
  await dns?.close();
});

beforeEach(async () => {
  logs = [];
  timeline = new Timeline();
  dns.records.set('app', ['127.0.0.2']);
  hp = await startHaproxy(dnsBackendCfg({ dnsPort: dns.port, appPort, slots: 4 }));
  api = new RuntimeApi(hp.opener);
  await gate().waitUp('app', [replica('127.0.0.2')], Date.now() + 5000);
});

afterEach(async () => {
  await hp.stop();
});

test('waitUp resolves once DNS put the new replica in a slot and its health check passed', async () => {
  dns.records.set('app', ['127.0.0.2', '127.0.0.3']);
  const started = Date.now();
  await gate().waitUp('app', [replica('127.0.0.3')], Date.now() + 5000);
  const s = await slot('127.0.0.3');
  assert.ok(s, 'the new IP holds a slot');
  assert.equal(s.opState, 2);
  assert.equal(s.adminState, 0);
  assert.ok(Date.now() - started < 5000);
  assert.ok(timeline.events.some((e) => e.action === 'up-in-proxy' && e.container === 'app-3'));
});

test('waitUp rejects at the deadline naming the replica that never showed up', async () => {
  await assert.rejects(gate().waitUp('app', [replica('127.0.0.9')], Date.now() + 600), /app-9 \(127\.0\.0\.9\): in no slot/);
});

test('waitUp rejects when the new replica is resolved but fails its health check', async () => {
  replicas.get('127.0.0.3')!.healthy = false;
  try {
    dns.records.set('app', ['127.0.0.2', '127.0.0.3']);
    await assert.rejects(
      gate().waitUp('app', [replica('127.0.0.3')], Date.now() + 1500),
      /app-3 \(127\.0\.0\.3\): app\/app\d (STOPPED|RUNNING) READY \(health check not passed\)/,
    );
  } finally {
    replicas.get('127.0.0.3')!.healthy = true;
  }
});

test('drain: maint stops new requests at once, waits for the in-flight one, then release returns the slot', async () => {
  // One slow request on the old replica (the only one in rotation).
  const slow = get('/slow?ms=1200');
  await waitFor('the slow request to reach the old replica', async () => replicas.get('127.0.0.2')!.inFlight > 0);

  dns.records.set('app', ['127.0.0.2', '127.0.0.3']);
  const g = gate();
  await g.waitUp('app', [replica('127.0.0.3')], Date.now() + 5000);

  const started = Date.now();
  const draining = g.drain('app', [replica('127.0.0.2')]);
  await sleep(200);
  const oldSlot = (await slot('127.0.0.2'))!;
  assert.equal(oldSlot.adminState & AdminFlag.FMAINT, AdminFlag.FMAINT, 'old slot in maint while draining');
  // New requests go to the new replica only.
  for (let i = 0; i < 4; i++) assert.equal((await get('/')).servedBy, '127.0.0.3');
  await draining;
  assert.ok(Date.now() - started >= 800, 'drain waited for the in-flight request');
  const done = await slow;
  assert.equal(done.status, 200, 'the in-flight request finished normally');
  assert.equal(done.servedBy, '127.0.0.2');
  const kinds = timeline.events.filter((e) => e.container === 'app-2').map((e) => e.action);
  assert.deepEqual(kinds, ['up-in-proxy', 'drain', 'drained']);

  // The old container goes away: DNS drops its IP, release puts the slot back to ready.
  dns.records.set('app', ['127.0.0.3']);
  await g.release('app', [replica('127.0.0.2')]);
  const freed = (await api.showServersState('app')).find((s) => s.server === oldSlot.server)!;
  assert.equal(freed.adminState & AdminFlag.FMAINT, 0, 'no longer forced into maint');
  assert.notEqual(freed.addr, '127.0.0.2');
  assert.ok(logs.some((l) => l.includes(`app/${oldSlot.server} released`)));

  // A later replica can now use the slot and comes UP without help.
  dns.records.set('app', ['127.0.0.3', '127.0.0.4']);
  await g.waitUp('app', [replica('127.0.0.4')], Date.now() + 5000);
  assert.equal(logs.filter((l) => l.startsWith('warning')).length, 0);
});

test('a new replica landing in a slot this gate drained is routine: set ready with an info line, no warning', async () => {
  const g = gate();
  dns.records.set('app', ['127.0.0.2', '127.0.0.3']);
  await g.waitUp('app', [replica('127.0.0.3')], Date.now() + 5000);
  const oldSlot = (await slot('127.0.0.2'))!;
  await g.drain('app', [replica('127.0.0.2')]);
  dns.records.set('app', ['127.0.0.3']);
  await waitFor(
    'DNS to drop the old IP',
    async () => (await api.showServersState('app')).find((s) => s.server === oldSlot.server)!.addr === '-',
  );
  dns.records.set('app', ['127.0.0.3', '127.0.0.4']);
  await waitFor('the new IP to land in the maint slot', async () => (await slot('127.0.0.4'))?.server === oldSlot.server);
  await g.waitUp('app', [replica('127.0.0.4')], Date.now() + 5000);
  assert.equal((await slot('127.0.0.4'))!.adminState, 0);
  assert.ok(
    logs.some((l) => l.startsWith('info') && l.includes('parked by handoff') && l.includes('127.0.0.4')),
    logs.join('\n'),
  );
  assert.equal(logs.filter((l) => l.startsWith('warning')).length, 0, logs.join('\n'));
});

test('the trap: a new replica handed a slot still in maint is set ready by waitUp', async () => {
  const g = gate();
  // Drain the old replica and let it leave DNS without releasing its slot (as after a crash of
  // the deploy between drain and release).
  dns.records.set('app', ['127.0.0.2', '127.0.0.3']);
  await g.waitUp('app', [replica('127.0.0.3')], Date.now() + 5000);
  const oldSlot = (await slot('127.0.0.2'))!;
  await g.drain('app', [replica('127.0.0.2')]);
  dns.records.set('app', ['127.0.0.3']);
  await waitFor(
    'DNS to drop the old IP',
    async () => (await api.showServersState('app')).find((s) => s.server === oldSlot.server)!.addr === '-',
  );

  // DNS gives the lowest free slot (the maint one) to the next replica.
  dns.records.set('app', ['127.0.0.3', '127.0.0.4']);
  await waitFor('the new IP to land in the maint slot', async () => (await slot('127.0.0.4'))?.server === oldSlot.server);
  const trapped = (await slot('127.0.0.4'))!;
  assert.equal(trapped.adminState, AdminFlag.FMAINT, 'HAProxy keeps it in maint by itself');

  await new HaproxyGate({
    opener: hp.opener,
    pollMs: 50,
    log: { info: () => {}, warning: (m) => logs.push(`warning: ${m}`) },
    timeline,
  }).waitUp('app', [replica('127.0.0.4')], Date.now() + 5000);
  const fixed = (await slot('127.0.0.4'))!;
  assert.equal(fixed.adminState, 0);
  assert.equal(fixed.opState, 2);
  assert.ok(logs.some((l) => l.startsWith('warning') && l.includes('someone put in maintenance') && l.includes('127.0.0.4')));
  assert.ok(timeline.events.some((e) => e.action === 'note' && e.detail?.includes('set ready')));
});

test('drain gives up at the drain timeout with a warning, and says so in the timeline', async () => {
  const slow = get('/slow?ms=2000');
  await waitFor('the slow request', async () => replicas.get('127.0.0.2')!.inFlight > 0);
  const started = Date.now();
  await gate({ drainTimeoutMs: 400 }).drain('app', [replica('127.0.0.2')]);
  const took = Date.now() - started;
  assert.ok(took >= 400 && took < 1500, `took ${took} ms`);
  assert.ok(logs.some((l) => l.startsWith('warning') && l.includes('drain timeout')));
  const drained = timeline.events.find((e) => e.action === 'drained');
  assert.match(drained?.detail ?? '', /timeout after 400 ms/);
  await slow;
});

test('drain of a replica the proxy does not know is a no-op; release without drain too', async () => {
  const g = gate();
  await g.drain('app', [replica('127.0.0.9')]);
  await g.release('app', [replica('127.0.0.9')]);
  assert.ok(logs.some((l) => l.includes('holds no proxy slot')));
  assert.equal(timeline.events.filter((e) => e.action === 'drain').length, 0);
  assert.equal((await slot('127.0.0.2'))!.adminState, 0);
});

test('release leaves the slot in maint (with a warning) while DNS still returns the old IP', async () => {
  const g = gate({ releaseTimeoutMs: 500 });
  dns.records.set('app', ['127.0.0.2', '127.0.0.3']);
  await g.waitUp('app', [replica('127.0.0.3')], Date.now() + 5000);
  await g.drain('app', [replica('127.0.0.2')]);
  await g.release('app', [replica('127.0.0.2')]);
  assert.equal((await slot('127.0.0.2'))!.adminState & AdminFlag.FMAINT, AdminFlag.FMAINT);
  assert.ok(logs.some((l) => l.startsWith('warning') && l.includes('still holds the old app address 127.0.0.2')));
});

test('after a deploy cut off midway: a new gate claims the parked empty slots and restores the drained slot of a replica that still serves', async () => {
  const lost = gate();
  dns.records.set('app', ['127.0.0.2', '127.0.0.3']);
  await lost.waitUp('app', [replica('127.0.0.3')], Date.now() + 5000);
  // The lost process parked the empty slots and drained 127.0.0.2, then died before stopping it.
  await lost.park('app', [replica('127.0.0.2'), replica('127.0.0.3')]);
  await lost.drain('app', [replica('127.0.0.2')]);
  const states = await api.showServersState('app');
  const empty = states.filter((s) => s.addr === '-');
  assert.ok(empty.length >= 1 && empty.every((s) => s.adminState & AdminFlag.FMAINT), 'empty slots parked');
  assert.equal((await slot('127.0.0.2'))!.adminState & AdminFlag.FMAINT, AdminFlag.FMAINT, 'the drained replica is in maint');

  // The post step's gate: claimed slots make a new replica's landing routine (info, no warning)...
  logs = [];
  // Each exchange with HAProxy is one write on the gate's kept connection (one round trip).
  let exchanges = 0;
  const recovery = gate({
    opener: async () => {
      const s = await hp.opener();
      const write = s.write.bind(s) as (...a: unknown[]) => boolean;
      s.write = ((...a: unknown[]) => (exchanges++, write(...a))) as typeof s.write;
      return s;
    },
  });
  assert.equal(await recovery.claimParked('app', [replica('127.0.0.2'), replica('127.0.0.3')]), empty.length);
  dns.records.set('app', ['127.0.0.2', '127.0.0.3', '127.0.0.4']);
  await waitFor('the new IP to land in a parked slot', async () => !!(await slot('127.0.0.4')));
  await recovery.waitUp('app', [replica('127.0.0.4')], Date.now() + 5000);
  assert.equal(logs.filter((l) => l.startsWith('warning')).length, 0, logs.join('\n'));
  // ...unpark returns the rest, and restore puts the still-serving replica back in rotation: each
  // one read and one line of changes, however many slots.
  exchanges = 0;
  await recovery.unpark('app');
  assert.equal(exchanges, 2, 'unpark: two exchanges');
  exchanges = 0;
  const restored = await recovery.restore('app', [replica('127.0.0.2'), replica('127.0.0.3'), replica('127.0.0.4')]);
  assert.equal(exchanges, 2, 'restore: two exchanges');
  assert.deepEqual(restored, [`app/${(await slot('127.0.0.2'))!.server}`]);
  const after = await api.showServersState('app');
  assert.deepEqual(
    after.filter((s) => s.adminState & AdminFlag.FMAINT).map((s) => s.server),
    [],
    'no slot left in maint',
  );
  await waitFor('127.0.0.2 to serve again', async () => (await slot('127.0.0.2'))?.opState === 2);
});

test("issue #10: after every slot was in maint, the first replica set ready waits for the rest of HAProxy's roundrobin window, then all share", async () => {
  // HAProxy 2.6 roundrobin (fwrr) runs in windows of the backend's total weight (here 3 x 16 = 48
  // picks) and keeps the current window while servers come and go. With every slot in maint the
  // backend's weight drops to 0 mid-window; the first replica set ready adds 16 to a stale window of
  // 48, and once 16+ picks of that window are used HAProxy queues it for the next window while the
  // two set ready after it take the rest of the current one. Not a gate bug (all three are UP in the
  // LB, the wait is counted in requests, bounded by the window), but the reason 12 requests after
  // the e2e maint-slot trap can reach only two of three replicas.
  const g = gate();
  const ips = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
  dns.records.set('app', ips);
  await g.waitUp('app', ips.map(replica), Date.now() + 5000);
  const lbtot = async () => {
    const [header, ...rows] = (await api.command('show stat')).split('\n');
    const col = header!.replace(/^# /, '').split(',').indexOf('lbtot');
    return Number(rows.find((r) => r.startsWith('app,BACKEND,'))!.split(',')[col]);
  };
  // 20 requests served in this window before the trap (the earlier tests' traffic in the e2e suite).
  for (let n = await lbtot(); n < 20; n++) assert.equal((await get('/')).status, 200);
  assert.equal(await lbtot(), 20);

  for (const s of await api.showServersState('app')) await api.setServerState('app', s.server, 'maint');
  // No traffic while the replicas come back one by one, as during the e2e deploy.
  for (const ip of ips) await g.waitUp('app', [replica(ip)], Date.now() + 5000);
  for (const ip of ips) {
    const s = (await slot(ip))!;
    assert.equal(s.opState, 2, `${ip} is UP`);
    assert.equal(s.adminState, 0, `${ip} is out of maint`);
  }

  const sequence: string[] = [];
  while (new Set(sequence).size < 3 && sequence.length < 48) sequence.push((await get('/')).servedBy);
  assert.equal(new Set(sequence).size, 3, `all three within one window: ${sequence.join(' ')}`);
  const first = sequence.indexOf('127.0.0.2') + 1;
  assert.ok(first > 12, `the first replica set ready waits past 12 requests (it answered request ${first}): ${sequence.join(' ')}`);
  assert.deepEqual(new Set(sequence.slice(0, first - 1)), new Set(['127.0.0.3', '127.0.0.4']), 'the two others alternate meanwhile');
  // Then plain round robin.
  const share = new Map<string, number>();
  for (let k = 0; k < 12; k++) {
    const by = (await get('/')).servedBy;
    share.set(by, (share.get(by) ?? 0) + 1);
  }
  assert.deepEqual([...share.values()].sort(), [4, 4, 4], `even share afterwards: ${JSON.stringify([...share])}`);
});
