import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InputError, defaultProject, parseEnv, parseList, readInputs, secretsOf } from '../../src/action/inputs.js';
import { renderEnvFile } from '../../src/model/envfile.js';
import { parseDuration } from '../../src/model/duration.js';

const KEY =
  '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\nAAAAAAABAAAAMwAAAAtzc2gtZWQyNTUxOQ\n-----END OPENSSH PRIVATE KEY-----\n';

function getter(values: Record<string, string>) {
  return (name: string) => values[name] ?? '';
}
const base = { host: 'example.com', username: 'deploy', key: KEY, known_hosts: 'example.com ssh-ed25519 AAAA', project: 'shop' };

test('defaults are safe and complete', () => {
  const i = readInputs(getter(base));
  assert.equal(i.port, 22);
  assert.deepEqual(i.composeFiles, ['compose.yaml']);
  assert.equal(i.remoteDir, 'handoff/shop');
  assert.equal(i.pull, 'always');
  assert.equal(i.drainTimeoutMs, 30_000);
  assert.equal(i.maxLost, 0);
  assert.equal(i.keepReleases, 5);
  assert.equal(i.probe, undefined);
  assert.equal(i.insecureIgnoreHostKey, false);
});

test('each bad input is named with its fix', () => {
  const cases: Array<[Record<string, string>, string, RegExp]> = [
    [{ host: '' }, 'host', /required/],
    [{ key: '' }, 'key', /required/],
    [{ known_hosts: '' }, 'known_hosts', /ssh-keyscan/],
    [{ port: '70000' }, 'port', /1 to 65535/],
    [{ port: 'abc' }, 'port', /whole number/],
    [{ project: 'My App' }, 'project', /lowercase/],
    [{ compose_files: '../secret.yaml' }, 'compose_files', /inside the workspace/],
    [{ files: '/etc/passwd' }, 'files', /inside the workspace/],
    [{ drain_timeout: 'soon' }, 'drain_timeout', /not a duration/],
    [{ probe_url: 'not a url' }, 'probe_url', /not a URL/],
    [{ probe_url: 'ftp://x' }, 'probe_url', /http/],
    [{ probe_url: 'http://x', probe_expect_status: '2xx' }, 'probe_expect_status', /status list/],
    [{ force: 'yes' }, 'force', /true or false/],
    [{ release: 'abc' }, 'release', /only used with rollback/],
    [{ pull: 'sometimes' }, 'pull', /always, missing or never/],
    [{ services: 'bad name' }, 'services', /not a valid/],
    [{ env: 'NOT VALID' }, 'env', /KEY=VALUE/],
    [{ jump_host: 'bastion' }, 'jump_known_hosts', /pin/],
    [{ compose: 'v3' }, 'compose', /^input 'compose': expected auto, v2 or v1, got 'v3'$/],
    [{ engine: 'containerd' }, 'engine', /^input 'engine': expected auto, docker or podman, got 'containerd'$/],
    [{ engine: 'podman', podman_socket: 'run/podman.sock' }, 'podman_socket', /not an absolute path/],
    [{ engine: 'docker', podman_socket: '/run/podman/podman.sock' }, 'podman_socket', /engine is docker/],
    [{ target: 'kubernetes' }, 'target', /^input 'target': expected compose or swarm, got 'kubernetes'$/],
    [{ target: 'swarm', engine: 'podman' }, 'target', /Podman has no swarm mode/],
    [{ probe_url: 'http://x', probe_via: 'tunnel' }, 'probe_via', /^input 'probe_via': expected direct or ssh, got 'tunnel'$/],
    [{ probe_url: 'http://x', probe_unmeasured: 'maybe' }, 'probe_unmeasured', /expected warn or fail, got 'maybe'$/],
    [{ probe_url: 'http://x', probe_slow_url: 'nope' }, 'probe_slow_url', /'nope' is not a URL; write e.g. https:\/\/example.com\/report/],
    [{ probe_url: 'http://x', probe_slow_url: 'ftp://x' }, 'probe_slow_url', /must be an http:\/\/ or https:\/\/ URL$/],
    [{ probe_url: 'http://x', probe_method: 'g3t' }, 'probe_method', /'G3T' is not an HTTP method/],
  ];
  for (const [over, input, message] of cases) {
    assert.throws(
      () => readInputs(getter({ ...base, ...over })),
      (e: unknown) => e instanceof InputError && e.input === input && message.test(e.message),
      `${input} with ${JSON.stringify(over)}`,
    );
  }
});

test('an env parse error never echoes the value', () => {
  assert.throws(
    () => parseEnv('PASSWORD hunter22secret'),
    (e: unknown) => e instanceof Error && !e.message.includes('hunter22secret'),
  );
});

test('lists, env and project defaults', () => {
  assert.deepEqual(parseList('a.yaml, b.yaml\n\nc.yaml'), ['a.yaml', 'b.yaml', 'c.yaml']);
  assert.deepEqual(parseEnv('# c\nA=1\nexport B=x=y\nC=\n'), { A: '1', B: 'x=y', C: '' });
  assert.equal(defaultProject('Org/My.Shop'), 'my-shop');
  const i = readInputs(getter({ ...base, project: '' }), { GITHUB_REPOSITORY: 'org/Web_App' });
  assert.equal(i.project, 'web_app');
});

