/**
 * The remote command builders (src/commands/*). Two kinds of checks:
 * - snapshots: the exact text of every builder for fixed inputs (test/unit/commands.snapshot.json;
 *   `UPDATE_SNAPSHOTS=1` rewrites it, for a change meant to alter a command);
 * - quote safety: a value with a quote, `$(...)` or backticks stays one literal argument, checked by
 *   running the built command with a local `sh` in a temp dir, with a fake `docker` on PATH that
 *   records its arguments.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempRemote } from '../helpers/shell-remote.js';
import { mkdirCommand, NO_FILE, readFileCommand, removeFileCommand, writeFileCommand } from '../../src/commands/files.js';
import { hostFactsCommand, hostSetupCommand } from '../../src/commands/host.js';
import * as releaseStore from '../../src/commands/release-store.js';
import * as lock from '../../src/commands/lock.js';
import { auditCommand } from '../../src/commands/audit.js';
import * as images from '../../src/commands/images.js';
import * as docker from '../../src/commands/docker.js';
import { checkConfigCommand } from '../../src/commands/haproxy.js';
import * as proxy from '../../src/commands/proxy.js';

/** A value a careless builder would let the shell interpret. */
const NASTY = `it's $(touch pwned) \`touch pwned2\` "q" ; *`;
const ID = '20261121T100000Z-aaaaaa1';
const ID2 = '20261122T100000Z-aaaaaa2';
const IMG = `sha256:${'a'.repeat(64)}`;
const DIR = `/home/u/handoff/${NASTY}`;

/** Every builder, with fixed inputs: name → command text. */
function allCommands(): Record<string, string> {
  return {
    readFile: readFileCommand(DIR),
    writeFile: writeFileCommand(`${DIR}/current`, `${DIR}/.current.handoff-0.tmp`, 0o600),
    mkdir: mkdirCommand(`${DIR}/app/deploy`),
    removeFile: removeFileCommand(`${DIR}/releases/${ID}/.handoff-plan.yaml`),
    hostFacts: hostFactsCommand(),
    hostSetup: hostSetupCommand('auto', NASTY, `handoff/${NASTY}`),
    resolveRemoteDir: releaseStore.resolveRemoteDirCommand(`handoff/${NASTY}`),
    uploadRelease: releaseStore.uploadReleaseCommand(DIR, ID),
    copyRelease: releaseStore.copyReleaseCommand(DIR, ID, ID2),
    activationRead: releaseStore.activationReadCommand(DIR, ID),
    activate: releaseStore.activateCommand(DIR, ID),
    listReleases: releaseStore.listReleasesCommand(DIR),
    siblingManifests: releaseStore.siblingManifestsCommand('/home/u/handoff', NASTY),
    removeReleases: releaseStore.removeReleasesCommand(DIR, [ID, ID2]),
    removeRelease: releaseStore.removeReleaseCommand(DIR, ID),
    removeReleasesNone: releaseStore.removeReleasesCommand(DIR, []),
    tryLock: lock.tryLockCommand(DIR),
    takeover: lock.takeoverCommand(DIR, '42', '1700000000', `{"runId":"1","actor":"${NASTY}"}\n`),
    releaseLockByToken: lock.releaseLockCommand(DIR, '7', NASTY),
    releaseLockByRun: lock.releaseLockCommand(DIR, NASTY),
    lockHeldBy: lock.lockHeldByCommand(DIR, NASTY),
    heartbeat: lock.heartbeatCommand(DIR, NASTY),
    audit: auditCommand(DIR, ['{"at":"t","kind":"deploy"}', NASTY]),
    imageIds: images.imageIdsCommand(['app:1', NASTY]),
    pinImages: images.pinImagesCommand([
      { image: 'app:1', imageId: IMG },
      { image: NASTY, imageId: IMG },
    ]),
    pinCheckNoPull: images.pinCheckScript([{ image: 'app:1', imageId: IMG }], false),
    pinCheckPull: images.pinCheckScript(
      [
        { image: 'app:1', imageId: IMG, digest: `sha256:${'d'.repeat(64)}` },
        { image: NASTY, imageId: IMG },
      ],
      true,
    ),
    repoDigests: images.repoDigestsCommand([IMG]),
    removeImages: images.removeImagesCommand([IMG, NASTY]),
    projectContainerIds: docker.projectContainerIdsCommand(NASTY),
    inspect: docker.inspectCommand(['a', NASTY]),
    logs: docker.containerLogsCommand(NASTY, 50),
    logsSince: docker.containerLogsSinceCommand(NASTY, '2026-01-01T00:00:00.1Z'),
    hostTime: docker.hostTimeCommand(),
    kill: docker.killCommand(NASTY, 'USR2'),
    writeInContainer: docker.writeInContainerCommand(NASTY, `/var/lib/${NASTY}`),
    stopAndRemove: docker.stopAndRemoveCommand(['a', NASTY], 12),
    checkConfig: checkConfigCommand(NASTY, `/h/${NASTY}`, 'haproxy.cfg'),
    throwawayCheck: proxy.throwawayCheckCommand(
      NASTY,
      'caddy',
      [{ source: `/h/${NASTY}/caddy`, target: '/etc/caddy' }],
      ['validate', '--config', '/etc/caddy/Caddyfile'],
    ),
    answers: proxy.answersCommand(NASTY, ['http://10.0.0.5:8080/', `http://${NASTY}/`]),
    netTcp: proxy.netTcpCommand(['a', NASTY]),
    execInContainer: proxy.execInContainerCommand(NASTY, ['nginx', '-s', 'reload', '-c', `/etc/${NASTY}`]),
    containerProcesses: proxy.containerProcessesCommand(NASTY),
    freshDir: proxy.freshDirCommand(`${DIR}/.proxy-check`),
    removeTree: proxy.removeTreeCommand(`${DIR}/.proxy-check`),
  };
}

