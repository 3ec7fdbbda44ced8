import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempRemote } from '../helpers/shell-remote.js';
import { missingPins, parsePinCheck, pickDigest, repoDigests, type Pin } from '../../src/engine/docker/images.js';
import { digestRef, pinCheckScript } from '../../src/commands/images.js';
import { missingImagesError, type ReleaseManifest } from '../../src/model/release.js';

const docker = (args: string[], input?: Buffer) =>
  execFileSync('docker', args, { input, stdio: ['pipe', 'pipe', 'pipe'] })
    .toString()
    .trim();

/** A unique tiny image made with `docker import` (no registry needed). */
function makeImage(tag: string): string {
  const tar = execFileSync('sh', [
    '-c',
    `d=$(mktemp -d) && printf %s ${JSON.stringify(tag)} > "$d/marker" && tar -c -C "$d" marker && rm -rf "$d"`,
  ]);
  docker(['import', '-', tag], tar);
  return docker(['image', 'inspect', '--format', '{{.Id}}', tag]);
}

test('digestRef: the repository with the pinned digest, tag and registry port handled', () => {
  assert.equal(digestRef('ghcr.io:443/me/app:1.2', 'sha256:ab'), 'ghcr.io:443/me/app@sha256:ab');
  assert.equal(digestRef('ghcr.io:443/me/app', 'sha256:ab'), 'ghcr.io:443/me/app@sha256:ab');
  assert.equal(digestRef('app@sha256:old', 'sha256:ab'), 'app@sha256:ab');
});

test('pinCheckScript: quotes every value; pulls only when allowed, by digest when known', () => {
  const pins: Pin[] = [
    { image: "x'; touch pwned; '", imageId: 'sha256:1' },
    { image: 'ghcr.io/me/app:1', imageId: 'sha256:2', digest: 'sha256:d' },
  ];
  const never = pinCheckScript(pins, false);
  assert.doesNotMatch(never, /docker pull/);
  assert.ok(!never.includes("x'; touch"), 'the image reference is quoted');
  const pull = pinCheckScript(pins, true);
  assert.match(pull, /docker pull -q '?ghcr\.io\/me\/app@sha256:d'?/);
  assert.match(pull, /docker tag "\$old"/, 'a pull by tag puts the tag back');
  // an answer missing for a pin counts as missing
  assert.deepEqual(parsePinCheck('0 present\n', pins), [pins[1]]);
  assert.deepEqual(parsePinCheck('0 pulled\n1 present\n', pins), []);
});

test('missingPins on the host: a removed image is missing, a failed pull moves no tag (needs Docker)', async () => {
  docker(['version', '--format', '{{.Server.Version}}']);
  const { remote, cleanup } = await tempRemote();
  const tag = `handoff-pin-test-${process.pid}`;
  const present = makeImage(`${tag}:cur`);
  const gone = makeImage(`${tag}:gone`);
  docker(['image', 'rm', `${tag}:gone`]);
  try {
    const pins: Pin[] = [
      { service: 'app', image: `${tag}:cur`, imageId: present },
      { service: 'db', image: `${tag}:gone`, imageId: gone },
      // the tag is here, but it points at another image than the release pinned (a re-pushed tag)
      { service: 'web', image: `${tag}:cur`, imageId: gone },
    ];
    assert.deepEqual(
      (await missingPins(remote, pins, false, 60_000)).map((p) => p.service),
      ['db', 'web'],
    );
    // This bench has no registry for these names: the pull fails, the pins stay missing, the tag stays put.
    assert.deepEqual(
      (await missingPins(remote, pins, true, 60_000)).map((p) => p.service),
      ['db', 'web'],
    );
    assert.equal(docker(['image', 'inspect', '--format', '{{.Id}}', `${tag}:cur`]), present);
    assert.equal(
      execFileSync('sh', ['-c', `docker image inspect ${tag}:gone >/dev/null 2>&1 && echo yes || echo no`])
        .toString()
        .trim(),
      'no',
    );
  } finally {
    execFileSync('sh', ['-c', `docker image rm -f ${present} >/dev/null 2>&1; true`]);
    await cleanup();
  }
});

