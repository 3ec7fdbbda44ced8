// Hitless reloads vs. client keep-alive connections, against a real HAProxy 2.6 in master-worker
// mode running the reference config (examples/haproxy/haproxy.cfg) with its Docker-only parts made
// local. Without `option idle-close-on-response` the old worker closes idle keep-alive connections
// the moment it is told to stop, and a client that reuses one right then gets ECONNRESET.
// Checked: with the option removed this test failed 10 runs of 10 (3 to 30 resets per run).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { freePort, startHaproxy, startReplica, type FakeReplica, type LocalHaproxy } from '../fixtures/haproxy-local.js';

const REFERENCE = new URL('../../examples/haproxy/haproxy.cfg', import.meta.url);
const SOCKETS = 24;
const RELOADS = 10;
const RELOAD_EVERY_MS = 300;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The sections of an HAProxy config, by header line (`global`, `defaults`, `backend app`, ...). */
function sections(cfg: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let body: string[] | undefined;
  for (const line of cfg.split('\n')) {
    if (/^\S/.test(line) && !line.startsWith('#')) out.set(line.trim(), (body = []));
    else if (body && line.trim() && !line.trim().startsWith('#')) body.push(line.trim());
  }
  return out;
}

/** `lines` with `from` replaced by `to`; throws when the reference config no longer has `from`. */
function swap(lines: string[], from: string | RegExp, to: string): string[] {
  let hit = false;
  const res = lines.map((l) => {
    const next = l.replace(from, to);
    hit ||= next !== l;
    return next;
  });
  if (!hit) throw new Error(`examples/haproxy/haproxy.cfg changed: no line matches ${from}; update this test`);
  return res;
}

/**
 * The reference config for local processes: global with the admin socket and state file in the
 * test's directory and no stdout log; defaults as shipped except DNS discovery; backend `app` as
 * shipped with fixed servers instead of the DNS server-template; the frontend on 127.0.0.1.
 */
function localReferenceCfg(reference: string, servers: string[]) {
  const s = sections(reference);
  const get = (name: string) => {
    const body = s.get(name);
    if (!body) throw new Error(`examples/haproxy/haproxy.cfg has no "${name}" section`);
    return body;
  };
  return ({ socketPath, frontendPort }: { socketPath: string; frontendPort: number }) => {
    let global = swap(get('global'), '/var/run/haproxy/admin.sock', socketPath);
    global = swap(global, '/var/run/haproxy/server-state', path.join(path.dirname(socketPath), 'server-state'));
    global = global.filter((l) => !l.startsWith('log '));
    let defaults = get('defaults').filter((l) => l !== 'log global' && l !== 'option httplog');
    defaults = swap(defaults, /^(default-server .*)init-addr \S+ resolvers docker resolve-prefer ipv4 /, '$1');
    const backend = swap(get('backend app'), /^server-template .*/, servers.map((a, i) => `server app${i + 1} ${a}`).join('\n    '));
    const indent = (ls: string[]) => ls.map((l) => `    ${l}\n`).join('');
    return `global\n${indent(global)}\ndefaults\n${indent(defaults)}\nfrontend web\n    bind 127.0.0.1:${frontendPort}\n    default_backend app\n\nbackend app\n${indent(backend)}`;
  };
}

const replicas: FakeReplica[] = [];
let hp: LocalHaproxy | undefined;

before(async () => {
  for (let i = 0; i < 2; i++) replicas.push(await startReplica('127.0.0.1', await freePort()));
});

after(async () => {
  await hp?.stop();
  for (const r of replicas) await r.close();
});

test('reference config: USR2 reloads under keep-alive load reset no client connection', { timeout: 30_000 }, async () => {
  const reference = readFileSync(REFERENCE, 'utf8');
  assert.match(sections(reference).get('defaults')!.join('\n'), /^option idle-close-on-response$/m);
  hp = await startHaproxy(
    localReferenceCfg(
      reference,
      replicas.map((r) => `127.0.0.1:${r.port}`),
    ),
  );
  const master = hp.process.pid!;
  const loaded = () => hp!.output().split('Loading success').length - 1;

  // Servers start UP (no saved state, no failed check yet): the load can start at once.
  const agent = new http.Agent({ keepAlive: true, maxSockets: SOCKETS, maxFreeSockets: SOCKETS });
  const get = () =>
    new Promise<{ status: number; closing: boolean }>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: hp!.frontendPort, path: '/', agent }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, closing: res.headers.connection === 'close' }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    });
  let ok = 0;
  let closing = 0;
  const errors: string[] = [];
  let stop = false;
  const started = Date.now();
  const client = async () => {
    while (!stop && Date.now() < started + 15_000) {
      try {
        const r = await get();
        if (r.status === 200) ok++;
        else errors.push(`status ${r.status}`);
        if (r.closing) closing++;
      } catch (e) {
        errors.push(`${(e as NodeJS.ErrnoException).code ?? ''} ${(e as Error).message}`);
      }
      await sleep(20 + Math.random() * 80);
    }
  };
  const clients = Array.from({ length: SOCKETS }, client);
  try {
    await sleep(500);
    for (let i = 1; i <= RELOADS; i++) {
      const before = loaded();
      process.kill(master, 'SIGUSR2');
      // Generous: a busy 2-core runner (load 20) once took over 5 s to log it.
      const deadline = Date.now() + 15_000;
      while (loaded() === before) {
        if (Date.now() > deadline) assert.fail(`reload ${i}: no "Loading success" from the master:\n${hp.output()}`);
        await sleep(10);
      }
      await sleep(RELOAD_EVERY_MS);
    }
    await sleep(500);
  } finally {
    stop = true;
    await Promise.all(clients);
    agent.destroy();
  }

  const kinds = [...new Set(errors)].map((e) => `${errors.filter((x) => x === e).length}x ${e}`).join(', ');
  const summary = `${ok} ok, ${errors.length} errors${kinds && ` (${kinds})`}, ${closing} "Connection: close", ${Date.now() - started} ms, ${RELOADS} reloads`;
  assert.equal(errors.length, 0, summary);
  assert.ok(ok > SOCKETS * 20, `the load ran: ${summary}`);
  // The old workers did meet reused connections and answered them with "Connection: close".
  assert.ok(closing > 0, `no keep-alive connection outlived a reload: ${summary}`);
  console.log(summary);
});
