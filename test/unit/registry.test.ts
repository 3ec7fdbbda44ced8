import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempRemote } from '../helpers/shell-remote.js';
import { dockerConfigDir, DockerConfigRemote, loginCommand, registryLogin, RegistryLoginError } from '../../src/host/registry.js';
import type { ExecOptions, Remote } from '../../src/host/remote.js';

/** A fake `docker` first on PATH: records its arguments, DOCKER_CONFIG and stdin; `login` checks the password. */
async function withFakeDocker(home: string, inner: Remote): Promise<Remote> {
  const bin = join(home, 'bin');
  await mkdir(bin, { recursive: true });
  await writeFile(
    join(bin, 'docker'),
    `#!/bin/sh
printf '%s\\n' "$*" >> "$HOME/docker-args"
printf 'DOCKER_CONFIG=%s\\n' "$DOCKER_CONFIG" >> "$HOME/docker-args"
if [ "$3" = login ]; then
  read -r pw
  if [ "$pw" = right-password ]; then mkdir -p "$2" && echo '{"auths":{}}' > "$2/config.json"; echo 'Login Succeeded'; exit 0; fi
  echo "Error response from daemon: Get \\"http://$4/v2/\\": unauthorized: incorrect username or password" >&2; exit 1
fi
`,
  );
  await chmod(join(bin, 'docker'), 0o755);
  return {
    ...inner,
    exec: (c: string, o?: ExecOptions) => inner.exec(`PATH=${bin}:$PATH\n${c}`, o),
    readFile: inner.readFile.bind(inner),
  } as Remote;
}

test('the login command reads the password from stdin into a config dir of its own; values stay literal', () => {
  const cmd = loginCommand('/h/app/.docker-1', 'reg.example.com:5000', "o'brien");
  assert.match(cmd, /docker --config \/h\/app\/\.docker-1 login reg\.example\.com:5000 --username 'o'\\''brien' --password-stdin$/);
  assert.equal(dockerConfigDir('/h/app', 'run 7/1'), '/h/app/.docker-run_7_1');
});

test('registryLogin: the password goes on stdin, never in a command; every later command runs with DOCKER_CONFIG', async () => {
  const { remote, home, cleanup } = await tempRemote();
  try {
    const r = await withFakeDocker(home, remote);
    const dir = join(home, '.docker-run1');
    const logged = await registryLogin(r, dir, { server: '127.0.0.1:5000', username: 'ci', password: 'right-password' });
    assert.ok(logged instanceof DockerConfigRemote);
    assert.ok(existsSync(join(dir, 'config.json')));
    await logged.exec('docker pull 127.0.0.1:5000/app:1');
    const args = await readFile(join(home, 'docker-args'), 'utf8');
    assert.match(args, /pull 127\.0\.0\.1:5000\/app:1\nDOCKER_CONFIG=.*\.docker-run1\n$/);
    assert.ok(!remote.commands.some((c) => c.includes('right-password')), 'the password is in no command line');
  } finally {
    await cleanup();
  }
});

test('a wrong password: a clear error naming the registry and the inputs, the directory removed, the password nowhere', async () => {
  const { remote, home, cleanup } = await tempRemote();
  try {
    const r = await withFakeDocker(home, remote);
    const dir = join(home, '.docker-run2');
    await assert.rejects(registryLogin(r, dir, { server: '127.0.0.1:5000', username: 'ci', password: 'wrong-password' }), (e: unknown) => {
      assert.ok(e instanceof RegistryLoginError);
      assert.match(
        e.message,
        /registry login to 127\.0\.0\.1:5000 failed \(inputs registry, registry_username, registry_password\): .*incorrect username or password/,
      );
      assert.ok(!e.message.includes('wrong-password'));
      return true;
    });
    assert.ok(!existsSync(dir), 'no login directory left behind');
  } finally {
    await cleanup();
  }
});