const SNAPSHOT = fileURLToPath(new URL('./commands.snapshot.json', import.meta.url));

test('every builder: the exact command text (snapshot)', () => {
  const now = allCommands();
  if (process.env.UPDATE_SNAPSHOTS) writeFileSync(SNAPSHOT, `${JSON.stringify(now, null, 2)}\n`);
  const saved = JSON.parse(readFileSync(SNAPSHOT, 'utf8')) as Record<string, string>;
  assert.deepEqual(Object.keys(now).sort(), Object.keys(saved).sort(), 'the same builders as in the snapshot');
  for (const [name, text] of Object.entries(now)) assert.equal(text, saved[name], `${name} changed (UPDATE_SNAPSHOTS=1 to accept)`);
});

test('every builder parses as sh (sh -n)', () => {
  for (const [name, text] of Object.entries(allCommands())) {
    const r = spawnSync('sh', ['-n', '-c', text], { encoding: 'utf8' });
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);
  }
});

/**
 * Runs a command with sh in `home`, with a fake `docker` first on PATH that appends its arguments,
 * one per line and each between [ ], to home/docker.log and answers per `dockerScript` (sh, args in "$@").
 */
async function runWithFakeDocker(
  home: string,
  command: string,
  dockerScript = 'exit 0',
  stdin = '',
): Promise<{ code: number; stdout: string; calls: string[][] }> {
  const bin = join(home, 'bin');
  await mkdir(bin, { recursive: true });
  await writeFile(
    join(bin, 'docker'),
    `#!/bin/sh\n{ for a in "$@"; do printf '[%s]\\n' "$a"; done; echo --; } >> "$HOME/docker.log"\n${dockerScript}\n`,
  );
  await chmod(join(bin, 'docker'), 0o755);
  const r = spawnSync('sh', ['-c', command], {
    cwd: home,
    env: { ...process.env, HOME: home, PATH: `${bin}:${process.env.PATH}` },
    input: stdin,
    encoding: 'utf8',
  });
  const log = existsSync(join(home, 'docker.log')) ? await readFile(join(home, 'docker.log'), 'utf8') : '';
  const calls = log
    .split('--\n')
    .filter(Boolean)
    .map((c) =>
      c
        .trimEnd()
        .split('\n')
        .map((l) => l.replace(/^\[|\]$/g, '')),
    );
  return { code: r.status ?? -1, stdout: r.stdout, calls };
}

async function nothingRan(home: string): Promise<void> {
  const names = await readdir(home);
  assert.deepEqual(
    names.filter((n) => n.startsWith('pwned')),
    [],
    'nothing in a value ran',
  );
}

test('readFileCommand: prints a readable regular file, exits NO_FILE otherwise', () => {
  assert.equal(
    readFileCommand('/h/app/current'),
    `if [ -f /h/app/current ] && [ -r /h/app/current ]; then cat -- /h/app/current; else exit ${NO_FILE}; fi`,
  );
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
    await nothingRan(home);
  } finally {
    await cleanup();
  }
});

