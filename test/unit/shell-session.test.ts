import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Duplex, PassThrough } from 'node:stream';
import type { ClientChannel } from 'ssh2';
import { AnswerReader, commandFrame, shellScript, ShellSession } from '../../src/ssh/shell-session.js';
import { fromShell } from '../../src/ssh/connection.js';

const answer = (id: number, code: number, out: string, err: string) =>
  Buffer.concat([Buffer.from(`R ${id} ${code} ${Buffer.byteLength(out)} ${Buffer.byteLength(err)}\n`), Buffer.from(out), Buffer.from(err)]);

test('AnswerReader: the ready line, then answers split anywhere (even inside a UTF-8 character)', () => {
  const bytes = Buffer.concat([
    Buffer.from('handoff-shell ready\n'),
    answer(2, 0, 'hé ✓\n', ''),
    answer(1, 3, '', 'boom\n'),
    answer(7, 0, 'R 9 0 1 1\n', ''),
  ]);
  for (const size of [1, 3, 7, bytes.length]) {
    const r = new AnswerReader();
    let ready = false;
    const got: Array<{ id: number; code: number; stdout: string; stderr: string }> = [];
    for (let i = 0; i < bytes.length; i += size) {
      const step = r.push(bytes.subarray(i, i + size));
      ready ||= step.ready;
      got.push(...step.answers);
    }
    assert.ok(ready, `ready (chunks of ${size})`);
    assert.deepEqual(got, [
      { id: 2, code: 0, stdout: 'hé ✓\n', stderr: '' },
      { id: 1, code: 3, stdout: '', stderr: 'boom\n' },
      { id: 7, code: 0, stdout: 'R 9 0 1 1\n', stderr: '' },
    ]);
  }
});

test('AnswerReader: anything but the ready line first (a login banner, a shell error) is refused', () => {
  assert.throws(() => new AnswerReader().push(Buffer.from('Welcome to the host\n')), /unexpected first line/);
  const r = new AnswerReader();
  r.push(Buffer.from('handoff-shell ready\n'));
  assert.throws(() => r.push(Buffer.from('garbage\n')), /unexpected answer header/);
});

test('fromShell: 128+N is read as killed by signal N; output tails kept as a channel keeps them', () => {
  const killed = fromShell({ code: 137, signal: undefined, timedOut: false, stdout: '', stderr: '' });
  assert.deepEqual([killed.code, killed.signal], [undefined, 'SIGKILL']);
  const plain = fromShell({ code: 3, signal: undefined, timedOut: false, stdout: 'x', stderr: 'y' });
  assert.deepEqual([plain.code, plain.signal, plain.stdout, plain.stderr], [3, undefined, 'x', 'y']);
  const big = fromShell({ code: 0, signal: undefined, timedOut: false, stdout: 'a'.repeat(2 * 1024 * 1024) + 'END', stderr: '' });
  assert.ok(big.stdout.endsWith('END') && big.stdout.length < 1.1 * 1024 * 1024);
  assert.match(big.stdout, /^\[\.\.\. \d+ characters of output dropped\]/);
});

for (const shell of [['sh'], ['busybox', 'sh']]) {
  test(`the shell script under ${shell.join(' ')}: commands at once, answered as each ends, files removed at the end`, async () => {
    const p = spawn(shell[0]!, [...shell.slice(1), '-c', shellScript('tok_1')], { env: { ...process.env, SHELL: '/bin/sh' } });
    const r = new AnswerReader();
    const got: Array<{ id: number; code: number; stdout: string; stderr: string }> = [];
    let ready = false;
    p.stdout.on('data', (c: Buffer) => {
      const step = r.push(c);
      ready ||= step.ready;
      got.push(...step.answers);
    });
    const send = (id: number, secs: string, cmd: string) => p.stdin.write(commandFrame(id, secs, cmd, 'tok_1'));
    send(1, '10.000', 'sleep 0.4; echo "$0"');
    send(2, '10.000', 'echo two; echo err >&2; exit 3');
    send(3, '0.300', 'sleep 30');
    // Lines kept as they are: leading spaces, a trailing backslash, an empty line, a here-document.
    send(4, '10.000', "cat <<'X'\n  two spaces\\\n\n end \\t\nX\nprintf 'no newline'");
    p.stdin.end();
    const code = await new Promise<number | null>((resolve) => p.on('exit', resolve));
    assert.equal(code, 0);
    assert.ok(ready);
    // 2 ends at once, 1 after 0.4 s; 3 is killed at its limit (BusyBox's timeout checks once a second).
    assert.deepEqual(
      got.map((a) => a.id).filter((id) => id === 1 || id === 2),
      [2, 1],
      'answered in the order they ended',
    );
    assert.deepEqual(
      got.find((a) => a.id === 2),
      { id: 2, code: 3, stdout: 'two\n', stderr: 'err\n' },
    );
    assert.equal(got.find((a) => a.id === 3)?.code, 137, 'killed at its limit, not after its 30 s');
    assert.deepEqual(
      got.find((a) => a.id === 4),
      { id: 4, code: 0, stdout: '  two spaces\\\n\n end \\t\nno newline', stderr: '' },
    );
    const first = got.find((a) => a.id === 1)!;
    const dir = first.stdout.trim().replace(/\/[^/]+$/, '');
    assert.match(dir, /handoff-shell\./);
    const { existsSync } = await import('node:fs');
    assert.equal(existsSync(dir), false, 'its temp dir is removed');
  });
}

