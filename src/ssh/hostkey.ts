import { createHash, createHmac } from 'node:crypto';

/**
 * How the host's key is pinned: known_hosts lines (plain or hashed) and/or
 * SHA256 fingerprints. A presented key is accepted when it matches any of them.
 */
export interface HostPin {
  /** known_hosts text, as `ssh-keyscan` or ~/.ssh/known_hosts holds it. */
  knownHosts?: string;
  /** Fingerprints as `ssh-keygen -l` prints them (the `SHA256:` prefix is optional). */
  fingerprints?: string[];
}

export interface KnownHostsEntry {
  marker?: 'revoked' | 'cert-authority';
  /** Either plain patterns (comma-separated, possibly negated/wildcarded) or one hashed `|1|salt|hash`. */
  hosts: string;
  keyType: string;
  key: Buffer;
  line: number;
}

/** Parse known_hosts text. Comments, blank and malformed lines are skipped. */
export function parseKnownHosts(text: string): KnownHostsEntry[] {
  const entries: KnownHostsEntry[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: KnownHostsEntry['marker'];
    if (fields[0]?.startsWith('@')) {
      const m = fields.shift();
      if (m === '@revoked') marker = 'revoked';
      else if (m === '@cert-authority') marker = 'cert-authority';
      else return;
    }
    const [hosts, keyType, b64] = fields;
    if (!hosts || !keyType || !b64 || !/^[A-Za-z0-9+/]+=*$/.test(b64)) return;
    const key = Buffer.from(b64, 'base64');
    // The blob starts with its own type name; a line whose two disagree is corrupt.
    if (blobKeyType(key) !== keyType) return;
    entries.push({ marker, hosts, keyType, key, line: i + 1 });
  });
  return entries;
}