test('masked: the key, its lines, passphrase and secrets values; not env values or the host', () => {
  const i = readInputs(
    getter({ ...base, passphrase: 'pass-phrase-1', env: 'IMAGE_TAG=abc1234def\nX=1', secrets: 'DB_PASSWORD=s3cr3t-value\nY=2' }),
  );
  const s = secretsOf(i);
  assert.ok(s.includes('pass-phrase-1'));
  assert.ok(s.includes('s3cr3t-value'));
  assert.ok(s.includes('b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ'));
  assert.ok(!s.includes('abc1234def'), 'env values are plain');
  assert.ok(!s.includes(i.host), 'the host is not masked by handoff');
  assert.ok(!s.includes('2'), 'one-character values would mask every digit');
  assert.deepEqual(i.secrets, { DB_PASSWORD: 's3cr3t-value', Y: '2' });
  assert.deepEqual(i.env, { IMAGE_TAG: 'abc1234def', X: '1' });
});

test('a variable in both env and secrets is refused, naming it and not its value', () => {
  assert.throws(
    () => readInputs(getter({ ...base, env: 'A=1\nDB_PASSWORD=plain', secrets: 'DB_PASSWORD=hunter22secret' })),
    (e: unknown) =>
      e instanceof Error && /secrets/.test(e.message) && /DB_PASSWORD/.test(e.message) && !e.message.includes('hunter22secret'),
  );
  assert.throws(
    () => readInputs(getter({ ...base, secrets: 'not a pair hunter22secret' })),
    (e: unknown) => e instanceof Error && /secrets/.test(e.message) && !e.message.includes('hunter22secret'),
  );
});

test('jump host defaults to the main user and key', () => {
  const i = readInputs(getter({ ...base, jump_host: 'bastion', jump_fingerprint: 'SHA256:abc' }));
  assert.equal(i.jump?.username, 'deploy');
  assert.equal(i.jump?.key, KEY);
  assert.equal(i.jump?.port, 22);
});

test('the main passphrase goes to the jump host only with the main key', () => {
  const jump = { ...base, passphrase: 'main-pass', jump_host: 'bastion', jump_fingerprint: 'SHA256:abc' };
  assert.equal(readInputs(getter(jump)).jump?.passphrase, 'main-pass');
  const own = readInputs(getter({ ...jump, jump_key: 'OTHER KEY' })).jump;
  assert.equal(own?.key, 'OTHER KEY');
  assert.equal(own?.passphrase, undefined);
});

test('durations', () => {
  assert.equal(parseDuration('1m30s'), 90_000);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('45'), 45_000);
  assert.throws(() => parseDuration('5 minutes'));
});

test('env file quoting keeps special values literal', () => {
  assert.equal(renderEnvFile({ TAG: 'v1.2', PW: 'a$b c', EMPTY: '' }), "TAG=v1.2\nPW='a$b c'\nEMPTY=\n");
  assert.throws(
    () => renderEnvFile({ PW: `it's $x` }),
    (e: unknown) => e instanceof Error && e.message.includes('PW') && !e.message.includes("it's"),
  );
});

test('proxy: auto by default; a kind or none; allow_degraded is off unless true', () => {
  const i = readInputs(getter(base));
  assert.equal(i.proxy, 'auto');
  assert.equal(i.allowDegraded, false);
  for (const kind of ['haproxy', 'caddy', 'nginx', 'none'] as const) assert.equal(readInputs(getter({ ...base, proxy: kind })).proxy, kind);
  assert.equal(readInputs(getter({ ...base, allow_degraded: 'true' })).allowDegraded, true);
  assert.throws(
    () => readInputs(getter({ ...base, proxy: 'traefik' })),
    (e: unknown) => e instanceof InputError && e.input === 'proxy' && /auto, haproxy, caddy, nginx or none/.test(e.message),
  );
  assert.throws(
    () => readInputs(getter({ ...base, allow_degraded: 'yes' })),
    (e: unknown) => e instanceof InputError && e.input === 'allow_degraded',
  );
});

test('engine: auto by default; podman with an optional socket (unix:// accepted)', () => {
  assert.equal(readInputs(getter(base)).engine, 'auto');
  assert.equal(readInputs(getter(base)).podmanSocket, undefined);
  const i = readInputs(getter({ ...base, engine: 'podman', podman_socket: 'unix:///run/podman/podman.sock' }));
  assert.equal(i.engine, 'podman');
  assert.equal(i.podmanSocket, '/run/podman/podman.sock');
});

test('swarm_nodes: one host[:port] a line for target swarm; a bad line, or the input without target swarm, is refused', () => {
  assert.deepEqual(readInputs(getter(base)).swarmNodes, []);
  const i = readInputs(getter({ ...base, target: 'swarm', swarm_nodes: 'node2.example.com\n10.0.0.12:2222\n[fd00::3]:22\n' }));
  assert.deepEqual(i.swarmNodes, [
    { host: 'node2.example.com', port: 22 },
    { host: '10.0.0.12', port: 2222 },
    { host: 'fd00::3', port: 22 },
  ]);
  for (const [over, message] of [
    [{ target: 'swarm', swarm_nodes: 'node2:0' }, /input 'swarm_nodes': 'node2:0' is not host\[:port\]/],
    [{ target: 'swarm', swarm_nodes: 'ssh://node2' }, /input 'swarm_nodes': 'ssh:\/\/node2' is not host\[:port\]/],
    [{ swarm_nodes: 'node2' }, /input 'swarm_nodes': is set, but target is not swarm/],
  ] as const)
    assert.throws(() => readInputs(getter({ ...base, ...over })), message);
});
