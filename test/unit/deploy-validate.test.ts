import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { stackOf } from '../../src/phases/session.js';
import { missingMounts, validateLocally } from '../../src/phases/validate.js';
import { haproxyConfigPath as proxyConfigPath } from '../../src/proxy/haproxy/driver.js';
import { parseCompose } from '../../src/model/compose.js';
import { readInputs } from '../../src/action/inputs.js';
import type { ReleaseFile } from '../../src/action/workspace.js';

const silent = { info() {}, warning() {}, error() {}, debug() {} };
const example = readFileSync(new URL('../../examples/compose.yaml', import.meta.url), 'utf8');
const cfg = readFileSync(new URL('../../examples/haproxy/haproxy.cfg', import.meta.url), 'utf8');
const file = (path: string, text: string): ReleaseFile => ({ path, data: Buffer.from(text), mode: 0o644 });
const inputs = (over: Record<string, string> = {}) =>
  readInputs(
    (n) =>
      ({
        host: 'h',
        username: 'u',
        key: 'k',
        known_hosts: 'h ssh-ed25519 AAAA',
        project: 'p',
        compose_files: 'deploy/compose.yaml',
        ...over,
      })[n] ?? '',
  );

test('the sample stack validates; the proxy routes to app, so app is start-first', async () => {
  const v = await validateLocally(inputs(), [file('deploy/compose.yaml', example), file('deploy/haproxy/haproxy.cfg', cfg)], silent);
  assert.deepEqual(v.routed, ['app']);
  assert.deepEqual(
    v.model.services.map((s) => s.name),
    ['app', 'proxy'],
  );
});

