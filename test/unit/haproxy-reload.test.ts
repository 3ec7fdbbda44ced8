// checkConfig and reload against the bench's HAProxy image, with a Remote that runs commands on
// this machine. Needs Docker and the test images (scripts/bench/setup.sh): fails, not skips.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile, mkdir, chmod } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkConfig, HaproxyConfigError, reload, reloadVerdict } from '../../src/proxy/haproxy/reload.js';
import { RuntimeApi } from '../../src/proxy/haproxy/runtime.js';
import type { ExecResult, Remote } from '../../src/host/remote.js';

const IMAGE = 'handoff-test-haproxy:latest';
const examples = fileURLToPath(new URL('../../examples/haproxy', import.meta.url));

const local = {
  exec(command: string, options: { timeoutMs?: number; check?: boolean } = {}): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      const child = spawn('sh', ['-c', command], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c) => (stdout += c));
      child.stderr.on('data', (c) => (stderr += c));
      const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
      child.on('close', (code) => {
        clearTimeout(timer);
        const r = { code: code ?? -1, stdout, stderr };
        if (code !== 0 && options.check !== false) reject(new Error(`${command}: exit ${code}: ${stderr}`));
        else resolve(r);
      });
    });
  },
} as unknown as Remote;

let dir: string;
let containerId: string | undefined;

before(async () => {
  const docker = await local.exec('docker image inspect --format ok ' + IMAGE, { check: false });
  if (docker.code !== 0) throw new Error(`Docker or ${IMAGE} is missing: run scripts/bench/setup.sh (${docker.stderr.trim()})`);
  dir = await mkdtemp(path.join(os.tmpdir(), 'handoff-reload-'));
});

after(async () => {
  if (containerId) await local.exec(`docker rm -f ${containerId}`, { check: false });
  if (dir) await rm(dir, { recursive: true, force: true });
});

test('checkConfig accepts the sample config (examples/haproxy/haproxy.cfg)', async () => {
  await checkConfig(local, IMAGE, examples, 'haproxy.cfg');
});

test('checkConfig rejects a bad config with HAProxy own words', async () => {
  const bad = path.join(dir, 'bad');
  await mkdir(bad);
  await writeFile(path.join(bad, 'haproxy.cfg'), 'defaults\n    mode http\n    timeout cliant 5s\n');
  await assert.rejects(checkConfig(local, IMAGE, bad, 'haproxy.cfg'), (e: unknown) => {
    assert.ok(e instanceof HaproxyConfigError);
    assert.match(e.output, /ALERT/);
    assert.match(e.output, /cliant/);
    assert.match(e.message, /HAProxy rejects .*bad\/haproxy\.cfg/);
    return true;
  });
});

test('checkConfig refuses a path where a file name is expected', async () => {
  await assert.rejects(checkConfig(local, IMAGE, dir, '../etc/passwd'), /must be a file name/);
});

test('reload: SIGUSR2 to the master, Loading success, the Runtime API answers again; a bad config is refused', async () => {
  const cfgDir = path.join(dir, 'live');
  const runDir = path.join(dir, 'run');
  await mkdir(cfgDir);
  await mkdir(runDir);
  await chmod(runDir, 0o755);
  const cfg = (extra: string) => `global
    stats socket /var/run/haproxy/admin.sock mode 666 level admin expose-fd listeners
defaults
    mode http
    timeout connect 1s
    timeout client 5s
    timeout server 5s
frontend web
    bind :8080
    default_backend app
backend app
    server s1 127.0.0.1:9${extra}
`;
  await writeFile(path.join(cfgDir, 'haproxy.cfg'), cfg(''));
  const run = await local.exec(`docker run -d --rm -v ${cfgDir}:/usr/local/etc/haproxy:ro -v ${runDir}:/var/run/haproxy ${IMAGE}`);
  containerId = run.stdout.trim();
  const socketPath = path.join(runDir, 'admin.sock');
  const opener = () =>
    new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(socketPath);
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
  const deadline = Date.now() + 10_000;
  while (!existsSync(socketPath)) {
    if (Date.now() > deadline) throw new Error('the proxy container did not create its admin socket');
    await new Promise((r) => setTimeout(r, 100));
  }
  // Until the master has forked its worker it has no SIGUSR2 handler: a signal then would kill it.
  while (!(await local.exec(`docker logs ${containerId} 2>&1`)).stdout.includes('Loading success.')) {
    if (Date.now() > deadline) throw new Error('the proxy did not report its startup');
    await new Promise((r) => setTimeout(r, 100));
  }

  // The new config adds a server: visible through the Runtime API after the reload.
  await writeFile(path.join(cfgDir, 'haproxy.cfg'), cfg('') + '    server s2 127.0.0.1:10\n');
  await reload(local, containerId, { opener, timeoutMs: 15_000 });
  const states = await new RuntimeApi(opener).showServersState('app');
  assert.deepEqual(
    states.map((s) => s.server),
    ['s1', 's2'],
  );

  await writeFile(path.join(cfgDir, 'haproxy.cfg'), 'global\n    bogus-keyword\n');
  await assert.rejects(reload(local, containerId, { opener, timeoutMs: 15_000 }), /reload failed .* keeps the previous config/s);
  // The old workers still answer.
  assert.deepEqual(
    (await new RuntimeApi(opener).showServersState('app')).map((s) => s.server),
    ['s1', 's2'],
  );
});

test('reloadVerdict reads the outcome of the last reload from the master log, never the startup', () => {
  const reloading = '[NOTICE] (1) : Reloading HAProxy\n';
  assert.equal(reloadVerdict(reloading + '[NOTICE] (1) : New worker (8) forked\n[NOTICE] (1) : Loading success.\n'), 'success');
  assert.equal(reloadVerdict(reloading + '[ALERT] (1) : config : parsing...\n[WARNING] (1) : Loading failure!\n'), 'failure');
  assert.equal(
    reloadVerdict(reloading + '[NOTICE] (1) : Loading success.\n' + reloading + '[WARNING] (1) : Loading failure!\n'),
    'failure',
  );
  assert.equal(reloadVerdict(reloading + '[WARNING] (1) : Loading failure!\n' + reloading), undefined);
  assert.equal(reloadVerdict(reloading), undefined);
  // A proxy started just before the signal: its startup verdict is not the reload's.
  assert.equal(reloadVerdict('[NOTICE] (1) : New worker (8) forked\n[NOTICE] (1) : Loading success.\n'), undefined);
  assert.equal(reloadVerdict('[NOTICE] (1) : Loading success.\n' + reloading), undefined);
  assert.equal(
    reloadVerdict('[NOTICE] (1) : Loading success.\n[NOTICE] (1) : Reloading HAProxy (hard-reload)\n[WARNING] (1) : Loading failure!\n'),
    'failure',
  );
});
