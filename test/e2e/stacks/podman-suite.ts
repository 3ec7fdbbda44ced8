/**
 * Issue #17 acceptance (podman.test.ts: rootful; a rootless Podman 4.3 fails it, docs/podman-on-the-bench.md): a Podman host,
 * the bench's Podman 4.3 (scripts/bench/podman.sh) reached by the deploy user through Podman's
 * Docker-compatible API socket (`engine: podman`), beside the bench's Docker engine, which must not
 * see any of it. One stack (test/e2e/stacks/podman.yaml:
 * examples/haproxy/ with the resolver on aardvark-dns, the app stopped by SIGKILL), in order:
 * 1. v1 -> v2 under the three load lanes (keep-alive GETs, 1 s GETs, 1 s POSTs) and the probe with its
 *    long-request lane: nothing lost;
 * 2. an unhealthy v3: refused, rolled back, v2 keeps serving, nothing lost, no v3 left;
 * 3. rollback by release id to v1, with the v1 tag moved to another image first (a re-pushed tag):
 *    the pinned image serves again, nothing lost.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  cleanupProject,
  connectionInputs,
  freePort,
  projectContainers,
  repo,
  runAction,
  sh,
  uniqueProject,
  type ActionRun,
} from '../harness.js';
import { get, startLoad, type LoadResult } from '../load.js';
import { containerVersion, sleep, summaryTimeline, waitServing } from './helpers.js';

export interface PodmanSuiteOptions {
  /** The Podman API socket the test process talks to (and the deploy must pick). */
  socket: string;
  /** Name it in the podman_socket input (else handoff's own search must find it). */
  nameSocket: boolean;
  label: string;
}