test('a missing proxy config is refused with the fix', async () => {
  await assert.rejects(() => validateLocally(inputs(), [file('deploy/compose.yaml', example)], silent), /files' input/);
});

test('start-first with container_name is refused naming the service', async () => {
  const bad = example.replace(
    '    image: ${APP_IMAGE:-handoff-test-app:v1}',
    '    image: ${APP_IMAGE:-handoff-test-app:v1}\n    container_name: web',
  );
  await assert.rejects(
    () => validateLocally(inputs(), [file('deploy/compose.yaml', bad), file('deploy/haproxy/haproxy.cfg', cfg)], silent),
    (e: unknown) => e instanceof Error && /refused/.test(e.message) && /app/.test(e.message) && /container_name/.test(e.message),
  );
});

test('an unknown service in the services input is refused', async () => {
  await assert.rejects(
    () =>
      validateLocally(
        inputs({ services: 'nope' }),
        [file('deploy/compose.yaml', example), file('deploy/haproxy/haproxy.cfg', cfg)],
        silent,
      ),
    /nope/,
  );
});

test('the proxy config is found through the proxy bind mounts, whatever its name', () => {
  const model = parseCompose([
    { name: 'c', text: 'services:\n  lb:\n    image: haproxy:2.8\n    volumes: ["./lb:/usr/local/etc/haproxy:ro"]\n' },
  ]);
  const proxy = model.services[0];
  assert.equal(proxyConfigPath(['ops/lb/main.cfg', 'ops/other.cfg'], proxy, 'ops'), 'ops/lb/main.cfg');
  assert.equal(proxyConfigPath(['ops/lb/extra.cfg', 'ops/lb/haproxy.cfg'], proxy, 'ops'), 'ops/lb/haproxy.cfg');
  assert.equal(proxyConfigPath(['x/haproxy.cfg'], undefined, 'x'), 'x/haproxy.cfg');
  assert.equal(proxyConfigPath(['x/readme.md'], proxy, 'x'), undefined);
});

test('bind mounts that are not uploaded are listed; runtime dirs and absolute paths are not', () => {
  const model = parseCompose([
    { name: 'c', text: 'services:\n  a:\n    image: x\n    volumes: ["./conf:/conf", "./run:/run/x", "/var/data:/data", "./up:/up"]\n' },
  ]);
  assert.deepEqual(
    missingMounts(model, ['d/up/file'], 'd').map((m) => m.path),
    ['d/conf'],
  );
});

test('a release stack resolves paths in the live app directory', () => {
  const s = stackOf('/home/deploy/handoff/p', ['deploy/compose.yaml', 'deploy/prod.yaml'], { release: 'R1' }, 'p');
  assert.deepEqual(s.files, [
    '/home/deploy/handoff/p/releases/R1/deploy/compose.yaml',
    '/home/deploy/handoff/p/releases/R1/deploy/prod.yaml',
  ]);
  assert.equal(s.envFile, '/home/deploy/handoff/p/releases/R1/.env');
  assert.equal(s.projectDirectory, '/home/deploy/handoff/p/app/deploy');
});

const stack = (p: string) => readFileSync(new URL(`../e2e/stacks/${p}`, import.meta.url), 'utf8');
const ex = (p: string) => readFileSync(new URL(`../../examples/${p}`, import.meta.url), 'utf8');
const caddyFiles = (caddyfile = ex('caddy/Caddyfile')) => [
  file('deploy/compose.yaml', stack('caddy.yaml')),
  file('deploy/caddy/Caddyfile', caddyfile),
  file('deploy/caddy/handoff/app.upstreams', ex('caddy/handoff/app.upstreams')),
];
const nginxFiles = (conf = ex('nginx/nginx.conf')) => [
  file('deploy/compose.yaml', stack('nginx.yaml')),
  file('deploy/nginx/nginx.conf', conf),
  file('deploy/nginx/handoff/app.conf', ex('nginx/handoff/app.conf')),
];

test('the Caddy and nginx stacks validate: auto picks the proxy by image, app is routed (start-first)', async () => {
  assert.deepEqual((await validateLocally(inputs(), caddyFiles(), silent)).routed, ['app']);
  assert.deepEqual((await validateLocally(inputs(), nginxFiles(), silent)).routed, ['app']);
  assert.deepEqual((await validateLocally(inputs({ proxy: 'none' }), caddyFiles(), silent)).routed, [], 'proxy: none routes nothing');
});

test('a Caddyfile without the admin socket is refused before any change, naming the line to add; allow_degraded deploys with a warning', async () => {
  const bare = ex('caddy/Caddyfile').replace(/^\tadmin unix\/\/run\/caddy-admin\/admin\.sock.*\n/m, '');
  assert.notEqual(bare, ex('caddy/Caddyfile'), 'the example has the admin line');
  await assert.rejects(
    () => validateLocally(inputs(), caddyFiles(bare), silent),
    (e: Error) => /admin unix\/\/run\/caddy-admin\/admin\.sock/.test(e.message) && /allow_degraded/.test(e.message),
  );
  const warnings: string[] = [];
  const v = await validateLocally(inputs({ allow_degraded: 'true' }), caddyFiles(bare), {
    ...silent,
    warning: (m: string) => warnings.push(m),
  });
  assert.deepEqual(v.routed, ['app']);
  assert.match(warnings.join('\n'), /without a drain/);
});

test('a proxy config that names the service directly is refused with the include/import to use instead', async () => {
  const direct = ex('caddy/Caddyfile').replace('import /etc/caddy/handoff/app.upstreams', 'to app:8080');
  await assert.rejects(
    () => validateLocally(inputs(), caddyFiles(direct), silent),
    (e: Error) => /line \d+ names service app directly/.test(e.message) && /import \/etc\/caddy\/handoff\/app\.upstreams/.test(e.message),
  );
  const conf = ex('nginx/nginx.conf').replace('proxy_pass http://app;', 'proxy_pass http://app:8080;');
  await assert.rejects(
    () => validateLocally(inputs(), nginxFiles(conf), silent),
    (e: Error) =>
      /nginx\.conf line \d+ names service app directly/.test(e.message) && /upstream app \{ server app:<port>; \}/.test(e.message),
  );
});

test('auto: an nginx that routes no Compose service (a static site) is not taken for the proxy; explicit proxy: nginx still needs its config', async () => {
  const compose = 'services:\n  web:\n    image: nginx:1.27\n    volumes: ["./site:/usr/share/nginx/html:ro"]\n  app:\n    image: x\n';
  const files = [file('deploy/compose.yaml', compose), file('deploy/site/index.html', 'hi')];
  const warnings: string[] = [];
  const v = await validateLocally(inputs(), files, { ...silent, warning: (m: string) => warnings.push(m) });
  assert.deepEqual(v.routed, []);
  assert.match(warnings.join('\n'), /looks like nginx but its config is not uploaded/);
  await assert.rejects(() => validateLocally(inputs({ proxy: 'nginx' }), files, silent), /no nginx\.conf is in the uploaded files/);
});
