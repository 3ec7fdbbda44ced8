/** The SSH edge as the rest of the action uses it: connect once, reconnect on a dropped link. */
export { connect, SshRemote, HostKeyMismatchError, SshAuthError, CommandTimeoutError, type SshOptions } from './connection.js';
export { ReconnectingRemote } from './reconnect.js';