export function podmanSuite(o: PodmanSuiteOptions): void {
  const PODMAN_SOCK = o.socket;
  // Every docker command of this process (the harness's helpers included) talks to this Podman.
  process.env.DOCKER_HOST = `unix://${PODMAN_SOCK}`;
  /** The bench's Docker engine, for checking that it saw nothing of this project. */
  const onDocker = (cmd: string) => sh(`env -u DOCKER_HOST ${cmd}`);

  const project = uniqueProject(o.label);
  const port = freePort();
  const v3Tag = `handoff-test-app:${o.label}-v3-${process.pid}`;
  let workspace: string;
  let image = 'handoff-test-app:v1';
  let healthFail = '0';
  const releases: Record<string, string> = {};

  const inputs = (extra: Record<string, string> = {}) => ({
    ...connectionInputs(),
    project,
    engine: 'podman',
    ...(o.nameSocket ? { podman_socket: PODMAN_SOCK } : {}),
    compose_files: 'deploy/compose.yaml',
    files: 'deploy/haproxy/',
    env: `PROXY_PORT=${port}\nAPP_IMAGE=${image}\nHEALTH_FAIL=${healthFail}`,
    pull: 'never',
    keep_releases: '20',
    probe_url: `http://127.0.0.1:${port}/`,
    probe_slow_url: `http://127.0.0.1:${port}/slow?ms=1000`,
    ...extra,
  });

  async function deployUnderLoad(extra: Record<string, string> = {}): Promise<{ run: ActionRun; load: LoadResult }> {
    const load = startLoad({ port, rate: 40, maxDurationMs: 240_000, paths: ['/', '/slow?ms=1000'], postEvery: 3 });
    await sleep(500);
    let run: ActionRun;
    try {
      run = await runAction(inputs(extra), { workspace });
    } finally {
      await sleep(1500);
    }
    return { run: run!, load: await load.stop() };
  }

  const describeFailures = (load: LoadResult) =>
    `${load.failures.length} of ${load.sent} requests failed: ${JSON.stringify(load.failures.slice(0, 10))}`;

  /** The probe's figures per lane, from its records file. */
  async function probeLanes(run: ActionRun): Promise<Record<string, { sent: number; lost: number }>> {
    const { records } = JSON.parse(await readFile(run.outputs.probe_records!, 'utf8')) as {
      records: Array<{ lane: string; outcome: string }>;
    };
    const out: Record<string, { sent: number; lost: number }> = {};
    for (const r of records) {
      if (r.outcome === 'unmeasured') continue;
      const lane = (out[r.lane] ??= { sent: 0, lost: 0 });
      lane.sent++;
      if (r.outcome !== 'ok') lane.lost++;
    }
    return out;
  }

  async function runningVersions(): Promise<string[]> {
    const running = (await projectContainers(project)).filter((c) => c.service === 'app' && c.state === 'running');
    return (await Promise.all(running.map((c) => containerVersion(c.id)))).sort();
  }

  /** What the figures were, for the log of a CI run (and the report on the issue). */
  function report(name: string, run: ActionRun, load: LoadResult, lanes?: Record<string, { sent: number; lost: number }>): void {
    const byPath = new Map<string, number>();
    for (const f of load.failures) byPath.set(f.path, (byPath.get(f.path) ?? 0) + 1);
    console.log(
      `[${o.label}] ${name}: load ${load.failures.length} lost of ${load.sent} (/, /slow 1 s GET, /echo POST), probe ${run.outputs.requests_lost ?? '-'} lost of ${run.outputs.requests_sent ?? '-'} ${lanes ? JSON.stringify(lanes) : ''}, ${run.outputs.duration_s ?? '?'} s`,
    );
  }

  before(async () => {
    const version = (await sh(`docker version --format '{{.Server.Version}}'`)).trim();
    assert.match(version, /^\d+\.\d+/, `Podman's API socket answers (${PODMAN_SOCK}; scripts/bench/setup.sh starts it)`);
    workspace = await mkdtemp(join(tmpdir(), 'handoff-ws-podman-'));
    await mkdir(join(workspace, 'deploy'));
    await cp(join(repo, 'examples/haproxy'), join(workspace, 'deploy/haproxy'), { recursive: true });
    await cp(join(repo, 'test/e2e/stacks/podman.yaml'), join(workspace, 'deploy/compose.yaml'));
    // aardvark-dns answers on the project network's gateway (the subnet is pinned in podman.yaml).
    const cfg = join(workspace, 'deploy/haproxy/haproxy.cfg');
    const text = await readFile(cfg, 'utf8');
    assert.match(text, /nameserver dns 127\.0\.0\.11:53/);
    await writeFile(cfg, text.replace('nameserver dns 127.0.0.11:53', 'nameserver dns 10.89.217.1:53'));
    const first = await runAction(inputs({ probe_url: '', probe_slow_url: '' }), { workspace });
    assert.equal(first.code, 0, `the v1 deploy succeeds:\n${first.log}`);
    assert.ok(first.log.includes(`(unix://${PODMAN_SOCK}), Compose v2`), 'the engine and its socket are named in the log');
    assert.match(first.log, /Podman 4\.\d+\.\d+ \(unix:/);
    releases.v1 = first.outputs.release_id!;
    await waitServing(port, 'v1', 60_000);
  });

  after(async () => {
    await cleanupProject(project);
    await sh(`docker rmi -f ${v3Tag} >/dev/null 2>&1 || true`);
    await onDocker(`docker rmi -f ${v3Tag} >/dev/null 2>&1 || true`);
    // Put the shared v1 tag back on the v1 image, whatever the rollback test did.
    await sh(
      `docker tag "$(env -u DOCKER_HOST docker image inspect --format '{{.Id}}' handoff-test-app:v1)" localhost/handoff-test-app:v1`,
    );
  });

  test(
    `${o.label}: v1 -> v2 under the three load lanes and the probe, nothing lost; Docker sees nothing`,
    { timeout: 420_000 },
    async () => {
      const before = await projectContainers(project);
      assert.equal(before.filter((c) => c.service === 'app' && c.state === 'running').length, 3, 'three v1 replicas in Podman');
      assert.equal((await onDocker(`docker ps -aq --filter label=com.docker.compose.project=${project}`)).trim(), '', 'none in Docker');

      image = 'handoff-test-app:v2';
      const { run, load } = await deployUnderLoad();
      const lanes = await probeLanes(run);
      report('v1 -> v2', run, load, lanes);
      assert.equal(run.code, 0, `the v2 deploy succeeds:\n${run.log}`);
      releases.v2 = run.outputs.release_id!;

      const events = summaryTimeline(run.summary).filter((e) => e.service === 'app' && (e.action === 'start' || e.action === 'remove'));
      assert.deepEqual(
        events.map((e) => e.action),
        ['start', 'remove', 'start', 'remove', 'start', 'remove'],
        JSON.stringify(events),
      );
      assert.match(run.log, /drain/i, 'old replicas were drained through HAProxy');
      assert.equal(load.failures.length, 0, describeFailures(load));
      assert.ok(load.sent > 100, `the load ran during the deploy (${load.sent})`);
      assert.ok((load.versions.get('v1') ?? 0) > 0 && (load.versions.get('v2') ?? 0) > 0, JSON.stringify([...load.versions]));
      assert.equal(run.outputs.requests_lost, '0', 'the probe lost nothing');
      for (const lane of ['keepalive', 'fresh', 'slow'])
        assert.ok((lanes[lane]?.sent ?? 0) > 0, `the probe's ${lane} lane ran: ${JSON.stringify(lanes)}`);
      assert.deepEqual(await runningVersions(), ['v2', 'v2', 'v2']);
      const oldIds = new Set(before.map((c) => c.id));
      assert.deepEqual(
        (await projectContainers(project)).filter((c) => oldIds.has(c.id) && c.service === 'app'),
        [],
        'no old replica left',
      );
      assert.equal((await get(port)).version, 'v2');
      assert.equal(
        (await onDocker(`docker ps -aq --filter label=com.docker.compose.project=${project}`)).trim(),
        '',
        'still none in Docker',
      );
    },
  );

  test(`${o.label}: an unhealthy v3 is refused and rolled back, v2 keeps serving, nothing lost`, { timeout: 420_000 }, async () => {
    // A distinct image: built for Docker by the bench script, then moved into Podman's storage.
    await onDocker(`bash ${join(repo, 'scripts/bench/make-app-image.sh')} ${v3Tag} v3`);
    await sh(`env -u DOCKER_HOST docker save ${v3Tag} | docker load -q >/dev/null`);
    const v3Id = (await sh(`docker image inspect --format '{{.Id}}' ${v3Tag}`)).trim();
    image = v3Tag;
    healthFail = '1';
    let run: ActionRun;
    let load: LoadResult;
    try {
      ({ run, load } = await deployUnderLoad());
    } finally {
      image = 'handoff-test-app:v2';
      healthFail = '0';
    }
    report('unhealthy v3', run, load);
    assert.notEqual(run.code, 0, 'the deploy fails');
    assert.match(run.log, /unhealthy|health/i, 'the failure names the health check');
    assert.match(run.log, /503/, "the job log carries the failed container's health output (Podman's health log)");
    assert.equal(load.failures.length, 0, `v2 kept serving: ${describeFailures(load)}`);
    assert.equal(load.versions.get('v3') ?? 0, 0, 'no request was answered by v3');
    assert.equal(run.outputs.requests_lost, '0', 'the probe lost nothing');
    const app = (await projectContainers(project)).filter((c) => c.service === 'app');
    assert.deepEqual(
      app.filter((c) => c.image === v3Id).map((c) => c.name),
      [],
      'no v3 container is left',
    );
    assert.deepEqual(await runningVersions(), ['v2', 'v2', 'v2']);
  });

  test(
    `${o.label}: rollback by release id returns to v1 by its pinned image, though the tag moved; nothing lost`,
    { timeout: 420_000 },
    async () => {
      assert.ok(releases.v1, 'the v1 release id is known');
      // The v1 tag re-pushed: it now names the v2 image (Podman's own short name, localhost/...).
      const v1Id = (await sh(`docker image inspect --format '{{.Id}}' handoff-test-app:v1`)).trim();
      await sh(`docker tag "$(docker image inspect --format '{{.Id}}' handoff-test-app:v2)" localhost/handoff-test-app:v1`);
      assert.notEqual((await sh(`docker image inspect --format '{{.Id}}' handoff-test-app:v1`)).trim(), v1Id, 'the tag moved');

      const { run, load } = await deployUnderLoad({ rollback: 'true', release: releases.v1 });
      const lanes = await probeLanes(run);
      report('rollback to v1 by id', run, load, lanes);
      assert.equal(run.code, 0, `the rollback succeeds:\n${run.log}`);
      assert.notEqual(run.outputs.release_id, releases.v1, 'a rollback is a new release');
      assert.equal(run.outputs.previous_release_id, releases.v2, 'it replaced v2');
      assert.equal(load.failures.length, 0, describeFailures(load));
      assert.equal(run.outputs.requests_lost, '0', 'the probe lost nothing');
      assert.deepEqual(await runningVersions(), ['v1', 'v1', 'v1'], 'the pinned v1 image runs, not what the tag named');
      assert.equal(
        (await sh(`docker image inspect --format '{{.Id}}' handoff-test-app:v1`)).trim(),
        v1Id,
        'the tag is back on the pinned image',
      );
      const manifest = JSON.parse(await sh(`cat /home/deploy/handoff/${project}/releases/${run.outputs.release_id}/release.json`)) as {
        rollbackOf?: string;
      };
      assert.equal(manifest.rollbackOf, releases.v1);
      assert.equal((await get(port)).version, 'v1');
    },
  );
}
