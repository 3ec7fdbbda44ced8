import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { tempRemote } from '../helpers/shell-remote.js';
import { appendAudit, auditLine, parseAuditLog, type AuditEntry } from '../../src/host/audit.js';

test('appendAudit: one JSON line per entry, 0600, hostile text stays data', async () => {
  const { remote, home, cleanup } = await tempRemote();
  try {
    const hostile: AuditEntry = {
      at: '2026-11-23T19:30:00Z',
      kind: 'deploy',
      release: '20261123T193000Z-abc1234',
      sha: 'abc1234',
      actor: "eve'; touch pwned; echo '",
      runUrl: 'https://x/$(touch pwned2)',
      result: 'failed',
      detail: 'line one\nline two\r\n`touch pwned3` \u2028 %s %n \\',
    };
    await appendAudit(remote, home, hostile);
    await appendAudit(remote, home, { at: '2026-11-23T19:31:00Z', kind: 'lock-takeover', detail: 'x'.repeat(5000) });
    const text = await readFile(join(home, 'audit.log'), 'utf8');
    const lines = text.split('\n');
    assert.equal(lines.length, 3); // two lines and the final newline
    assert.equal(lines[2], '');
    const entries = parseAuditLog(text);
    assert.deepEqual(entries[0], hostile);
    assert.equal(entries[1]!.kind, 'lock-takeover');
    assert.ok(entries[1]!.detail!.length <= 2001);
    for (const f of ['pwned', 'pwned2', 'pwned3']) assert.ok(!existsSync(join(home, f)), f);
    assert.equal((await stat(join(home, 'audit.log'))).mode & 0o777, 0o600);
  } finally {
    await cleanup();
  }
});

test('auditLine never contains a raw line break', () => {
  const line = auditLine({ at: 'now', kind: 'rollback', detail: 'a\nb\u2028c\u2029d\re' });
  assert.ok(!/[\n\r\u2028\u2029]/.test(line));
  assert.equal((JSON.parse(line) as AuditEntry).detail, 'a\nb\u2028c\u2029d\re');
});

test('appendAudit with several entries: one line each, in one command; none is nothing', async () => {
  const { remote, home, cleanup } = await tempRemote();
  try {
    const before = remote.commands.length;
    await appendAudit(remote, home, [
      { at: 't1', kind: 'prune', release: '20261123T193000Z-abc1234', result: 'failed', images: ['sha256:' + 'a'.repeat(64)] },
      { at: 't2', kind: 'prune', release: "20261123T193001Z-abc1234'; touch pwned; '", result: 'success', images: [] },
    ]);
    await appendAudit(remote, home, []);
    assert.equal(remote.commands.length - before, 1);
    const entries = parseAuditLog(await readFile(join(home, 'audit.log'), 'utf8'));
    assert.deepEqual(
      entries.map((e) => [e.kind, e.result, e.images?.length]),
      [
        ['prune', 'failed', 1],
        ['prune', 'success', 0],
      ],
    );
    assert.ok(!existsSync(join(home, 'pwned')));
  } finally {
    await cleanup();
  }
});
