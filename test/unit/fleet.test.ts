import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  assignFingerprints,
  commonRollbackTarget,
  freeReleaseId,
  hostLabel,
  hostsToRollBack,
  hostWaves,
  parseHostPort,
  parseHosts,
} from '../../src/model/fleet.js';
import { hostProbeUrl, InputError, readInputs } from '../../src/action/inputs.js';

const FP1 = 'SHA256:VLzBpo8wZthg6je64aAoObh4G97fPyy5dEQMvrkI+H0';
const FP2 = 'SHA256:zKIdkDQ2/LulvoYVUpzD1Il8rC8AAk8HXONcoMXFF3s';

test('hosts: one host[:port] a line, in order, default port, IPv6 in brackets, comments skipped', () => {
  const hosts = parseHosts('10.0.0.11\n\n# the second\nweb2.example.com:2222\n[fd00::3]:22\n[fd00::4]\n', 22);
  assert.deepEqual(
    hosts.map((h) => [h.index, h.host, h.port]),
    [
      [1, '10.0.0.11', 22],
      [2, 'web2.example.com', 2222],
      [3, 'fd00::3', 22],
      [4, 'fd00::4', 22],
    ],
  );
  assert.equal(hostLabel(hosts[0]!), '#1 10.0.0.11:22');
  assert.equal(hostLabel(hosts[2]!), '#3 [fd00::3]:22');
  assert.equal(parseHosts('a', 2200)[0]!.port, 2200, 'the port input is the default');
});

test('hosts: bad lines and duplicates are refused by line number, never echoing the line', () => {
  assert.throws(
    () => parseHosts('10.0.0.11\nsecret-host name', 22),
    (e: Error) => /line 2 is not host/.test(e.message) && !e.message.includes('secret-host'),
  );
  assert.throws(() => parseHosts('a:0', 22), /line 1 is not host/);
  assert.throws(() => parseHosts('a:65536', 22), /line 1 is not host/);
  assert.throws(() => parseHosts('ssh://a', 22), /line 1 is not host/);
  assert.throws(() => parseHosts('a\nA:22', 22), /line 2 repeats a host/);
  assert.throws(() => parseHosts('\n# none\n', 22), /lists no host/);
  assert.equal(parseHostPort('-a', 22), undefined);
});

test('fingerprint: per host lines, or one shared by every host', () => {
  const hosts = parseHosts('10.0.0.11\n10.0.0.12:2222', 22);
  const pinned = assignFingerprints(hosts, `10.0.0.11=${FP1}\n10.0.0.12:2222 = ${FP2}`, 22);
  assert.deepEqual(
    pinned.map((h) => h.fingerprint),
    [FP1, FP2],
  );
  assert.deepEqual(
    assignFingerprints(hosts, FP1, 22).map((h) => h.fingerprint),
    [FP1, FP1],
  );
  assert.deepEqual(
    assignFingerprints(hosts, `10.0.0.11=${FP1}`, 22).map((h) => h.fingerprint),
    [FP1, undefined],
    'a host without a line is left to known_hosts',
  );
  assert.throws(
    () => assignFingerprints(hosts, `10.0.0.12=${FP2}`, 22),
    /line 1 names a host that is not in 'hosts'/,
    'the port must match',
  );
  assert.throws(() => assignFingerprints(hosts, `${FP1}\n${FP2}`, 22), /line 1 is not host\[:port\]=SHA256/);
});

const KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n';
const base = { username: 'deploy', key: KEY, project: 'shop' };
const get = (values: Record<string, string>) => (name: string) => values[name] ?? '';

test('inputs: hosts replaces host, with per-host pins and host_parallelism', () => {
  const i = readInputs(
    get({ ...base, hosts: '10.0.0.11\n10.0.0.12:2222', fingerprint: `10.0.0.11=${FP1}\n10.0.0.12:2222=${FP2}`, host_parallelism: '2' }),
  );
  assert.deepEqual(
    i.fleet?.map((h) => `${h.host}:${h.port} ${h.fingerprint}`),
    [`10.0.0.11:22 ${FP1}`, `10.0.0.12:2222 ${FP2}`],
  );
  assert.equal(i.hostParallelism, 2);
  assert.equal(i.host, '10.0.0.11', 'host is the first host (one-host code paths keep working)');
  assert.equal(i.fingerprint, FP1);
  const one = readInputs(get({ ...base, host: 'a', known_hosts: 'a ssh-ed25519 AAAA' }));
  assert.equal(one.fleet, undefined, 'a one-host deploy has no fleet');
  assert.equal(one.hostParallelism, 1);
});

