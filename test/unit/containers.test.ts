import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { shq } from '../../src/commands/quote.js';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { isBroken, listProjectContainers, parseDockerInspect, replicaIp } from '../../src/engine/docker/containers.js';
import { inspectCommand, projectContainerIdsCommand } from '../../src/commands/docker.js';
import { RemoteCommandError, type Remote } from '../../src/host/remote.js';
import { dockerEngine } from '../../src/engine/docker/engine.js';

// Captured from the bench: docker-compose 1.29 project "hfx", app ×2 with a healthcheck, plain ×1 without.
const fixture = readFileSync(new URL('../fixtures/docker-inspect-v1.json', import.meta.url), 'utf8');

test('parses a real docker inspect output', () => {
  const cs = parseDockerInspect(fixture);
  assert.equal(cs.length, 3);
  const app1 = cs.find((c) => c.name === 'hfx_app_1')!;
  assert.equal(app1.service, 'app');
  assert.equal(app1.project, 'hfx');
  assert.equal(app1.number, 1);
  assert.equal(app1.configHash, '9119ac6702de6dc7e6a36eb232a06e3f1cba5b9b73147860afec63eb13e096e1');
  assert.match(app1.imageId, /^sha256:[0-9a-f]{64}$/);
  assert.equal(app1.image, 'handoff-test-app:v1');
  assert.equal(app1.state, 'running');
  assert.equal(app1.health, 'healthy');
  assert.ok(app1.healthLog.length > 0);
  assert.equal(app1.healthLog.at(-1)!.exitCode, 0);
  assert.match(app1.id, /^[0-9a-f]{64}$/);
  assert.match(app1.ips.hfx_default!, /^\d+\.\d+\.\d+\.\d+$/);
  assert.equal(app1.oneoff, false);
  const plain = cs.find((c) => c.service === 'plain')!;
  assert.equal(plain.health, 'none');
  assert.equal(isBroken(plain), false);
});

test('broken: exited, restarting; not a running unhealthy one (it may still serve: it is rolled)', () => {
  const [c] = parseDockerInspect(fixture);
  assert.equal(isBroken({ ...c!, state: 'exited' }), true);
  assert.equal(isBroken({ ...c!, state: 'restarting' }), true);
  assert.equal(isBroken({ ...c!, health: 'unhealthy' }), false);
  assert.equal(isBroken({ ...c!, health: 'starting' }), false);
});

test('replicaIp prefers a network shared with the proxy', () => {
  const [c] = parseDockerInspect(fixture);
  const x = { ...c!, ips: { a_net: '10.0.0.2', b_net: '10.1.0.2' } };
  assert.equal(replicaIp(x, ['b_net']), '10.1.0.2');
  assert.equal(replicaIp(x, ['zz']), '10.0.0.2');
  assert.equal(replicaIp({ ...x, ips: {} }), '');
});

test('empty output and non-arrays', () => {
  assert.deepEqual(parseDockerInspect(''), []);
  assert.throws(() => parseDockerInspect('{}'), /not a JSON array/);
});

test('listProjectContainers: ids listed and inspected in one round trip; none = `[]`; a failed ps fails; one-offs dropped', async () => {
  // The real script, run by sh with a stub `docker` (a shell function) answering ps and inspect.
  const calls: string[] = [];
  const mk = (ps: string, psExit = 0) =>
    ({
      async exec(cmd: string) {
        calls.push(cmd);
        const data = JSON.parse(fixture);
        data[0].Config.Labels['com.docker.compose.oneoff'] = 'True';
        const stub = `docker() { case "$1" in ps) printf '%s' ${shq(ps)}; return ${psExit};; inspect) shift 2; echo "$*" >&2; cat <<'JSON'\n${JSON.stringify(data)}\nJSON\n;; esac; }`;
        const r = spawnSync('sh', ['-c', `${stub}\n${cmd}`], { encoding: 'utf8' });
        return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
      },
    }) as unknown as Remote;
  assert.deepEqual(await listProjectContainers(mk(''), 'hfx'), []);
  assert.equal(calls.length, 1);
  assert.match(calls[0]!, /^ids=\$\(docker ps -aq --no-trunc --filter label=com\.docker\.compose\.project=hfx\) \|\| exit\n/);
  const cs = await listProjectContainers(mk('a\nb\nc\n'), 'hfx');
  assert.equal(calls.length, 2);
  assert.equal(cs.length, 2);
  await assert.rejects(listProjectContainers(mk('', 1), 'hfx'), /docker inspect failed \(exit 1\)/);
  assert.equal(projectContainerIdsCommand("x'y"), `docker ps -aq --no-trunc --filter 'label=com.docker.compose.project=x'\\''y'`);
  assert.equal(inspectCommand(['a']), 'docker inspect --type container a');
});

test('dockerEngine.start: the start and the read in one command; a failed start throws, a container gone meanwhile is left out', async () => {
  // The real command, run by sh with a stub `docker` (a shell function) answering start and inspect.
  const mk = (start: string, inspect: string) =>
    ({
      async exec(cmd: string) {
        const stub = `docker() { case "$1" in start) ${start};; inspect) ${inspect};; esac; }`;
        const r = spawnSync('sh', ['-c', `${stub}\n${cmd}`], { encoding: 'utf8' });
        return { code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
      },
    }) as unknown as Remote;
  const engine = (remote: Remote) => dockerEngine({ remote, flavor: 'v2', stack: { project: 'hfx', files: ['c.yaml'] } });
  const json = `cat <<'JSON'\n${fixture}\nJSON\n`;
  const ids = ['a', 'b', 'c'];
  const started = await engine(mk('echo "$@"', json)).start!(ids);
  assert.deepEqual(
    started.map((c) => c.name),
    ['hfx_app_1', 'hfx_plain_1', 'hfx_app_2'],
    'the start prints nothing of its own: only the inspect JSON is read',
  );
  await assert.rejects(
    engine(mk('echo "Error response from daemon: cannot start c" >&2; return 1', `echo inspected >&2; ${json}`)).start!(ids),
    (e: Error) => e instanceof RemoteCommandError && /cannot start c/.test(e.message) && !/inspected/.test(e.message),
  );
  const gone = await engine(mk(':', `echo 'Error: No such container: c' >&2; ${json}return 1`)).start!(ids);
  assert.equal(gone.length, 3, 'what inspect printed is kept (it leaves the removed one out itself)');
  await assert.rejects(
    engine(mk(':', 'echo "Cannot connect to the Docker daemon" >&2; return 1')).start!(ids),
    /Cannot connect to the Docker daemon/,
  );
});
