import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectProxy, type ProxyDriver, type ProxyKind } from '../../src/proxy/driver.js';
import { DRIVERS } from '../../src/proxy/drivers.js';
import { proxyDrainFact } from '../../src/action/report.js';

const svc = (name: string, image: string) => ({ name, image });
const kinds = (r: ReturnType<typeof selectProxy>) => (r ? `${r.service.name}:${r.driver.kind}` : undefined);
const fake = (kind: ProxyKind, re: RegExp) => ({ kind, label: kind, matchesImage: (i: string) => re.test(i) }) as unknown as ProxyDriver;
const three = [fake('haproxy', /haproxy/), fake('caddy', /caddy/), fake('nginx', /nginx/)];

test('selectProxy: auto picks by image, HAProxy first, then Caddy, then nginx', () => {
  assert.equal(kinds(selectProxy([svc('app', 'x'), svc('lb', 'haproxy:2.8')], 'auto', undefined, three)), 'lb:haproxy');
  assert.equal(kinds(selectProxy([svc('web', 'nginx:1.27'), svc('lb', 'caddy:2')], 'auto', undefined, three)), 'lb:caddy');
  assert.equal(kinds(selectProxy([svc('web', 'nginx:1.27'), svc('app', 'x')], 'auto', undefined, three)), 'web:nginx');
  assert.equal(selectProxy([svc('app', 'x'), svc('t', 'traefik:3')], 'auto', undefined, three), undefined);
  assert.throws(
    () => selectProxy([svc('a', 'caddy'), svc('b', 'caddy:2')], 'auto', undefined, three),
    /several services look like caddy \(a, b\).*proxy_service/,
  );
});

test('selectProxy: an explicit kind or service; none is no proxy', () => {
  assert.equal(kinds(selectProxy([svc('web', 'nginx'), svc('lb', 'caddy')], 'nginx', undefined, three)), 'web:nginx');
  assert.equal(kinds(selectProxy([svc('edge', 'mycorp/lb:1')], 'caddy', 'edge', three)), 'edge:caddy');
  // An image handoff does not know, named by proxy_service in auto: HAProxy, as before the drivers.
  assert.equal(kinds(selectProxy([svc('edge', 'mycorp/lb:1')], 'auto', 'edge', three)), 'edge:haproxy');
  assert.equal(kinds(selectProxy([svc('edge', 'caddy:2')], 'auto', 'edge', three)), 'edge:caddy');
  assert.equal(selectProxy([svc('lb', 'haproxy')], 'none', undefined, three), undefined);
  assert.throws(() => selectProxy([svc('lb', 'haproxy')], 'auto', 'nope', three), /proxy service "nope" is not in the Compose files/);
});

test('the registered drivers start with HAProxy', () => {
  assert.equal(DRIVERS[0]!.kind, 'haproxy');
  assert.equal(new Set(DRIVERS.map((d) => d.kind)).size, DRIVERS.length);
});

test('the summary says which gate ran', () => {
  assert.equal(proxyDrainFact({ proxyDrains: true, proxyKind: 'caddy' }), '| proxy drain | caddy |');
  assert.match(proxyDrainFact({ proxyDrains: false, proxyKind: 'nginx' })!, /nginx gate degraded/);
  assert.match(proxyDrainFact({ proxyDrains: false })!, /no proxy/);
  assert.equal(proxyDrainFact({}), undefined);
});

test('Caddy and nginx images are recognised by the repository name, not the tag', () => {
  const caddy = DRIVERS.find((d) => d.kind === 'caddy')!;
  const nginx = DRIVERS.find((d) => d.kind === 'nginx')!;
  for (const i of [
    'caddy',
    'caddy:2',
    'caddy:2.6-alpine',
    'library/caddy@sha256:abc',
    'ghcr.io/me/caddy-l4:1',
    'handoff-test-caddy:latest',
  ])
    assert.ok(caddy.matchesImage(i), i);
  for (const i of ['handoff-test-app:caddy-v3-12', 'caddyfile-linter', 'myregistry:5000/app']) assert.ok(!caddy.matchesImage(i), i);
  for (const i of ['nginx', 'nginx:1.27-alpine', 'nginxinc/nginx-unprivileged:1.26', 'handoff-test-nginx:latest'])
    assert.ok(nginx.matchesImage(i), i);
  assert.ok(!nginx.matchesImage('app:nginx-v2'));
});