test('missingImagesError names the release, each image and the list to choose from', () => {
  const m = (id: string, result: ReleaseManifest['result']): ReleaseManifest => ({
    id,
    project: 'shop',
    sha: `${id.slice(-7)}${'0'.repeat(33)}`,
    ref: '',
    actor: 'a',
    runUrl: '',
    createdAt: '2026-11-23T10:00:00Z',
    files: [],
    composeFiles: [],
    services: {},
    result,
  });
  const rs = [m('20261121T100000Z-aaaaaa1', 'success'), m('20261122T100000Z-aaaaaa2', 'success')];
  const e = missingImagesError(rs[0]!, [{ service: 'app', image: 'app:1', imageId: 'sha256:abc' }], rs, rs[1]!.id, true);
  assert.match(
    e.message,
    /cannot roll back to release 20261121T100000Z-aaaaaa1 \(aaaaaa1\): its image is no longer on the host and a pull did not bring the pinned image back: service app: app:1 \(sha256:abc\)\. Nothing was changed/,
  );
  assert.match(e.message, /20261122T100000Z-aaaaaa2\s+success.*\(serving\)/);
  assert.match(missingImagesError(rs[0]!, [], rs, undefined, false).message, /\(pull: never\)/);
});

test('pickDigest: the digest of the image reference’s own repository', () => {
  const ds = ['ghcr.io/me/other@sha256:o', 'ghcr.io/me/app@sha256:a', 'nginx@sha256:n'];
  assert.equal(pickDigest('ghcr.io/me/app:1.2', ds), 'sha256:a');
  assert.equal(pickDigest('docker.io/library/nginx:1', ds), 'sha256:n');
  assert.equal(pickDigest('nginx', ds), 'sha256:n');
  assert.equal(pickDigest('ghcr.io/me/missing:1', ds), undefined);
  assert.equal(pickDigest('local:1', []), undefined);
});

test('repoDigests on the host: a local-only image has none (needs Docker)', async () => {
  const { remote, cleanup } = await tempRemote();
  const tag = `handoff-digest-test-${process.pid}:1`;
  const id = makeImage(tag);
  try {
    assert.equal((await repoDigests(remote, [{ image: tag, imageId: id }])).size, 0);
  } finally {
    execFileSync('sh', ['-c', `docker image rm -f ${id} >/dev/null 2>&1; true`]);
    await cleanup();
  }
});

test('missingPins pulling by tag: finds the pinned image when the registry has it, and puts the tag back either way (needs Docker)', async () => {
  docker(['version', '--format', '{{.Server.Version}}']);
  const { remote, home, cleanup } = await tempRemote();
  const tag = `handoff-pull-test-${process.pid}`;
  const serving = makeImage(`${tag}:app`); // what the tag points at on the host now
  const pinned = makeImage(`${tag}:pinned`); // what the release ran, then deleted from the host
  const other = makeImage(`${tag}:other`); // what the registry's tag points at after a re-push
  const saved = join(home, 'pinned.tar');
  execFileSync('sh', ['-c', `docker save ${tag}:pinned > ${saved} && docker image rm ${tag}:pinned >/dev/null`]);
  // A stand-in registry: `docker pull` loads the image the test says the registry's tag has now.
  const bin = join(home, 'bin');
  await mkdir(bin);
  const registry = join(home, 'registry-has');
  const real = execFileSync('sh', ['-c', 'command -v docker']).toString().trim();
  await writeFile(
    join(bin, 'docker'),
    `#!/bin/sh
if [ "$1" = pull ]; then
  case "$(cat ${registry})" in
  pinned) ${real} load -q < ${saved} >/dev/null && ${real} tag ${tag}:pinned ${tag}:app && ${real} image rm ${tag}:pinned >/dev/null ;;
  other) ${real} tag ${other} ${tag}:app ;;
  esac
  exit 0
fi
exec ${real} "$@"
`,
    { mode: 0o755 },
  );
  const path = process.env.PATH;
  process.env.PATH = `${bin}:${path}`;
  const id = (ref: string) =>
    execFileSync('sh', ['-c', `docker image inspect --format '{{.Id}}' ${ref} 2>/dev/null || true`])
      .toString()
      .trim();
  const pins: Pin[] = [{ service: 'app', image: `${tag}:app`, imageId: pinned }];
  try {
    await writeFile(registry, 'other');
    assert.deepEqual(await missingPins(remote, pins, true, 60_000), pins, 'the registry has another image under the tag: missing');
    assert.equal(id(`${tag}:app`), serving, 'the tag points where it did');
    await writeFile(registry, 'pinned');
    assert.deepEqual(await missingPins(remote, pins, true, 60_000), [], 'the registry still has the pinned image: found');
    assert.equal(id(pinned), pinned, 'the pinned image is on the host now');
    assert.equal(id(`${tag}:app`), serving, 'and the tag still points where it did (the rollback pins it)');
  } finally {
    process.env.PATH = path;
    execFileSync('sh', ['-c', `docker image rm -f ${serving} ${pinned} ${other} >/dev/null 2>&1; true`]);
    await cleanup();
  }
});