test('writeFileCommand: stdin lands at the path with the mode, through the temp name', async () => {
  const { remote, home, cleanup } = await tempRemote();
  try {
    const path = join(home, NASTY);
    const tmp = join(home, `.${NASTY}.tmp`);
    await remote.exec(writeFileCommand(path, tmp, 0o640), { stdin: 'data\n' });
    assert.equal(await readFile(path, 'utf8'), 'data\n');
    assert.equal((await stat(path)).mode & 0o777, 0o640);
    assert.equal(existsSync(tmp), false);
    await remote.exec(removeFileCommand(path));
    assert.equal(existsSync(path), false);
    await remote.exec(mkdirCommand(join(home, NASTY, 'a')));
    assert.ok((await stat(join(home, NASTY, 'a'))).isDirectory());
    await nothingRan(home);
  } finally {
    await cleanup();
  }
});

test('release store builders with a hostile remote dir: resolve, list, siblings, remove', async () => {
  const { remote, home, cleanup } = await tempRemote();
  try {
    const out = await remote.exec(releaseStore.resolveRemoteDirCommand(`handoff/${NASTY}`));
    const dir = out.stdout.trim();
    assert.equal(dir, join(home, 'handoff', NASTY));
    assert.equal((await stat(dir)).mode & 0o777, 0o700);
    const rel = join(dir, 'releases');
    for (const id of [ID, ID2]) {
      await mkdir(join(rel, id), { recursive: true });
      await writeFile(join(rel, id, 'release.json'), `{"id":"${id}"}`);
    }
    await mkdir(join(rel, `.${ID2}.tmp`));
    const listing = (await remote.exec(releaseStore.listReleasesCommand(dir))).stdout;
    assert.equal(listing, `\x1e${ID}\n{"id":"${ID}"}\x1e${ID2}\n{"id":"${ID2}"}`);
    // A sibling project next to the hostile one is listed; the project itself is not.
    await mkdir(join(home, 'handoff', 'other', 'releases', ID), { recursive: true });
    await writeFile(join(home, 'handoff', 'other', 'releases', ID, 'release.json'), '{"sibling":1}');
    assert.equal((await remote.exec(releaseStore.siblingManifestsCommand(join(home, 'handoff'), NASTY))).stdout, '{"sibling":1}');
    await remote.exec(releaseStore.removeReleasesCommand(dir, [ID]));
    assert.deepEqual((await readdir(rel)).sort(), [ID2]);
    await remote.exec(releaseStore.removeReleaseCommand(dir, ID2));
    assert.deepEqual(await readdir(rel), []);
    await nothingRan(home);
    await nothingRan(dir);
  } finally {
    await cleanup();
  }
});

test('lock builders with a hostile remote dir and token: acquire, held, beat, release', async () => {
  const { remote, home, cleanup } = await tempRemote();
  try {
    const dir = join(home, NASTY);
    await mkdir(dir);
    const owner = `{"runId":"7","token":${JSON.stringify(NASTY)}}\n`;
    assert.equal((await remote.exec(lock.tryLockCommand(dir), { stdin: owner })).stdout, 'ACQUIRED\n');
    assert.equal(await readFile(join(dir, 'lock', 'owner.json'), 'utf8'), owner);
    const held = (await remote.exec(lock.tryLockCommand(dir), { stdin: '{}' })).stdout;
    assert.match(held, new RegExp(String.raw`^HELD\nnow=\d+\nino=\d+\nmtime=\d+\n` + lock.OWNER_SEP));
    assert.equal(held.split(lock.OWNER_SEP)[1], owner);
    assert.equal((await remote.exec(lock.lockHeldByCommand(dir, NASTY))).stdout, 'OURS\n');
    assert.equal((await remote.exec(lock.lockHeldByCommand(dir, 'other'))).stdout, 'NOTOURS\n');
    assert.equal((await remote.exec(lock.heartbeatCommand(dir, NASTY))).stdout, 'BEAT\n');
    assert.equal((await remote.exec(lock.heartbeatCommand(dir, 'other'))).stdout, `GONE\n${owner}`);
    assert.equal((await remote.exec(lock.releaseLockCommand(dir, '7', 'other'))).stdout, 'NOTOURS\n');
    assert.equal((await remote.exec(lock.releaseLockCommand(dir, '7', NASTY))).stdout, 'RELEASED\n');
    assert.equal((await remote.exec(lock.releaseLockCommand(dir, '7', NASTY))).stdout, 'NOTHELD\n');
    await nothingRan(home);
  } finally {
    await cleanup();
  }
});

