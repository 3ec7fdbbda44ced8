import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempRemote } from '../helpers/shell-remote.js';
import type { ReleaseManifest } from '../../src/model/release.js';
import {
  abandonIfPending,
  activateRelease,
  markAbandoned,
  pruneAuditEntries,
  copyRelease,
  listReleases,
  pruneReleases,
  readCurrent,
  releaseArchive,
  resolveRemoteDir,
  setCurrent,
  updateManifest,
  uploadRelease,
} from '../../src/host/release-store.js';

const R = (n: number) => `2026112${n}T100000Z-aaaaaa${n}`;

function manifest(id: string, files: string[], extra: Partial<ReleaseManifest> = {}): ReleaseManifest {
  return {
    id,
    project: 'shop',
    sha: `${id.slice(-7)}${'0'.repeat(33)}`,
    ref: 'refs/heads/main',
    actor: 'alice',
    runUrl: 'https://github.com/o/r/actions/runs/1',
    createdAt: '2026-11-23T19:30:00Z',
    files,
    composeFiles: ['deploy/compose.yaml'],
    services: {},
    result: 'pending',
    ...extra,
  };
}

const mode = async (p: string) => (await stat(p)).mode & 0o777;

test('resolveRemoteDir: relative under HOME, created 0700, absolute and physical', async () => {
  const { remote, home, cleanup } = await tempRemote();
  try {
    const dir = await resolveRemoteDir(remote, 'handoff/shop');
    assert.equal(dir, join(execFileSync('realpath', [home]).toString().trim(), 'handoff/shop'));
    assert.equal(await mode(dir), 0o700);
    assert.equal(await resolveRemoteDir(remote, '~/handoff/shop/'), dir);
    const abs = join(home, 'abs dir');
    assert.equal(await resolveRemoteDir(remote, abs), abs);
  } finally {
    await cleanup();
  }
});

test('uploadRelease: atomic rename, files, modes 0700/0600, one round trip', async () => {
  const { remote, home, cleanup } = await tempRemote();
  try {
    const dir = await resolveRemoteDir(remote, 'rd');
    const files = [
      { path: 'deploy/compose.yaml', data: Buffer.from('services: {}\n'), mode: 0o644 },
      { path: 'deploy/haproxy/haproxy.cfg', data: Buffer.from('global\n'), mode: 0o664 },
      { path: "odd name's/$(touch pwned)", data: Buffer.from('x'), mode: 0o600 },
    ];
    const before = remote.commands.length;
    await uploadRelease(
      remote,
      dir,
      R(1),
      files,
      'A=1\n',
      manifest(
        R(1),
        files.map((f) => f.path),
      ),
    );
    assert.equal(remote.commands.length - before, 1);
    const rel = join(dir, 'releases', R(1));
    assert.equal(await readFile(join(rel, 'deploy/compose.yaml'), 'utf8'), 'services: {}\n');
    assert.equal(await readFile(join(rel, "odd name's/$(touch pwned)"), 'utf8'), 'x');
    assert.ok(!existsSync(join(home, 'pwned')) && !existsSync(join(dir, 'pwned')));
    assert.equal(await mode(join(dir, 'releases')), 0o700);
    assert.equal(await mode(rel), 0o700);
    assert.equal(await mode(join(rel, '.env')), 0o600);
    assert.equal(await mode(join(rel, 'release.json')), 0o600);
    assert.equal(await mode(join(rel, 'deploy/haproxy/haproxy.cfg')), 0o644); // group write dropped
    assert.deepEqual((await readdir(join(dir, 'releases'))).sort(), [R(1)]); // no tmp dir left
    await assert.rejects(uploadRelease(remote, dir, R(1), files, '', manifest(R(1), [])), /exists already/);
    assert.equal(await readFile(join(rel, '.env'), 'utf8'), 'A=1\n'); // the existing release is untouched
  } finally {
    await cleanup();
  }
});

test('release files are validated before anything is sent', () => {
  const m = manifest(R(1), []);
  assert.throws(() => releaseArchive([{ path: '../etc/passwd', data: Buffer.alloc(0) }], '', m), /no '\.\.'/);
  assert.throws(() => releaseArchive([{ path: '/etc/passwd', data: Buffer.alloc(0) }], '', m), /relative/);
  assert.throws(() => releaseArchive([{ path: 'a\nb', data: Buffer.alloc(0) }], '', m), /control characters/);
  assert.throws(() => releaseArchive([{ path: '.env', data: Buffer.alloc(0) }], '', m), /reserved/);
  assert.throws(
    () =>
      releaseArchive(
        [
          { path: 'a', data: Buffer.alloc(0) },
          { path: 'a/b', data: Buffer.alloc(0) },
        ],
        '',
        m,
      ),
    /also a directory/,
  );
});

