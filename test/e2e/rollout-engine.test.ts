/**
 * rollOut against the bench's Docker with Compose v2 and v1, through a local-shell Remote:
 * create, roll to a new image start-first, a second identical deploy that changes nothing, then a
 * failing rollout that must leave the old replicas.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { composeCommand, type ComposeFlavor, type ComposeProject } from '../../src/engine/docker/compose-cli.js';
import { readDesiredConfig } from '../../src/model/config-hash.js';
import { parseCompose } from '../../src/model/compose.js';
import { listProjectContainers } from '../../src/engine/docker/containers.js';
import { planDeploy, type DesiredService } from '../../src/model/plan.js';
import { degradedGate } from '../../src/proxy/gate.js';
import { checkPolicies } from '../../src/model/rollout-policy.js';
import { rollOut } from '../../src/rollout/rollout.js';
import { dockerEngine } from '../../src/engine/docker/engine.js';
import { Timeline } from '../../src/model/timeline.js';
import { shqAll } from '../../src/commands/quote.js';
import { LocalRemote } from '../helpers/local-remote.js';

const bench = existsSync('/work/main/.bench/bench.json') || existsSync(new URL('../../.bench/bench.json', import.meta.url));

const composeText = `
services:
  web:
    image: \${APP_IMAGE}
    environment:
      HEALTH_FAIL: \${HEALTH_FAIL:-0}
    deploy:
      replicas: 2
      update_config: { order: start-first, monitor: 1s }
    stop_grace_period: 2s
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/health"]
      interval: 1s
      timeout: 2s
      retries: 2
`;

for (const flavor of ['v2', 'v1'] as ComposeFlavor[]) {
  test(
    `rollOut on the bench (Compose ${flavor}): create, roll, unchanged, failed roll keeps the old replicas`,
    { skip: !bench && 'no bench', timeout: 240_000 },
    async () => {
      const remote = new LocalRemote();
      const dir = mkdtempSync(join(tmpdir(), 'handoff-e2e-'));
      const project = `handoff-e2e-engine-${process.pid}`;
      const file = join(dir, 'compose.yaml');
      writeFileSync(file, composeText);
      const stack: ComposeProject = { project, files: [file], envFile: join(dir, '.env') };
      const log = { info: () => {}, warning: () => {} };

      async function deploy(env: Record<string, string>) {
        writeFileSync(
          stack.envFile!,
          Object.entries(env)
            .map(([k, v]) => `${k}=${v}`)
            .join('\n') + '\n',
        );
        const config = await readDesiredConfig(remote, flavor, stack);
        const model = parseCompose([{ name: 'compose config', text: config.modelText }], { interpolate: false });
        const { policies, errors } = checkPolicies(model, ['web']);
        assert.deepEqual(errors, []);
        const desired: DesiredService[] = [];
        for (const service of model.services) {
          const id = (await remote.exec(shqAll(['docker', 'image', 'inspect', '--format', '{{.Id}}', service.image!]))).stdout.trim();
          const configHashes = config.hashes.get(service.name)!;
          desired.push({ service, configHash: configHashes[0]!, configHashes, imageId: id, policy: policies.get(service.name)! });
        }
        const plan = planDeploy({ desired, running: await listProjectContainers(remote, project) });
        const timeline = new Timeline();
        const result = await rollOut(
          { engine: dockerEngine({ remote, flavor, stack }), gate: degradedGate, timeline, log, pollMs: 300 },
          plan,
        );
        return { plan, result, timeline };
      }
      const web = async () => (await listProjectContainers(remote, project)).filter((c) => c.service === 'web');

      try {
        const first = await deploy({ APP_IMAGE: 'handoff-test-app:v1' });
        assert.equal(first.plan.services[0]!.action, 'create');
        assert.equal(first.result.ok, true, first.result.failure?.reason);
        const v1 = await web();
        assert.equal(v1.length, 2);
        assert.ok(v1.every((c) => c.health === 'healthy' && c.image === 'handoff-test-app:v1'));

        const second = await deploy({ APP_IMAGE: 'handoff-test-app:v2' });
        assert.equal(second.plan.services[0]!.action, 'roll');
        assert.equal(second.plan.services[0]!.batches.length, 2);
        assert.equal(second.result.ok, true, second.result.failure?.reason);
        const v2 = await web();
        assert.equal(v2.length, 2);
        assert.ok(v2.every((c) => c.image === 'handoff-test-app:v2' && c.state === 'running'));
        assert.ok(
          v2.every((c) => !v1.some((o) => o.id === c.id)),
          'old containers were removed',
        );
        const actions = second.timeline.events.map((e) => e.action);
        // The degraded gate drains nothing, so no drain events: the proxy gate records those, per replica.
        assert.deepEqual(actions, ['start', 'healthy', 'stop', 'remove', 'monitor-ok', 'start', 'healthy', 'stop', 'remove', 'monitor-ok']);

        const again = await deploy({ APP_IMAGE: 'handoff-test-app:v2' });
        assert.equal(again.plan.changes, false, 'a second identical deploy changes nothing');
        assert.deepEqual((await web()).map((c) => c.id).sort(), v2.map((c) => c.id).sort());
        // Compose names its containers project_web_N (v1) or project-web-N (v2).
        const sep = flavor === 'v1' ? '_' : '-';
        assert.ok(
          v2.every((c) => c.name.startsWith(`${project}${sep}web${sep}`)),
          v2.map((c) => c.name).join(' '),
        );

        const bad = await deploy({ APP_IMAGE: 'handoff-test-app:v2', HEALTH_FAIL: '1' });
        assert.equal(bad.result.ok, false);
        assert.equal(bad.result.failure!.service, 'web');
        assert.match(bad.result.failure!.reason, /unhealthy/);
        assert.ok(bad.result.failure!.logs.length > 0);
        const after = await web();
        assert.deepEqual(after.map((c) => c.id).sort(), v2.map((c) => c.id).sort(), 'the failed container is gone and the old ones serve');
      } finally {
        await remote.exec(composeCommand(flavor, stack, ['down', '-v', '-t', '1']), { check: false });
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
}
