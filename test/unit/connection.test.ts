import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RemoteCommandError } from '../../src/host/remote.js';
import { CommandTimeoutError, commandOutcome, type ChannelEnd } from '../../src/ssh/connection.js';

const end = (over: Partial<ChannelEnd>): ChannelEnd => ({
  code: 0,
  signal: undefined,
  timedOut: false,
  stdout: 'out',
  stderr: 'err',
  ...over,
});

test('commandOutcome: exit 0 is the result; a non-zero exit fails only with check', () => {
  assert.deepEqual(commandOutcome('true', end({}), 1000, true), { code: 0, stdout: 'out', stderr: 'err' });
  const failed = commandOutcome('false', end({ code: 3 }), 1000, true);
  assert.ok(failed instanceof RemoteCommandError);
  assert.equal(failed.result.code, 3);
  assert.deepEqual(commandOutcome('false', end({ code: 3 }), 1000, false), { code: 3, stdout: 'out', stderr: 'err' });
});

test('commandOutcome: a timeout, a signal or a missing exit status fail whatever check says', () => {
  const timedOut = commandOutcome('sleep 9', end({ code: undefined, timedOut: true }), 2000, false);
  assert.ok(timedOut instanceof CommandTimeoutError);
  assert.equal(timedOut.result.code, -1);
  assert.match(timedOut.message, /timed out after 2 s/);
  const killed = commandOutcome('x', end({ code: null, signal: 'KILL' }), 1000, false);
  assert.ok(killed instanceof RemoteCommandError);
  assert.equal(killed.signal, 'KILL');
  const dropped = commandOutcome('x', end({ code: undefined }), 1000, false);
  assert.ok(dropped instanceof RemoteCommandError);
  assert.equal(dropped.result.code, -1);
  assert.match(dropped.result.stderr, /^err\n\(ssh: the channel closed without an exit status/);
});
