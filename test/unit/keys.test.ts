import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePrivateKey, normalizeKeyText, PrivateKeyError } from '../../src/ssh/keys.js';

let dir: string;
const PASS = 'correct horse battery';

function keygen(name: string, ...args: string[]): string {
  const file = join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-C', 'test', '-f', file, ...args]);
  return readFileSync(file, 'utf8');
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'handoff-keys-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Asserts the error is a PrivateKeyError matching re, and carries no key material or passphrase. */
function assertKeyError(fn: () => unknown, re: RegExp, secretText?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof PrivateKeyError, `expected PrivateKeyError, got ${String(err)}`);
    assert.match(err.message, re);
    assert.ok(!err.message.includes(PASS), 'passphrase leaked into the error');
    for (const line of (secretText ?? '').split('\n')) {
      if (line.length > 20 && !line.startsWith('-----')) assert.ok(!err.message.includes(line), 'key line leaked');
    }
    return true;
  });
}

test('accepts ed25519, ecdsa and rsa keys in OpenSSH format and reports their type', () => {
  assert.equal(parsePrivateKey(keygen('ed', '-t', 'ed25519', '-N', '')).type, 'ssh-ed25519');
  assert.equal(parsePrivateKey(keygen('ec', '-t', 'ecdsa', '-b', '256', '-N', '')).type, 'ecdsa-sha2-nistp256');
  const rsa = parsePrivateKey(keygen('rsa', '-t', 'rsa', '-b', '2048', '-N', ''));
  assert.equal(rsa.type, 'ssh-rsa');
  assert.equal(rsa.encrypted, false);
});

test('accepts PEM (traditional) RSA and EC keys', () => {
  assert.equal(parsePrivateKey(keygen('rsapem', '-t', 'rsa', '-b', '2048', '-m', 'pem', '-N', '')).type, 'ssh-rsa');
  assert.equal(parsePrivateKey(keygen('ecpem', '-t', 'ecdsa', '-m', 'pem', '-N', '')).type, 'ecdsa-sha2-nistp256');
});

test('an encrypted key opens with its passphrase and is reported encrypted', () => {
  const text = keygen('enc', '-t', 'ed25519', '-N', PASS);
  const info = parsePrivateKey(text, PASS);
  assert.equal(info.type, 'ssh-ed25519');
  assert.equal(info.encrypted, true);
});

test('an encrypted key without passphrase says to set the passphrase input', () => {
  const text = keygen('enc2', '-t', 'ed25519', '-N', PASS);
  assertKeyError(() => parsePrivateKey(text), /encrypted and no passphrase was given/, text);
  assertKeyError(() => parsePrivateKey(text, ''), /encrypted and no passphrase was given/, text);
});

test('a wrong passphrase is a clear error without the passphrase in it', () => {
  const text = keygen('enc3', '-t', 'ed25519', '-N', 'something else entirely');
  assertKeyError(() => parsePrivateKey(text, PASS), /passphrase is wrong/, text);
  const pem = keygen('enc4', '-t', 'rsa', '-b', '2048', '-m', 'pem', '-N', 'something else entirely');
  assertKeyError(() => parsePrivateKey(pem, PASS), /passphrase is wrong|could not be/, pem);
});

test('PKCS#8 keys get the conversion command', () => {
  const text = keygen('p8', '-t', 'rsa', '-b', '2048', '-m', 'pkcs8', '-N', '');
  assert.match(text, /BEGIN PRIVATE KEY/);
  assertKeyError(() => parsePrivateKey(text), /ssh-keygen -p -m pem -f <keyfile>/, text);
  const enc = keygen('p8e', '-t', 'rsa', '-b', '2048', '-m', 'pkcs8', '-N', PASS);
  assert.match(enc, /BEGIN ENCRYPTED PRIVATE KEY/);
  assertKeyError(() => parsePrivateKey(enc, PASS), /PKCS#8/, enc);
});

test('a public key, a path, garbage and an empty value are refused with a hint', () => {
  keygen('pubsrc', '-t', 'ed25519', '-N', '');
  const pub = readFileSync(join(dir, 'pubsrc.pub'), 'utf8');
  assertKeyError(() => parsePrivateKey(pub), /public key/);
  assertKeyError(() => parsePrivateKey('~/.ssh/id_ed25519'), /file path/);
  assertKeyError(() => parsePrivateKey('/home/runner/key.pem'), /file path/);
  assertKeyError(() => parsePrivateKey('hello world'), /not a private key/);
  assertKeyError(() => parsePrivateKey('  \n '), /empty/);
});

test('CRLF endings, trailing whitespace, indentation and literal \\n are normalized', () => {
  const text = keygen('crlf', '-t', 'ed25519', '-N', '');
  const mangled =
    '\n' +
    text
      .split('\n')
      .map((l) => `  ${l}  `)
      .join('\r\n') +
    '\r\n\r\n';
  const info = parsePrivateKey(mangled);
  assert.equal(info.type, 'ssh-ed25519');
  assert.equal(info.text, text.trim() + '\n');
  assert.equal(parsePrivateKey(text.trim().replace(/\n/g, '\\n')).type, 'ssh-ed25519');
  assert.equal(normalizeKeyText('a \r\nb\t\r\n'), 'a\nb\n');
});