test('activateRelease: replaces files in place, keeps directory inodes, drops stale files', async () => {
  const { remote, cleanup } = await tempRemote();
  try {
    const dir = await resolveRemoteDir(remote, 'rd');
    const v1 = [
      { path: 'deploy/compose.yaml', data: Buffer.from('v1\n') },
      { path: 'deploy/haproxy/haproxy.cfg', data: Buffer.from('cfg1\n') },
      { path: 'deploy/haproxy/old.map', data: Buffer.from('map\n') },
    ];
    await uploadRelease(
      remote,
      dir,
      R(1),
      v1,
      'V=1\n',
      manifest(
        R(1),
        v1.map((f) => f.path),
      ),
    );
    await activateRelease(remote, dir, R(1));
    const app = join(dir, 'app');
    const ino = async (p: string) => execFileSync('stat', ['-c', '%i', p]).toString().trim();
    const dirIno = await ino(join(app, 'deploy/haproxy'));
    const fileIno = await ino(join(app, 'deploy/haproxy/haproxy.cfg'));
    assert.equal(await readFile(join(app, 'deploy/haproxy/haproxy.cfg'), 'utf8'), 'cfg1\n');
    assert.equal(await mode(join(app, '.env')), 0o600);
    assert.equal(await mode(app), 0o700);

    const v2 = [
      { path: 'deploy/compose.yaml', data: Buffer.from('v2\n') },
      { path: 'deploy/haproxy/haproxy.cfg', data: Buffer.from('cfg2\n') },
    ];
    await uploadRelease(
      remote,
      dir,
      R(2),
      v2,
      'V=2\n',
      manifest(
        R(2),
        v2.map((f) => f.path),
      ),
    );
    await activateRelease(remote, dir, R(2));
    assert.equal(await ino(join(app, 'deploy/haproxy')), dirIno, 'the bind-mounted directory is the same inode');
    assert.notEqual(await ino(join(app, 'deploy/haproxy/haproxy.cfg')), fileIno, 'the file was replaced by rename');
    assert.equal(await readFile(join(app, 'deploy/haproxy/haproxy.cfg'), 'utf8'), 'cfg2\n');
    assert.equal(await readFile(join(app, '.env'), 'utf8'), 'V=2\n');
    assert.equal(await mode(join(app, '.env')), 0o600);
    assert.ok(!existsSync(join(app, 'deploy/haproxy/old.map')), 'a file only the previous release had is gone');
    assert.deepEqual((await readdir(join(app, 'deploy/haproxy'))).sort(), ['haproxy.cfg'], 'no temp files left');

    // a directory where a release file should go is an error, not replaced
    await mkdir(join(app, 'deploy/compose.yaml.d'));
    const v3 = [{ path: 'deploy/compose.yaml.d', data: Buffer.from('x') }];
    await uploadRelease(
      remote,
      dir,
      R(3),
      v3,
      '',
      manifest(
        R(3),
        v3.map((f) => f.path),
      ),
    );
    await assert.rejects(activateRelease(remote, dir, R(3)), /is a directory on the host/);
    assert.ok((await stat(join(app, 'deploy/compose.yaml.d'))).isDirectory());
  } finally {
    await cleanup();
  }
});

test('list, current, manifest updates and copy for rollback', async () => {
  const { remote, cleanup } = await tempRemote();
  try {
    const dir = await resolveRemoteDir(remote, 'rd');
    assert.deepEqual(await listReleases(remote, dir), []);
    assert.equal(await readCurrent(remote, dir), undefined);
    const f = [{ path: 'deploy/compose.yaml', data: Buffer.from('v\n') }];
    await uploadRelease(remote, dir, R(2), f, 'E=2\n', manifest(R(2), ['deploy/compose.yaml']));
    await uploadRelease(remote, dir, R(1), f, 'E=1\n', manifest(R(1), ['deploy/compose.yaml']));
    // a broken manifest is skipped with a warning, not fatal
    await mkdir(join(dir, 'releases', R(3)));
    await writeFile(join(dir, 'releases', R(3), 'release.json'), '{nope');
    const warnings: string[] = [];
    const list = await listReleases(remote, dir, (m) => warnings.push(m));
    assert.deepEqual(
      list.map((r) => r.id),
      [R(1), R(2)],
    );
    assert.match(warnings.join('\n'), new RegExp(`releases/${R(3)}/release.json`));

    await setCurrent(remote, dir, R(2));
    assert.equal(await readCurrent(remote, dir), R(2));
    assert.equal(await mode(join(dir, 'current')), 0o600);

    const updated = await updateManifest(remote, dir, R(2), {
      result: 'success',
      services: { app: { image: 'app:1', imageId: 'sha256:' + 'b'.repeat(64) } },
      id: 'ignored',
    });
    assert.equal(updated.id, R(2));
    const again = (await listReleases(remote, dir)).find((r) => r.id === R(2))!;
    assert.equal(again.result, 'success');
    assert.equal(again.services.app!.imageId, 'sha256:' + 'b'.repeat(64));
    assert.equal(await mode(join(dir, 'releases', R(2), 'release.json')), 0o600);

    await copyRelease(remote, dir, R(1), R(4), manifest(R(4), ['deploy/compose.yaml'], { rollbackOf: R(1) }));
    const copied = join(dir, 'releases', R(4));
    assert.equal(await readFile(join(copied, '.env'), 'utf8'), 'E=1\n');
    assert.equal(await mode(copied), 0o700);
    assert.equal(await mode(join(copied, '.env')), 0o600);
    assert.equal(await mode(join(copied, 'release.json')), 0o600);
    assert.equal(JSON.parse(await readFile(join(copied, 'release.json'), 'utf8')).rollbackOf, R(1));
    await assert.rejects(copyRelease(remote, dir, R(9), R(5), manifest(R(5), [])), /is not on the host/);
  } finally {
    await cleanup();
  }
});

