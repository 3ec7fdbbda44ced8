import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { hookCommand, hookService, runHook } from '../../src/phases/hooks.js';
import { parseCompose } from '../../src/model/compose.js';
import { Timeline } from '../../src/model/timeline.js';
import type { ExecOptions } from '../../src/host/remote.js';

const model = parseCompose([
  { name: 'compose.yaml', text: 'services:\n  db:\n    image: postgres:16\n  app:\n    image: app:1\n  proxy:\n    image: haproxy:2.6\n' },
]);
const stack = {
  project: 'shop',
  files: ['/h/releases/r1/compose.yaml'],
  envFile: '/h/releases/r1/.env',
  projectDirectory: '/h/releases/r1',
};

test('hookService: hook_service when it exists, else the first routed service, else the first with an image', () => {
  assert.equal(hookService(model.services, ['app']), 'app');
  assert.equal(hookService(model.services, []), 'db');
  assert.equal(hookService(model.services, ['app'], 'db'), 'db');
  assert.throws(() => hookService(model.services, ['app'], 'migrate'), /input 'hook_service': migrate is not a service .*db, app, proxy/);
});

test('hookCommand: a one-off container removed afterwards, the command one literal argument to sh -c', () => {
  const cmd = hookCommand('v2', stack, 'app', `./migrate --to "latest"; echo '$(whoami)'`);
  assert.match(cmd, /^docker compose -p shop .* run --rm --no-deps -T app sh -c /);
  // The shell sees exactly the words we meant: the user's command stays one argument.
  const words = execFileSync('sh', ['-c', `printf '%s\\n' ${cmd.replace(/^docker compose /, '')}`], { encoding: 'utf8' })
    .trimEnd()
    .split('\n');
  assert.equal(words.at(-1), `./migrate --to "latest"; echo '$(whoami)'`);
  assert.equal(words.at(-2), '-c');
  assert.match(hookCommand('v1', stack, 'app', 'true'), /^docker-compose -p shop/);
});

test('runHook: not repeated after a cut, output streamed, failure named with its tail, timeline noted', async () => {
  const calls: Array<{ command: string; options?: ExecOptions }> = [];
  const lines: string[] = [];
  const timeline = new Timeline();
  const log = { info: (m: string) => lines.push(m), warning: () => {}, error: () => {} };
  const remote = {
    exec: async (command: string, options?: ExecOptions) => {
      calls.push({ command, options });
      options?.onOutput?.('migrated 3\n', 'stdout');
      if (command.includes('fail')) throw new Error('remote command failed (exit 3): …\nERROR: relation exists');
      return { code: 0, stdout: '', stderr: '' };
    },
  };
  const h = { remote: remote as never, flavor: 'v2' as const, stack, service: 'app', timeoutMs: 60_000, log: log as never, timeline };
  await runHook('pre_deploy', './migrate', h);
  assert.equal(calls[0]!.options?.repeatable, false, 'a migration is never re-run on a guess');
  assert.equal(calls[0]!.options?.timeoutMs, 60_000);
  assert.ok(lines.includes('migrated 3'));
  assert.match(timeline.events.at(-1)!.detail ?? '', /^pre_deploy ok/);
  await assert.rejects(runHook('post_deploy', 'fail', h), /post_deploy failed in a one-off app container .*relation exists/s);
  assert.match(timeline.events.at(-1)!.detail ?? '', /^post_deploy failed/);
});
