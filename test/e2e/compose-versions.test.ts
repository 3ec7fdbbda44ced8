/**
 * Issue #9: change detection on Compose v2 and v1, for real, through the bundled action.
 * - A stack with env_file, depends_on (short and long form), a profile turned on by
 *   COMPOSE_PROFILES and a named volume: every container's config-hash label is among the hashes
 *   handoff accepts, a second deploy with the same inputs changes no container, and a changed
 *   env file is still seen as a change.
 * - A host upgraded from Compose v1 to v2 between two deploys: the v1 containers are adopted
 *   (the unchanged proxy is kept) and the changed app is rolled batch by batch with nothing lost.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readDesiredConfig } from '../../src/model/config-hash.js';
import type { ComposeFlavor } from '../../src/engine/docker/compose-cli.js';
import {
  cleanupProject,
  connectionInputs,
  freePort,
  projectContainers,
  repo,
  runAction,
  sampleWorkspace,
  sh,
  uniqueProject,
  type ActionRun,
} from './harness.js';
import { startLoad } from './load.js';
import { waitServing } from './stacks/helpers.js';
import { LocalRemote } from '../helpers/local-remote.js';

const projects: string[] = [];
after(async () => {
  for (const p of projects) await cleanupProject(p);
});

function planOf(run: ActionRun): Array<{ service: string; action: string }> {
  assert.ok(run.outputs.plan, `the plan output is set (log:\n${run.log.slice(-3000)})`);
  return JSON.parse(run.outputs.plan!);
}

async function labels(project: string): Promise<Array<{ id: string; service: string; hash: string; version: string }>> {
  const ids = (await sh(`docker ps -aq --filter label=com.docker.compose.project=${project}`)).split('\n').filter(Boolean);
  const inspect = JSON.parse(await sh(`docker inspect ${ids.join(' ')}`)) as Array<{
    Id: string;
    Config: { Labels: Record<string, string> };
  }>;
  return inspect.map((c) => ({
    id: c.Id,
    service: c.Config.Labels['com.docker.compose.service']!,
    hash: c.Config.Labels['com.docker.compose.config-hash']!,
    version: c.Config.Labels['com.docker.compose.version']!,
  }));
}

for (const flavor of ['v2', 'v1'] as ComposeFlavor[]) {
  test(
    `Compose ${flavor}: env_file, depends_on and profiles hash as up writes them; unchanged inputs change no container`,
    { timeout: 300_000 },
    async () => {
      const project = uniqueProject(`hash-${flavor}`);
      projects.push(project);
      const workspace = await mkdtemp(join(tmpdir(), 'handoff-ws-'));
      await cp(join(repo, 'test/e2e/stacks/variety'), join(workspace, 'deploy'), { recursive: true });
      const inputs = {
        ...connectionInputs(),
        project,
        compose: flavor,
        compose_files: 'deploy/compose.yaml',
        files: 'deploy/db.env\ndeploy/web.env',
        env: 'COMPOSE_PROFILES=jobs',
        pull: 'never',
        keep_releases: '20',
      };
      const first = await runAction(inputs, { workspace });
      assert.equal(first.code, 0, `the first deploy succeeds:\n${first.log}`);
      const created = await labels(project);
      assert.deepEqual([...new Set(created.map((c) => c.service))].sort(), ['db', 'web', 'worker'], 'the profiled worker runs too');
      assert.ok(
        created.every((c) => (flavor === 'v1' ? /^1\./ : /^2\./).test(c.version)),
        `written by Compose ${flavor}: ${created.map((c) => c.version)}`,
      );

      // The hashes handoff accepts include every label Compose wrote (compared on the host's own files).
      const release = (await sh(`cat /home/deploy/handoff/${project}/current`)).trim();
      const root = `/home/deploy/handoff/${project}`;
      const desired = await readDesiredConfig(new LocalRemote(), flavor, {
        project,
        files: [`${root}/releases/${release}/deploy/compose.yaml`],
        envFile: `${root}/releases/${release}/.env`,
        projectDirectory: `${root}/app/deploy`,
      });
      for (const c of created)
        assert.ok(
          desired.hashes.get(c.service)?.includes(c.hash),
          `${c.service}: label ${c.hash} is among ${desired.hashes.get(c.service)}`,
        );

      const again = await runAction(inputs, { workspace });
      assert.equal(again.code, 0, `the same deploy again succeeds:\n${again.log}`);
      for (const p of planOf(again)) assert.equal(p.action, 'keep', `${p.service} is kept: ${again.outputs.plan}`);
      assert.deepEqual((await labels(project)).map((c) => c.id).sort(), created.map((c) => c.id).sort(), 'no container changed');

      // A change that lives only in an env file is a change (the accepted hashes are not too lax).
      await writeFile(join(workspace, 'deploy/web.env'), 'WEB_SETTING=2\n');
      const changed = await runAction(inputs, { workspace });
      assert.equal(changed.code, 0, `the env-file change deploys:\n${changed.log}`);
      const plan = planOf(changed);
      assert.equal(plan.find((p) => p.service === 'web')?.action, 'roll', changed.outputs.plan);
      assert.equal(plan.find((p) => p.service === 'db')?.action, 'keep', changed.outputs.plan);
    },
  );
}

test(
  'a host upgraded from Compose v1 to v2: v1 containers are adopted, the app rolls with nothing lost, the proxy stays',
  { timeout: 420_000 },
  async () => {
    const project = uniqueProject('upgrade');
    projects.push(project);
    const port = freePort();
    const workspace = await sampleWorkspace();
    const inputs = (image: string, compose: string) => ({
      ...connectionInputs(),
      project,
      compose,
      compose_files: 'deploy/compose.yaml',
      files: 'deploy/haproxy/',
      env: `PROXY_PORT=${port}\nAPP_IMAGE=${image}`,
      pull: 'never',
      keep_releases: '20',
      probe_url: `http://127.0.0.1:${port}/`,
    });
    const first = await runAction({ ...inputs('handoff-test-app:v1', 'v1'), probe_url: '' }, { workspace });
    assert.equal(first.code, 0, `the v1 deploy with Compose v1 succeeds:\n${first.log}`);
    await waitServing(port, 'v1');
    const before = await projectContainers(project);
    assert.ok(
      before.every((c) => c.name.includes('_')),
      `Compose v1 names: ${before.map((c) => c.name)}`,
    );
    const proxyBefore = before.find((c) => c.service === 'proxy')!;

    const load = startLoad({ port, rate: 40, maxDurationMs: 240_000 });
    await new Promise((r) => setTimeout(r, 500));
    const run = await runAction(inputs('handoff-test-app:v2', 'v2'), { workspace });
    await new Promise((r) => setTimeout(r, 500));
    const result = await load.stop();
    assert.equal(run.code, 0, `the v2 deploy with Compose v2 succeeds:\n${run.log}`);
    assert.match(run.log, /Compose v2 2\./);
    const plan = planOf(run);
    assert.equal(
      plan.find((p) => p.service === 'proxy')?.action,
      'keep',
      `the unchanged proxy is adopted, not recreated: ${run.outputs.plan}`,
    );
    assert.equal(plan.find((p) => p.service === 'app')?.action, 'roll');
    assert.match(run.log, /adopted 1 container\(s\) written by Compose 1\.29/);
    assert.equal(
      result.failures.length,
      0,
      `${result.failures.length} of ${result.sent} failed: ${JSON.stringify(result.failures.slice(0, 5))}`,
    );
    assert.equal(run.outputs.requests_lost, '0');

    const afterUpgrade = await projectContainers(project);
    assert.equal(afterUpgrade.find((c) => c.service === 'proxy')?.id, proxyBefore.id, 'the same proxy container serves');
    const apps = afterUpgrade.filter((c) => c.service === 'app');
    assert.equal(apps.length, 3);
    assert.ok(
      apps.every((c) => c.name.startsWith(`${project}-app-`)),
      `Compose v2 names for the new replicas: ${apps.map((c) => c.name)}`,
    );

    // From now on the host runs v2: the same inputs change nothing (the v1 proxy is still adopted).
    const again = await runAction(inputs('handoff-test-app:v2', 'v2'), { workspace });
    assert.equal(again.code, 0, again.log);
    for (const p of planOf(again)) assert.equal(p.action, 'keep', again.outputs.plan);
    assert.deepEqual((await projectContainers(project)).map((c) => c.id).sort(), afterUpgrade.map((c) => c.id).sort());
  },
);
