import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { dirname as posixDirname } from 'node:path/posix';
import { connect, CommandTimeoutError, HostKeyMismatchError, SshAuthError, type SshOptions, type SshRemote } from '../../src/ssh/index.js';
import { RemoteCommandError } from '../../src/host/remote.js';
import { PrivateKeyError } from '../../src/ssh/keys.js';
import { fingerprint, parseKnownHosts } from '../../src/ssh/hostkey.js';
import { bench as readBench, type Bench } from './harness.js';
import { collectLog } from '../helpers/collect-log.js';

let bench: Bench;
const logs: string[] = [];
const errors: string[] = [];
const log = collectLog(logs);

function key(name: keyof Bench['keys']): string {
  return readFileSync(bench.keys[name], 'utf8');
}

function opts(over: Partial<SshOptions> = {}): SshOptions {
  return {
    host: bench.host,
    port: bench.port,
    username: bench.user,
    privateKey: key('ed25519'),
    pin: { knownHosts: readFileSync(bench.knownHosts, 'utf8') },
    connectTimeoutMs: 10_000,
    retryDelayMs: 200,
    log,
    ...over,
  };
}

/** Run fn expecting a rejection; keep the message for the no-secrets check. */
async function rejection(fn: () => Promise<unknown>): Promise<Error> {
  try {
    await fn();
  } catch (err) {
    errors.push((err as Error).message);
    return err as Error;
  }
  assert.fail('expected a rejection');
}

let shared: SshRemote;

before(async () => {
  bench = readBench();
  shared = await connect(opts());
});
after(async () => {
  await shared?.close();
});

test('connects with each key type, pinned by known_hosts, hashed known_hosts and fingerprint', async () => {
  const cases: Array<[string, Partial<SshOptions>]> = [
    ['ed25519 + known_hosts', {}],
    ['ed25519_enc + passphrase', { privateKey: key('ed25519_enc'), passphrase: bench.passphrase }],
    ['ecdsa + hashed known_hosts', { privateKey: key('ecdsa'), pin: { knownHosts: readFileSync(bench.knownHostsHashed, 'utf8') } }],
    ['rsa + fingerprint', { privateKey: key('rsa'), pin: { fingerprints: [bench.fingerprint] } }],
    ['fingerprint without prefix', { pin: { fingerprints: [bench.fingerprint.replace(/^SHA256:/, '')] } }],
  ];
  for (const [name, over] of cases) {
    const r = await connect(opts(over));
    try {
      const res = await r.exec('id -un');
      assert.equal(res.stdout.trim(), bench.user, name);
      assert.equal(res.code, 0);
    } finally {
      await r.close();
    }
  }
});

test('a pin of one key type works when the server prefers another (known_hosts line or fingerprint)', async () => {
  const lines = readFileSync(bench.knownHosts, 'utf8').split('\n');
  for (const type of ['ssh-rsa', 'ecdsa-sha2-nistp256']) {
    const only = lines.filter((l) => l.split(/\s+/)[1] === type).join('\n');
    assert.ok(only, `bench known_hosts has a ${type} line`);
    const fp = fingerprint(parseKnownHosts(only)[0]!.key);
    assert.notEqual(fp, bench.fingerprint);
    for (const pin of [{ knownHosts: only }, { fingerprints: [fp] }]) {
      const r = await connect(opts({ pin }));
      await r.close();
    }
  }
});

test('a wrong pinned fingerprint is a HostKeyMismatchError naming the real fingerprint, not retried', async () => {
  const wrong = 'SHA256:' + 'A'.repeat(43);
  const t0 = Date.now();
  const err = await rejection(() => connect(opts({ pin: { fingerprints: [wrong] }, connectAttempts: 3, retryDelayMs: 2000 })));
  assert.ok(err instanceof HostKeyMismatchError, String(err));
  assert.ok(err.message.includes(bench.fingerprint), err.message);
  assert.match(err.message, /also presented .*ecdsa-sha2-nistp256.*ssh-rsa/);
  assert.ok(!err.message.includes(bench.host), 'the host must not be named');
  assert.ok(Date.now() - t0 < 1900, 'a mismatch must not be retried');
});

