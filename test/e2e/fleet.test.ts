/**
 * Issue #19 acceptance: one deploy rolls a fleet. Two bench hosts (scripts/bench/hosts.sh: each its
 * own network namespace, sshd and Docker engine) run the sample stack, with a load balancer in front
 * of both (HAProxy in the root namespace on 127.0.0.1, health-checking each host's proxy). The
 * action's probe and the three load lanes (keep-alive GETs, 1 s GETs, 1 s POSTs) go through it.
 * In order: v1 on both hosts; v1 → v2 host by host, nothing lost; v3, unhealthy on the second host
 * only, rolls the first back, nothing lost; a third host nobody listens for stops the deploy before
 * anything changes; rollback by release id returns both hosts to v1, nothing lost.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { appImage, bench, freePort, repo, runAction, sampleWorkspace, sh, uniqueProject, type ActionRun } from './harness.js';
import { get, startLoad, type LoadResult } from './load.js';

interface BenchHost {
  name: string;
  host: string;
  port: number;
  fingerprint: string;
  knownHosts: string;
  dockerHost: string;
}

const project = uniqueProject('fleet');
const hostPort = freePort();
const lbPort = freePort();
const v3Tag = `handoff-test-app:fleet-v3-${process.pid}`;
const v3Unhealthy = `handoff-test-app:fleet-v3-unhealthy-${process.pid}`;
let hosts: BenchHost[] = [];
let workspace: string;
let lb: ChildProcess | undefined;
/** The v1 release id, the same on both hosts (set by the first test, rolled back to by the last). */
let v1Release: string | undefined;

/** The sample stack, its proxy published on every address of the host (the load balancer reaches it on the bridge). */
const FLEET_COMPOSE = (sample: string) =>
  sample
    .replace('"127.0.0.1:${PROXY_PORT:-18080}:8080"', '"${PROXY_PORT}:8080"')
    // The image decides its health (v3 is unhealthy on the second host only).
    .replace(/\n\s+HEALTH_FAIL: \$\{HEALTH_FAIL:-0\}/, '');

function inputs(version: string, extra: Record<string, string> = {}): Record<string, string> {
  const b = bench();
  return {
    hosts: hosts.map((h) => h.host).join('\n'),
    username: b.user,
    key: readFileSync(b.keys.ed25519, 'utf8'),
    known_hosts: hosts.map((h) => readFileSync(h.knownHosts, 'utf8')).join(''),
    project,
    compose_files: 'deploy/fleet.yaml',
    files: 'deploy/haproxy/',
    env: `PROXY_PORT=${hostPort}\nAPP_IMAGE=${version}`,
    pull: 'never',
    keep_releases: '20',
    probe_url: `http://127.0.0.1:${lbPort}/`,
    // Each host's own proxy too, at its address on the bridge.
    probe_host_url: `http://{host}:${hostPort}/`,
    ...extra,
  };
}

/** Run `docker` against one bench host's own engine. */
function onHost(h: BenchHost, args: string): Promise<string> {
  return sh(`DOCKER_HOST=${h.dockerHost} docker ${args}`);
}

/** The project's directory on a host, seen from the root namespace (the host's home is a directory of this machine). */
function projectDir(h: BenchHost): string {
  return `/var/lib/handoff-hosts/${h.name}/home/handoff/${project}`;
}

async function current(h: BenchHost): Promise<string> {
  return (await readFile(join(projectDir(h), 'current'), 'utf8')).trim();
}

async function releaseResult(h: BenchHost, id: string): Promise<string> {
  return (JSON.parse(await readFile(join(projectDir(h), 'releases', id, 'release.json'), 'utf8')) as { result: string }).result;
}

/** Running app containers on a host: id and the APP_VERSION they run. */
async function appReplicas(h: BenchHost): Promise<Array<{ id: string; version: string }>> {
  const ids = (await onHost(h, `ps -q --filter label=com.docker.compose.project=${project} --filter label=com.docker.compose.service=app`))
    .split('\n')
    .filter(Boolean);
  const out = [];
  for (const id of ids) {
    const env = await onHost(h, `inspect -f '{{range .Config.Env}}{{println .}}{{end}}' ${id}`);
    out.push({ id, version: /^APP_VERSION=(.*)$/m.exec(env)?.[1] ?? '?' });
  }
  return out;
}

async function allContainerIds(h: BenchHost): Promise<string[]> {
  return (await onHost(h, `ps -aq --no-trunc --filter label=com.docker.compose.project=${project}`)).split('\n').filter(Boolean).sort();
}

