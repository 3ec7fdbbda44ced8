/**
 * Issue #2 acceptance: the bundled action, run like a runner runs it, deploys the sample stack over
 * the bench sshd as the deploy user; each kind of bad input fails clearly and changes nothing on the host.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  bench,
  cleanupProject,
  connectionInputs,
  freePort,
  projectContainers,
  runAction,
  sampleWorkspace,
  sh,
  uniqueProject,
  visibleLog,
} from './harness.js';
import { get } from './load.js';

const b = bench();
const project = uniqueProject('found');
const port = freePort();
const envSecret = `db-password-${Math.random().toString(36).slice(2)}`;
let workspace: string;

const deployInputs = () => ({
  ...connectionInputs(),
  project,
  compose_files: 'deploy/compose.yaml',
  files: 'deploy/haproxy/',
  env: `PROXY_PORT=${port}\nAPP_IMAGE=handoff-test-app:v1`,
  secrets: `DB_PASSWORD=${envSecret}`,
  pull: 'never',
});

/** Nothing of the project on the host: no containers, no remote directory. */
async function assertHostUntouched(p: string) {
  assert.deepEqual(await projectContainers(p), [], 'no container was created');
  const dir = (await sh(`ls -d /home/deploy/handoff/${p} 2>/dev/null || true`)).trim();
  assert.equal(dir, '', 'no remote directory was created');
}

before(async () => {
  workspace = await sampleWorkspace();
});
after(async () => {
  await cleanupProject(project);
});

