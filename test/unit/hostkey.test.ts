import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  fingerprint,
  hostKeyAlgorithms,
  normalizeFingerprint,
  parseKnownHosts,
  pinnedKeyTypes,
  validateHostPin,
  verifyHostKey,
} from '../../src/ssh/hostkey.js';

let dir: string;
const keys: Record<string, { line: string; blob: Buffer; fp: string }> = {};

function makeKey(name: string, type: string): void {
  const file = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', 'host', '-f', file]);
  const pub = readFileSync(`${file}.pub`, 'utf8').trim();
  const [kt, b64] = pub.split(' ');
  // ssh-keygen -l prints e.g. "256 SHA256:abc... host (ED25519)"
  const fp = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${file}.pub`], { encoding: 'utf8' }).split(' ')[1]!;
  keys[name] = { line: `${kt} ${b64}`, blob: Buffer.from(b64!, 'base64'), fp };
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'handoff-hostkey-'));
  makeKey('ed', 'ed25519');
  makeKey('ec', 'ecdsa');
  makeKey('rsa', 'rsa');
  makeKey('other', 'ed25519');
});
after(() => rmSync(dir, { recursive: true, force: true }));

function hashed(lines: string): string {
  const f = join(dir, `kh-${Math.random()}`);
  writeFileSync(f, lines);
  execFileSync('ssh-keygen', ['-H', '-f', f], { stdio: 'ignore' });
  return readFileSync(f, 'utf8');
}

test('fingerprint matches ssh-keygen -l', () => {
  for (const k of Object.values(keys)) assert.equal(fingerprint(k.blob), k.fp);
});

test('normalizeFingerprint accepts prefix, no prefix, padding and hex; refuses MD5 and junk', () => {
  const fp = keys.ed!.fp;
  const bare = fp.slice('SHA256:'.length);
  assert.equal(normalizeFingerprint(fp), fp);
  assert.equal(normalizeFingerprint(` ${bare} `), fp);
  assert.equal(normalizeFingerprint(`${bare}=`), fp);
  assert.equal(normalizeFingerprint(`sha256:${bare}`), fp);
  const hex = Buffer.from(bare, 'base64').toString('hex');
  assert.equal(normalizeFingerprint(hex), fp);
  assert.throws(() => normalizeFingerprint('MD5:12:34:56:78:9a:bc:de:f0:12:34:56:78:9a:bc:de:f0'), /MD5.*SHA256/s);
  assert.throws(() => normalizeFingerprint('12:34:56:78:9a:bc:de:f0:12:34:56:78:9a:bc:de:f0'), /MD5/);
  assert.throws(() => normalizeFingerprint('SHA256:tooshort'), /not a SHA256 fingerprint/);
});

test('parseKnownHosts skips comments, blanks, bad lines; reads markers', () => {
  const text = [
    '# comment',
    '',
    `example.com ${keys.ed!.line} comment here`,
    `@revoked * ${keys.other!.line}`,
    `@cert-authority *.example.com ${keys.rsa!.line}`,
    '@bogus example.com ssh-ed25519 AAAA',
    'example.com ssh-ed25519 !!notbase64',
    `example.com ssh-rsa ${keys.ed!.line.split(' ')[1]}`, // type disagrees with blob
  ].join('\r\n');
  const entries = parseKnownHosts(text);
  assert.equal(entries.length, 3);
  assert.deepEqual(
    entries.map((e) => e.marker),
    [undefined, 'revoked', 'cert-authority'],
  );
  assert.equal(entries[0]!.line, 3);
});

test('plain lines: port 22 uses the bare name, other ports [host]:port', () => {
  const kh = `example.com ${keys.ed!.line}\n[127.0.0.1]:2222 ${keys.ec!.line}\n`;
  assert.equal(verifyHostKey(keys.ed!.blob, { knownHosts: kh }, 'example.com', 22).ok, true);
  assert.equal(verifyHostKey(keys.ed!.blob, { knownHosts: kh }, 'EXAMPLE.com', 22).ok, true);
  assert.equal(verifyHostKey(keys.ed!.blob, { knownHosts: kh }, 'example.com', 2222).ok, false);
  assert.equal(verifyHostKey(keys.ec!.blob, { knownHosts: kh }, '127.0.0.1', 2222).ok, true);
  assert.equal(verifyHostKey(keys.ec!.blob, { knownHosts: kh }, '127.0.0.1', 22).ok, false);
  // right host, wrong key
  const r = verifyHostKey(keys.other!.blob, { knownHosts: kh }, 'example.com', 22);
  assert.equal(r.ok, false);
  assert.equal(r.presented, keys.other!.fp);
  assert.equal(r.keyType, 'ssh-ed25519');
});

test('hashed lines (as ssh-keygen -H writes them) match, including [host]:port', () => {
  const kh = hashed(`example.com ${keys.ed!.line}\n[127.0.0.1]:2222 ${keys.rsa!.line}\n`);
  assert.match(kh, /^\|1\|/m);
  assert.ok(!kh.includes('example.com'));
  assert.equal(verifyHostKey(keys.ed!.blob, { knownHosts: kh }, 'example.com', 22).ok, true);
  assert.equal(verifyHostKey(keys.ed!.blob, { knownHosts: kh }, 'example.org', 22).ok, false);
  assert.equal(verifyHostKey(keys.rsa!.blob, { knownHosts: kh }, '127.0.0.1', 2222).ok, true);
  assert.equal(verifyHostKey(keys.rsa!.blob, { knownHosts: kh }, '127.0.0.1', 2223).ok, false);
});

test('several key types for a host: any one matching is enough', () => {
  const kh = [`h ${keys.rsa!.line}`, `h ${keys.ec!.line}`, `h ${keys.ed!.line}`].join('\n');
  for (const k of ['rsa', 'ec', 'ed']) assert.equal(verifyHostKey(keys[k]!.blob, { knownHosts: kh }, 'h', 22).ok, true);
});

test('@revoked rejects even when another line or a fingerprint pins the key; @cert-authority is ignored', () => {
  const kh = `h ${keys.ed!.line}\n@revoked h ${keys.ed!.line}\n@cert-authority h ${keys.ec!.line}\n`;
  const r = verifyHostKey(keys.ed!.blob, { knownHosts: kh, fingerprints: [keys.ed!.fp] }, 'h', 22);
  assert.equal(r.ok, false);
  assert.equal(r.revoked, true);
  assert.equal(verifyHostKey(keys.ec!.blob, { knownHosts: kh }, 'h', 22).ok, false);
});

test('patterns: comma lists, wildcards and negation', () => {
  const kh = `a.example.com,b.example.com ${keys.ed!.line}\n*.test,!bad.test ${keys.ec!.line}\n[10.0.0.?]:2200 ${keys.rsa!.line}\n`;
  assert.equal(verifyHostKey(keys.ed!.blob, { knownHosts: kh }, 'b.example.com', 22).ok, true);
  assert.equal(verifyHostKey(keys.ec!.blob, { knownHosts: kh }, 'good.test', 22).ok, true);
  assert.equal(verifyHostKey(keys.ec!.blob, { knownHosts: kh }, 'bad.test', 22).ok, false);
  assert.equal(verifyHostKey(keys.rsa!.blob, { knownHosts: kh }, '10.0.0.7', 2200).ok, true);
  assert.equal(verifyHostKey(keys.rsa!.blob, { knownHosts: kh }, '10.0.0.17', 2200).ok, false);
});

test('fingerprint pins', () => {
  assert.equal(verifyHostKey(keys.ed!.blob, { fingerprints: [keys.ed!.fp.slice(7)] }, 'h', 22).ok, true);
  assert.equal(verifyHostKey(keys.ec!.blob, { fingerprints: [keys.ed!.fp] }, 'h', 22).ok, false);
});

test('validateHostPin: needs a pin and a line for this host; never names the host', () => {
  assert.throws(() => validateHostPin({}, 'secret-host', 22), /no host key pin/);
  assert.throws(
    () => validateHostPin({ knownHosts: `other ${keys.ed!.line}` }, 'secret-host', 2222),
    (e: Error) => /no usable line/.test(e.message) && !e.message.includes('secret-host'),
  );
  assert.throws(() => validateHostPin({ fingerprints: ['MD5:aa'] }, 'h', 22), /MD5/);
  validateHostPin({ knownHosts: `[h]:2222 ${keys.ed!.line}` }, 'h', 2222);
  validateHostPin({ fingerprints: [keys.ed!.fp] }, 'h', 22);
});

test('hostKeyAlgorithms puts the pinned types first', () => {
  const supported = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  const kh = `h ${keys.rsa!.line}\nh ${keys.ec!.line}\nother ${keys.ed!.line}\n`;
  assert.deepEqual(pinnedKeyTypes({ knownHosts: kh }, 'h', 22), ['ssh-rsa', 'ecdsa-sha2-nistp256']);
  assert.deepEqual(hostKeyAlgorithms({ knownHosts: kh }, 'h', 22, supported), [
    'rsa-sha2-512',
    'rsa-sha2-256',
    'ssh-rsa',
    'ecdsa-sha2-nistp256',
    'ssh-ed25519',
  ]);
  assert.equal(hostKeyAlgorithms({ fingerprints: [keys.ed!.fp] }, 'h', 22, supported), undefined);
});