test('auditCommand: each line one literal argument, written once', async () => {
  const { remote, home, cleanup } = await tempRemote();
  try {
    const cmd = auditCommand(home, ['{"a":1}', NASTY]);
    await remote.exec(cmd);
    await remote.exec(cmd);
    assert.equal(await readFile(join(home, 'audit.log'), 'utf8'), `{"a":1}\n${NASTY}\n`);
    await nothingRan(home);
  } finally {
    await cleanup();
  }
});

test('docker and image builders pass every value as one argument (fake docker)', async () => {
  const { home, cleanup } = await tempRemote();
  try {
    const run = (command: string, script?: string, stdin?: string) => runWithFakeDocker(home, command, script, stdin);
    const reset = () => writeFile(join(home, 'docker.log'), '');
    const cases: Array<[string, string[][]]> = [
      [docker.projectContainerIdsCommand(NASTY), [['ps', '-aq', '--no-trunc', '--filter', `label=com.docker.compose.project=${NASTY}`]]],
      [docker.inspectCommand(['a', NASTY]), [['inspect', '--type', 'container', 'a', NASTY]]],
      [docker.containerLogsCommand(NASTY, 50), [['logs', '--tail', '50', NASTY]]],
      [docker.containerLogsSinceCommand(NASTY, 'T'), [['logs', '--since', 'T', NASTY]]],
      [docker.killCommand(NASTY, 'USR2'), [['kill', '--signal', 'USR2', NASTY]]],
      [
        checkConfigCommand(NASTY, `/h/${NASTY}`, 'h.cfg'),
        [
          [
            'run',
            '--rm',
            '--network',
            'none',
            '--entrypoint',
            'haproxy',
            '-v',
            `/h/${NASTY}:/usr/local/etc/haproxy:ro`,
            NASTY,
            '-c',
            '-f',
            '/usr/local/etc/haproxy/h.cfg',
          ],
        ],
      ],
      [images.imageIdsCommand([NASTY]), [['image', 'inspect', '--format', '{{.Id}}', NASTY]]],
      [images.repoDigestsCommand([NASTY]), [['image', 'inspect', '--format', '{{join .RepoDigests " "}}', NASTY]]],
      [
        images.removeImagesCommand([IMG, NASTY]),
        [
          ['image', 'rm', IMG],
          ['image', 'rm', NASTY],
        ],
      ],
    ];
    for (const [command, calls] of cases) {
      await reset();
      const r = await run(command);
      assert.equal(r.code, 0, command);
      assert.deepEqual(r.calls, calls, command);
    }
    await reset();
    const w = await run(docker.writeInContainerCommand(NASTY, `/s/${NASTY}`));
    assert.deepEqual(w.calls, [['exec', '-i', NASTY, 'sh', '-c', 'cat > "$1"', 'sh', `/s/${NASTY}`]]);
    // stop + remove: only the ids docker ps still knows, each one argument.
    await reset();
    const s = await run(docker.stopAndRemoveCommand(['a', NASTY], 12), `[ "$1" = ps ] && echo id1 && echo id2; exit 0`);
    assert.equal(s.code, 0);
    assert.deepEqual(s.calls, [
      ['ps', '-aq', '--no-trunc', '--filter', 'id=a', '--filter', `id=${NASTY}`],
      ['stop', '-t', '12', 'id1', 'id2'],
      ['rm', '-f', 'id1', 'id2'],
    ]);
    await reset();
    const gone = await run(docker.stopAndRemoveCommand(['a'], 12));
    assert.equal(gone.code, 0);
    assert.deepEqual(gone.calls, [['ps', '-aq', '--no-trunc', '--filter', 'id=a']], 'nothing left: no stop, no rm');
    // pin check without pulls: present/missing per pin, from `docker image inspect`'s exit status.
    await reset();
    const pc = await run(
      images.pinCheckScript(
        [
          { image: NASTY, imageId: IMG },
          { image: 'b', imageId: `sha256:${'b'.repeat(64)}` },
        ],
        false,
      ),
      `[ "$3" = ${IMG} ]`,
    );
    assert.equal(pc.stdout, '0 present\n1 missing\n');
    await nothingRan(home);
  } finally {
    await cleanup();
  }
});