test('the shell script under busybox sh: its temp dir goes even when the last answers end all at once (their files removed in the background)', async () => {
  // Without the retry, BusyBox's rm -rf left the dir in about 1 run in 10 like these.
  const { existsSync } = await import('node:fs');
  const left: string[] = [];
  for (let run = 0; run < 12; run++) {
    const p = spawn('busybox', ['sh', '-c', shellScript('tok_1')], { env: { ...process.env, SHELL: '/bin/sh' } });
    const r = new AnswerReader();
    const got: string[] = [];
    p.stdout.on('data', (c: Buffer) => got.push(...r.push(c).answers.map((a) => a.stdout)));
    for (let id = 1; id <= 30; id++) p.stdin.write(commandFrame(id, '10.000', 'echo "$0"', 'tok_1'));
    p.stdin.end();
    await new Promise((resolve) => p.on('exit', resolve));
    assert.equal(got.length, 30);
    const dir = got[0]!.trim().replace(/\/[^/]+$/, '');
    if (existsSync(dir)) left.push(dir);
  }
  assert.deepEqual(left, [], 'every temp dir removed');
});

/** A stand-in for ssh2's exec channel: what the "host" prints, then (optionally) the close. */
function fakeChannel(prints: string | undefined, closes: boolean): ClientChannel {
  // Writes (the command lines) go nowhere: this host never answers them.
  const ch = new Duplex({ read() {}, write: (_c, _e, cb) => cb() }) as unknown as ClientChannel & Duplex;
  Object.assign(ch, { stderr: new PassThrough(), close: () => ch.destroy() });
  setImmediate(() => {
    if (prints !== undefined) ch.emit('data', Buffer.from(prints));
    if (closes) ch.emit('close');
  });
  return ch;
}

test('ShellSession.start: no shell (a banner first, an exec refused, a channel that closes or stays silent) means channels as before', async () => {
  assert.equal(await ShellSession.start((_script, cb) => cb(undefined, fakeChannel('Welcome!\n', false)), 1000), undefined, 'banner');
  assert.equal(
    await ShellSession.start((_script, cb) => cb(new Error('exec refused'), fakeChannel(undefined, false)), 1000),
    undefined,
    'refused',
  );
  assert.equal(
    await ShellSession.start((_script, cb) => cb(undefined, fakeChannel(undefined, true)), 1000),
    undefined,
    'closed (exit 99: no mkfifo)',
  );
  const t0 = Date.now();
  assert.equal(await ShellSession.start((_script, cb) => cb(undefined, fakeChannel(undefined, false)), 200), undefined, 'silent');
  assert.ok(Date.now() - t0 < 1000);
  const up = await ShellSession.start((_script, cb) => cb(undefined, fakeChannel('handoff-shell ready\n', false)), 1000);
  assert.ok(up && !up.isClosed, 'the ready line: up');
});

test('ShellSession: a command still waiting when the shell goes away ends without an exit status (read as a cut link)', async () => {
  const ch = fakeChannel('handoff-shell ready\n', false);
  const session = (await ShellSession.start((_script, cb) => cb(undefined, ch), 1000))!;
  const pending = session.run('sleep 5', 5000);
  ch.emit('close');
  assert.deepEqual(await pending, { code: undefined, signal: undefined, timedOut: false, stdout: '', stderr: '' });
  assert.ok(session.isClosed);
  assert.equal((await session.run('true', 1000)).code, undefined, 'nothing runs on a closed shell');
  const timed = (await ShellSession.start((_script, cb) => cb(undefined, fakeChannel('handoff-shell ready\n', false)), 1000))!;
  assert.equal((await timed.run('sleep 5', 50)).timedOut, true);
});
