// The Caddy and nginx gates' pure parts: the /proc/net/tcp completion check, the Caddyfile and
// nginx.conf facts and seeds, rendering, nginx's worker PIDs, and the Caddy admin API's HTTP framing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ShellRemote } from '../helpers/shell-remote.js';
import { connectionsFrom, parseNetTcp, parseNetTcpByContainer } from '../../src/proxy/upstreams/net-tcp.js';
import { caddyfileFacts, parseCaddySeed, renderCaddyUpstreams } from '../../src/proxy/caddy/config.js';
import {
  matchesInclude,
  nginxConfFacts,
  nginxTimeMs,
  oldWorkerHoldMs,
  parseNginxSeed,
  reloadAdvice,
  renderNginxUpstreams,
} from '../../src/proxy/nginx/config.js';
import { nginxApplier, waitWorkersGone, workerPids } from '../../src/proxy/nginx/driver.js';
import type { Remote } from '../../src/host/remote.js';
import { adminRequest, caddyError, parseHttpAnswer } from '../../src/proxy/caddy/admin.js';

const example = (p: string) => readFileSync(new URL(`../../examples/${p}`, import.meta.url), 'utf8');

// 10.231.7.11:8080 (the replica) <- 10.231.7.2:41000 (the proxy), ESTABLISHED; one LISTEN; one TIME_WAIT.
const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0B07E70A:1F90 0207E70A:A028 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 0B07E70A:1F90 0207E70A:A029 06 00000000:00000000 03:00000F2B 00000000     0        0 0 3 0
`;
// The same peer over IPv6 as a v4-mapped address (::ffff:10.231.7.2 -> ::ffff:10.231.7.11:8080).
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue
   0: 0000000000000000FFFF00000B07E70A:1F90 0000000000000000FFFF00000207E70A:A030 01 00000000:00000000 00:00000000 00000000     0        0 5 1 0
`;

test('net-tcp: v4 and v4-mapped v6 sockets, ESTABLISHED from the proxy on the app port', () => {
  const s = parseNetTcp(TCP + TCP6);
  assert.equal(s.length, 4);
  assert.deepEqual(s[1], { localIp: '10.231.7.11', localPort: 8080, remoteIp: '10.231.7.2', remotePort: 41000, state: 1 });
  assert.equal(s[3]!.remoteIp, '10.231.7.2');
  assert.equal(connectionsFrom(s, 8080, new Set(['10.231.7.2'])), 2, 'the v4 and the v4-mapped one; TIME_WAIT and LISTEN do not count');
  assert.equal(connectionsFrom(s, 8080, new Set(['10.231.7.3'])), 0, 'another peer does not count');
  assert.equal(connectionsFrom(s, 9090, new Set(['10.231.7.2'])), 0, 'another port does not count');
});

test('net-tcp: the per-container listing of netTcpCommand; pid 0 is a stopped container', () => {
  const m = parseNetTcpByContainer(`== aaa 4242\n${TCP}== bbb 0\n`);
  assert.equal(m.get('aaa')!.pid, 4242);
  assert.equal(m.get('aaa')!.sockets.length, 3);
  assert.deepEqual(m.get('bbb'), { pid: 0, sockets: [] });
});

test('Caddyfile facts: the example has the admin socket, the import and a transport, and names no service directly', () => {
  const f = caddyfileFacts(example('caddy/Caddyfile'));
  assert.equal(f.adminSocket, '/run/caddy-admin/admin.sock');
  assert.deepEqual(
    f.imports.map((i) => i.path),
    ['/etc/caddy/handoff/app.upstreams'],
  );
  assert.deepEqual(f.upstreams, []);
  assert.equal(f.transport, true);
});

test('Caddyfile facts: admin on TCP, a service named directly, no transport', () => {
  const f = caddyfileFacts('{\n\tadmin localhost:2019\n}\n:80 {\n\treverse_proxy /api/* api:3000 {\n\t\tto web:80\n\t}\n}\n');
  assert.equal(f.adminSocket, undefined);
  assert.deepEqual(f.adminOther, { line: 2, text: 'admin localhost:2019' });
  assert.deepEqual(f.upstreams, [
    { line: 5, address: 'api:3000' },
    { line: 6, address: 'web:80' },
  ]);
  assert.equal(f.transport, false);
  assert.equal(caddyfileFacts(':80 {\n\tadmin off\n}\n').adminOther, undefined, 'only the global options block sets the admin endpoint');
});