test('answersCommand: run in the proxy container (fake docker exec), wget answers count even with an error status', async () => {
  const home = await mkdtemp(join(tmpdir(), 'handoff-answers-'));
  try {
    const bin = join(home, 'bin');
    await mkdir(bin, { recursive: true });
    // A busybox-like wget: 10.0.0.5 answers 200, 10.0.0.6 answers 404 (an answer), 10.0.0.7 refuses.
    await writeFile(
      join(bin, 'wget'),
      `#!/bin/sh\nfor a in "$@"; do u=$a; done\ncase $u in *10.0.0.5*) exit 0;; *10.0.0.6*) echo "wget: server returned error: HTTP/1.1 404 Not Found" >&2; exit 1;; *) echo "wget: can't connect to remote host: Connection refused" >&2; exit 1;; esac\n`,
    );
    await chmod(join(bin, 'wget'), 0o755);
    // docker exec <id> sh -c <script> sh <urls...>: run the rest here.
    const urls = ['http://10.0.0.5:8080/', 'http://10.0.0.6:8080/', 'http://10.0.0.7:8080/', `http://${NASTY}/`];
    const r = await runWithFakeDocker(home, proxy.answersCommand(NASTY, urls), 'shift 2; exec "$@"');
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], 'ok http://10.0.0.5:8080/');
    assert.equal(lines[1], 'ok http://10.0.0.6:8080/');
    assert.match(lines[2]!, /^fail http:\/\/10\.0\.0\.7:8080\/ .*refused/);
    assert.equal(r.calls[0]![1], NASTY, 'the container id stays one argument');
    await nothingRan(home);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

/**
 * A fake engine's tag store for pinImagesCommand: `tag` writes `<prefix><ref>` (Docker: the ref as
 * given; Podman's Docker API: docker.io/library/<ref>), and an unqualified ref resolves to
 * localhost/<ref> first, as Podman does for images built or loaded on the host.
 */
function tagStoreScript(tagPrefix: string): string {
  return `key() { printf '%s' "$1" | md5sum | cut -c1-32; }
mkdir -p "$HOME/tags"
if [ "$1" = tag ]; then case $3 in localhost/*) r=$3;; *) r="${tagPrefix}$3";; esac; printf '%s' "$2" > "$HOME/tags/$(key "$r")"; exit 0; fi
if [ "$1 $2" = "image inspect" ] && [ "$3" != --format ]; then [ "$3" = "${IMG}" ]; exit; fi
for r in "localhost/$5" "${tagPrefix}$5"; do f="$HOME/tags/$(key "$r")"; if [ -f "$f" ]; then cat "$f"; echo; exit 0; fi; done
exit 1`;
}

test('pinning re-tags and checks the reference resolves to the pinned ID; on Podman the localhost/ name too', async () => {
  const { home, cleanup } = await tempRemote();
  try {
    // Docker: the tag is the name Compose resolves; one tag, checked.
    const docker = await runWithFakeDocker(home, images.pinImagesCommand([{ image: NASTY, imageId: IMG }]), tagStoreScript(''));
    assert.equal(docker.code, 0);
    assert.deepEqual(
      docker.calls.filter((c) => c[0] === 'tag'),
      [['tag', IMG, NASTY]],
      'every value one argument, no localhost/ tag',
    );
    // Podman: localhost/app:1 (loaded on the host) points elsewhere and wins over docker.io/library/app:1.
    await rm(join(home, 'docker.log'), { force: true });
    await mkdir(join(home, 'tags'), { recursive: true });
    const other = `sha256:${'b'.repeat(64)}`;
    const seed = spawnSync('sh', ['-c', `printf '%s' "${other}" > "tags/$(printf '%s' localhost/app:1 | md5sum | cut -c1-32)"`], {
      cwd: home,
    });
    assert.equal(seed.status, 0);
    const podman = await runWithFakeDocker(
      home,
      images.pinImagesCommand([{ image: 'app:1', imageId: IMG }]),
      tagStoreScript('docker.io/library/'),
    );
    assert.equal(podman.code, 0);
    assert.deepEqual(
      podman.calls.filter((c) => c[0] === 'tag'),
      [
        ['tag', IMG, 'app:1'],
        ['tag', IMG, 'localhost/app:1'],
      ],
    );
    // A qualified reference gets no localhost/ name; one that still resolves elsewhere fails the pin (exit 4).
    assert.equal(images.isUnqualified('ghcr.io/me/app:1'), false);
    assert.equal(images.isUnqualified('localhost:5000/app:1'), false);
    assert.equal(images.isUnqualified('me/app:1'), true);
    const elsewhere = await runWithFakeDocker(
      home,
      images.pinImagesCommand([{ image: 'ghcr.io/me/app:1', imageId: IMG }]),
      '[ "$3" = --format ] && echo sha256:other; exit 0',
    );
    assert.equal(elsewhere.code, 4);
  } finally {
    await cleanup();
  }
});