test('pruneReleases: good ones up to N, current, rollback target, 3 failed; leftovers; other projects spared', async () => {
  const { remote, home, cleanup } = await tempRemote();
  try {
    const dir = await resolveRemoteDir(remote, 'handoff/shop');
    const f = [{ path: 'c.yaml', data: Buffer.from('v\n') }];
    const results: ReleaseManifest['result'][] = [
      'success',
      'success',
      'failed',
      'success',
      'rolled-back',
      'abandoned',
      'failed',
      'success',
    ];
    const id = (i: number) => `2026112${i}T100000Z-aaaaaa${i}`.replace(/^2026112(\d)T/, (_, d) => `202611${10 + Number(d)}T`);
    for (let i = 1; i <= 8; i++) await uploadRelease(remote, dir, id(i), f, '', manifest(id(i), ['c.yaml'], { result: results[i - 1]! }));
    // another project sharing the remote dir: never pruned
    await uploadRelease(remote, dir, R(0), f, '', manifest(R(0), ['c.yaml'], { project: 'blog', result: 'success' }));
    await mkdir(join(dir, 'releases', `.${R(7)}.tmp`));
    await symlink('/nonexistent', join(dir, 'releases', 'stray-link'));
    const res = await pruneReleases(remote, dir, 'shop', 2, id(8));
    // kept: 8 (serving), 4 (the next good one, and the rollback target), 7, 6, 5 (the newest three failed)
    assert.deepEqual(res.removed, [id(3), id(1), id(2)], 'failed ones first, then good ones, oldest first');
    assert.deepEqual(
      res.pruned.map((p) => [p.id, p.result]),
      [
        [id(3), 'failed'],
        [id(1), 'success'],
        [id(2), 'success'],
      ],
    );
    assert.deepEqual(
      res.kept.map((r) => r.id),
      [id(4), id(5), id(6), id(7), id(8)],
    );
    assert.deepEqual((await readdir(join(dir, 'releases'))).sort(), [R(0), id(4), id(5), id(6), id(7), id(8), 'stray-link'].sort());
    assert.ok(existsSync(home));
    const lines = pruneAuditEntries(res, 'now', 'alice', 'https://run');
    assert.deepEqual(
      lines.map((l) => [l.kind, l.release, l.result, l.images]),
      [
        ['prune', id(3), 'failed', []],
        ['prune', id(1), 'success', []],
        ['prune', id(2), 'success', []],
      ],
    );
  } finally {
    await cleanup();
  }
});

