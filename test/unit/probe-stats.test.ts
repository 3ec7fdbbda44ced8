import { test } from 'node:test';
import assert from 'node:assert/strict';
import { latencyStats, percentile, summarize } from '../../src/probe/stats.js';
import type { ProbeRecord, Outcome } from '../../src/probe/record.js';
import { laneOf as laneIn, makeSchedule } from '../../src/probe/schedule.js';

const twoLanes = makeSchedule(0, 10);
const laneOf = (seq: number) => laneIn(twoLanes, seq);

const T0 = 1_700_000_000_000;

/** A record due at T0 + offsetMs, sent `lagMs` late, done after `latency` ms. */
function rec(
  seq: number,
  offsetMs: number,
  outcome: Outcome,
  latency = 10,
  extra: Partial<ProbeRecord> & { lagMs?: number } = {},
): ProbeRecord {
  const { lagMs = 0, ...fields } = extra;
  const scheduledAt = T0 + offsetMs;
  if (outcome === 'unmeasured') return { seq, lane: laneOf(seq), scheduledAt, doneAt: scheduledAt + 100, outcome, ...fields };
  const sentAt = scheduledAt + lagMs;
  return { seq, lane: laneOf(seq), scheduledAt, sentAt, doneAt: sentAt + latency, latencyMs: latency, outcome, ...fields };
}

test('percentiles are nearest-rank on known inputs', () => {
  const xs = Array.from({ length: 100 }, (_, i) => i + 1);
  assert.equal(percentile(xs, 50), 50);
  assert.equal(percentile(xs, 95), 95);
  assert.equal(percentile(xs, 99), 99);
  assert.equal(percentile([], 50), null);
  assert.equal(percentile([7], 99), 7);
  const s = latencyStats([5, 1, 4, 2, 3]);
  assert.deepEqual(s, { count: 5, p50: 3, p95: 5, p99: 5, max: 5 });
});

test('summary: counts per lane and kind, latency of ok requests only', () => {
  const records = [
    rec(0, 0, 'ok', 10),
    rec(1, 50, 'ok', 20),
    rec(2, 100, 'ok', 30),
    rec(3, 150, 'reset', 999),
    rec(4, 1200, 'timeout', 2000),
    rec(5, 1250, 'unmeasured'),
    rec(6, 2100, 'ok', 40),
  ];
  const s = summarize(records, { startedAt: T0, endedAt: T0 + 3000 });
  assert.equal(s.total.scheduled, 7);
  assert.equal(s.total.sent, 6);
  assert.equal(s.total.ok, 4);
  assert.equal(s.total.lost, 2, 'an unmeasured request is not a loss');
  assert.equal(s.total.unmeasured, 1);
  assert.equal(s.total.lostByKind.reset, 1);
  assert.equal(s.total.lostByKind.timeout, 1);
  assert.equal(s.total.latency.max, 40, 'the 999 ms reset does not count as latency');
  assert.equal(s.lanes.keepalive.ok, 3); // seq 0, 2, 6
  assert.equal(s.lanes.fresh.lost, 1); // seq 3
  assert.equal(s.lanes.fresh.unmeasured, 1); // seq 5
  assert.equal(s.lanes.keepalive.lostByKind.timeout, 1);
  assert.deepEqual(
    s.seconds.map((b) => [b.second, b.sent, b.ok, b.lost]),
    [
      [0, 4, 3, 1],
      [1, 1, 0, 1],
      [2, 1, 1, 0],
    ],
  );
  assert.equal(s.seconds[0]!.p99, 30);
  assert.equal(s.seconds[1]!.p99, null);
  assert.deepEqual(s.firstLost, { seq: 3, lane: 'fresh', outcome: 'reset', at: T0 + 150, offsetMs: 150 });
});

test('summary: empty seconds are present, late share counts lagging and unmeasured requests', () => {
  const records = [rec(0, 0, 'ok', 5), rec(1, 10, 'ok', 5, { lagMs: 25 }), rec(2, 3500, 'unmeasured'), rec(3, 3600, 'ok', 5)];
  const s = summarize(records, { startedAt: T0, endedAt: T0 + 4000 });
  assert.deepEqual(
    s.seconds.map((b) => b.second),
    [0, 1, 2, 3],
  );
  assert.equal(s.seconds[1]!.sent, 0);
  assert.equal(s.late.count, 2);
  assert.equal(s.late.share, 0.5);
  assert.equal(s.late.lagMax, 25);
});

test('summary: backends with versions and first/last seen', () => {
  const records = [
    rec(0, 0, 'ok', 10, { servedBy: 'app-1', version: 'v1' }),
    rec(1, 500, 'ok', 10, { servedBy: 'app-2', version: 'v2' }),
    rec(2, 1000, 'ok', 10, { servedBy: 'app-1', version: 'v1' }),
    rec(3, 1500, 'ok', 10),
  ];
  const s = summarize(records, { startedAt: T0, endedAt: T0 + 2000 });
  assert.deepEqual(s.backends, [
    { servedBy: 'app-1', count: 2, versions: ['v1'], firstMs: 10, lastMs: 1010 },
    { servedBy: 'app-2', count: 1, versions: ['v2'], firstMs: 510, lastMs: 510 },
  ]);
  assert.equal(s.firstLost, undefined);
});

test('unmeasured windows: runs of unmeasured requests split by gaps, with their counts', () => {
  const records = [
    rec(0, 0, 'ok'),
    rec(1, 100, 'unmeasured'),
    rec(2, 200, 'unmeasured'),
    rec(3, 300, 'unmeasured'),
    rec(4, 400, 'ok'),
    rec(5, 2000, 'unmeasured'),
    rec(6, 2050, 'reset'),
  ];
  const s = summarize(records, { startedAt: T0, endedAt: T0 + 3000 });
  assert.deepEqual(s.unmeasured, [
    { startMs: 100, endMs: 300, requests: 3 },
    { startMs: 2000, endMs: 2000, requests: 1 },
  ]);
  assert.equal(s.total.unmeasured, 4);
  assert.equal(s.total.lost, 1);
  assert.equal(s.total.sent, 3);
});

test('summary orders lanes run by separate probers by due time (their seq numbers overlap)', () => {
  const records = [rec(0, 0, 'ok'), rec(1, 500, 'ok'), { ...rec(0, 250, 'cut'), lane: 'slow' as const }];
  const s = summarize(records, { startedAt: T0, endedAt: T0 + 1000 });
  assert.equal(s.lanes.slow.lost, 1);
  assert.equal(s.lanes.slow.scheduled, 1);
  assert.equal(s.firstLost?.lane, 'slow');
  assert.equal(s.firstLost?.offsetMs, 250);
});