test('Caddy seeds: one service and its port; rendered files parse back; no replica refuses at once', () => {
  const names = ['app', 'db', 'proxy'];
  const seed = parseCaddySeed(example('caddy/handoff/app.upstreams'), names);
  assert.deepEqual(seed, { service: 'app', port: 8080 });
  const text = renderCaddyUpstreams({ service: 'app', port: 8080 }, ['172.18.0.5', '172.18.0.6']);
  assert.match(text, /^to 172\.18\.0\.5:8080 172\.18\.0\.6:8080$/m);
  assert.deepEqual(parseCaddySeed(text, names), { service: 'app', port: 8080 });
  assert.match(renderCaddyUpstreams({ service: 'app', port: 8080 }, []), /^to 127\.0\.0\.1:1$/m);
  assert.match((parseCaddySeed('to app\n', names) as { error: string }).error, /no port/);
  assert.match((parseCaddySeed('to app:80 db:5432\n', names) as { error: string }).error, /one service/);
  assert.equal(parseCaddySeed('header X-Foo bar\n', names), undefined, 'a file that names no service is not a seed');
});

test('nginx.conf facts: includes, proxy_pass and upstream servers with their lines', () => {
  const f = nginxConfFacts(example('nginx/nginx.conf'));
  assert.deepEqual(
    f.includes.map((i) => i.path),
    ['/etc/nginx/mime.types', '/etc/nginx/site/handoff/*.conf'],
  );
  assert.deepEqual(
    f.proxyPasses.map((p) => p.host),
    ['app'],
  );
  const direct = nginxConfFacts(
    'http {\n  upstream api { server api:3000 max_fails=2; }\n  server { location / { proxy_pass http://web:80/; } }\n}\n',
  );
  assert.deepEqual(direct.upstreamServers, [{ line: 2, address: 'api:3000' }]);
  assert.deepEqual(direct.proxyPasses, [{ line: 3, host: 'web', port: 80 }]);
  assert.ok(matchesInclude('/etc/nginx/site/handoff/*.conf', '/etc/nginx/site/handoff/app.conf'));
  assert.ok(!matchesInclude('/etc/nginx/site/handoff/*.conf', '/etc/nginx/site/handoff/sub/app.conf'));
});

test('nginx seeds: the block keeps its directives and server parameters; rendered files parse back; none is a down server', () => {
  const names = ['app', 'proxy'];
  const seed = parseNginxSeed(example('nginx/handoff/app.conf'), names);
  assert.deepEqual(seed, {
    upstream: 'app',
    service: 'app',
    port: 8080,
    serverParams: [],
    directives: ['keepalive 16;', 'keepalive_timeout 2s;'],
  });
  const withParams = parseNginxSeed('upstream backend {\n  server app:8080 max_fails=3;\n  keepalive 8;\n}\n', names);
  assert.ok(withParams && !('error' in withParams));
  const text = renderNginxUpstreams(withParams, ['172.18.0.5', '172.18.0.6']);
  assert.match(
    text,
    /^upstream backend \{\n {4}server 172\.18\.0\.5:8080 max_fails=3;\n {4}server 172\.18\.0\.6:8080 max_fails=3;\n {4}keepalive 8;\n\}$/m,
  );
  assert.deepEqual(parseNginxSeed(text, names), withParams, 'handoff reads back its own rendering');
  assert.match(renderNginxUpstreams(withParams, []), /server 127\.0\.0\.1:1 down;/);
  assert.match((parseNginxSeed('upstream a { server app:80; server app:81; }', names) as { error: string }).error, /once/);
  assert.equal(parseNginxSeed('upstream a { server 10.0.0.1:80; }', names), undefined);
});

