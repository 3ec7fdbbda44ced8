// UpstreamGate (the Caddy and nginx gates) against a fake host: a swap is one config change, an old
// replica is drained only after two readings with no connection from the proxy 1 s apart, and a
// change the proxy refuses puts the previous file back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ExecOptions, ExecResult, Remote } from '../../src/host/remote.js';
import { UpstreamGate, type UpstreamGateOptions } from '../../src/proxy/upstreams/gate.js';
import { Timeline } from '../../src/model/timeline.js';

const PROXY_IP = '10.0.0.2';
const hex = (ip: string) =>
  ip
    .split('.')
    .map((n) => Number(n).toString(16).padStart(2, '0').toUpperCase())
    .reverse()
    .join('');
const established = (ip: string) =>
  `   1: ${hex(ip)}:1F90 ${hex(PROXY_IP)}:A028 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0\n`;

function fakeHost(connections: () => Record<string, number>) {
  const files = new Map<string, string>([['/app/app.upstreams', 'to app:8080\n']]);
  const log: string[] = [];
  const remote = {
    async exec(command: string, _o?: ExecOptions): Promise<ExecResult> {
      if (command.includes('/proc/')) {
        const ids = /for id in (.*); do/.exec(command)![1]!.split(' ');
        const n = connections();
        const out = ids.map((id) => `== ${id} 4242\n${established(`10.0.0.${id.slice(1)}`).repeat(n[id] ?? 0)}`).join('');
        return { code: 0, stdout: out, stderr: '' };
      }
      if (command.startsWith('docker exec')) {
        const urls = command.match(/http:\/\/[0-9.:]+\//g) ?? [];
        return { code: 0, stdout: urls.map((u) => `ok ${u}`).join('\n'), stderr: '' };
      }
      throw new Error(`unexpected command ${command}`);
    },
    async writeFile(path: string, data: string | Buffer) {
      files.set(path, String(data));
      log.push(`write ${String(data).trim().split('\n').pop()}`);
    },
  } as unknown as Remote;
  return { remote, files, log };
}

function gate(host: ReturnType<typeof fakeHost>, refuse = false) {
  return new UpstreamGate({
    remote: host.remote,
    label: 'Caddy',
    proxy: { id: 'p', name: 'proxy-1', ips: [PROXY_IP] },
    upstreams: [
      { service: 'app', port: 8080, hostPath: '/app/app.upstreams', render: (ips) => `to ${ips.map((i) => `${i}:8080`).join(' ')}\n` },
    ],
    current: new Map([['app', ['10.0.0.11', '10.0.0.12']]]),
    applier: {
      async apply(reason) {
        host.log.push(`apply ${reason}`);
        if (refuse) throw new Error('Caddy rejects the config (HTTP 400): boom');
      },
    },
    drainTimeoutMs: 10_000,
    pollMs: 50,
    timeline: new Timeline(),
  });
}

const replica = (n: number) => ({ id: `c${n}`, name: `app-${n}`, ip: `10.0.0.${n}` });

test('a start-first swap is one config change; the drain waits for the connections to go, twice 1 s apart', async () => {
  let conns: Record<string, number> = { c11: 2 };
  const host = fakeHost(() => conns);
  const g = gate(host);
  await g.waitUp('app', [replica(13)], Date.now() + 5000, [replica(11)]);
  assert.deepEqual(host.log, [], 'nothing applied yet: the addition waits for the drain of the replica it replaces');
  setTimeout(() => (conns = { c11: 0 }), 300);
  const t0 = Date.now();
  await g.drain('app', [replica(11)]);
  const took = Date.now() - t0;
  assert.deepEqual(host.log, ['write to 10.0.0.12:8080 10.0.0.13:8080', 'apply app: +app-13 (10.0.0.13) -app-11 (10.0.0.11)']);
  assert.ok(took >= 1300 && took < 3000, `drained after the connections went plus 1 s of none (${took} ms)`);
  assert.deepEqual(g.listed('app'), ['10.0.0.12', '10.0.0.13']);
});

test('without replicas to replace (scale up, stop-first) waitUp lists the new replica at once', async () => {
  const host = fakeHost(() => ({}));
  const g = gate(host);
  await g.waitUp('app', [replica(13)], Date.now() + 5000);
  assert.deepEqual(g.listed('app'), ['10.0.0.11', '10.0.0.12', '10.0.0.13']);
  assert.equal(host.log.length, 2);
});

test('a change the proxy refuses puts the previous file back and fails; the list is unchanged', async () => {
  const host = fakeHost(() => ({}));
  const g = gate(host, true);
  await assert.rejects(() => g.drain('app', [replica(11)]), /Caddy rejects the config \(HTTP 400\): boom/);
  assert.equal(host.files.get('/app/app.upstreams'), 'to 10.0.0.11:8080 10.0.0.12:8080\n');
  assert.deepEqual(g.listed('app'), ['10.0.0.11', '10.0.0.12']);
});

/** An nginx gate over `host` listing replicas 11 and 12, with the given applier and options. */
function nginxGate(host: ReturnType<typeof fakeHost>, extra: Partial<UpstreamGateOptions> & Pick<UpstreamGateOptions, 'drainTimeoutMs'>) {
  return new UpstreamGate({
    remote: host.remote,
    label: 'nginx',
    proxy: { id: 'p', name: 'proxy-1', ips: [PROXY_IP] },
    upstreams: [{ service: 'app', port: 8080, hostPath: '/app/app.upstreams', render: (ips) => ips.join(' ') }],
    current: new Map([['app', ['10.0.0.11', '10.0.0.12']]]),
    applier: { async apply() {} },
    pollMs: 50,
    ...extra,
  });
}

test('a replica still busy at the drain timeout is reported, not waited for forever', async () => {
  const host = fakeHost(() => ({ c11: 1 }));
  const timeline = new Timeline();
  const g = nginxGate(host, { drainTimeoutMs: 400, timeline });
  await g.drain('app', [replica(11)]);
  const drained = timeline.events.find((e) => e.action === 'drained');
  assert.match(drained?.detail ?? '', /timeout after 400 ms \(1 connection/);
});

test('nginx: the drain waits until the previous config is gone (old workers) before counting connections', async () => {
  const host = fakeHost(() => ({ c11: 0 }));
  const order: string[] = [];
  let settledAt = 0;
  const g = nginxGate(host, {
    applier: {
      async apply() {
        order.push('apply');
      },
      async settled(deadline) {
        order.push(`settled (deadline in ${Math.round((deadline - Date.now()) / 1000)} s)`);
        await new Promise((r) => setTimeout(r, 700));
        settledAt = Date.now();
        return true;
      },
    },
    drainTimeoutMs: 10_000,
  });
  await g.drain('app', [replica(11)]);
  const doneAt = Date.now();
  assert.deepEqual(order, ['apply', 'settled (deadline in 10 s)']);
  assert.ok(
    doneAt - settledAt >= 1000,
    `connections counted (twice, 1 s apart) only after the old workers left (${doneAt - settledAt} ms)`,
  );
});

test('nginx: old workers still running at the drain timeout are reported', async () => {
  const host = fakeHost(() => ({}));
  const warnings: string[] = [];
  const g = nginxGate(host, {
    applier: { async apply() {}, settled: async () => false },
    drainTimeoutMs: 300,
    log: { info: () => {}, warning: (m: string) => warnings.push(m) },
  });
  await g.drain('app', [replica(11)]);
  assert.match(warnings.join('\n'), /nginx: the previous config still runs after 300 ms/);
});
