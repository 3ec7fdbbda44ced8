import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseHostFacts, readHostSetup } from '../../src/host/host.js';
import { PrefixedRemote } from '../../src/host/remote.js';
import { countRoundTrips, RoundTrips } from '../../src/host/round-trips.js';
import { tempRemote } from '../helpers/shell-remote.js';
import { hostFactsCommand } from '../../src/commands/host.js';

const both = 'motd line\ndocker=20.10.24+dfsg1\ncompose=v2 2.26.1-4\ncompose=v1 1.29.2\ncompose=none\n';

test('auto prefers the v2 plugin when the host has both', () => {
  assert.deepEqual(parseHostFacts(both, 'deploy'), {
    engine: 'docker',
    version: '20.10.24+dfsg1',
    dockerVersion: '20.10.24+dfsg1',
    compose: 'v2',
    composeVersion: '2.26.1-4',
  });
});

test('compose: v1 picks v1 on a host with both; auto falls back to v1 alone', () => {
  assert.equal(parseHostFacts(both, 'deploy', 'v1').compose, 'v1');
  assert.equal(parseHostFacts('docker=26.1.5\ncompose=v1 1.29.2\ncompose=none\n', 'deploy').compose, 'v1');
  assert.equal(parseHostFacts('docker=26.1.5\ncompose=v2 v2.29.7\ncompose=none\n', 'deploy').composeVersion, '2.29.7');
});

test('a flavor asked for but missing names the input and what the host has', () => {
  assert.throws(
    () => parseHostFacts('docker=26.1.5\ncompose=v1 1.29.2\ncompose=none\n', 'deploy', 'v2'),
    /input 'compose' asks for v2.*docker compose.*has Compose v1 1\.29\.2: set compose: v1 or auto/,
  );
  assert.throws(
    () => parseHostFacts('docker=26.1.5\ncompose=none\n', 'deploy'),
    /neither `docker compose` \(v2\) nor `docker-compose` \(v1\)/,
  );
});

test('the Swarm target needs no Compose on the host (docker stack deploy is the engine CLI)', () => {
  assert.equal(parseHostFacts('docker=20.10.24\ncompose=none\n', 'deploy', 'auto', 'docker', false).composeVersion, 'none');
  assert.throws(() => parseHostFacts('docker=\ncompose=none\n', 'deploy', 'auto', 'docker', false), /Docker is not usable/);
});

test('docker unusable: permission denied names the group fix', () => {
  assert.throws(
    () => parseHostFacts('docker=permission denied while trying to connect\ncompose=none\n', 'deploy'),
    /usermod -aG docker deploy/,
  );
});

const podmanSock = 'podman=/run/podman/podman.sock 4.3.1\ncompose=v2 2.26.1-4\ncompose=none\n';

test('engine podman: the API socket that answers, driven through DOCKER_HOST', () => {
  const facts = parseHostFacts(podmanSock, 'deploy', 'auto', 'podman');
  assert.equal(facts.engine, 'podman');
  assert.equal(facts.version, '4.3.1');
  assert.equal(facts.dockerHost, 'unix:///run/podman/podman.sock');
  // The rootless socket is listed first by the host command and wins.
  const both = 'podman=/run/user/1001/podman/podman.sock 5.4.2\n' + podmanSock;
  assert.equal(parseHostFacts(both, 'deploy', 'auto', 'podman').dockerHost, 'unix:///run/user/1001/podman/podman.sock');
});

test('engine auto: Docker when the default endpoint answers, else a Podman socket; podman-docker is Podman', () => {
  const dockerToo = 'docker=20.10.24\nserver=Engine;containerd;runc;docker-init;\n' + podmanSock;
  assert.equal(parseHostFacts(dockerToo, 'deploy', 'auto', 'auto').engine, 'docker');
  assert.equal(parseHostFacts(dockerToo, 'deploy', 'auto', 'auto').dockerHost, undefined);
  const noDocker = 'docker=Cannot connect to the Docker daemon at unix:///var/run/docker.sock.\nserver=\n' + podmanSock;
  assert.equal(parseHostFacts(noDocker, 'deploy', 'auto', 'auto').dockerHost, 'unix:///run/podman/podman.sock');
  const shim = 'docker=4.3.1\nserver=Podman Engine;Conmon;OCI Runtime (crun);\ncompose=v2 2.26.1\n';
  assert.deepEqual(
    [parseHostFacts(shim, 'deploy', 'auto', 'auto').engine, parseHostFacts(shim, 'deploy', 'auto', 'auto').dockerHost],
    ['podman', undefined],
  );
  // engine: docker never looks at Podman's socket.
  assert.throws(() => parseHostFacts(noDocker, 'deploy', 'auto', 'docker'), /Docker is not usable on the host: Cannot connect/);
});

