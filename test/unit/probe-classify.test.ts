import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classify, classifyTransportError, shortError } from '../../src/probe/classify.js';
import { parseStatusSet } from '../../src/probe/status-set.js';

const ok200 = parseStatusSet('200-399');

function err(code: string | undefined, message: string, syscall?: string): Error {
  return Object.assign(new Error(message), { code, syscall });
}

test('parseStatusSet: ranges, lists, canonical text', () => {
  const s = parseStatusSet(' 200, 204 ,300-399');
  assert.equal(s.text, '200,204,300-399');
  assert.ok(s.has(200) && s.has(204) && s.has(300) && s.has(399));
  assert.ok(!s.has(201) && !s.has(400) && !s.has(199));
  assert.ok(parseStatusSet('200-399').has(302));
  assert.ok(!parseStatusSet('200-399').has(502));
});

test('parseStatusSet: refuses malformed input with the offending part named', () => {
  assert.throws(() => parseStatusSet(''), /empty status set/);
  assert.throws(() => parseStatusSet('200-abc'), /"200-abc"/);
  assert.throws(() => parseStatusSet('399-200'), /reversed/);
  assert.throws(() => parseStatusSet('700'), /outside 100-599/);
  assert.throws(() => parseStatusSet('2xx'), /not a status or a range/);
});

test('transport errors map onto loss kinds', () => {
  assert.equal(classifyTransportError(err('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:1')), 'refused');
  assert.equal(classifyTransportError(new Error('(SSH) Channel open failure: Connection refused')), 'refused');
  assert.equal(classifyTransportError(err('EHOSTUNREACH', 'connect EHOSTUNREACH')), 'refused');
  assert.equal(classifyTransportError(err('ECONNRESET', 'read ECONNRESET', 'read')), 'reset');
  assert.equal(classifyTransportError(err('EPIPE', 'write EPIPE', 'write')), 'reset');
  // Node's name for a connection closed before any response byte.
  assert.equal(classifyTransportError(err('ECONNRESET', 'socket hang up')), 'empty');
  assert.equal(classifyTransportError(err('ERR_STREAM_PREMATURE_CLOSE', 'Premature close')), 'empty');
  assert.equal(classifyTransportError(err('HPE_INVALID_CONSTANT', 'Parse Error: Expected HTTP/')), 'empty');
  assert.equal(classifyTransportError(err('ECONNRESET', 'aborted')), 'reset');
  assert.equal(classifyTransportError(err(undefined, 'aborted')), 'cut');
  assert.equal(classifyTransportError(err('DEPTH_ZERO_SELF_SIGNED_CERT', 'self-signed certificate')), 'refused');
  assert.equal(classifyTransportError(err('ERR_TLS_CERT_ALTNAME_INVALID', "Hostname/IP does not match certificate's altnames")), 'refused');
  assert.equal(classifyTransportError(err('ETIMEDOUT', 'connect ETIMEDOUT')), 'timeout');
});

test('classify: deadline first, then errors, framing, status, marker', () => {
  const base = { timedOut: false, responseStarted: true, complete: true, status: 200, body: 'v2 ready' };
  assert.deepEqual(classify(base, ok200, 'v2'), { outcome: 'ok' });
  assert.equal(classify({ ...base, timedOut: true, error: err('ECONNRESET', 'socket hang up') }, ok200).outcome, 'timeout');
  assert.equal(classify({ ...base, complete: false, error: err('ECONNRESET', 'aborted') }, ok200).outcome, 'cut');
  assert.equal(
    classify({ timedOut: false, responseStarted: false, complete: false, error: err('ECONNRESET', 'read ECONNRESET', 'read') }, ok200)
      .outcome,
    'reset',
  );
  assert.equal(classify({ timedOut: false, responseStarted: false, complete: false }, ok200).outcome, 'empty');
  assert.equal(classify({ ...base, complete: false }, ok200).outcome, 'cut');
  const bad = classify({ ...base, status: 502 }, ok200);
  assert.equal(bad.outcome, 'bad_status');
  assert.match(bad.error ?? '', /502 not in 200-399/);
  assert.equal(classify({ ...base, body: 'v1 ready' }, ok200, 'v2').outcome, 'body_mismatch');
  // No marker configured: any body passes.
  assert.equal(classify({ ...base, body: '' }, ok200).outcome, 'ok');
});

test('shortError is one short line with the code', () => {
  const text = shortError(err('ECONNRESET', 'socket\nhang up'));
  assert.equal(text, 'ECONNRESET: socket hang up');
  assert.ok(shortError(new Error('x'.repeat(500))).length <= 120);
});
