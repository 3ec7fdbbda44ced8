/**
 * Issue #15, private images: a registry with htpasswd auth on loopback (Debian's docker-registry,
 * installed by the bench). With the login inputs the host pulls the app image from it; a wrong
 * password fails before anything changes; no credential is left on the host either way.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanupProject, connectionInputs, freePort, projectContainers, runAction, sampleWorkspace, sh, uniqueProject } from './harness.js';
import { containerVersion, sleep, waitServing } from './stacks/helpers.js';

const project = uniqueProject('registry');
const port = freePort();
const registryPort = freePort();
const server = `127.0.0.1:${registryPort}`;
const image = `${server}/handoff-e2e/app-${process.pid}:v1`;
const password = `pw-${Math.random().toString(36).slice(2)}`;
const remoteDir = `/home/deploy/handoff/${project}`;
let dir: string;
let registry: ChildProcess | undefined;
let workspace: string;

const inputs = (pw: string) => ({
  ...connectionInputs(),
  project,
  compose_files: 'deploy/compose.yaml',
  files: 'deploy/haproxy/',
  env: `PROXY_PORT=${port}\nAPP_IMAGE=${image}`,
  pull: 'always',
  registry: server,
  registry_username: 'ci',
  registry_password: pw,
});

/** No login of this deploy anywhere on the host: not in the project dir, not in the user's ~/.docker. */
async function assertNoCredentialLeft(): Promise<void> {
  const leftovers = (await sh(`ls -a ${remoteDir} 2>/dev/null | grep '^\\.docker' || true`)).trim();
  assert.equal(leftovers, '', 'the per-deploy Docker config directory is removed');
  const userConfig = await sh(`cat /home/deploy/.docker/config.json 2>/dev/null || true`);
  assert.ok(!userConfig.includes(server), "the deploy user's own ~/.docker is untouched");
  const found = (await sh(`grep -rl ${Buffer.from(`ci:${password}`).toString('base64')} /home/deploy 2>/dev/null || true`)).trim();
  assert.equal(found, '', "the credential is in no file under the deploy user's home");
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'handoff-registry-'));
  await sh(`htpasswd -Bbn ci '${password}' > ${dir}/htpasswd`);
  await writeFile(
    join(dir, 'config.yml'),
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: ${server}\nauth:\n  htpasswd:\n    realm: handoff-bench\n    path: ${dir}/htpasswd\n`,
  );
  registry = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: 'ignore' });
  for (let i = 0; i < 50 && !(await sh(`curl -s -o /dev/null -w '%{http_code}' http://${server}/v2/ || true`)).includes('401'); i++)
    await sleep(200);
  // The image is pushed with a login of the test's own, then untagged: only the registry has it.
  await sh(
    `mkdir -p ${dir}/cfg && printf '%s' '${password}' | docker --config ${dir}/cfg login ${server} -u ci --password-stdin >/dev/null`,
  );
  await sh(
    `docker tag handoff-test-app:v1 ${image} && docker --config ${dir}/cfg push ${image} >/dev/null && docker rmi ${image} >/dev/null`,
  );
  workspace = await sampleWorkspace();
});

after(async () => {
  await cleanupProject(project);
  await sh(`docker rmi ${image} >/dev/null 2>&1 || true`);
  registry?.kill();
  await rm(dir, { recursive: true, force: true });
});

test(
  'a wrong registry password fails before anything changes, naming the registry; nothing left on the host',
  { timeout: 300_000 },
  async () => {
    const r = await runAction(inputs('not-the-password'), { workspace, secrets: ['not-the-password'] });
    assert.notEqual(r.code, 0);
    assert.match(
      r.log,
      new RegExp(`registry login to ${server.replace(/\./g, '\\.')} failed \\(inputs registry, registry_username, registry_password\\)`),
    );
    assert.deepEqual(await projectContainers(project), [], 'no container was created');
    assert.equal((await sh(`ls ${remoteDir}/releases 2>/dev/null || true`)).trim(), '', 'no release was uploaded');
    await assertNoCredentialLeft();
  },
);

test('with the login inputs the host pulls from the private registry; the login is gone afterwards', { timeout: 300_000 }, async () => {
  // Without a login the host cannot pull it: the image really is private.
  assert.match(await sh(`docker pull ${image} 2>&1 || true`), /no basic auth credentials|unauthorized/);
  const r = await runAction(inputs(password), { workspace, secrets: [password] });
  assert.equal(r.code, 0, r.log);
  assert.match(r.log, new RegExp(`logged in to ${server.replace(/\./g, '\\.')} as ci`));
  await waitServing(port, 'v1');
  const app = (await projectContainers(project)).filter((c) => c.service === 'app' && c.state === 'running');
  assert.equal(app.length, 3);
  assert.deepEqual(await Promise.all(app.map((c) => containerVersion(c.id))), ['v1', 'v1', 'v1']);
  assert.ok(
    (await sh(`docker image inspect --format '{{join .RepoTags " "}}' ${image}`)).includes(image),
    'the image came from the registry',
  );
  await assertNoCredentialLeft();
});