test('known_hosts for another host/port fails up front; a wrong key in known_hosts is a mismatch', async () => {
  const kh = readFileSync(bench.knownHosts, 'utf8');
  await assert.rejects(connect(opts({ pin: { knownHosts: kh.replace(/\]:\d+/g, ']:1') } })), /no usable line/);
  const other = readFileSync(bench.jumpKnownHosts, 'utf8').replace(/\[[^\]]+\]:\d+/g, `[${bench.host}]:${bench.port}`);
  const err = await rejection(() => connect(opts({ pin: { knownHosts: other } })));
  if (bench.jumpFingerprint !== bench.fingerprint) {
    assert.ok(err instanceof HostKeyMismatchError, String(err));
    assert.match(err.message, /SHA256:/);
  }
});

test('a key not in authorized_keys is an auth error naming the user, not retried', async () => {
  const err = await rejection(() => connect(opts({ privateKey: key('wrong') })));
  assert.ok(err instanceof SshAuthError, String(err));
  assert.ok(err.message.includes(`"${bench.user}"`));
  assert.match(err.message, /authorized_keys/);
});

test('a PKCS#8 key gets the conversion hint; encrypted key problems are clear and secret-free', async () => {
  const p8 = await rejection(() => connect(opts({ privateKey: key('pkcs8') })));
  assert.ok(p8 instanceof PrivateKeyError);
  assert.match(p8.message, /ssh-keygen -p -m pem -f/);
  const noPass = await rejection(() => connect(opts({ privateKey: key('ed25519_enc') })));
  assert.match(noPass.message, /passphrase/);
  const badPass = await rejection(() => connect(opts({ privateKey: key('ed25519_enc'), passphrase: bench.passphrase + 'x' })));
  assert.match(badPass.message, /passphrase is wrong/);
});

test('connection refused is retried a bounded number of times, then fails', async () => {
  const before = logs.length;
  const t0 = Date.now();
  const err = await rejection(() =>
    connect(opts({ port: 1, connectAttempts: 3, retryDelayMs: 100, pin: { fingerprints: [bench.fingerprint] } })),
  );
  assert.match(err.message, /ECONNREFUSED.*after 3 attempts/);
  assert.equal(logs.slice(before).filter((l) => /retrying/.test(l)).length, 2);
  assert.ok(Date.now() - t0 < 5000);
});