/** The load balancer in front of both hosts: HAProxy health-checking each host's proxy, retrying a refused connection elsewhere. */
async function startBalancer(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'handoff-fleet-lb-'));
  const cfg = join(dir, 'lb.cfg');
  await writeFile(
    cfg,
    [
      'defaults',
      '  mode http',
      '  timeout connect 2s',
      '  timeout client 30s',
      '  timeout server 30s',
      '  timeout http-keep-alive 10s',
      '  retries 3',
      '  option redispatch 1',
      '  retry-on conn-failure empty-response',
      '  option httpchk GET /health',
      '  http-check expect status 200',
      '  default-server check inter 1s fall 2 rise 2',
      'frontend lb',
      `  bind 127.0.0.1:${lbPort}`,
      '  default_backend hosts',
      'backend hosts',
      '  balance roundrobin',
      '  http-request disable-l7-retry unless METH_GET || METH_HEAD',
      ...hosts.map((h) => `  server ${h.name} ${h.host}:${hostPort}`),
      '',
    ].join('\n'),
  );
  lb = spawn('/usr/sbin/haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  lb.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(lb.exitCode, null, `the load balancer runs: ${err}`);
}

/** Wait until the balancer answers `version` from every host (both in rotation). */
async function waitFleetServing(version: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answers = await Promise.all([1, 2, 3, 4].map(() => get(lbPort).catch(() => undefined)));
    if (answers.every((a) => a?.status === 200 && a.version === version)) return;
    if (Date.now() > deadline) throw new Error(`the fleet does not serve ${version}: ${JSON.stringify(answers)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/** A deploy with the three load lanes running through the balancer the whole time. */
async function deployUnderLoad(version: string, extra: Record<string, string> = {}): Promise<{ run: ActionRun; load: LoadResult }> {
  const load = startLoad({ port: lbPort, rate: 40, maxDurationMs: 300_000, paths: ['/', '/slow?ms=1000'], postEvery: 3 });
  await new Promise((r) => setTimeout(r, 500));
  let run: ActionRun;
  try {
    run = await runAction(inputs(version, extra), { workspace });
  } finally {
    await new Promise((r) => setTimeout(r, 1500));
  }
  return { run: run!, load: await load.stop() };
}

function describeFailures(load: LoadResult): string {
  return `${load.failures.length} of ${load.sent} requests failed: ${JSON.stringify(load.failures.slice(0, 10))}`;
}

function hostRows(run: ActionRun): Array<{ host: string; plan: string; durationS?: number; result: string; probe?: string }> {
  assert.ok(run.outputs.hosts, `the hosts output is set (log:\n${run.log.slice(-3000)})`);
  return JSON.parse(run.outputs.hosts!);
}

before(async () => {
  await sh(`bash ${join(repo, 'scripts/bench/hosts.sh')} up`, 600_000);
  hosts = (JSON.parse(readFileSync(join(repo, '.bench/hosts.json'), 'utf8')) as BenchHost[]).filter((h) => ['h1', 'h2'].includes(h.name));
  assert.equal(hosts.length, 2, 'two bench hosts');
  workspace = await sampleWorkspace();
  await writeFile(join(workspace, 'deploy/fleet.yaml'), FLEET_COMPOSE(await readFile(join(workspace, 'deploy/compose.yaml'), 'utf8')));
  await startBalancer();
});

after(async () => {
  if (lb?.pid && lb.exitCode === null) lb.kill('SIGTERM');
  for (const h of hosts) {
    const ids = await allContainerIds(h).catch(() => []);
    if (ids.length) await onHost(h, `rm -f ${ids.join(' ')} >/dev/null`).catch(() => {});
    await onHost(
      h,
      `network ls -q --filter label=com.docker.compose.project=${project} | xargs -r env DOCKER_HOST=${h.dockerHost} docker network rm`,
    ).catch(() => {});
    await onHost(h, `rmi -f ${v3Tag} ${v3Unhealthy} >/dev/null 2>&1 || true`).catch(() => {});
    if (existsSync(projectDir(h))) await sh(`rm -rf ${projectDir(h)}`);
  }
  await sh(`docker rmi -f ${v3Tag} ${v3Unhealthy} >/dev/null 2>&1 || true`);
});

test('v1 → v2 across two hosts, host by host, behind a load balancer: nothing lost', { timeout: 300_000 }, async () => {
  // The first deploy rolls both hosts at once (host_parallelism); nothing serves yet, so no probe.
  const first = await runAction(
    { ...inputs('handoff-test-app:v1'), probe_url: '', probe_host_url: '', host_parallelism: '2' },
    { workspace },
  );
  assert.equal(first.code, 0, `the v1 deploy to both hosts succeeds:\n${first.log}`);
  const h2Started = first.log.indexOf('host #2 10.78.0.12:22: roll release');
  assert.ok(
    h2Started > 0 && h2Started < first.log.indexOf('host #1 10.78.0.11:22: rolled in'),
    'host_parallelism 2: both hosts roll at once',
  );
  const v1 = first.outputs.release_id!;
  v1Release = v1;
  for (const h of hosts) assert.equal(await current(h), v1, `${h.name} serves release ${v1} (one id on every host)`);
  await waitFleetServing('v1');

  const { run, load } = await deployUnderLoad('handoff-test-app:v2');
  assert.equal(run.code, 0, `the v2 fleet deploy succeeds (load loop: ${describeFailures(load)}):\n${run.log}`);
  const v2 = run.outputs.release_id!;
  assert.notEqual(v2, v1);
  for (const h of hosts) {
    assert.equal(await current(h), v2, `${h.name} serves ${v2}`);
    assert.deepEqual(
      (await appReplicas(h)).map((r) => r.version),
      ['v2', 'v2', 'v2'],
      `${h.name} runs three v2 replicas`,
    );
  }
  // Host by host: the second host's rollout starts after the first one's ended.
  const h1Done = run.log.indexOf('host #1 10.78.0.11:22: rolled in');
  const h2Start = run.log.indexOf('host #2 10.78.0.12:22: roll release');
  assert.ok(h1Done > 0 && h2Start > h1Done, 'the second host rolls after the first one finished');
  const rows = hostRows(run);
  assert.deepEqual(
    rows.map((r) => [r.host, r.result]),
    [
      ['#1 10.78.0.11:22', 'rolled'],
      ['#2 10.78.0.12:22', 'rolled'],
    ],
  );
  for (const r of rows) {
    assert.match(r.plan, /app: roll 3→3 \(3 batches\)/);
    const [lost, sent] =
      /^(\d+) lost of (\d+)$/
        .exec(r.probe ?? '')
        ?.slice(1)
        .map(Number) ?? [];
    assert.ok(lost === 0 && sent! > 100, `${r.host}: its own probe ran and lost nothing (${r.probe})`);
  }
  assert.match(run.summary, /deploy of .* to 2 hosts succeeded/);
  assert.match(run.summary, /### Hosts\n\n\| host \| plan \| rollout \| host probe \| result \|/);

  assert.equal(load.failures.length, 0, describeFailures(load));
  assert.ok(load.sent > 200, `the load ran during the deploy (${load.sent} requests)`);
  assert.ok(
    (load.versions.get('v1') ?? 0) > 0 && (load.versions.get('v2') ?? 0) > 0,
    `both versions answered: ${JSON.stringify([...load.versions])}`,
  );
  assert.equal(run.outputs.requests_lost, '0', 'the probe lost nothing');
  assert.ok(Number(run.outputs.requests_sent) > 100, `the probe ran over the whole fleet deploy (${run.outputs.requests_sent})`);
  console.log(
    `fleet v1 → v2: ${run.outputs.duration_s} s; load ${load.sent} sent, ${load.failures.length} failed; probe ${run.outputs.requests_sent} sent, ${run.outputs.requests_lost} lost; hosts ${JSON.stringify(rows)}`,
  );
});

test('v3 unhealthy on the second host: the first host is rolled back, both serve v2, nothing lost', { timeout: 300_000 }, async () => {
  const v2 = await current(hosts[0]!);
  // The same tag is a healthy image on h1 and an unhealthy one on h2.
  await appImage(v3Tag, 'v3');
  await sh(`printf 'FROM ${v3Tag}\\nENV HEALTH_FAIL=1\\n' | docker build -q -t ${v3Unhealthy} - >/dev/null`);
  await sh(`docker save ${v3Tag} | DOCKER_HOST=${hosts[0]!.dockerHost} docker load -q >/dev/null`);
  await sh(`docker save ${v3Unhealthy} | DOCKER_HOST=${hosts[1]!.dockerHost} docker load -q >/dev/null`);
  await onHost(hosts[1]!, `tag ${v3Unhealthy} ${v3Tag}`);

  const { run, load } = await deployUnderLoad(v3Tag);
  assert.notEqual(run.code, 0, 'the fleet deploy fails');
  assert.equal(run.outputs.rolled_back, 'true');
  assert.match(run.log, /host #2 10\.78\.0\.12:22: .*(unhealthy|health)/i, 'the failure names the host and its health check');
  const v3 = run.outputs.release_id!;
  for (const h of hosts) {
    assert.equal(await current(h), v2, `${h.name} serves ${v2} again`);
    assert.equal(await releaseResult(h, v3), 'rolled-back', `${h.name} records ${v3} as rolled back`);
    assert.deepEqual(
      (await appReplicas(h)).map((r) => r.version),
      ['v2', 'v2', 'v2'],
      `${h.name} runs three v2 replicas`,
    );
  }
  assert.deepEqual(
    hostRows(run).map((r) => [r.result, r.probe?.replace(/of \d+/, 'of N')]),
    [
      ['rolled, then rolled back', '0 lost of N'],
      ['failed, rolled back', '0 lost of N'],
    ],
    'both hosts went back, and neither host probe lost a request',
  );
  assert.ok((load.versions.get('v3') ?? 0) > 0, `the first host served v3 before it went back: ${JSON.stringify([...load.versions])}`);
  assert.deepEqual([...new Set(load.sequence.slice(-20))], ['v2'], 'the last answers are all v2');
  assert.equal(load.failures.length, 0, describeFailures(load));
  assert.equal(run.outputs.requests_lost, '0', 'the probe lost nothing');
  console.log(
    `fleet v3 rolled back: ${run.outputs.duration_s} s; load ${load.sent} sent, ${load.failures.length} failed; probe ${run.outputs.requests_sent} sent, ${run.outputs.requests_lost} lost; hosts ${run.outputs.hosts}`,
  );
});

test('a host that cannot be reached stops the deploy before anything changes', { timeout: 120_000 }, async () => {
  const before = await Promise.all(hosts.map(async (h) => ({ current: await current(h), ids: await allContainerIds(h) })));
  const releasesBefore = await Promise.all(hosts.map((h) => sh(`ls ${projectDir(h)}/releases`)));
  // A third host: h1's address on a port nothing listens on (its key pinned, so only the connection fails).
  const h1Key = readFileSync(hosts[0]!.knownHosts, 'utf8').trim().split(' ').slice(1).join(' ');
  const base = inputs('handoff-test-app:v1');
  const run = await runAction(
    {
      ...base,
      hosts: `${base.hosts}\n10.78.0.11:2`,
      known_hosts: `${base.known_hosts}[10.78.0.11]:2 ${h1Key}\n`,
      probe_url: '',
      probe_host_url: '',
    },
    { workspace },
  );
  assert.notEqual(run.code, 0, 'the deploy fails');
  assert.match(run.log, /host #3 10\.78\.0\.11:2: could not connect .*nothing was changed on any host/);
  for (const [i, h] of hosts.entries()) {
    assert.equal(await current(h), before[i]!.current, `${h.name}'s current release is unchanged`);
    assert.deepEqual(await allContainerIds(h), before[i]!.ids, `${h.name}'s containers are the same ones`);
    assert.equal(await sh(`ls ${projectDir(h)}/releases`), releasesBefore[i], `${h.name} got no new release`);
    assert.ok(!existsSync(join(projectDir(h), 'lock')), `${h.name} is not locked`);
  }
  assert.deepEqual(
    hostRows(run).map((r) => r.result),
    ['not changed', 'not changed', 'connect failed'],
  );
});