test('markAbandoned and abandonIfPending: pending releases become abandoned with the reason', async () => {
  const { remote, cleanup } = await tempRemote();
  try {
    const dir = await resolveRemoteDir(remote, 'handoff/shop');
    const f = [{ path: 'c.yaml', data: Buffer.from('v\n') }];
    await uploadRelease(remote, dir, R(1), f, '', manifest(R(1), ['c.yaml'], { result: 'success' }));
    await uploadRelease(remote, dir, R(2), f, '', manifest(R(2), ['c.yaml'], { runUrl: 'https://github.com/o/r/actions/runs/42' }));
    await uploadRelease(remote, dir, R(3), f, '', manifest(R(3), ['c.yaml'], { project: 'blog' }));
    const { releases, marked } = await markAbandoned(remote, dir, await listReleases(remote, dir), 'shop');
    assert.deepEqual(
      marked.map((m) => m.id),
      [R(2)],
    );
    const onHost = new Map((await listReleases(remote, dir)).map((r) => [r.id, r]));
    assert.equal(onHost.get(R(2))!.result, 'abandoned');
    assert.match(onHost.get(R(2))!.reason!, /runs\/42\) stopped before recording a result/);
    assert.equal(onHost.get(R(1))!.result, 'success');
    assert.equal(onHost.get(R(3))!.result, 'pending', "another project's release is not ours to judge");
    assert.deepEqual(
      releases.map((r) => r.result),
      ['success', 'abandoned', 'pending'],
    );
    assert.equal(await mode(join(dir, 'releases', R(2), 'release.json')), 0o600);

    await uploadRelease(remote, dir, R(4), f, '', manifest(R(4), ['c.yaml']));
    assert.equal(await abandonIfPending(remote, dir, R(4), 'service app: image x:1 is not on the host'), true);
    assert.equal((await listReleases(remote, dir)).find((r) => r.id === R(4))!.reason, 'service app: image x:1 is not on the host');
    assert.equal(await abandonIfPending(remote, dir, R(1), 'x'), false, 'a recorded release is left alone');
    assert.equal(await abandonIfPending(remote, dir, R(9), 'x'), false, 'no release, nothing to do');
    assert.equal((await listReleases(remote, dir)).find((r) => r.id === R(1))!.result, 'success');
  } finally {
    await cleanup();
  }
});

function docker(args: string[], input?: Buffer): string {
  return execFileSync('docker', args, { input, stdio: ['pipe', 'pipe', 'pipe'] })
    .toString()
    .trim();
}

/** A unique tiny image made with `docker import` (no registry needed). */
function makeImage(tag: string): string {
  const dir = execFileSync('mktemp', ['-d']).toString().trim();
  execFileSync('sh', ['-c', `printf %s ${JSON.stringify(tag)} > "${dir}/marker"`]);
  const tar = execFileSync('tar', ['-c', '-C', dir, 'marker']);
  docker(['import', '-', tag], tar);
  return docker(['image', 'inspect', '--format', '{{.Id}}', tag]);
}

test('pruneReleases removes only images no kept or sibling-project release references (needs Docker)', async () => {
  // Fails, not skips, without Docker: image pruning is the part that can destroy another project's rollback.
  docker(['version', '--format', '{{.Server.Version}}']);
  const { remote, cleanup } = await tempRemote();
  const tag = `handoff-prune-test-${process.pid}`;
  const ids = {
    only: makeImage(`${tag}:only`),
    shared: makeImage(`${tag}:shared`),
    sibling: makeImage(`${tag}:sibling`),
    used: makeImage(`${tag}:used`),
    other: makeImage(`${tag}:other`),
  };
  const container = docker(['create', `${tag}:used`, '/nothing']);
  const svc = (id: string) => ({ image: 'x', imageId: id });
  try {
    const dir = await resolveRemoteDir(remote, 'handoff/shop');
    const blog = await resolveRemoteDir(remote, 'handoff/blog');
    const f = [{ path: 'c.yaml', data: Buffer.from('v\n') }];
    const up = (d: string, n: number, services: ReleaseManifest['services'], project = 'shop') =>
      uploadRelease(remote, d, R(n), f, '', manifest(R(n), ['c.yaml'], { result: 'success', services, project }));
    await up(dir, 1, { a: svc(ids.only), b: svc(ids.shared), c: svc(ids.sibling), d: svc(ids.used) });
    await up(dir, 2, { b: svc(ids.shared) });
    await up(dir, 3, { b: svc(ids.shared) });
    await up(blog, 1, { web: svc(ids.sibling), x: svc(ids.other) }, 'blog');
    const res = await pruneReleases(remote, dir, 'shop', 1, R(3));
    assert.deepEqual(res.removed, [R(1)]);
    assert.deepEqual(res.imagesRemoved, [ids.only]);
    assert.deepEqual(res.imagesKept, [ids.used]); // a container uses it: docker refused, not an error
    assert.deepEqual(res.pruned, [
      {
        id: R(1),
        result: 'success',
        sha: manifest(R(1), []).sha,
        images: [ids.only, ids.used].sort(),
        imagesRemoved: [ids.only],
        imagesKept: [ids.used],
      },
    ]);
    const present = (id: string) =>
      execFileSync('sh', ['-c', `docker image inspect ${id} >/dev/null 2>&1 && echo yes || echo no`])
        .toString()
        .trim() === 'yes';
    assert.equal(present(ids.only), false);
    assert.equal(present(ids.shared), true);
    assert.equal(present(ids.sibling), true);
    assert.equal(present(ids.used), true);
    assert.equal(present(ids.other), true);
  } finally {
    execFileSync('sh', [
      '-c',
      `docker rm -f ${container} >/dev/null 2>&1; docker image rm -f ${Object.values(ids).join(' ')} >/dev/null 2>&1; true`,
    ]);
    await cleanup();
  }
});