test('nginx worker PIDs from docker top: shutting-down workers and the master left out', () => {
  const top = `PID                 COMMAND\n1001                nginx: master process nginx -c /etc/nginx/site/nginx.conf -g daemon off;\n1010                nginx: worker process is shutting down\n1011                nginx: worker process\n1012                nginx: worker process\n`;
  assert.deepEqual(workerPids(top), [1011, 1012]);
  assert.deepEqual(workerPids(top, true), [1010, 1011, 1012], 'with shuttingDown: every worker');
});

test('nginx: waitWorkersGone waits on the host (one command) until the given workers have exited, or says false at the deadline', async () => {
  // A `docker` on PATH that answers `top` from a file the test rewrites, as the host's would.
  const dir = await mkdtemp(join(tmpdir(), 'handoff-top-'));
  const topFile = join(dir, 'top');
  await writeFile(join(dir, 'docker'), `#!/bin/sh\ncat ${topFile}\n`, { mode: 0o755 });
  await writeFile(topFile, 'PID\n1\n10\n11\n');
  const remote = new ShellRemote(dir);
  const path = process.env.PATH;
  process.env.PATH = `${dir}:${path}`;
  try {
    const waiting = waitWorkersGone(remote, 'p', new Set([10]), Date.now() + 10_000, 50);
    await new Promise((r) => setTimeout(r, 300));
    await writeFile(topFile, 'PID\n1\n11\n110\n');
    assert.equal(await waiting, true, 'worker 10 left (110 is another PID)');
    assert.equal(remote.commands.length, 1, 'one round trip, however long the wait');
    const t = Date.now();
    assert.equal(
      await waitWorkersGone(remote, 'p', new Set([11]), Date.now() + 300, 50),
      false,
      'a worker of the current config never leaves',
    );
    assert.ok(Date.now() - t < 5_000);
    assert.equal(await waitWorkersGone(remote, 'p', new Set(), Date.now() + 300, 50), true, 'no old worker: nothing to wait for');
  } finally {
    process.env.PATH = path;
    await rm(dir, { recursive: true, force: true });
  }
});

test('nginx: a config without keepalive_min_timeout (or with 0) gets advice naming the line to add', () => {
  const advice = reloadAdvice(nginxConfFacts('http {\n  server { listen 80; }\n}\n'), 'nginx.conf');
  assert.match(advice ?? '', /nginx\.conf sets no keepalive_min_timeout: .*reset.*add "keepalive_min_timeout 3s;" in http \{\}/);
  assert.match(
    reloadAdvice(nginxConfFacts('http {\n  keepalive_min_timeout 0;\n}\n'), 'nginx.conf') ?? '',
    /line 2 sets keepalive_min_timeout to 0/,
  );
  assert.equal(reloadAdvice(nginxConfFacts('http {\n  keepalive_min_timeout 3s;\n}\n'), 'nginx.conf'), undefined);
  const example = readFileSync(new URL('../../examples/nginx/nginx.conf', import.meta.url), 'utf8');
  assert.equal(reloadAdvice(nginxConfFacts(example), 'nginx.conf'), undefined, 'the reference config needs no advice');
});

test('Caddy admin API framing: empty Host, the body, answers with Content-Length or chunked', () => {
  const req = adminRequest('POST', '/load', { contentType: 'text/caddyfile', text: 'é' });
  assert.equal(req, 'POST /load HTTP/1.1\r\nHost: \r\nConnection: close\r\nContent-Type: text/caddyfile\r\nContent-Length: 2\r\n\r\né');
  assert.deepEqual(parseHttpAnswer('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'), { status: 200, body: 'ok' });
  const chunked = parseHttpAnswer(
    'HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{"error\r\na\r\n":"bad x"}\r\n0\r\n\r\n',
  );
  assert.equal(chunked.status, 400);
  assert.equal(caddyError(chunked.body), 'bad x');
  assert.throws(() => parseHttpAnswer('garbage'), /not an HTTP answer/);
});