test('rollback by release id: both hosts return to the v1 release host by host, nothing lost', { timeout: 300_000 }, async () => {
  assert.ok(v1Release, 'the first test deployed v1');
  const v2 = await current(hosts[0]!);
  assert.notEqual(v2, v1Release);
  // The release's own files are on every host. APP_IMAGE stays v2 in the inputs: a rollback
  // deploys the release's recorded env and images, not the inputs'.
  const { run, load: result } = await deployUnderLoad('handoff-test-app:v2', { rollback: 'true', release: v1Release!, probe_host_url: '' });
  assert.equal(run.code, 0, `the fleet rollback succeeds (load loop: ${describeFailures(result)}):\n${run.log}`);
  const rollbackId = run.outputs.release_id!;
  for (const h of hosts) {
    assert.equal(await current(h), rollbackId, `${h.name} serves the rollback release (one id on every host)`);
    assert.deepEqual(
      (await appReplicas(h)).map((r) => r.version),
      ['v1', 'v1', 'v1'],
      `${h.name} runs three v1 replicas again`,
    );
  }
  const h1Done = run.log.indexOf('host #1 10.78.0.11:22: rolled in');
  const h2Start = run.log.indexOf('host #2 10.78.0.12:22: roll release');
  assert.ok(h1Done > 0 && h2Start > h1Done, 'host by host: the second host rolls back after the first one finished');
  await waitFleetServing('v1');
  assert.ok((result.versions.get('v2') ?? 0) > 0 && (result.versions.get('v1') ?? 0) > 0, 'both versions answered');
  assert.equal(result.failures.length, 0, describeFailures(result));
  assert.equal(run.outputs.requests_lost, '0', 'the probe lost nothing');
  console.log(
    `fleet rollback to ${v1Release}: ${run.outputs.duration_s} s; load ${result.sent} sent, ${result.failures.length} failed; probe ${run.outputs.requests_sent} sent, ${run.outputs.requests_lost} lost`,
  );
});
