import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTar, splitName, type TarEntry } from '../../src/model/tar.js';

async function extract(entries: TarEntry[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'handoff-tar-'));
  const file = join(dir, 'a.tar');
  await writeFile(file, buildTar(entries));
  execFileSync('sh', ['-c', `umask 022 && mkdir out && tar -x -o -f a.tar -C out`], { cwd: dir });
  return join(dir, 'out');
}

test('system tar extracts files, directories, modes and contents', async () => {
  const big = Buffer.alloc(70_000);
  for (let i = 0; i < big.length; i++) big[i] = (i * 7) % 251;
  const out = await extract([
    { path: 'deploy', type: 'dir', mode: 0o755 },
    { path: 'deploy/compose.yaml', type: 'file', data: Buffer.from('services: {}\n'), mode: 0o644 },
    { path: 'deploy/run.sh', type: 'file', data: Buffer.from('#!/bin/sh\n'), mode: 0o755 },
    { path: 'deploy/empty', type: 'file', data: Buffer.alloc(0), mode: 0o644 },
    { path: 'deploy/blob.bin', type: 'file', data: big, mode: 0o644 },
    { path: '.env', type: 'file', data: Buffer.from("A='b c'\n"), mode: 0o600 },
    { path: 'ünïcode name.txt', type: 'file', data: Buffer.from('x'), mode: 0o644 },
  ]);
  try {
    assert.equal(await readFile(join(out, 'deploy/compose.yaml'), 'utf8'), 'services: {}\n');
    assert.deepEqual(await readFile(join(out, 'deploy/blob.bin')), big);
    assert.equal((await readFile(join(out, 'deploy/empty'))).length, 0);
    assert.equal(await readFile(join(out, 'ünïcode name.txt'), 'utf8'), 'x');
    assert.equal((await stat(join(out, 'deploy/run.sh'))).mode & 0o777, 0o755);
    assert.equal((await stat(join(out, '.env'))).mode & 0o777, 0o600);
    assert.ok((await stat(join(out, 'deploy'))).isDirectory());
  } finally {
    await rm(join(out, '..'), { recursive: true, force: true });
  }
});

test('long paths go through the prefix field and come out whole', async () => {
  const dirs = Array.from({ length: 14 }, (_, i) => `directory-${String(i).padStart(2, '0')}`); // 14*13+... bytes
  const deep = dirs.join('/');
  const path = `${deep}/${'f'.repeat(255 - deep.length - 1)}`;
  assert.equal(Buffer.byteLength(path), 255);
  const { prefix, name } = splitName(path);
  assert.ok(prefix.length <= 155 && name.length <= 100 && `${prefix}/${name}` === path);
  const out = await extract([{ path, type: 'file', data: Buffer.from('deep'), mode: 0o644 }]);
  try {
    assert.equal(await readFile(join(out, path), 'utf8'), 'deep');
  } finally {
    await rm(join(out, '..'), { recursive: true, force: true });
  }
});

test('paths beyond ustar limits, absolute or with .. are refused', () => {
  assert.throws(() => buildTar([{ path: 'a/'.repeat(128) + 'b', type: 'file', mode: 0o644 }]), /longer than ustar allows/);
  assert.throws(() => buildTar([{ path: 'x'.repeat(120), type: 'file', mode: 0o644 }]), /cannot store path/);
  assert.throws(() => buildTar([{ path: '/etc/passwd', type: 'file', mode: 0o644 }]), /relative path/);
  assert.throws(() => buildTar([{ path: 'a/../../b', type: 'file', mode: 0o644 }]), /relative path/);
  assert.equal(splitName('short/name').prefix, '');
});

test('archive is block aligned and ends with two zero blocks', () => {
  const t = buildTar([{ path: 'a', type: 'file', data: Buffer.from('hello'), mode: 0o644 }], 0);
  assert.equal(t.length, 512 * 4);
  assert.ok(t.subarray(1024).every((b) => b === 0));
  assert.equal(t.subarray(257, 262).toString(), 'ustar');
});
