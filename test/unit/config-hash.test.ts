import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configJsonCommand, flavorOfLabel, mergeHashes, readDesiredConfig, stdinHashCommand, withoutDependsOn } from '../../src/config-hash.js';
import type { ExecOptions, Remote } from '../../src/remote.js';

const stack = { project: 'shop', files: ['/r/compose.yaml'], envFile: '/r/.env', projectDirectory: '/app' };

test('v2 commands: the loaded model as JSON, and config --hash over a model on stdin resolved like the project', () => {
  assert.equal(configJsonCommand(stack), 'docker compose -p shop -f /r/compose.yaml --env-file /r/.env --project-directory /app config --format json');
  assert.equal(stdinHashCommand(stack), "docker compose -p shop -f - --env-file /r/.env --project-directory /app config '--hash=*'");
});

test('withoutDependsOn drops depends_on from every service and nothing else', () => {
  const model = { name: 'p', services: { a: { image: 'x', environment: { P: 'pa$$word' } }, b: { image: 'y', depends_on: { a: { condition: 'service_started', required: true } } } } };
  const out = JSON.parse(withoutDependsOn(JSON.stringify(model)));
  assert.deepEqual(out, { name: 'p', services: { a: { image: 'x', environment: { P: 'pa$$word' } }, b: { image: 'y' } } });
});

test('mergeHashes keeps the first list first and drops repeats', () => {
  const m = mergeHashes(new Map([['a', 'h1'], ['b', 'h2']]), new Map([['a', 'h1'], ['b', 'h3']]), new Map([['a', 'h4']]));
  assert.deepEqual([...m], [['a', ['h1', 'h4']], ['b', ['h2', 'h3']]]);
});

test('flavorOfLabel', () => {
  assert.equal(flavorOfLabel('1.29.2'), 'v1');
  assert.equal(flavorOfLabel('2.26.1'), 'v2');
  assert.equal(flavorOfLabel('v2.40.0'), 'v2');
  assert.equal(flavorOfLabel(''), undefined);
});

function fakeRemote(answers: (cmd: string, stdin?: string) => string): Remote & { calls: Array<{ cmd: string; stdin?: string }> } {
  const calls: Array<{ cmd: string; stdin?: string }> = [];
  return {
    calls,
    async exec(cmd: string, o: ExecOptions = {}) {
      const stdin = o.stdin?.toString();
      calls.push({ cmd, stdin });
      return { code: 0, stdout: answers(cmd, stdin), stderr: '' };
    },
    async writeFile() {},
    async openUnixSocket() { throw new Error('no'); },
    async openTcp() { throw new Error('no'); },
    async close() {},
  };
}

const h = (c: string) => c.repeat(64);

test('readDesiredConfig v2: hashes of the loaded model first, then without depends_on, then config --hash', async () => {
  const json = JSON.stringify({ services: { proxy: { image: 'h', depends_on: { app: {} } }, app: { image: 'a' } } });
  const remote = fakeRemote((cmd, stdin) => {
    if (cmd.endsWith('config --format json')) return json;
    if (cmd.includes('-f -')) return stdin!.includes('depends_on') ? `proxy ${h('1')}\napp ${h('a')}\n` : `proxy ${h('2')}\napp ${h('a')}\n`;
    return `proxy ${h('3')}\napp ${h('b')}\n`;
  });
  const r = await readDesiredConfig(remote, 'v2', stack);
  assert.equal(r.modelText, json);
  assert.deepEqual(r.hashes.get('proxy'), [h('1'), h('2'), h('3')]);
  assert.deepEqual(r.hashes.get('app'), [h('a'), h('b')]);
  assert.equal(remote.calls.length, 4);
});

test('readDesiredConfig v1: YAML config and config --hash', async () => {
  const remote = fakeRemote((cmd) => (cmd.includes('--hash') ? `app ${h('c')}\n` : 'services:\n  app: {image: a}\n'));
  const r = await readDesiredConfig(remote, 'v1', stack);
  assert.deepEqual(r.hashes.get('app'), [h('c')]);
  assert.ok(remote.calls.every((c) => c.cmd.startsWith('docker-compose ')));
});