/** The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise. */
function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** Does this entry's host field cover host:port? */
function entryMatchesHost(entry: Pick<KnownHostsEntry, 'hosts'>, host: string, port: number): boolean {
  const names = [knownHostsName(host, port).toLowerCase()];
  if (port === 22) names.push(`[${host.toLowerCase()}]:22`);
  if (entry.hosts.startsWith('|1|')) {
    const [, , salt, hash] = entry.hosts.split('|');
    if (!salt || !hash) return false;
    const saltBuf = Buffer.from(salt, 'base64');
    return names.some((n) => createHmac('sha1', saltBuf).update(n).digest('base64') === hash);
  }
  let matched = false;
  for (const pattern of entry.hosts.split(',')) {
    const negated = pattern.startsWith('!');
    const p = (negated ? pattern.slice(1) : pattern).toLowerCase();
    if (!names.some((n) => globMatch(p, n))) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

function globMatch(pattern: string, name: string): boolean {
  if (!/[*?]/.test(pattern)) return pattern === name;
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`).test(name);
}

/** The type name at the start of an SSH public key blob, or undefined when the blob is not one. */
function blobKeyType(key: Buffer): string | undefined {
  if (key.length < 4) return undefined;
  const len = key.readUInt32BE(0);
  if (len === 0 || len > 64 || key.length < 4 + len) return undefined;
  const name = key.subarray(4, 4 + len).toString('latin1');
  return /^[\x21-\x7e]+$/.test(name) ? name : undefined;
}

/** OpenSSH's fingerprint of a public key blob: `SHA256:` + unpadded base64 of its SHA-256. */
export function fingerprint(key: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
}

/**
 * A user-given fingerprint in OpenSSH's form. Accepts `SHA256:<base64>`, the bare base64, or the
 * SHA-256 as 64 hex digits. MD5 fingerprints are refused: they can't be compared safely.
 */
export function normalizeFingerprint(input: string): string {
  let s = input.trim();
  if (/^MD5:/i.test(s) || /^([0-9a-f]{2}:){15}[0-9a-f]{2}$/i.test(s)) {
    throw new Error(
      'the fingerprint is in the MD5 form, which is not supported: give the SHA256 form, as printed by ' +
        '`ssh-keygen -l -E sha256 -f <host key .pub file>` (or `ssh-keyscan <host> | ssh-keygen -lf -`)',
    );
  }
  s = s.replace(/^SHA256:/i, '');
  if (/^[0-9a-f]{64}$/i.test(s)) return 'SHA256:' + Buffer.from(s, 'hex').toString('base64').replace(/=+$/, '');
  s = s.replace(/=+$/, '');
  if (!/^[A-Za-z0-9+/]{43}$/.test(s)) {
    throw new Error(
      'the fingerprint is not a SHA256 fingerprint: expected `SHA256:` followed by 43 base64 characters, ' +
        'as printed by `ssh-keygen -l -f <host key .pub file>`',
    );
  }
  return 'SHA256:' + s;
}

export interface HostKeyCheck {
  ok: boolean;
  /** The presented key's fingerprint, safe to print. */
  presented: string;
  /** The presented key's type, e.g. ssh-ed25519. */
  keyType: string;
  /** Set when a `@revoked` line names the presented key. */
  revoked?: boolean;
}

/** Check the key the server presented against the pin for host:port. */
export function verifyHostKey(key: Buffer, pin: HostPin, host: string, port: number): HostKeyCheck {
  const presented = fingerprint(key);
  const keyType = blobKeyType(key) ?? 'unknown';
  const entries = pin.knownHosts ? parseKnownHosts(pin.knownHosts) : [];
  // A revoked key is refused even when a fingerprint or another line pins it.
  if (entries.some((e) => e.marker === 'revoked' && e.key.equals(key))) {
    return { ok: false, presented, keyType, revoked: true };
  }
  const byLine = entries.some((e) => !e.marker && e.key.equals(key) && entryMatchesHost(e, host, port));
  const byFingerprint = (pin.fingerprints ?? []).some((f) => normalizeFingerprint(f) === presented);
  return { ok: byLine || byFingerprint, presented, keyType };
}

/**
 * Check a pin up front, before connecting: fingerprints well-formed, and known_hosts has at least
 * one usable line for host:port. Messages don't name the host (it may be a secret).
 */
export function validateHostPin(pin: HostPin, host: string, port: number): void {
  const fps = pin.fingerprints ?? [];
  fps.forEach(normalizeFingerprint);
  if (pin.knownHosts === undefined && fps.length === 0) {
    throw new Error('no host key pin: give known_hosts lines or a fingerprint');
  }
  if (pin.knownHosts !== undefined && fps.length === 0 && pinnedKeyTypes(pin, host, port).length === 0) {
    throw new Error(
      `known_hosts has no usable line for the host (the name must be \`host\` for port 22, \`[host]:port\` otherwise; ` +
        '`ssh-keyscan -p <port> <host>` prints them)',
    );
  }
}

/** Key types that known_hosts pins for host:port, in file order, deduplicated. */
export function pinnedKeyTypes(pin: HostPin, host: string, port: number): string[] {
  const types: string[] = [];
  for (const e of pin.knownHosts ? parseKnownHosts(pin.knownHosts) : []) {
    if (!e.marker && entryMatchesHost(e, host, port) && !types.includes(e.keyType)) types.push(e.keyType);
  }
  return types;
}

/** Host key algorithms that present a key of each type (RSA keys sign with several). */
const ALGORITHMS_FOR_TYPE: Record<string, string[]> = {
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/**
 * ssh2's `algorithms.serverHostKey`: the pinned types first, so the server presents a key we
 * pin, then the rest of `supported` so a server without them still reaches a clear mismatch error.
 * Undefined when nothing is pinned by type (fingerprints only): keep ssh2's default.
 */
export function hostKeyAlgorithms(pin: HostPin, host: string, port: number, supported: string[]): string[] | undefined {
  const pinned = pinnedKeyTypes(pin, host, port).flatMap((t) => ALGORITHMS_FOR_TYPE[t] ?? [t]);
  const first = pinned.filter((a) => supported.includes(a));
  if (first.length === 0) return undefined;
  return [...new Set([...first, ...supported])];
}
