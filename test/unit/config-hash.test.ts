import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  configJsonCommand,
  envChanged,
  flavorOfLabel,
  mergeHashes,
  readDesiredConfig,
  relocate,
  stdinHashCommand,
  withoutDependsOn,
} from '../../src/model/config-hash.js';
import type { ExecOptions, Remote } from '../../src/host/remote.js';

const stack = { project: 'shop', files: ['/r/compose.yaml'], envFile: '/r/.env', projectDirectory: '/app' };

test('v2 commands: the loaded model as JSON, and config --hash over a model on stdin resolved like the project', () => {
  assert.equal(
    configJsonCommand(stack),
    'docker compose -p shop -f /r/compose.yaml --env-file /r/.env --project-directory /app config --format json',
  );
  assert.equal(stdinHashCommand(stack), "docker compose -p shop -f - --env-file /r/.env --project-directory /app config '--hash=*'");
});

test('withoutDependsOn drops depends_on from every service and nothing else', () => {
  const model = {
    name: 'p',
    services: {
      a: { image: 'x', environment: { P: 'pa$$word' } },
      b: { image: 'y', depends_on: { a: { condition: 'service_started', required: true } } },
    },
  };
  const out = JSON.parse(withoutDependsOn(JSON.stringify(model)));
  assert.deepEqual(out, { name: 'p', services: { a: { image: 'x', environment: { P: 'pa$$word' } }, b: { image: 'y' } } });
});

test('mergeHashes keeps the first list first and drops repeats', () => {
  const m = mergeHashes(
    new Map([
      ['a', 'h1'],
      ['b', 'h2'],
    ]),
    new Map([
      ['a', 'h1'],
      ['b', 'h3'],
    ]),
    new Map([['a', 'h4']]),
  );
  assert.deepEqual(
    [...m],
    [
      ['a', ['h1', 'h4']],
      ['b', ['h2', 'h3']],
    ],
  );
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
    async readFile() {
      return undefined;
    },
    async openUnixSocket() {
      throw new Error('no');
    },
    async openTcp() {
      throw new Error('no');
    },
    async close() {},
  };
}

const h = (c: string) => c.repeat(64);

test('relocate rewrites paths under the release root to app/, and nothing else', () => {
  const r = { from: '/h/handoff/p/releases/R1', to: '/h/handoff/p/app' };
  const json =
    '{"volumes":[{"source":"/h/handoff/p/releases/R1/deploy/haproxy"}],"x":"/h/handoff/p/releases/R1","y":"/h/handoff/p/releases/R10/z","env":"keep /h/other"}';
  assert.equal(
    relocate(json, r),
    '{"volumes":[{"source":"/h/handoff/p/app/deploy/haproxy"}],"x":"/h/handoff/p/app","y":"/h/handoff/p/releases/R10/z","env":"keep /h/other"}',
  );
  const yaml = 'volumes:\n- /h/handoff/p/releases/R1/deploy/run:/var/run/haproxy:rw\n- source: /h/handoff/p/releases/R1\n';
  assert.equal(relocate(yaml, r), 'volumes:\n- /h/handoff/p/app/deploy/run:/var/run/haproxy:rw\n- source: /h/handoff/p/app\n');
  assert.equal(relocate(json, undefined), json);
});

const view = {
  load: { project: 'shop', files: ['/p/releases/R1/compose.yaml'], envFile: '/p/releases/R1/.env', projectDirectory: '/p/releases/R1' },
  hashAs: { project: 'shop', files: ['/p/releases/R1/compose.yaml'], envFile: '/p/releases/R1/.env', projectDirectory: '/p/app' },
  relocation: { from: '/p/releases/R1', to: '/p/app' },
};