test('a first deploy brings the sample stack up and it answers through the proxy', async () => {
  const r = await runAction(deployInputs(), { workspace, secrets: [envSecret] });
  assert.equal(r.code, 0, r.log);
  const containers = await projectContainers(project);
  assert.equal(containers.filter((c) => c.service === 'app' && c.state === 'running').length, 3, 'three app replicas');
  assert.equal(containers.filter((c) => c.service === 'proxy' && c.state === 'running').length, 1, 'one proxy');
  // The proxy needs a moment to resolve the replicas via Docker DNS and check them.
  let answer;
  for (let i = 0; i < 50; i++) {
    answer = await get(port).catch(() => undefined);
    if (answer?.status === 200) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.equal(answer?.status, 200);
  assert.equal(answer?.version, 'v1');
  assert.match(r.outputs.release_id ?? '', /^\d{8}T\d{6}Z-e2e0000$/);
  assert.match(r.summary, /handoff: deploy of/);
  // The release is on the host: env file 0600, release dir 0700, with the uploaded files.
  const dir = `/home/deploy/handoff/${project}/releases/${r.outputs.release_id}`;
  assert.equal((await sh(`stat -c %a ${dir}`)).trim(), '700');
  assert.equal((await sh(`stat -c %a ${dir}/.env`)).trim(), '600');
  assert.equal((await sh(`stat -c %U ${dir}/.env`)).trim(), 'deploy');
  assert.ok(readFileSync(join(workspace, 'deploy/haproxy/haproxy.cfg'), 'utf8') === (await sh(`cat ${dir}/deploy/haproxy/haproxy.cfg`)));
  assert.ok((await sh(`cat ${dir}/.env`)).includes(`DB_PASSWORD=${envSecret}`), 'the secret reaches the env file');
  // Issue #15: `env` and the host are plain (the runner would mask them otherwise), `secrets` masked,
  // and the secret is nowhere but the env file: not in the manifest, the audit log or any log line.
  const masked = r.log
    .split('\n')
    .filter((l) => l.startsWith('::add-mask::'))
    .map((l) => l.slice('::add-mask::'.length));
  assert.ok(masked.includes(envSecret), 'the secret value is masked');
  assert.ok(
    !masked.includes('handoff-test-app:v1') && !masked.includes(String(port)) && !masked.includes('127.0.0.1'),
    `env values and the host are not masked: ${masked.filter((m) => m.length < 40).join(', ')}`,
  );
  assert.ok(visibleLog(r.log).includes('handoff-test-app:v1'), 'the image tag from env shows in the log');
  for (const [what, text] of [
    ['release.json', await sh(`cat ${dir}/release.json`)],
    ['audit.log', await sh(`cat /home/deploy/handoff/${project}/audit.log`)],
    ['the post step log', visibleLog(r.postLog)],
    ['the summary', r.summary],
    ['the outputs', JSON.stringify(r.outputs)],
    ['the main log', visibleLog(r.log)],
  ] as const) {
    assert.ok(!text.includes(envSecret), `${what} does not contain the secret`);
  }
});

test('a wrong host key fails before anything runs and prints the presented fingerprint', async () => {
  const p = uniqueProject('badhk');
  const r = await runAction(
    { ...deployInputs(), project: p, known_hosts: '', fingerprint: 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' },
    { workspace },
  );
  assert.notEqual(r.code, 0);
  assert.match(r.log, /host key/i);
  assert.ok(r.log.includes(b.fingerprint), 'the presented fingerprint is printed');
  await assertHostUntouched(p);
});

test('an unknown user fails with an authentication error', async () => {
  const p = uniqueProject('baduser');
  const r = await runAction({ ...deployInputs(), project: p, username: 'nobody-here' }, { workspace });
  assert.notEqual(r.code, 0);
  assert.match(r.log, /authenticat/i);
  await assertHostUntouched(p);
});

test('a key the host does not know fails with an authentication error', async () => {
  const p = uniqueProject('badkey');
  const r = await runAction(
    { ...deployInputs(), project: p, key: readFileSync(b.keys.wrong, 'utf8') },
    { workspace, secrets: secretLines(b.keys.wrong) },
  );
  assert.notEqual(r.code, 0);
  assert.match(r.log, /authenticat/i);
  await assertHostUntouched(p);
});

test('a PKCS#8 key gets the conversion command', async () => {
  const p = uniqueProject('pkcs8');
  const r = await runAction(
    { ...deployInputs(), project: p, key: readFileSync(b.keys.pkcs8, 'utf8') },
    { workspace, secrets: secretLines(b.keys.pkcs8) },
  );
  assert.notEqual(r.code, 0);
  assert.match(r.log, /ssh-keygen -p/);
  await assertHostUntouched(p);
});

test('a missing required input is named', async () => {
  const p = uniqueProject('noinput');
  const r = await runAction({ ...deployInputs(), project: p, host: '' }, { workspace });
  assert.notEqual(r.code, 0);
  assert.match(r.log, /input 'host': is required/);
  await assertHostUntouched(p);
});

test('a malformed Compose file fails with its name and line, before the host changes', async () => {
  const p = uniqueProject('badyaml');
  const ws = await sampleWorkspace();
  await writeFile(join(ws, 'deploy/compose.yaml'), 'services:\n  app:\n    image: [unclosed\n');
  const r = await runAction({ ...deployInputs(), project: p }, { workspace: ws });
  assert.notEqual(r.code, 0);
  assert.match(r.log, /deploy\/compose\.yaml/);
  assert.match(r.log, /compose\.yaml:\d+|line \d+/i);
  await assertHostUntouched(p);
});

test('the encrypted key with its passphrase, and a hashed known_hosts, deploy a dry run', async () => {
  const r = await runAction(
    {
      ...deployInputs(),
      key: readFileSync(b.keys.ed25519_enc, 'utf8'),
      passphrase: b.passphrase,
      known_hosts: readFileSync(b.knownHostsHashed, 'utf8'),
      dry_run: 'true',
    },
    { workspace, secrets: [envSecret, ...secretLines(b.keys.ed25519_enc)] },
  );
  assert.equal(r.code, 0, r.log);
  assert.match(r.summary, /dry run/);
  assert.match(r.summary, /keep/);
});

function secretLines(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.length > 20 && !l.startsWith('-----'));
}

test('through a jump host with its own pinned key (jump_* inputs)', async () => {
  const r = await runAction(
    {
      ...deployInputs(),
      jump_host: b.host,
      jump_port: String(b.jumpPort),
      jump_known_hosts: readFileSync(b.jumpKnownHosts, 'utf8'),
      dry_run: 'true',
    },
    { workspace, secrets: [envSecret] },
  );
  assert.equal(r.code, 0, r.log);
  assert.match(r.summary, /dry run/);
  const wrongPin = await runAction(
    { ...deployInputs(), jump_host: b.host, jump_port: String(b.jumpPort), jump_fingerprint: b.fingerprint, dry_run: 'true' },
    { workspace, secrets: [envSecret] },
  );
  assert.notEqual(wrongPin.code, 0, 'the jump host presents its own key, not the target host one');
  assert.ok(wrongPin.log.includes(b.jumpFingerprint), 'the jump host fingerprint it presented is printed');
});
