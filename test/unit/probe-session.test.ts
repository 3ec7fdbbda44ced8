import { test } from 'node:test';
import assert from 'node:assert/strict';
import { probesFor } from '../../src/probe/session.js';

const inputs = {
  url: 'http://app.test/health',
  via: 'direct' as const,
  rate: 20,
  timeoutMs: 2000,
  method: 'HEAD',
  headers: { host: 'app.test' },
  expectStatus: '200-299',
  bodyMarker: 'MARK',
  windowMs: 3000,
  unmeasured: 'warn' as const,
};

test('probesFor: one probe on the default lanes, capped at an hour', () => {
  const [only, ...rest] = probesFor(inputs);
  assert.equal(rest.length, 0);
  assert.equal(only!.lanes, undefined);
  assert.equal(only!.maxDurationMs, 60 * 60 * 1000);
  assert.equal(only!.method, 'HEAD');
  assert.equal(only!.bodyMarker, 'MARK');
});

test('probesFor: the slow lane is a probe of its own: its url, rate and timeout, GET, no body marker, same headers and statuses', () => {
  const [, slow] = probesFor({ ...inputs, slow: { url: 'http://app.test/report?ms=1000', rate: 2, timeoutMs: 10_000 } });
  assert.deepEqual(slow, {
    url: 'http://app.test/report?ms=1000',
    rate: 2,
    timeoutMs: 10_000,
    method: 'GET',
    headers: { host: 'app.test' },
    expectStatus: '200-299',
    bodyMarker: undefined,
    maxDurationMs: 60 * 60 * 1000,
    lanes: ['slow'],
  });
});
