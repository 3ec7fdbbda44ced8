/** The connection to the host: pinned host key, optional jump host, reconnecting after a cut. */
import type { Inputs, SshTarget } from '../action/inputs.js';
import type { Log } from '../support/log.js';
import { connect, ReconnectingRemote } from '../ssh/index.js';
import type { Timeline } from '../model/timeline.js';

/** What ssh2 needs to reach one endpoint, with its host key pin (or the logged opt-out). */
function sshEndpoint(t: SshTarget) {
  return {
    host: t.host,
    port: t.port,
    username: t.username,
    privateKey: t.key,
    passphrase: t.passphrase,
    pin:
      t.knownHosts || t.fingerprint
        ? { knownHosts: t.knownHosts, fingerprints: t.fingerprint ? [t.fingerprint] : undefined }
        : ({ insecure: true } as const),
  };
}

/** How long a dropped connection is retried before the step gives up (then the post step takes over). */
const RECONNECT_WINDOW_MS = 90_000;

/**
 * Connect with the pinned host key (and jump host) from the inputs. The connection reconnects by
 * itself when it drops (ssh/reconnect.ts); `timeline` gets a note for each reconnect.
 */
export async function connectHost(
  inputs: Inputs,
  log: Log,
  options: { maxChannels?: number; timeline?: Timeline; retryFirst?: boolean; hostShell?: boolean } = {},
): Promise<ReconnectingRemote> {
  if (inputs.insecureIgnoreHostKey && !inputs.knownHosts && !inputs.fingerprint) {
    log.warning(
      'insecure_ignore_host_key: the host key is not verified; anyone between the runner and the host can impersonate it. Pin it with known_hosts or fingerprint.',
    );
  }
  const open = () =>
    connect({
      ...sshEndpoint(inputs),
      jump: inputs.jump ? sshEndpoint(inputs.jump) : undefined,
      connectTimeoutMs: inputs.connectTimeoutMs,
      commandTimeoutMs: inputs.commandTimeoutMs,
      maxChannels: options.maxChannels,
      hostShell: options.hostShell,
      log,
    });
  const started = Date.now();
  const remote = await ReconnectingRemote.open({
    connect: open,
    windowMs: RECONNECT_WINDOW_MS,
    retryFirst: options.retryFirst,
    log,
    onReconnect: ({ downMs }) => options.timeline?.add('reconnect', { detail: `connection back after ${(downMs / 1000).toFixed(1)} s` }),
  });
  log.debug(`connected in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return remote;
}
