export {
  connect,
  SshRemote,
  HostKeyMismatchError,
  SshAuthError,
  SshConnectError,
  CommandTimeoutError,
  Semaphore,
  type SshOptions,
  type JumpOptions,
  type HostPinOption,
} from './connection.js';
export {
  fingerprint,
  normalizeFingerprint,
  parseKnownHosts,
  verifyHostKey,
  validateHostPin,
  type HostPin,
} from './hostkey.js';
export { parsePrivateKey, normalizeKeyText, PrivateKeyError, type PrivateKeyInfo } from './keys.js';
