import { test } from 'node:test';
import assert from 'node:assert/strict';
import { armDeadline, requestHeaders } from '../../src/probe/prober.js';

test('request headers: probe identity first, the user may override them, the fresh lane always closes', () => {
  assert.deepEqual(requestHeaders({}, { seq: 7, lane: 'keepalive' }), { 'user-agent': 'handoff-probe', 'x-handoff-probe': '7 keepalive' });
  assert.deepEqual(requestHeaders({ headers: { 'user-agent': 'mine', connection: 'keep-alive' } }, { seq: 8, lane: 'fresh' }), {
    'user-agent': 'mine',
    'x-handoff-probe': '8 fresh',
    connection: 'close',
  });
  assert.equal(requestHeaders({ body: 'é' }, { seq: 0, lane: 'slow' })['content-length'], '2', 'bytes, not characters');
});

/** armDeadline on mocked timers, with a clock the test moves by hand (0 = the send). */
function deadlineFixture(t: import('node:test').TestContext, timeoutMs: number) {
  t.mock.timers.enable({ apis: ['setTimeout'] });
  const state = { clock: 0, timedOut: 0 };
  const cancel = armDeadline(
    () => state.clock,
    0,
    timeoutMs,
    () => state.timedOut++,
  );
  return { state, cancel, advance: (ms: number) => t.mock.timers.tick(ms) };
}

test('deadline: fires once at the timeout when the prober kept time', (t) => {
  const { state, advance } = deadlineFixture(t, 1000);
  state.clock = 999;
  advance(999);
  assert.equal(state.timedOut, 0);
  state.clock = 1000;
  advance(1);
  assert.equal(state.timedOut, 1);
});

test('deadline: a timer that fired late gives the stolen time back once, then stands', (t) => {
  const { state, advance } = deadlineFixture(t, 1000);
  state.clock = 1300; // the event loop was stalled 300 ms past the deadline
  advance(1000);
  assert.equal(state.timedOut, 0, 'extended by the 300 ms stolen');
  state.clock = 1900; // late again: no second extension
  advance(299);
  assert.equal(state.timedOut, 0);
  advance(1);
  assert.equal(state.timedOut, 1);
});

test('deadline: the time given back is at most one timeout; cancel stops it', (t) => {
  const { state, advance, cancel } = deadlineFixture(t, 1000);
  state.clock = 5000;
  advance(1000);
  advance(999);
  assert.equal(state.timedOut, 0);
  advance(1);
  assert.equal(state.timedOut, 1);

  const second = armDeadline(
    () => state.clock,
    state.clock,
    1000,
    () => state.timedOut++,
  );
  second();
  cancel();
  advance(5000);
  assert.equal(state.timedOut, 1);
});
