import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Timeline } from '../../src/model/timeline.js';
import { summarize } from '../../src/probe/stats.js';
import { verdict } from '../../src/probe/verdict.js';
import { renderBackends, renderProbeChart, renderProbeTable } from '../../src/probe/report.js';
import type { Outcome, ProbeRecord } from '../../src/probe/record.js';
import { laneOf as laneIn, makeSchedule } from '../../src/probe/schedule.js';

const laneOf = (seq: number) => laneIn(makeSchedule(0, 10), seq);

const T0 = 1_700_000_000_000;

/** A record due at T0 + offsetMs, sent on time, done after `latency` ms. */
function rec(seq: number, offsetMs: number, outcome: Outcome, latency = 10, extra: Partial<ProbeRecord> = {}): ProbeRecord {
  const sentAt = T0 + offsetMs;
  return { seq, lane: laneOf(seq), scheduledAt: sentAt, sentAt, doneAt: sentAt + latency, latencyMs: latency, outcome, ...extra };
}

function timelineAt(...events: Array<[number, 'drain' | 'stop' | 'start', string]>): Timeline {
  let at = 0;
  const t = new Timeline(() => at);
  for (const [offset, action, container] of events) {
    at = T0 + offset;
    t.add(action, { service: 'app', container });
  }
  return t;
}

function steady(seconds: number, rate: number, lose: (seq: number) => ProbeRecord['outcome'] = () => 'ok'): ProbeRecord[] {
  const out: ProbeRecord[] = [];
  for (let seq = 0; seq < seconds * rate; seq++) out.push(rec(seq, (seq * 1000) / rate, lose(seq), 12));
  return out;
}

test('verdict: a loss names the first lost request and the nearest rollout event', () => {
  const records = steady(20, 10, (seq) => (seq === 123 || seq === 130 ? 'reset' : seq === 150 ? 'timeout' : 'ok'));
  const s = summarize(records, { startedAt: T0, endedAt: T0 + 20_000 });
  const timeline = timelineAt([5000, 'start', 'app_app_3'], [11_900, 'drain', 'app_app_2'], [16_000, 'stop', 'app_app_2']);
  const v = verdict(s, 0, timeline);
  assert.equal(v.passed, false);
  assert.equal(
    v.message,
    "3 requests lost of 200 sent (max_lost 0; 2 reset, 1 timeout): first at +12.3 s on the fresh lane (reset), 0.4 s after 'drain app_app_2'",
  );
  assert.equal(verdict(s, 3, timeline).passed, true, 'max_lost is inclusive');
  assert.match(verdict(s, 0).message, /\(reset\)$/, 'no timeline: no event named');
  const before = verdict(s, 0, timelineAt([13_000, 'stop', 'app_app_1']));
  assert.match(before.message, /0\.7 s before 'stop app_app_1'$/);
});

test('verdict: no loss passes; nothing sent fails', () => {
  const s = summarize(steady(2, 10), { startedAt: T0, endedAt: T0 + 2000 });
  assert.deepEqual(verdict(s, 0), { passed: true, message: '0 requests lost of 20 sent (max_lost 0), p99 12 ms' });
  const empty = summarize([], { startedAt: T0, endedAt: T0 });
  assert.equal(verdict(empty, 0).passed, false);
});

test('table: one row per lane plus total, lost by kind, latency columns', () => {
  const s = summarize(
    steady(2, 10, (seq) => (seq === 3 ? 'cut' : 'ok')),
    { startedAt: T0, endedAt: T0 + 2000 },
  );
  const md = renderProbeTable(s);
  const rows = md.split('\n').filter((l) => l.startsWith('| ') && !l.startsWith('| ---'));
  assert.equal(rows.length, 4);
  assert.match(rows[0]!, /\| lane \| requests \| sent \| ok \| lost \| lost by kind \| unmeasured \| p50 \| p95 \| p99 \| max \|/);
  assert.equal(rows[2], '| fresh connection | 10 | 10 | 9 | 1 | 1 cut | 0 | 12 ms | 12 ms | 12 ms | 12 ms |');
  assert.equal(rows[3], '| **total** | 20 | 20 | 19 | 1 | 1 cut | 0 | 12 ms | 12 ms | 12 ms | 12 ms |');
  assert.doesNotMatch(md, /long requests|Unmeasured/, 'no slow lane and no unmeasured window: not shown');
  assert.match(md, /0 of 20 requests \(0\.0 %\) left more than 10 ms behind schedule/);
});

test('chart: valid xychart-beta shape, one point per second, events marked', () => {
  const s = summarize(
    steady(5, 10, (seq) => (seq >= 20 && seq < 23 ? 'refused' : 'ok')),
    { startedAt: T0, endedAt: T0 + 5000 },
  );
  const md = renderProbeChart(s, timelineAt([2100, 'drain', 'app_app_1'], [60_000, 'stop', 'later']));
  const lines = md.split('\n');
  assert.equal(lines[0], '```mermaid');
  assert.equal(lines[1], 'xychart-beta');
  assert.match(lines[2]!, /^ {4}title "[^"]+"$/);
  assert.equal(lines[3], '    x-axis "seconds since probe start" ["0", "1", "2*", "3", "4"]');
  assert.match(lines[4]!, /^ {4}y-axis "requests per second"$/);
  assert.equal(lines[5], '    bar [10, 10, 7, 10, 10]');
  assert.equal(lines[6], '    line [0, 0, 3, 0, 0]');
  assert.equal(lines[7], '```');
  assert.match(md, /\\\* rollout events: \+2\.1 s drain app_app_1$/);
  assert.doesNotMatch(md, /later/, 'events outside the probe window are left out');
});