test('readDesiredConfig v2: loaded from the release, relocated to app/, hashed as loaded and without depends_on', async () => {
  const json = JSON.stringify({
    services: { proxy: { image: 'h', depends_on: { app: {} }, volumes: [{ source: '/p/releases/R1/cfg' }] }, app: { image: 'a' } },
  });
  const remote = fakeRemote((cmd, stdin) => {
    if (cmd.endsWith('config --format json')) return json;
    assert.match(stdin!, /"\/p\/app\/cfg"/, 'the model is hashed with app/ paths');
    return stdin!.includes('depends_on') ? `proxy ${h('1')}\napp ${h('a')}\n` : `proxy ${h('2')}\napp ${h('a')}\n`;
  });
  const r = await readDesiredConfig(remote, 'v2', view.load, view);
  assert.match(r.modelText, /\/p\/app\/cfg/);
  assert.deepEqual(r.hashes.get('proxy'), [h('1'), h('2')]);
  assert.deepEqual(r.hashes.get('app'), [h('a')]);
  assert.equal(
    remote.calls[0]!.cmd,
    'docker compose -p shop -f /p/releases/R1/compose.yaml --env-file /p/releases/R1/.env --project-directory /p/releases/R1 config --format json',
  );
  assert.ok(
    remote.calls.slice(1).every((c) => c.cmd.includes('-f - --env-file /p/releases/R1/.env --project-directory /p/app ')),
    'hashed as the project runs from app/',
  );
});

test('readDesiredConfig v1: hashes from the release files resolved from app/ when the env files agree', async () => {
  const remote = fakeRemote((cmd) => {
    if (cmd.includes('--hash')) return `app ${h('c')}\n`;
    return 'services:\n  app: {image: a, environment: {A: "1"}, volumes: ["/p/releases/R1/x:/x"]}\n';
  });
  remote.writeFile = async () => assert.fail('no scratch file needed');
  const r = await readDesiredConfig(remote, 'v1', view.load, view);
  assert.deepEqual(r.hashes.get('app'), [h('c')]);
  assert.match(r.modelText, /\/p\/app\/x:\/x/, 'the model reads as app/');
  const hashCall = remote.calls.find((c) => c.cmd.includes('--hash'))!;
  assert.equal(
    hashCall.cmd,
    "docker-compose -p shop -f /p/releases/R1/compose.yaml --env-file /p/releases/R1/.env --project-directory /p/app config '--hash=*'",
  );
});

test('readDesiredConfig v1: a service whose env file changed gets the round-trip hash (via a 0600 scratch file, removed afterwards)', async () => {
  const writes: Array<{ path: string; mode?: number; data: string }> = [];
  const remote = fakeRemote((cmd) => {
    if (cmd.includes('.handoff-plan.yaml') && cmd.includes('--hash')) return `app ${h('d')}\ndb ${h('e')}\n`;
    if (cmd.includes('--hash')) return `app ${h('c')}\ndb ${h('f')}\n`;
    // Loaded from the release: A=2; resolved from app/ (the previous env file): A=1.
    if (cmd.includes('--project-directory /p/releases/R1')) return 'services:\n  app: {image: a, environment: [A=2]}\n  db: {image: d}\n';
    return 'services:\n  app: {image: a, environment: [A=1]}\n  db: {image: d}\n';
  });
  remote.writeFile = async (path, data, mode) => void writes.push({ path, mode, data: data.toString() });
  const r = await readDesiredConfig(remote, 'v1', view.load, view);
  assert.deepEqual(r.hashes.get('app'), [h('d')], 'app changed: only the round-trip hash');
  assert.deepEqual(r.hashes.get('db'), [h('f')], 'db unchanged: the hash up writes');
  assert.deepEqual(
    writes.map((w) => [w.path, w.mode]),
    [['/p/releases/R1/.handoff-plan.yaml', 0o600]],
  );
  assert.equal(remote.calls.at(-1)!.cmd, 'rm -f /p/releases/R1/.handoff-plan.yaml');
});

test('envChanged compares resolved environments in list and map form', () => {
  const a = 'services:\n  x: {environment: {A: "1", B: "2"}}\n  y: {environment: [C=3]}\n';
  assert.deepEqual([...envChanged(a, 'services:\n  x: {environment: [B=2, A=1]}\n  y: {environment: {C: "4"}}\n')], ['y']);
  assert.deepEqual([...envChanged(a, '')], ['x', 'y']);
});
