import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { startProbe } from '../../src/probe/prober.js';

/** https on both lanes, directly and through a dial (TLS wrapped around the dialed stream). */
let server: https.Server | undefined;
let port = 0;
let dir = '';
const servernames: string[] = [];

function haveOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

before(async () => {
  if (!haveOpenssl()) return;
  dir = mkdtempSync(join(tmpdir(), 'probe-https-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  );
  server = https.createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) }, (req, res) => {
    res.writeHead(200, { 'x-served-by': 'tls-1' });
    res.end('secure MARK');
  });
  server.on('secureConnection', (s: tls.TLSSocket) => servernames.push(String(s.servername)));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
});

after(async () => {
  if (server) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server!.close(() => resolve()));
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('https: certificate checked by default, ok with the check off', { skip: !haveOpenssl() && 'openssl missing' }, async () => {
  const strict = await startProbe({ url: `https://localhost:${port}/`, rate: 50, maxRequests: 4 }).finished;
  // A self-signed certificate is refused by default.
  assert.deepEqual(
    strict.records.map((r) => r.outcome),
    ['refused', 'refused', 'refused', 'refused'],
  );
  assert.match(strict.records[0]!.error ?? '', /^DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate/);
  const loose = await startProbe({
    url: `https://localhost:${port}/`,
    rate: 50,
    maxRequests: 4,
    rejectUnauthorized: false,
    bodyMarker: 'MARK',
  }).finished;
  assert.deepEqual(
    loose.records.map((r) => `${r.lane}:${r.outcome}`),
    ['keepalive:ok', 'fresh:ok', 'keepalive:ok', 'fresh:ok'],
  );
});

test('https through dial: TLS over the dialed stream with the URL host as SNI', { skip: !haveOpenssl() && 'openssl missing' }, async () => {
  servernames.length = 0;
  const dialed: string[] = [];
  const dial = async (host: string, p: number): Promise<Duplex> => {
    dialed.push(`${host}:${p}`);
    // The tunnel's far end: here the URL names "localhost", which resolves on this host too.
    return net.connect({ host: '127.0.0.1', port: p });
  };
  const result = await startProbe({
    url: `https://localhost:${port}/`,
    rate: 50,
    maxRequests: 4,
    rejectUnauthorized: false,
    bodyMarker: 'MARK',
    dial,
  }).finished;
  assert.deepEqual(
    result.records.map((r) => r.outcome),
    ['ok', 'ok', 'ok', 'ok'],
  );
  assert.equal(result.records[0]!.servedBy, 'tls-1');
  assert.ok(dialed.length >= 3 && dialed.every((d) => d === `localhost:${port}`));
  assert.ok(servernames.length >= 3 && servernames.every((s) => s === 'localhost'));
});
