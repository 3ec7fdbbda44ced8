/**
 * The remote command builders (src/commands/*): the exact command text, and that every value stays
 * one literal argument, checked by running the built command with a local `sh` in a temp dir.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { tempRemote } from '../helpers/shell-remote.js';
import { NO_FILE, readFileCommand } from '../../src/commands/files.js';

/** A value a careless builder would let the shell interpret. */
const NASTY = `it's $(touch pwned) \`touch pwned2\` "q" ; *`;

test('readFileCommand: prints a readable regular file, exits NO_FILE otherwise', async () => {
  assert.equal(readFileCommand('/h/app/current'), `if [ -f /h/app/current ] && [ -r /h/app/current ]; then cat -- /h/app/current; else exit ${NO_FILE}; fi`);
  assert.equal(readFileCommand("/h/it's"), `if [ -f '/h/it'\\''s' ] && [ -r '/h/it'\\''s' ]; then cat -- '/h/it'\\''s'; else exit 3; fi`);
});

test('readFile over a real shell: text, undefined for missing, directory or unreadable, quotes stay literal', async () => {
  const { remote, home, cleanup } = await tempRemote();
  try {
    const nasty = join(home, NASTY);
    await writeFile(nasty, 'one\ntwo\n');
    assert.equal(await remote.readFile(nasty), 'one\ntwo\n');
    assert.equal(await remote.readFile(join(home, 'missing')), undefined);
    await mkdir(join(home, 'dir'));
    assert.equal(await remote.readFile(join(home, 'dir')), undefined);
    await writeFile(join(home, 'empty'), '');
    assert.equal(await remote.readFile(join(home, 'empty')), '');
    assert.equal(await remote.readFile('-n'), undefined, 'a path that looks like an option is a path');
    await writeFile(join(home, '-n'), 'dash\n');
    assert.equal(await remote.readFile('-n'), 'dash\n', 'relative to the home dir, read as a file');
    if (process.getuid?.() !== 0) {
      await writeFile(join(home, 'secret'), 'x');
      await chmod(join(home, 'secret'), 0o000);
      assert.equal(await remote.readFile(join(home, 'secret')), undefined);
    }
    assert.deepEqual(
      (await remote.exec('ls -A')).stdout.split('\n').filter((f) => f.startsWith('pwned')),
      [],
      'nothing in the path ran',
    );
  } finally {
    await cleanup();
  }
});
