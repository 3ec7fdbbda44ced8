import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dispatch, laneOf, makeSchedule, slotAt, timerStalled } from '../../src/probe/schedule.js';

test('slots come from the start, lanes take turns', () => {
  const s = makeSchedule(1000, 20);
  assert.equal(s.intervalMs, 50);
  assert.deepEqual(
    [0, 1, 2, 40].map((q) => slotAt(s, q)),
    [1000, 1050, 1100, 3000],
  );
  assert.deepEqual(
    [0, 1, 2, 3].map((q) => laneOf(s, q)),
    ['keepalive', 'fresh', 'keepalive', 'fresh'],
  );
  const slow = makeSchedule(0, 2, ['slow']);
  assert.deepEqual(
    [0, 1].map((q) => laneOf(slow, q)),
    ['slow', 'slow'],
  );
  assert.throws(() => makeSchedule(0, 0), /rate must be > 0/);
  assert.throws(() => makeSchedule(0, 5, []), /at least one lane/);
});

test('catch-up: a late request is still sent while its deadline has not passed, with its lag', () => {
  const s = makeSchedule(0, 20); // request 10 is due at 500
  assert.deepEqual(dispatch(s, 10, 500, 2000), { send: true, lagMs: 0 });
  assert.deepEqual(dispatch(s, 10, 499, 2000), { send: true, lagMs: 0 }, 'early is not negative lag');
  assert.deepEqual(dispatch(s, 10, 2100, 2000), { send: true, lagMs: 1600 });
  assert.deepEqual(dispatch(s, 10, 2500, 2000), { send: false, lagMs: 2000 }, 'at the deadline: unmeasured');
  assert.deepEqual(dispatch(s, 10, 9500, 2000), { send: false, lagMs: 9000 });
});

test('after a stall of 3 s at 20/s with a 2 s deadline: the first 2 s of the backlog are unmeasured, the rest go out late', () => {
  const s = makeSchedule(0, 20);
  const resumeAt = 3000; // nothing could be sent from t=0 to t=3000
  const due = Array.from({ length: 61 }, (_, seq) => seq);
  const d = due.map((seq) => dispatch(s, seq, resumeAt, 2000));
  assert.equal(d.filter((x) => !x.send).length, 21, 'due at 0..1000 ms: 21 requests past the 2 s deadline');
  assert.equal(d.filter((x) => x.send).length, 40);
  // Latency from the schedule = lag + the answer's own time: request 40 (due 2000) answered in 5 ms.
  const lag = (d[40] as { lagMs: number }).lagMs;
  assert.equal(lag + 5, 1005);
});

test('a deadline timer that fired late means the prober stalled', () => {
  assert.equal(timerStalled(1000, 1005), false);
  assert.equal(timerStalled(1000, 1300), true);
  assert.equal(timerStalled(1000, 1015, 10), true);
});
