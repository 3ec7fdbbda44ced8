import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parseCompose } from '../../src/model/compose.js';
import {
  backendsForService,
  findProxyService,
  findStatsSocket,
  findStatsSockets,
  locateRuntimeApi,
  proxyServers,
  routedServices,
} from '../../src/proxy/haproxy/config.js';

const sampleCfg = readFileSync(new URL('../../examples/haproxy/haproxy.cfg', import.meta.url), 'utf8');
const sampleCompose = readFileSync(new URL('../../examples/compose.yaml', import.meta.url), 'utf8');

test('findStatsSocket reads the sample config: a Unix socket at level admin', () => {
  assert.deepEqual(findStatsSocket(sampleCfg), { kind: 'unix', path: '/var/run/haproxy/admin.sock', admin: true });
});

test('findStatsSockets: TCP forms, unix@ prefix, admin sockets first, comments and other sections ignored', () => {
  const cfg = `
global
    # stats socket /commented/out.sock level admin
    stats socket /run/haproxy/user.sock mode 600 level user
    stats socket ipv4@0.0.0.0:9999 level admin
    stats socket unix@/run/haproxy/other.sock level operator
    stats socket abns@hidden level admin
defaults
    stats socket /not/global.sock level admin
`;
  assert.deepEqual(findStatsSockets(cfg), [
    { kind: 'tcp', host: '0.0.0.0', port: 9999, admin: true },
    { kind: 'unix', path: '/run/haproxy/user.sock', admin: false },
    { kind: 'unix', path: '/run/haproxy/other.sock', admin: false },
  ]);
  assert.deepEqual(findStatsSocket('global\n    stats socket :9000\n'), { kind: 'tcp', host: '', port: 9000, admin: true });
  assert.equal(findStatsSocket('global\n    maxconn 100\n'), undefined);
});

test('proxyServers and routedServices: server and server-template lines name the Compose services', () => {
  const cfg = `
frontend web
    bind :80
    default_backend api
backend api
    server-template api 10 api:8080 check
backend static
    server s1 web.myproject_default:80 check
    server s2 10.0.0.5:80
listen admin
    bind :81
    server a1 ipv4@admin:9000
`;
  assert.deepEqual(
    proxyServers(cfg).map((s) => [s.backend, s.keyword, s.name, s.host, s.port]),
    [
      ['api', 'server-template', 'api', 'api', 8080],
      ['static', 'server', 's1', 'web.myproject_default', 80],
      ['static', 'server', 's2', '10.0.0.5', 80],
      ['admin', 'server', 'a1', 'admin', 9000],
    ],
  );
  assert.deepEqual(routedServices(cfg, ['api', 'web', 'db', 'admin', 'ap']), ['api', 'web', 'admin']);
  assert.deepEqual(backendsForService(cfg, 'web'), ['static']);
  assert.deepEqual(routedServices(sampleCfg, ['app', 'proxy']), ['app']);
});

test('findProxyService: by image, or by explicit name; ambiguity is an error', () => {
  const model = parseCompose([{ name: 'compose.yaml', text: sampleCompose }], { env: {} });
  assert.equal(findProxyService(model.services)?.name, 'proxy');
  assert.equal(findProxyService(model.services, 'app')?.name, 'app');
  assert.throws(() => findProxyService(model.services, 'nope'), /proxy service "nope" is not in the Compose files/);
  const two = [
    { name: 'lb1', image: 'haproxy:2.8' },
    { name: 'lb2', image: 'registry.example/HAProxy-custom:1' },
  ];
  assert.throws(() => findProxyService(two), /several services look like HAProxy \(lb1, lb2\)/);
  assert.equal(findProxyService([{ name: 'web', image: 'nginx' }]), undefined);
});

test('locateRuntimeApi maps the sample socket through the ./run bind mount to the host', () => {
  const model = parseCompose([{ name: 'compose.yaml', text: sampleCompose }], { env: {} });
  const proxy = findProxyService(model.services)!;
  assert.deepEqual(locateRuntimeApi(proxy, sampleCfg, '/home/deploy/handoff/demo/app/examples'), {
    kind: 'unix',
    hostPath: '/home/deploy/handoff/demo/app/examples/run/admin.sock',
  });
});

test('locateRuntimeApi: the longest mount wins, /var/run and /run are the same, absolute sources stay', () => {
  const proxy = {
    name: 'lb',
    ports: [],
    volumes: [
      { type: 'bind' as const, source: '/srv/lb', target: '/run', readOnly: false },
      { type: 'bind' as const, source: '/srv/lb-sock', target: '/run/haproxy/', readOnly: false },
    ],
  };
  assert.deepEqual(locateRuntimeApi(proxy, 'global\n stats socket /var/run/haproxy/admin.sock level admin\n', '/p'), {
    kind: 'unix',
    hostPath: '/srv/lb-sock/admin.sock',
  });
});

test('locateRuntimeApi via a published TCP port', () => {
  const cfg = 'global\n    stats socket ipv4@0.0.0.0:9999 level admin\n';
  const proxy = { name: 'lb', volumes: [], ports: [{ target: '9999', published: '19999', hostIp: '127.0.0.1' }] };
  assert.deepEqual(locateRuntimeApi(proxy, cfg, '/p'), { kind: 'tcp', host: '127.0.0.1', port: 19999 });
  const anyIp = { ...proxy, ports: [{ target: '9999', published: '19999' }] };
  assert.deepEqual(locateRuntimeApi(anyIp, cfg, '/p'), { kind: 'tcp', host: '127.0.0.1', port: 19999 });
});

test('locateRuntimeApi says why it cannot reach the Runtime API', () => {
  type Proxy = Parameters<typeof locateRuntimeApi>[0];
  const proxy: Proxy = { name: 'lb', volumes: [], ports: [] };
  const none = (cfg: string, p: Proxy = proxy) => {
    const r = locateRuntimeApi(p, cfg, '/p');
    assert.equal(r.kind, 'none');
    return r.kind === 'none' ? r.reason : '';
  };
  assert.match(none('global\n    maxconn 10\n'), /no "stats socket"/);
  assert.match(
    none('global\n    stats socket /var/run/haproxy/admin.sock level admin\n'),
    /not inside a bind mount of service "lb".*\.\/run:\/var\/run\/haproxy/,
  );
  assert.match(none('global\n    stats socket /x.sock level operator\n'), /not "level admin"/);
  assert.match(none('global\n    stats socket 127.0.0.1:9999 level admin\n'), /container's loopback/);
  assert.match(none('global\n    stats socket :9999 level admin\n'), /not published on a fixed host port/);
  const namedVolume: Proxy = {
    ...proxy,
    volumes: [{ type: 'volume' as const, source: 'sock', target: '/var/run/haproxy', readOnly: false }],
  };
  assert.match(none('global\n    stats socket /var/run/haproxy/admin.sock level admin\n', namedVolume), /not inside a bind mount/);
});

test('the server-state file is found in global, relative to server-state-base', async () => {
  const { findServerStateFile } = await import('../../src/proxy/haproxy/config.js');
  assert.equal(findServerStateFile('global\n    server-state-file /var/run/haproxy/server-state\n'), '/var/run/haproxy/server-state');
  assert.equal(findServerStateFile('global\n  server-state-base /var/state\n  server-state-file st\n'), '/var/state/st');
  assert.equal(findServerStateFile('defaults\n  server-state-file /x\n'), undefined);
  assert.equal(findServerStateFile('global\n  # server-state-file /x\n'), undefined);
});