test('chart: long runs are bucketed to at most 60 points with sums per bucket', () => {
  const s = summarize(
    steady(300, 2, (seq) => (seq === 10 ? 'reset' : 'ok')),
    { startedAt: T0, endedAt: T0 + 300_000 },
  );
  const md = renderProbeChart(s);
  const bars = /bar \[([^\]]*)\]/.exec(md)![1]!.split(', ').map(Number);
  const labels = /x-axis "[^"]*" \[([^\]]*)\]/.exec(md)![1]!.split(', ');
  assert.equal(bars.length, 60);
  assert.equal(labels.length, 60);
  assert.equal(labels[1], '"5"');
  assert.equal(
    bars.reduce((a, b) => a + b, 0),
    599,
  );
  assert.match(md, /per 5 s/);
  const line = /line \[([^\]]*)\]/.exec(md)![1]!.split(', ').map(Number);
  assert.deepEqual([line[0], line[1], line.reduce((a, b) => a + b, 0)], [0, 1, 1], 'the loss at +5 s lands in the second bucket');
});

test('backends: a row per backend, escaped cells; a note when none identified', () => {
  const records = [rec(0, 0, 'ok', 10, { servedBy: 'app|1', version: 'v1' }), rec(1, 1000, 'ok', 10, { servedBy: 'app-2' })];
  const md = renderBackends(summarize(records, { startedAt: T0, endedAt: T0 + 2000 }));
  const rows = md.split('\n');
  assert.equal(rows.length, 4);
  assert.equal(rows[2], '| app\\|1 | v1 | 1 | +0.0 s | +0.0 s |');
  assert.equal(rows[3], '| app-2 | – | 1 | +1.0 s | +1.0 s |');
  assert.match(renderBackends(summarize(steady(1, 2), { startedAt: T0, endedAt: T0 + 1000 })), /No backend identified itself/);
});

test('table: the long-request lane gets its row; unmeasured windows are listed', () => {
  const records = steady(2, 10, (seq) => (seq >= 4 && seq < 8 ? 'unmeasured' : 'ok'));
  records.push({ ...rec(0, 300, 'cut', 1000), lane: 'slow' });
  const s = summarize(records, { startedAt: T0, endedAt: T0 + 2000 });
  const md = renderProbeTable(s);
  assert.match(md, /\| long requests \| 1 \| 1 \| 0 \| 1 \| 1 cut \| 0 \|/);
  assert.match(md, /\| \*\*total\*\* \| 21 \| 17 \| 16 \| 1 \| 1 cut \| 4 \|/);
  assert.match(md, /\*\*Unmeasured:\*\* 4 requests could not be sent before their deadline .* in 1 window\(s\): \+0\.4 s for 0\.3 s \(4\)/);
});

test('verdict: unmeasured requests are not losses; a window around a drain warns, or fails with probe_unmeasured: fail', () => {
  const records = steady(10, 10, (seq) => (seq >= 40 && seq < 50 ? 'unmeasured' : 'ok'));
  const s = summarize(records, { startedAt: T0, endedAt: T0 + 10_000 });
  const quiet = verdict(s, 0, timelineAt([8000, 'start', 'app_app_4']));
  assert.equal(quiet.passed, true);
  assert.equal(quiet.warning, undefined, 'no risky event near the window: no warning');
  assert.match(quiet.message, /^0 requests lost of 90 sent .*; 10 requests unmeasured in 1 window/);
  const drainNear = timelineAt([4500, 'drain', 'app_app_2']);
  const warned = verdict(s, 0, drainNear, { timeoutMs: 2000 });
  assert.equal(warned.passed, true, 'a correct deploy on a busy runner passes');
  assert.match(warned.warning ?? '', /around drain app_app_2 \(first window \+4\.0 s, 0\.9 s long\)/);
  const failed = verdict(s, 0, drainNear, { unmeasured: 'fail', timeoutMs: 2000 });
  assert.equal(failed.passed, false);
  assert.match(failed.message, /probe_unmeasured: fail/);
  // A drain far from the window (beyond one deadline) is not "around" it.
  assert.equal(verdict(s, 0, timelineAt([9000, 'drain', 'app_app_2']), { unmeasured: 'fail', timeoutMs: 2000 }).passed, true);
  // Real losses still fail, whatever the unmeasured policy.
  const lossy = summarize(
    steady(10, 10, (seq) => (seq === 70 ? 'reset' : seq >= 40 && seq < 50 ? 'unmeasured' : 'ok')),
    { startedAt: T0, endedAt: T0 + 10_000 },
  );
  assert.equal(verdict(lossy, 0).passed, false);
});