test('engine podman without a usable socket names what was tried and how to start it', () => {
  assert.throws(
    () => parseHostFacts('compose=v2 2.26.1\n', 'deploy', 'auto', 'podman'),
    /no Podman API socket answers for user 'deploy' \(none found at .*podman.socket/,
  );
  assert.throws(
    () =>
      parseHostFacts(
        'podman-error=/run/podman/podman.sock permission denied while trying to connect\ncompose=v2 2.26.1\n',
        'deploy',
        'auto',
        'podman',
      ),
    /\/run\/podman\/podman.sock: permission denied/,
  );
});

test('the facts command looks only at podman_socket when given, quoted; engine docker never at Podman', () => {
  const cmd = hostFactsCommand('podman', "/run/it's.sock");
  assert.match(cmd, /for s in '\/run\/it'\\''s\.sock'; do/);
  assert.doesNotMatch(cmd, /^printf "docker=/m, 'engine podman skips the default endpoint');
  assert.doesNotMatch(hostFactsCommand('docker'), /podman/);
  assert.match(hostFactsCommand('auto'), /XDG_RUNTIME_DIR.*\/run\/podman\/podman\.sock/);
});

/** A ShellRemote whose PATH starts with a fake `docker` (and a `docker-compose` that fails). */
async function hostWithDocker(composeWorks: boolean) {
  const t = await tempRemote();
  const bin = join(t.home, 'bin');
  await mkdir(bin);
  const docker = [
    '#!/bin/sh',
    'case "$*" in',
    '  "version --format {{.Server.Version}}") echo 24.0.7 ;;',
    `  "compose version --short") ${composeWorks ? 'echo 2.26.1' : 'exit 1'} ;;`,
    '  *) exit 1 ;;',
    'esac',
  ].join('\n');
  await writeFile(join(bin, 'docker'), `${docker}\n`, { mode: 0o755 });
  await writeFile(join(bin, 'docker-compose'), '#!/bin/sh\nexit 1\n', { mode: 0o755 });
  return { ...t, remote: new PrefixedRemote(t.remote, `PATH=${bin}:$PATH; export PATH\n`) };
}

test('readHostSetup: the facts and the remote dir (made 0700) in one round trip', async () => {
  const { remote, home, cleanup } = await hostWithDocker(true);
  try {
    const counter = new RoundTrips();
    const { facts, remoteDir } = await readHostSetup(countRoundTrips(remote, counter), {
      username: 'deploy',
      remoteDir: '~/handoff/shop/',
    });
    assert.equal(counter.total, 1);
    assert.deepEqual([facts.engine, facts.dockerVersion, facts.compose, facts.composeVersion], ['docker', '24.0.7', 'v2', '2.26.1']);
    assert.equal(remoteDir, join(execFileSync('realpath', [home]).toString().trim(), 'handoff/shop'));
    assert.equal((await stat(remoteDir)).mode & 0o777, 0o700);
  } finally {
    await cleanup();
  }
});

test('readHostSetup: a remote dir that cannot be made fails naming its command; missing Compose names the fix', async () => {
  const { remote, home, cleanup } = await hostWithDocker(false);
  try {
    await writeFile(join(home, 'taken'), 'a file, not a directory\n');
    await assert.rejects(readHostSetup(remote, { username: 'deploy', remoteDir: 'taken/shop' }), (e: Error) => {
      assert.equal(e.name, 'RemoteCommandError');
      assert.match(e.message, /mkdir -p taken\/shop[^]*Not a directory/);
      assert.doesNotMatch(e.message, /docker version/);
      return true;
    });
    await assert.rejects(
      readHostSetup(remote, { username: 'deploy', remoteDir: 'handoff/shop' }),
      /neither `docker compose` \(v2\) nor `docker-compose` \(v1\) works on the host/,
    );
  } finally {
    await cleanup();
  }
});
