import { test } from 'node:test';
import assert from 'node:assert/strict';
import { interpolate, parseCompose, parseDuration } from '../../src/model/compose.js';

const base = `
services:
  app:
    image: \${APP_IMAGE:-handoff-test-app:v1}
    deploy:
      replicas: 3
      update_config:
        parallelism: 2
        delay: 1m30s
        order: start-first
        failure_action: pause
        monitor: 500ms
        max_failure_ratio: 0.5
    stop_grace_period: 20s
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:3000/health"]
      interval: 2s
      retries: 5
      start_period: 10s
    environment:
      - A=1
      - B=2
    ports:
      - "3000"
    depends_on: [db]
  db:
    image: postgres:16
    volumes:
      - dbdata:/var/lib/postgresql/data
      - ./init:/docker-entrypoint-initdb.d:ro
  proxy:
    image: haproxy
    ports:
      - "127.0.0.1:\${PROXY_PORT:-18080}:8080"
    depends_on:
      app: { condition: service_healthy }
volumes:
  dbdata: {}
`;

test('parses services, update_config, durations, healthcheck and defaults', () => {
  const m = parseCompose([{ name: 'compose.yaml', text: base }], { env: {} });
  assert.deepEqual(
    m.services.map((s) => s.name),
    ['app', 'db', 'proxy'],
  );
  const app = m.services[0]!;
  assert.equal(app.image, 'handoff-test-app:v1');
  assert.equal(app.replicas, 3);
  assert.deepEqual(app.updateConfig, {
    parallelism: 2,
    delayS: 90,
    order: 'start-first',
    failureAction: 'pause',
    monitorS: 0.5,
    maxFailureRatio: 0.5,
  });
  assert.equal(app.stopGracePeriodS, 20);
  assert.deepEqual(app.healthcheck, {
    test: ['CMD', 'wget', '-q', '-O-', 'http://127.0.0.1:3000/health'],
    intervalS: 2,
    timeoutS: 30,
    retries: 5,
    startPeriodS: 10,
    disabled: false,
  });
  assert.deepEqual(app.fixedHostPorts, []);
  assert.deepEqual(app.dependsOn, ['db']);
  const db = m.services[1]!;
  assert.equal(db.replicas, 1);
  assert.equal(db.updateConfig.order, undefined);
  assert.equal(db.updateConfig.failureAction, 'rollback');
  assert.equal(db.updateConfig.monitorS, 5);
  assert.equal(db.stopGracePeriodS, 10);
  assert.equal(db.healthcheck, undefined);
  assert.equal(db.hasNamedVolume, true);
  assert.deepEqual(
    db.volumes.map((v) => v.type),
    ['volume', 'bind'],
  );
  assert.equal(db.volumes[1]!.readOnly, true);
  const proxy = m.services[2]!;
  assert.deepEqual(proxy.fixedHostPorts, ['127.0.0.1:18080:8080']);
  assert.deepEqual(proxy.dependsOn, ['app']);
});

test('later files override: maps merge deep, scalars replace, environment/ports merge', () => {
  const over = `
services:
  app:
    image: other:2
    deploy:
      replicas: 5
    environment:
      B: "3"
      C: "4"
    ports:
      - "3000"
      - "9000:9000"
`;
  const m = parseCompose(
    [
      { name: 'a.yaml', text: base },
      { name: 'b.yaml', text: over },
    ],
    { env: {} },
  );
  const app = m.services.find((s) => s.name === 'app')!;
  assert.equal(app.image, 'other:2');
  assert.equal(app.replicas, 5);
  assert.equal(app.updateConfig.parallelism, 2, 'update_config kept from the first file');
  const rawServices = m.raw.services as Record<string, Record<string, unknown>>;
  assert.deepEqual(rawServices.app!.environment, { A: '1', B: '3', C: '4' });
  assert.equal(app.ports.length, 2);
  assert.deepEqual(app.fixedHostPorts, ['9000:9000']);
});

test('scale is used when deploy.replicas is not set; parallelism 0 means all', () => {
  const m = parseCompose([
    { name: 'c.yml', text: 'services:\n  web:\n    image: x\n    scale: 4\n    deploy: { update_config: { parallelism: 0 } }\n' },
  ]);
  assert.equal(m.services[0]!.replicas, 4);
  assert.equal(m.services[0]!.updateConfig.parallelism, 4);
});

test('interpolation forms', () => {
  const env = { A: 'a', E: '' };
  assert.equal(interpolate('${A}-$A-$$A', env), 'a-a-$A');
  assert.equal(interpolate('${E:-d}|${E-d}|${U-d}|${U:-${A}x}', env), 'd||d|ax');
  assert.equal(interpolate('${A:+alt}|${U:+alt}', env), 'alt|');
  assert.throws(() => interpolate('${U:?set U please}', env, 'f.yaml'), /required variable U.*set U please/);
  assert.throws(() => interpolate('${E:?}', env), /required variable E/);
  assert.equal(interpolate('${E?}', env), '');
  const warnings: string[] = [];
  assert.equal(
    interpolate('x${NOPE}y', {}, 'w', (m) => warnings.push(m)),
    'xy',
  );
  assert.match(warnings[0]!, /NOPE is not set/);
});

test('env values are used in the model', () => {
  const m = parseCompose([{ name: 'c.yml', text: base }], { env: { APP_IMAGE: 'reg/app:abc', PROXY_PORT: '9999' } });
  assert.equal(m.services[0]!.image, 'reg/app:abc');
  assert.deepEqual(m.services[2]!.fixedHostPorts, ['127.0.0.1:9999:8080']);
});

