import ssh2 from 'ssh2';

export interface PrivateKeyInfo {
  /** Key type as SSH names it, e.g. ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa. */
  type: string;
  /** The key text, normalized (LF line endings, no stray whitespace): what to hand to ssh2. */
  text: string;
  encrypted: boolean;
}

/** A key that can't be used. Messages never contain key material or the passphrase. */
export class PrivateKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PrivateKeyError';
  }
}

/**
 * Undo what pasting into a secret does to a key: CRLF endings, trailing spaces, indentation,
 * and a key flattened to one line with literal `\n`.
 */
export function normalizeKeyText(text: string): string {
  let s = text;
  if (!s.includes('\n') && s.includes('\\n')) s = s.replace(/\\n/g, '\n');
  return (
    s
      .replace(/\r\n?/g, '\n')
      .split('\n')
      .map((l) => l.trim())
      .filter((l, i, all) => l !== '' || (i > 0 && i < all.length - 1))
      .join('\n')
      .trim() + '\n'
  );
}

/**
 * Check a private key before connecting, with errors that say what to do.
 * `label` names the key in messages (e.g. "the jump host's key").
 */
export function parsePrivateKey(text: string, passphrase?: string, label = 'the SSH key'): PrivateKeyInfo {
  const normalized = normalizeKeyText(text ?? '');
  const body = normalized.trim();
  if (!body) throw new PrivateKeyError(`${label} is empty: give the private key's text`);

  if (/-----BEGIN (ENCRYPTED )?PRIVATE KEY-----/.test(body)) {
    throw new PrivateKeyError(
      `${label} is in PKCS#8 format, which ssh2 does not support. Convert it to PEM in place with ` +
        '`ssh-keygen -p -m pem -f <keyfile>`, or use an OpenSSH-format key (`ssh-keygen -t ed25519`).',
    );
  }
  if (/^(ssh-|ecdsa-sha2-|sk-)\S+ [A-Za-z0-9+/]/.test(body) || body.startsWith('---- BEGIN SSH2 PUBLIC KEY')) {
    throw new PrivateKeyError(`${label} is a public key: give the private key (the file without .pub)`);
  }
  if (!body.includes('-----BEGIN') && !body.startsWith('PuTTY-User-Key-File')) {
    const looksLikePath = !body.includes('\n') && /^(~|\/|\.{1,2}\/|[A-Za-z]:\\)|\.(pem|key)$|id_[a-z0-9]+$/.test(body);
    throw new PrivateKeyError(
      looksLikePath
        ? `${label} looks like a file path: give the private key's text (the whole file, BEGIN and END lines included)`
        : `${label} is not a private key: expected the text of a key file, from its -----BEGIN line to its -----END line`,
    );
  }

  const encryptedPem = /Proc-Type:\s*4,ENCRYPTED/.test(body);
  const parsed = ssh2.utils.parseKey(normalized, passphrase === '' ? undefined : passphrase);
  if (parsed instanceof Error) throw new PrivateKeyError(explain(parsed.message, label, passphrase));
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key) throw new PrivateKeyError(`${label} holds no key`);
  if (!key.isPrivateKey()) {
    throw new PrivateKeyError(`${label} is a public key: give the private key (the file without .pub)`);
  }
  // OpenSSH-format keys carry their encryption in the binary body; a passphrase that worked means it was encrypted.
  const encrypted = encryptedPem || (!!passphrase && isOpenSshEncrypted(body));
  return { type: key.type, text: normalized, encrypted };
}

function isOpenSshEncrypted(body: string): boolean {
  const m = /-----BEGIN OPENSSH PRIVATE KEY-----\n([\s\S]*?)\n-----END/.exec(body);
  if (!m?.[1]) return false;
  const raw = Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
  // "openssh-key-v1\0", then the cipher name as an SSH string.
  const off = 15;
  if (raw.length < off + 4) return false;
  const len = raw.readUInt32BE(off);
  return raw.subarray(off + 4, off + 4 + len).toString('latin1') !== 'none';
}

function explain(ssh2Message: string, label: string, passphrase?: string): string {
  if (/no passphrase given/i.test(ssh2Message)) {
    return `${label} is encrypted and no passphrase was given: set the passphrase input`;
  }
  if (/bad passphrase|integrity check failed|decrypt/i.test(ssh2Message)) {
    return passphrase
      ? `${label} could not be decrypted: the passphrase is wrong`
      : `${label} is encrypted and no passphrase was given: set the passphrase input`;
  }
  if (/Unsupported/i.test(ssh2Message)) {
    return `${label} is in a format or type ssh2 does not support (${ssh2Message}); use an ed25519, ECDSA or RSA key in OpenSSH or PEM format`;
  }
  // ssh2's own messages name formats and ciphers, never key material.
  return `${label} could not be read (${ssh2Message})`;
}