test('inputs: fleet mistakes name the input and the fix', () => {
  const cases: Array<[Record<string, string>, string, RegExp]> = [
    [{ host: 'a', hosts: 'b', known_hosts: 'x' }, 'hosts', /either host .* or hosts/],
    [{ hosts: 'a\nb', fingerprint: `a=${FP1}` }, 'fingerprint', /no pin for host #2 of hosts/],
    [{ hosts: 'a\nb', known_hosts: 'x', host_parallelism: '3' }, 'host_parallelism', /from 1 to 2/],
    [{ host: 'a', known_hosts: 'x', host_parallelism: '2' }, 'host_parallelism', /only used with hosts/],
    [{ hosts: 'a\nb c', known_hosts: 'x' }, 'hosts', /line 2 is not host/],
    [{ hosts: 'a', known_hosts: 'x', target: 'swarm' }, 'hosts', /target: compose/],
    [{}, 'host', /required.*or hosts/],
    [
      { host: 'a', known_hosts: 'x', probe_url: 'http://a/', probe_host_url: 'http://{host}:8080/' },
      'probe_host_url',
      /only used with hosts/,
    ],
    [{ hosts: 'a', known_hosts: 'x', probe_host_url: 'http://{host}:8080/' }, 'probe_host_url', /needs probe_url/],
    [{ hosts: 'a', known_hosts: 'x', probe_url: 'http://a/', probe_host_url: 'ftp://{host}/' }, 'probe_host_url', /http/],
  ];
  for (const [values, input, message] of cases) {
    assert.throws(
      () => readInputs(get({ ...base, ...values })),
      (e: unknown) => e instanceof InputError && e.input === input && message.test(e.message),
      `${JSON.stringify(values)} → ${input}`,
    );
  }
});

test('probe_host_url: each host probed at its own address', () => {
  const i = readInputs(
    get({ ...base, hosts: 'a\n[fd00::2]', known_hosts: 'x', probe_url: 'http://lb/', probe_host_url: 'http://{host}:8080/health' }),
  );
  assert.equal(i.probeHostUrl, 'http://{host}:8080/health');
  assert.equal(hostProbeUrl(i.probeHostUrl!, 'a'), 'http://a:8080/health');
  assert.equal(hostProbeUrl(i.probeHostUrl!, 'fd00::2'), 'http://[fd00::2]:8080/health');
});

test('waves: hosts in listed order, host_parallelism at a time', () => {
  assert.deepEqual(hostWaves([1, 2, 3], 1), [[1], [2], [3]]);
  assert.deepEqual(hostWaves([1, 2, 3], 2), [[1, 2], [3]]);
  assert.deepEqual(hostWaves([1, 2, 3], 5), [[1, 2, 3]]);
});

test('the release id is free on every host', () => {
  const now = Date.UTC(2026, 11, 4, 5, 0, 0);
  const sha = 'abcdef0123456789';
  const first = freeReleaseId(sha, [], now);
  assert.equal(first, '20261204T050000Z-abcdef0');
  assert.equal(
    freeReleaseId(sha, ['20261204T050000Z-abcdef0', '20261204T050001Z-abcdef0'], now),
    '20261204T050002Z-abcdef0',
    'taken on any host: the next free second',
  );
});

test('a failure rolls back the hosts already rolled, with failure_action rollback only', () => {
  const hosts = [
    { n: 1, result: 'rolled' as const },
    { n: 2, result: 'rolled' as const },
    { n: 3, result: 'failed' as const },
    { n: 4, result: 'not-reached' as const },
  ];
  assert.deepEqual(
    hostsToRollBack(hosts, 'rollback').map((h) => h.n),
    [1, 2],
  );
  assert.deepEqual(hostsToRollBack(hosts, 'pause'), []);
  assert.deepEqual(hostsToRollBack(hosts, 'continue'), []);
  assert.deepEqual(hostsToRollBack(hosts.slice(0, 2), 'rollback'), [], 'nothing failed: nothing goes back');
});

test('a fleet rollback needs one target on every host', () => {
  assert.equal(commonRollbackTarget(['r1', 'r1']), 'r1');
  assert.throws(() => commonRollbackTarget(['r1', 'r2']), /different releases \(#1: r1, #2: r2\).*'release' input/);
  assert.throws(() => commonRollbackTarget(['r1', undefined]), /#2: none/);
});
