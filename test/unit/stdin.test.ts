/** Public stdin carried in the command as a here-document: the command reads the very same bytes. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { INLINE_STDIN_MAX, inlineStdin } from '../../src/commands/stdin.js';

/** `sh -c command` with nothing on its real stdin. */
function sh(command: string) {
  const r = spawnSync('sh', ['-c', command], { input: '', encoding: 'utf8' });
  return { code: r.status, stdout: r.stdout };
}

test('the command reads exactly the stdin it was given, whatever the text holds', () => {
  const texts = [
    '{"runId":"1","actor":"a","token":"f00"}\n',
    'put deploy/compose.yaml\nput .env\ndel old file with spaces\n',
    '$HOME `id` $(id) \'quoted\' "double" \\back\n',
    'HANDOFF_STDIN\nHANDOFF_STDIN_\nlast\n',
    'ünïcode ✓\n\n\nblank lines above\n',
  ];
  for (const text of texts) {
    const command = inlineStdin('cat', text)!;
    assert.ok(command, text);
    assert.deepEqual(sh(command), { code: 0, stdout: text });
  }
});

test('exit codes, scripts with their own here-documents and several reads of stdin behave as with real stdin', () => {
  assert.equal(sh(inlineStdin('cat >/dev/null; exit 7', 'x\n')!).code, 7);
  const script = 'read first\ncat <<EOF\ninner $first\nEOF\ncat';
  assert.deepEqual(sh(inlineStdin(script, 'one\ntwo\nthree\n')!), { code: 0, stdout: 'inner one\ntwo\nthree\n' });
});

test('stdin that cannot ride in the command goes the usual way', () => {
  assert.equal(inlineStdin('cat', ''), undefined, 'empty');
  assert.equal(inlineStdin('cat', 'no final newline'), undefined);
  assert.equal(inlineStdin('cat', Buffer.from([0x61, 0x00, 0x0a])), undefined, 'NUL');
  assert.equal(inlineStdin('cat', Buffer.from([0xff, 0xfe, 0x0a])), undefined, 'not UTF-8');
  assert.equal(inlineStdin('cat', `${'x'.repeat(INLINE_STDIN_MAX)}\n`), undefined, 'too long');
  assert.ok(inlineStdin('cat', `${'x'.repeat(INLINE_STDIN_MAX - 1)}\n`), 'just fits');
});