test('durations', () => {
  assert.equal(parseDuration('1m30s'), 90);
  assert.equal(parseDuration('500ms'), 0.5);
  assert.equal(parseDuration('1h'), 3600);
  assert.equal(parseDuration('1.5s'), 1.5);
  assert.equal(parseDuration(12), 12);
  assert.equal(parseDuration('7'), 7);
  assert.throws(() => parseDuration('10 seconds', 'stop_grace_period'), /stop_grace_period is "10 seconds"/);
  assert.throws(() => parseDuration('10x'), /duration like/);
});

test('ports: short, IPv6, long syntax, ranges', () => {
  const text = `
services:
  aa:
    image: x
    ports:
      - 80
      - "127.0.0.1::80"
      - "[::1]:8443:443/tcp"
      - "8000-8001:80-81"
      - "0:82"
      - "127.0.0.1:0:83"
      - target: 80
        published: 8081
        host_ip: 0.0.0.0
      - target: 81
`;
  const a = parseCompose([{ name: 'p.yml', text }]).services[0]!;
  assert.deepEqual(a.fixedHostPorts, ['::1:8443:443/tcp', '8000-8001:80-81', '0.0.0.0:8081:80']);
});

test('errors name the file and the line', () => {
  assert.throws(
    () => parseCompose([{ name: 'bad.yaml', text: 'services:\n  aa:\n    image: [x\n' }]),
    /^Error: bad\.yaml:\d+: invalid YAML/,
  );
  assert.throws(() => parseCompose([{ name: 'list.yaml', text: '- a\n- b\n' }]), /list\.yaml:1: a Compose file must be a mapping/);
  assert.throws(() => parseCompose([{ name: 'e.yaml', text: 'version: "3"\n' }]), /e\.yaml: no services defined/);
  assert.throws(() => parseCompose([{ name: 's.yaml', text: 'x: 1\nservices:\n  - a\n' }]), /s\.yaml:3: "services" must be a mapping/);
  assert.throws(
    () => parseCompose([{ name: 'd.yaml', text: 'services:\n  aa:\n    image: x\n    depends_on: [nope]\n' }]),
    /depends on undefined service "nope"/,
  );
  assert.throws(
    () => parseCompose([{ name: 'o.yaml', text: 'services:\n  aa:\n    image: x\n    deploy: { update_config: { order: sideways } }\n' }]),
    /service "aa" deploy\.update_config\.order is "sideways"/,
  );
  assert.throws(
    () => parseCompose([{ name: 'n.yaml', text: 'services:\n  "a b":\n    image: x\n' }]),
    /invalid Compose service name "a b"/,
  );
});

test('update_config errors name the field, the value and the choices', () => {
  const parse = (uc: string) =>
    parseCompose([{ name: 'u.yaml', text: `services:\n  aa:\n    image: x\n    deploy: { update_config: { ${uc} } }\n` }]);
  assert.throws(() => parse('order: sideways'), {
    message: 'u.yaml: service "aa" deploy.update_config.order is "sideways": use "start-first" or "stop-first"',
  });
  assert.throws(() => parse('failure_action: explode'), {
    message: 'u.yaml: service "aa" deploy.update_config.failure_action is "explode": use "rollback", "pause" or "continue"',
  });
  assert.throws(() => parse('max_failure_ratio: 2'), {
    message: 'u.yaml: service "aa" deploy.update_config.max_failure_ratio is 2: use a number from 0 to 1',
  });
  assert.equal(parse('failure_action: null').services[0]!.updateConfig.failureAction, 'rollback');
});

test('healthcheck disable and NONE; container_name and network_mode', () => {
  const text = `
services:
  aa:
    image: x
    container_name: fixed
    network_mode: host
    healthcheck: { disable: true }
  bb:
    image: x
    healthcheck: { test: ["NONE"] }
`;
  const [a, b] = parseCompose([{ name: 'h.yml', text }]).services;
  assert.equal(a!.healthcheck!.disabled, true);
  assert.equal(b!.healthcheck!.disabled, true);
  assert.equal(a!.containerName, 'fixed');
  assert.equal(a!.networkMode, 'host');
});

test('the v1 "config" output shape parses (resolved file)', () => {
  const text = `services:
  app:
    deploy:
      replicas: 3
    image: handoff-test-app:v1
    ports:
    - published: 18080
      target: 8080
      host_ip: 127.0.0.1
      protocol: tcp
    - target: 3000
version: '3.8'
`;
  const app = parseCompose([{ name: 'remote config', text }], { interpolate: false }).services[0]!;
  assert.deepEqual(app.fixedHostPorts, ['127.0.0.1:18080:8080/tcp']);
});

test('project and service names follow Compose rules', async () => {
  const { validateProjectName, validateServiceName } = await import('../../src/model/names.js');
  assert.equal(validateProjectName('shop_prod-1'), 'shop_prod-1');
  assert.throws(() => validateProjectName('Shop'), /invalid Compose project name "Shop".*e\.g\. "shop"/);
  assert.throws(() => validateProjectName('-x'), /invalid Compose project name/);
  assert.throws(() => validateProjectName('a;rm -rf'), /invalid Compose project name/);
  assert.equal(validateServiceName('web.v2'), 'web.v2');
  assert.throws(() => validateServiceName('.web'), /invalid Compose service name/);
});
