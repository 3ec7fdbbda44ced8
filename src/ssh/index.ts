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
export { ReconnectingRemote, ConnectionLostError, ReconnectFailedError, isConnectionLoss, type ReconnectOptions } from './reconnect.js';
export { fingerprint, normalizeFingerprint, parseKnownHosts, verifyHostKey, validateHostPin, type HostPin } from './hostkey.js';
export { parsePrivateKey, normalizeKeyText, PrivateKeyError, type PrivateKeyInfo } from './keys.js';