test('bind mounts read on the host (absolute, under app/) map to release files again', async () => {
  const { withRelativeSources, releasePathInMount, containerPathOfRelease, checkMounts } = await import('../../src/proxy/mounts.js');
  const proxy = {
    volumes: [
      { type: 'bind' as const, source: '/h/handoff/p/app/deploy/caddy', target: '/etc/caddy', readOnly: true },
      { type: 'bind' as const, source: '/h/handoff/p/app/deploy/run', target: '/run/caddy-admin', readOnly: false },
      { type: 'bind' as const, source: '/etc/letsencrypt', target: '/certs', readOnly: true },
    ],
  };
  const rel = withRelativeSources(proxy, '/h/handoff/p/app/deploy');
  assert.deepEqual(
    rel.volumes.map((v) => v.source),
    ['caddy', 'run', '/etc/letsencrypt'],
  );
  assert.deepEqual(releasePathInMount(rel, '/etc/caddy/handoff/app.upstreams', 'deploy'), {
    path: 'deploy/caddy/handoff/app.upstreams',
    fileMount: false,
  });
  assert.equal(containerPathOfRelease(rel, 'deploy/caddy/Caddyfile', 'deploy'), '/etc/caddy/Caddyfile');
  assert.deepEqual(checkMounts(rel, 'deploy', '/h/handoff/p/releases/R1', ['deploy/caddy/Caddyfile']), [
    { source: '/h/handoff/p/releases/R1/deploy/caddy', target: '/etc/caddy' },
    { source: '/etc/letsencrypt', target: '/certs' },
  ]);
});

test("nginx times and the old workers' hold (keepalive_min_timeout)", () => {
  assert.equal(nginxTimeMs('3s'), 3000);
  assert.equal(nginxTimeMs('5'), 5000);
  assert.equal(nginxTimeMs('500ms'), 500);
  assert.equal(nginxTimeMs('1m30s'), 90_000);
  assert.equal(nginxTimeMs('3x'), undefined);
  assert.equal(oldWorkerHoldMs(nginxConfFacts('http { keepalive_min_timeout 2s; }')), 2000);
  assert.equal(oldWorkerHoldMs(nginxConfFacts('http { }')), undefined, 'not in nginx.conf: unknown (it may be in an include)');
});

/** A fake host whose nginx always has an old worker shutting down (a websocket it carries), and reloads. */
function nginxHost() {
  let reloaded = false;
  return {
    async exec(command: string) {
      // awaitProcessesGoneCommand: the old worker 10 never leaves, so the host waits it out and says 1.
      const wait = /-ge (\d+) \] && exit 1; .* sleep ([\d.]+);/.exec(command);
      if (wait) {
        await new Promise((r) => setTimeout(r, Number(wait[1]) * Number(wait[2]) * 1000));
        return { code: 1, stdout: '', stderr: '' };
      }
      if (command.startsWith('docker top')) {
        const workers = reloaded ? '10 nginx: worker process is shutting down\n11 nginx: worker process\n' : '10 nginx: worker process\n';
        return { code: 0, stdout: `PID COMMAND\n1 nginx: master process\n${workers}`, stderr: '' };
      }
      if (command.includes('-s')) reloaded = true;
      return { code: 0, stdout: command.includes('date') ? '2026-12-03T00:00:00Z\n' : '', stderr: '' };
    },
  } as unknown as Remote;
}

test('nginx drain: an old worker kept alive (a websocket) holds it only for keepalive_min_timeout, not to the deadline', async () => {
  const applier = nginxApplier(nginxHost(), 'p', '/etc/nginx/nginx.conf', 300);
  await applier.apply('swap');
  const t0 = Date.now();
  assert.equal(await applier.settled!(Date.now() + 10_000), true, 'past the hold the old worker takes no new request');
  const took = Date.now() - t0;
  assert.ok(took >= 1000 && took < 3000, `bounded by the hold plus a margin (${took} ms)`);
  const unknown = nginxApplier(nginxHost(), 'p', '/etc/nginx/nginx.conf', undefined);
  await unknown.apply('swap');
  assert.equal(await unknown.settled!(Date.now() + 500), false, 'without a known hold only the exit tells: false at the deadline');
});
