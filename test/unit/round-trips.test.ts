/** Round trips to the host: each call that waits for the host counts once, by kind; a batch counts its own. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { countRoundTrips, describePhase, describeRoundTrips, RoundTrips } from '../../src/host/round-trips.js';
import type { Remote } from '../../src/host/remote.js';

function fakeRemote(calls: string[]): Remote {
  return {
    exec: async (c) => (calls.push(`exec ${c}`), { code: 0, stdout: 'ok', stderr: '' }),
    writeFile: async (p) => void calls.push(`write ${p}`),
    readFile: async (p) => (calls.push(`read ${p}`), 'text'),
    openUnixSocket: async (p) => (calls.push(`unix ${p}`), new PassThrough()),
    openTcp: async (h, port) => (calls.push(`tcp ${h}:${port}`), new PassThrough()),
    close: async () => void calls.push('close'),
  };
}

test('every call that waits for the host counts once, by kind; close does not count; the calls pass through', async () => {
  const calls: string[] = [];
  const counter = new RoundTrips();
  const r = countRoundTrips(fakeRemote(calls), counter);
  assert.equal((await r.exec('true')).stdout, 'ok');
  await r.exec('docker ps');
  await r.writeFile('/a', 'x');
  assert.equal(await r.readFile('/b'), 'text');
  await r.openUnixSocket('/run/haproxy/admin.sock');
  await r.openTcp('127.0.0.1', 8080);
  await r.close();
  assert.deepEqual(calls, [
    'exec true',
    'exec docker ps',
    'write /a',
    'read /b',
    'unix /run/haproxy/admin.sock',
    'tcp 127.0.0.1:8080',
    'close',
  ]);
  assert.equal(counter.total, 6);
  assert.deepEqual(counter.current(), { total: 6, byKind: { exec: 2, read: 1, write: 1, stream: 2 } });
  assert.equal(describeRoundTrips(counter.current()), '6 (exec 2, read 1, write 1, stream 2)');
});

test('since(snapshot): what a batch took, apart from what came before; a call that fails still counted', async () => {
  const counter = new RoundTrips();
  const failing: Remote = { ...fakeRemote([]), exec: async () => Promise.reject(new Error('cut')) };
  const r = countRoundTrips(failing, counter);
  await r.readFile('/x');
  const before = counter.snapshot();
  await assert.rejects(r.exec('docker stop'), /cut/);
  await r.openUnixSocket('/s');
  await r.openUnixSocket('/s');
  const batch = counter.since(before);
  assert.deepEqual(batch, { total: 3, byKind: { exec: 1, read: 0, write: 0, stream: 2 } });
  assert.equal(describeRoundTrips(batch), '3 (exec 1, stream 2)');
  assert.equal(describeRoundTrips(counter.since(counter.snapshot())), '0');
});

test('byPhase: round trips and time per phase entered, in order; a phase entered again adds up', async () => {
  const counter = new RoundTrips('facts');
  const r = countRoundTrips(fakeRemote([]), counter);
  await r.exec('facts');
  counter.enter('lock');
  await r.exec('lock');
  await r.readFile('/owner');
  counter.enter('rollout');
  await r.openUnixSocket('/s');
  counter.enter('lock');
  await r.exec('unlock');
  const phases = counter.byPhase();
  assert.deepEqual(
    phases.map((p) => [p.phase, describeRoundTrips(p.count)]),
    [
      ['facts', '1 (exec 1)'],
      ['lock', '3 (exec 2, read 1)'],
      ['rollout', '1 (stream 1)'],
    ],
  );
  assert.ok(phases.every((p) => p.ms >= 0));
  assert.equal(describePhase({ phase: 'upload', count: phases[0]!.count, ms: 420 }), 'upload: 1 (exec 1) in 0.4 s');
  assert.deepEqual(new RoundTrips().byPhase(), [], 'no phase entered: nothing to say');
});
