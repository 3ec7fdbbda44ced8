/** The floor of a rollout from its timeline: per batch, the parts physically needed, against what it took. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { batchFloor, describeBatchFloor, rolloutFloor, speedLine, type BatchSpan } from '../../src/model/floor.js';
import type { TimelineEvent } from '../../src/model/timeline.js';

const T = 1_000_000;
const ev = (at: number, action: TimelineEvent['action'], container?: string, extra: Partial<TimelineEvent> = {}): TimelineEvent => ({
  at: T + at,
  action,
  service: 'web',
  ...(container ? { container } : {}),
  ...extra,
});

/** A start-first batch: new-1 replaces old-1, taking `total` ms. */
function batch(offset: number, n: number, total: number, healthMs?: number): { span: BatchSpan; events: TimelineEvent[] } {
  const o = (ms: number) => offset + ms;
  const events = [
    ev(o(1_500), 'start', `new-${n}`),
    ev(o(4_600), 'healthy', `new-${n}`, healthMs === undefined ? {} : { ms: healthMs }),
    ev(o(5_600), 'up-in-proxy', `new-${n}`),
    ev(o(5_800), 'drain', `old-${n}`),
    ev(o(6_000), 'drained', `old-${n}`),
    ev(o(6_100), 'stop', `old-${n}`),
    ev(o(6_600), 'remove', `old-${n}`),
    ev(o(11_700), 'monitor-ok'),
  ];
  const span: BatchSpan = {
    service: 'web',
    index: n - 1,
    of: 2,
    startedAt: T + offset,
    endedAt: T + offset + total,
    ok: true,
    monitorMs: 5_000,
  };
  return { span, events };
}

test('a batch: health by Docker’s clock when the event has it, UP, drain, stop and monitor from the timeline', () => {
  const { span, events } = batch(0, 1, 12_000, 2_800);
  const b = batchFloor(span, events);
  assert.deepEqual(b.parts, { health: 2_800, up: 1_000, drain: 200, stop: 500, monitor: 5_000 });
  assert.equal(b.floorMs, 9_500);
  assert.equal(b.actualMs, 12_000);
  assert.equal(describeBatchFloor(b), '12.0 s (floor 9.5 s: health 2.8, up 1.0, drain 0.2, stop 0.5, monitor 5.0; 1.26x)');
});

test('without a host-timed duration, start to healthy comes from the runner’s events', () => {
  const { span, events } = batch(0, 1, 12_000);
  assert.equal(batchFloor(span, events).parts.health, 3_100);
});

test('parts of replicas started side by side count the slowest; events of other services and other batches are left out', () => {
  const { span, events } = batch(0, 1, 12_000, 2_800);
  const more = [
    ev(1_600, 'start', 'new-9'),
    ev(5_000, 'healthy', 'new-9', { ms: 3_300 }),
    ev(5_900, 'up-in-proxy', 'new-9'),
    { ...ev(2_000, 'drain', 'db-1'), service: 'db' },
    { ...ev(9_000, 'drained', 'db-1'), service: 'db' },
    ev(20_000, 'stop', 'old-7'),
    ev(29_000, 'remove', 'old-7'),
  ];
  const b = batchFloor(span, [...events, ...more]);
  assert.deepEqual(b.parts, { health: 3_300, up: 1_000, drain: 200, stop: 500, monitor: 5_000 });
});

test('a failed batch and a batch that started nothing have no monitor in their floor', () => {
  const { span, events } = batch(0, 1, 4_000, 2_800);
  assert.equal(batchFloor({ ...span, ok: false }, events).parts.monitor, 0);
  const stopOnly = [ev(100, 'stop', 'old-1'), ev(600, 'remove', 'old-1')];
  const b = batchFloor({ ...span, endedAt: T + 700 }, stopOnly);
  assert.deepEqual(b.parts, { health: 0, up: 0, drain: 0, stop: 500, monitor: 0 });
});

test('the rollout: first start to last end against the batches’ floors plus the delays between them', () => {
  const a = batch(0, 1, 12_000, 2_800);
  const b = batch(14_000, 2, 12_500, 3_000);
  const f = rolloutFloor(
    [
      { ...a.span, delayAfterMs: 1_000, roundTrips: 7 },
      { ...b.span, roundTrips: 5 },
    ],
    [...a.events, ...b.events],
  );
  assert.equal(f.rolloutMs, 26_500);
  assert.equal(f.floorMs, 9_500 + 1_000 + 9_700);
  assert.equal(f.ratio!.toFixed(3), (26_500 / 20_200).toFixed(3));
  assert.equal(speedLine(f), 'rollout 26.5 s, floor 20.2 s (1.31x); 12 round trips to the host in 2 batch(es) (6.0 per batch)');
  assert.deepEqual(rolloutFloor([], []), { batches: [], rolloutMs: 0, floorMs: 0 });
  assert.equal(speedLine(rolloutFloor([], [])), undefined);
});