test('a server that never completes the handshake times out and is retried, boundedly', async () => {
  const sockets: Socket[] = [];
  let accepted = 0;
  const silent = createServer((s) => {
    accepted++;
    sockets.push(s);
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  const port = (silent.address() as { port: number }).port;
  try {
    const t0 = Date.now();
    const err = await rejection(() =>
      connect(opts({ port, connectTimeoutMs: 400, connectAttempts: 2, retryDelayMs: 50, pin: { fingerprints: [bench.fingerprint] } })),
    );
    assert.match(err.message, /timed out.*after 2 attempts/);
    assert.equal(accepted, 2);
    assert.ok(Date.now() - t0 < 3000);
  } finally {
    sockets.forEach((s) => s.destroy());
    silent.close();
  }
});

test('an explicit insecure opt-out connects and logs a warning', async () => {
  const mine: string[] = [];
  const r = await connect(opts({ pin: { insecure: true }, log: collectLog(mine) }));
  try {
    assert.equal((await r.exec('echo ok')).stdout, 'ok\n');
    assert.ok(
      mine.some((m) => /NOT verified/.test(m)),
      mine.join('\n'),
    );
  } finally {
    await r.close();
  }
  logs.push(...mine);
});

test('exec: exit code, stdout, stderr, check=false, stdin, streaming', async () => {
  const ok = await shared.exec('echo out; echo err >&2');
  assert.deepEqual([ok.code, ok.stdout, ok.stderr], [0, 'out\n', 'err\n']);
  const fail = await rejection(() => shared.exec('echo boom >&2; exit 3'));
  assert.ok(fail instanceof RemoteCommandError);
  assert.equal(fail.result.code, 3);
  assert.match(fail.message, /exit 3/);
  assert.match(fail.message, /boom/);
  const unchecked = await shared.exec('exit 5', { check: false });
  assert.equal(unchecked.code, 5);
  const cat = await shared.exec('wc -c', { stdin: 'x'.repeat(100_000) });
  assert.equal(cat.stdout.trim(), '100000');
  const chunks: string[] = [];
  await shared.exec('echo a; sleep 0.2; echo b >&2', { onOutput: (c, s) => chunks.push(`${s}:${c}`) });
  assert.deepEqual(chunks, ['stdout:a\n', 'stderr:b\n']);
});

test('exec: large output keeps the tail', async () => {
  const r = await shared.exec('head -c 3000000 /dev/zero | tr "\\0" a; echo; echo END');
  assert.ok(r.stdout.length < 1.1 * 1024 * 1024, `stored ${r.stdout.length}`);
  assert.ok(r.stdout.endsWith('END\n'));
  assert.match(r.stdout, /^\[\.\.\. \d+ characters of output dropped\]/);
});

/** The host's processes whose args match `pattern` (grep), once none is left or after 2 s. */
async function stillRunning(pattern: string): Promise<string> {
  let left = '';
  for (let i = 0; i < 20; i++) {
    left = (await shared.exec(`ps -eo args | grep '${pattern}' || true`)).stdout;
    if (!left) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return left;
}

test('exec: a timeout kills the command and rejects promptly', async () => {
  const t0 = Date.now();
  const err = await rejection(() => shared.exec('sleep 41.5', { timeoutMs: 1000 }));
  assert.ok(err instanceof CommandTimeoutError, String(err));
  assert.match(err.message, /timed out after 1 s/);
  assert.ok(Date.now() - t0 < 2500, `took ${Date.now() - t0} ms`);
  // the connection is still usable and the slot was released
  assert.equal((await shared.exec('echo still')).stdout, 'still\n');
  // and the remote process is gone (sshd delivers the KILL signal request)
  assert.equal(await stillRunning('^sleep 41[.]5'), '', 'the timed-out command is still running on the host');
});

test('exec: a command killed by a signal is a failure, even with check=false', async () => {
  const err = await rejection(() => shared.exec('kill -9 $$', { check: false }));
  assert.ok(err instanceof RemoteCommandError, String(err));
  assert.match(err.message, /killed by SIGKILL/);
});

test('12 concurrent execs succeed, at most maxChannels open at once', async () => {
  const r = await connect(opts({ maxChannels: 4 }));
  try {
    let peak = 0;
    // Live output keeps each on a channel of its own, whether or not the host shell is up yet.
    const runs = Array.from({ length: 12 }, (_, i) =>
      r.exec(`sleep 0.3; echo ${i}`, { onOutput: () => {} }).then((x) => {
        peak = Math.max(peak, r.openChannels);
        return x.stdout.trim();
      }),
    );
    const poll = setInterval(() => (peak = Math.max(peak, r.openChannels)), 20);
    const out = await Promise.all(runs);
    clearInterval(poll);
    assert.deepEqual(
      out,
      Array.from({ length: 12 }, (_, i) => String(i)),
    );
    assert.ok(peak <= 4 && peak >= 2, `peak ${peak}`);
    assert.equal(r.openChannels, 0);
  } finally {
    await r.close();
  }
});

/** The most channels open at once while `run` is pending. */
async function channelsDuring<T>(r: SshRemote, run: Promise<T>): Promise<{ result: T; peak: number }> {
  let peak = r.openChannels;
  const poll = setInterval(() => (peak = Math.max(peak, r.openChannels)), 20);
  try {
    return { result: await run, peak };
  } finally {
    clearInterval(poll);
  }
}

/** A fresh connection whose host shell is up (ssh/shell-session.ts). */
async function withShell(): Promise<SshRemote> {
  const r = await connect(opts());
  for (let i = 0; i < 100 && !r.shellUp; i++) await new Promise((res) => setTimeout(res, 50));
  assert.ok(r.shellUp, 'the host shell did not come up within 5 s');
  return r;
}

test('host shell: short commands run there, several at once, with the results a channel gives', async () => {
  const r = await withShell();
  try {
    const ok = await r.exec('echo out; echo err >&2');
    assert.deepEqual([ok.code, ok.stdout, ok.stderr], [0, 'out\n', 'err\n']);
    assert.equal(r.openChannels, 0, 'no channel for a short command');
    const fail = await rejection(() => r.exec('echo boom >&2; exit 3'));
    assert.ok(fail instanceof RemoteCommandError);
    assert.equal(fail.result.code, 3);
    assert.match(fail.message, /boom/);
    assert.equal((await r.exec('exit 5', { check: false })).code, 5);
    assert.equal((await r.exec('cat', { check: false })).stdout, '', 'stdin is empty');
    const killed = await rejection(() => r.exec('kill -9 $$', { check: false }));
    assert.match(killed.message, /killed by SIGKILL/);
    const big = await r.exec('head -c 3000000 /dev/zero | tr "\\0" a; echo; echo END');
    assert.ok(big.stdout.endsWith('END\n') && big.stdout.length < 1.1 * 1024 * 1024, `stored ${big.stdout.length}`);
    const utf8 = await r.exec("printf 'h\\303\\251 \\342\\234\\223'");
    assert.equal(utf8.stdout, 'hé ✓');
    // Public text stdin rides in the command (shell); a secret one goes through a channel, never to a file.
    const viaPublic = await channelsDuring(r, r.exec('sleep 0.3; wc -c', { stdin: 'abc\n', stdinPublic: true }));
    assert.deepEqual([viaPublic.result.stdout.trim(), viaPublic.peak], ['4', 0], 'public stdin: the shell, no channel');
    const viaSecret = await channelsDuring(r, r.exec('sleep 0.3; wc -c', { stdin: 'x'.repeat(100_000) }));
    assert.deepEqual([viaSecret.result.stdout.trim(), viaSecret.peak], ['100000', 1], 'secret stdin: a channel of its own');
    // At once, not one after the other: the first waits for a file only the second creates.
    const f = (await r.exec('mktemp -u')).stdout.trim();
    const [a, b] = await Promise.all([
      r.exec(`for i in $(seq 100); do [ -f ${f} ] && break; sleep 0.05; done; [ -f ${f} ] && echo A`, { timeoutMs: 10_000 }),
      r.exec(`touch ${f}; echo B`),
    ]);
    assert.deepEqual([a.stdout, b.stdout], ['A\n', 'B\n']);
    await r.exec(`rm -f ${f}`);
    assert.equal(r.openChannels, 0);
  } finally {
    await r.close();
  }
});

test('hostShell: false starts no shell on the host: every command uses a channel', async () => {
  const r = await connect(opts({ hostShell: false }));
  try {
    // Long enough for a shell to come up: a default connection opened after this one has its own.
    const control = await withShell();
    await control.close();
    assert.equal(r.shellUp, false, 'no host shell');
    const run = await channelsDuring(r, r.exec('sleep 0.3; echo ok'));
    assert.deepEqual([run.result.stdout, run.peak], ['ok\n', 1], 'the command ran on a channel');
  } finally {
    await r.close();
  }
});

test('host shell: a timeout kills the command on the host; close() ends the shell and removes its files', async () => {
  const r = await withShell();
  const dir = posixDirname((await r.exec('echo "$0"')).stdout.trim());
  assert.match(dir, /\/handoff-shell\.[A-Za-z0-9]+$/);
  const err = await rejection(() => r.exec('sleep 41.6', { timeoutMs: 1000 }));
  assert.ok(err instanceof CommandTimeoutError, String(err));
  assert.ok(r.shellUp, 'the shell outlives a timed-out command');
  assert.equal(await stillRunning('^sleep 41[.]6'), '', 'the timed-out command is still running on the host');
  await r.close();
  let gone = '';
  for (let i = 0; i < 20; i++) {
    gone = (await shared.exec(`[ -e ${dir} ] && echo there || echo gone`)).stdout.trim();
    if (gone === 'gone') break;
    await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal(gone, 'gone', `${dir} is left on the host`);
});

test('writeFile is atomic with the requested mode and leaves no temp file', async () => {
  const dir = (await shared.exec('mktemp -d')).stdout.trim();
  try {
    const path = `${dir}/it's a file.env`;
    await shared.writeFile(path, 'A=1\nB=secret\n', 0o600);
    const r = await shared.exec(`stat -c %a "${dir}/it's a file.env" && cat "${dir}/it's a file.env" && ls -A ${dir} | wc -l`);
    assert.equal(r.stdout, '600\nA=1\nB=secret\n1\n');
    await shared.writeFile(path, Buffer.from([0, 1, 2, 255]), 0o644);
    const r2 = await shared.exec(`stat -c %a "${dir}/it's a file.env" && od -An -tu1 "${dir}/it's a file.env"`);
    assert.match(r2.stdout, /^644\n\s*0\s+1\s+2\s+255\n$/);
    await assert.rejects(shared.writeFile(`${dir}/missing/x`, 'x'), RemoteCommandError);
  } finally {
    await shared.exec(`rm -rf ${dir}`);
  }
});

function readSome(stream: Duplex, until: (s: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    const t = setTimeout(() => reject(new Error(`timed out; got ${JSON.stringify(buf)}`)), 5000);
    stream.on('data', (c: Buffer) => {
      buf += c.toString();
      if (until(buf)) {
        clearTimeout(t);
        resolve(buf);
      }
    });
    stream.on('error', reject);
  });
}

test('openTcp reaches a port on the host (its own sshd banner) and releases the slot on close', async () => {
  const s = await shared.openTcp('127.0.0.1', bench.port);
  assert.equal(shared.openChannels, 1);
  const banner = await readSome(s, (b) => b.includes('\n'));
  assert.match(banner, /^SSH-2\.0-/);
  const closed = new Promise((r) => s.once('close', r));
  s.destroy();
  await closed;
  await new Promise((r) => setImmediate(r));
  assert.equal(shared.openChannels, 0);
});

test('openUnixSocket reaches the Docker socket (HTTP /_ping)', async () => {
  const s = await shared.openUnixSocket('/var/run/docker.sock');
  s.write('GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n');
  const res = await readSome(s, (b) => /\r\n\r\n[\s\S]*OK/.test(b));
  assert.match(res, /^HTTP\/1\.[01] 200/);
  s.destroy();
  await assert.rejects(shared.openUnixSocket('/nonexistent/sock'), /Unix socket/);
});

test('jump host: connects through 127.0.0.1:jumpPort with its own pin', async () => {
  const r = await connect(
    opts({
      jump: {
        host: bench.host,
        port: bench.jumpPort,
        username: bench.user,
        pin: { knownHosts: readFileSync(bench.jumpKnownHosts, 'utf8') },
      },
    }),
  );
  try {
    assert.equal((await r.exec('echo via-jump')).stdout, 'via-jump\n');
  } finally {
    await r.close();
  }
  const err = await rejection(() =>
    connect(
      opts({ jump: { host: bench.host, port: bench.jumpPort, username: bench.user, pin: { fingerprints: ['SHA256:' + 'B'.repeat(43)] } } }),
    ),
  );
  assert.ok(err instanceof HostKeyMismatchError);
  assert.match(err.message, /jump host/);
  assert.ok(err.message.includes(bench.jumpFingerprint));
});

test('no secret appears in any error or log', () => {
  assert.ok(errors.length >= 8, `collected ${errors.length} errors`);
  const text = [...errors, ...logs].join('\n');
  assert.ok(!text.includes(bench.passphrase), 'passphrase leaked');
  for (const name of Object.keys(bench.keys) as Array<keyof Bench['keys']>) {
    for (const line of key(name).split('\n')) {
      if (line.length >= 16 && !line.startsWith('-----')) assert.ok(!text.includes(line), `a line of the ${name} key leaked`);
    }
  }
});
