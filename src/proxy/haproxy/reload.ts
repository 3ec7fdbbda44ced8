/**
 * The two edges where handoff touches HAProxy as a process, never in the middle of a rollout
 * (a reload drops runtime state such as maint/drain; the deploy sequences it before the rollout):
 * - checkConfig: validate a new config with `haproxy -c` in a throwaway container of the proxy's
 *   own image, so a bad config never reaches the running proxy;
 * - reload: SIGUSR2 to the master (`haproxy -W`), hitless for new connections.
 */
import type { Remote } from '../../host/remote.js';
import { checkConfigCommand } from '../../commands/haproxy.js';
import { containerLogsSinceCommand, hostTimeCommand, killCommand, writeInContainerCommand } from '../../commands/docker.js';
import { RuntimeApi, type StreamOpener } from './runtime.js';
import { sleep } from '../../support/time.js';
import { DOCKER_COMMAND_MS, INSTANT_COMMAND_MS, QUICK_COMMAND_MS } from '../../support/timeouts.js';

/** HAProxy rejected a config; `output` is HAProxy's own explanation (its [ALERT] lines). */
export class HaproxyConfigError extends Error {
  constructor(
    readonly file: string,
    readonly output: string,
  ) {
    super(`HAProxy rejects ${file}:\n${output.trim().split('\n').slice(-20).join('\n')}`);
    this.name = 'HaproxyConfigError';
  }
}

export interface CheckConfigOptions {
  /** Default 60 s: the image may have to be pulled first. */
  timeoutMs?: number;
}

/**
 * `docker run --rm -v <dir>:/usr/local/etc/haproxy:ro <image> haproxy -c -f .../<file>`.
 * hostConfigDir is the directory on the host holding the config (mounted whole, as the proxy does,
 * so files it includes — maps, certificates — are checked too).
 */
export async function checkConfig(
  remote: Remote,
  image: string,
  hostConfigDir: string,
  cfgFile: string,
  options: CheckConfigOptions = {},
): Promise<void> {
  if (cfgFile.includes('/') || cfgFile === '' || cfgFile === '.' || cfgFile === '..') {
    throw new Error(`checkConfig: ${JSON.stringify(cfgFile)} must be a file name inside ${hostConfigDir}`);
  }
  const r = await remote.exec(checkConfigCommand(image, hostConfigDir, cfgFile), {
    timeoutMs: options.timeoutMs ?? DOCKER_COMMAND_MS,
    check: false,
  });
  if (r.code !== 0) throw new HaproxyConfigError(`${hostConfigDir}/${cfgFile}`, r.stdout + r.stderr);
}

/** How long a reload may take, from SIGUSR2 to "Loading success." (and the Runtime API answering), unless told. */
const RELOAD_WAIT_MS = 30_000;

export interface ReloadOptions {
  /** When given, the reload is complete only once the Runtime API answers through it again. */
  opener?: StreamOpener;
  /** Default 30 s. */
  timeoutMs?: number;
  pollMs?: number;
  /**
   * The config's server-state-file (a path inside the container). With an opener, the current
   * `show servers state` is written there first, so the new worker starts with every replica UP
   * instead of empty server-template slots.
   */
  stateFile?: string;
  log?: { warning(message: string): void };
}

/**
 * Reload HAProxy in a container started as `haproxy -W` (master-worker): SIGUSR2 makes the master
 * re-read the config and start new workers; old workers finish their connections. Waits for the
 * master's "Loading success." in the container log (and, with an opener, a Runtime API answer);
 * "Loading failure!" throws with the log.
 */
export async function reload(remote: Remote, containerId: string, options: ReloadOptions = {}): Promise<void> {
  const timeoutMs = options.timeoutMs ?? RELOAD_WAIT_MS;
  const pollMs = options.pollMs ?? 250;
  const deadline = Date.now() + timeoutMs;
  // The container's clock is the host's: take "since" from the host, not from the runner.
  const since = (await remote.exec(hostTimeCommand(), { timeoutMs: INSTANT_COMMAND_MS })).stdout.trim();
  if (options.opener && options.stateFile) await saveServerState(remote, containerId, options.opener, options.stateFile, options.log);
  await remote.exec(killCommand(containerId, 'USR2'), { timeoutMs: QUICK_COMMAND_MS });
  for (;;) {
    const logs = await remote.exec(containerLogsSinceCommand(containerId, since), { timeoutMs: QUICK_COMMAND_MS, check: false });
    const verdict = reloadVerdict(logs.stdout + logs.stderr);
    if (verdict === 'failure') {
      throw new Error(
        `HAProxy reload failed in container ${containerId.slice(0, 12)}; it keeps the previous config:\n${tail(logs.stdout + logs.stderr)}`,
      );
    }
    if (verdict === 'success') break;
    if (Date.now() >= deadline) {
      throw new Error(
        `HAProxy in container ${containerId.slice(0, 12)} did not report "Loading success." within ${timeoutMs} ms after SIGUSR2:\n${tail(logs.stdout + logs.stderr)}`,
      );
    }
    await sleep(pollMs);
  }
  if (!options.opener) return;
  const api = new RuntimeApi(options.opener, { timeoutMs: 5000 });
  for (;;) {
    try {
      await api.command('show info');
      return;
    } catch (e) {
      if (Date.now() >= deadline)
        throw new Error(`HAProxy's Runtime API does not answer after the reload: ${(e as Error).message}`, { cause: e });
      await sleep(pollMs);
    }
  }
}

/**
 * What the master said about the last reload, from its log. Pure. Only a verdict after "Reloading
 * HAProxy" (the master's line on SIGUSR2, 2.x and 3.x alike) counts: a proxy started moments before
 * the signal logs its own startup "Loading success." inside the same window.
 */
export function reloadVerdict(log: string): 'success' | 'failure' | undefined {
  let verdict: 'success' | 'failure' | undefined;
  let reloading = false;
  for (const line of log.split('\n')) {
    if (line.includes('Reloading HAProxy')) {
      reloading = true;
      verdict = undefined;
    } else if (!reloading) continue;
    else if (line.includes('Loading success.')) verdict = 'success';
    else if (line.includes('Loading failure!')) verdict = 'failure';
  }
  return verdict;
}

function tail(s: string): string {
  return s.trim().split('\n').slice(-15).join('\n');
}

/** Write `show servers state` into the container (docker exec: no host path or permissions to map). */
async function saveServerState(
  remote: Remote,
  containerId: string,
  opener: StreamOpener,
  stateFile: string,
  log?: { warning(message: string): void },
): Promise<void> {
  try {
    const state = await new RuntimeApi(opener, { timeoutMs: 10_000 }).command('show servers state');
    await remote.exec(writeInContainerCommand(containerId, stateFile), { stdin: state, timeoutMs: QUICK_COMMAND_MS });
  } catch (e) {
    log?.warning(
      `could not save HAProxy's server state before the reload (${(e as Error).message.split('\n')[0]}): the new worker starts with empty slots until DNS and health checks fill them`,
    );
  }
}
