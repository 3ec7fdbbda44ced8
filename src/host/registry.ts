/**
 * A private registry for one deploy: the host logs in with the password on standard input, into a
 * Docker config directory that belongs to this deploy (0700, under the project's remote dir; the
 * user's ~/.docker is never touched), every docker and compose command of the deploy runs with
 * DOCKER_CONFIG pointing there, and the directory is removed when the deploy ends (the post step
 * removes it too if the main step could not).
 */
import { posix } from 'node:path';
import { shq } from '../commands/quote.js';
import { PrefixedRemote, type Remote } from './remote.js';
import { QUICK_COMMAND_MS } from '../support/timeouts.js';

/** The per-deploy Docker config directory (the run id keeps two jobs apart). */
export function dockerConfigDir(remoteDir: string, runId: string): string {
  return posix.join(remoteDir, `.docker-${runId.replace(/[^A-Za-z0-9_.-]/g, '_')}`);
}

/** `docker login` into `dir`, the password read from standard input. */
export function loginCommand(dir: string, server: string, username: string): string {
  return `umask 077 && mkdir -p ${shq(dir)} && chmod 700 ${shq(dir)} && docker --config ${shq(dir)} login ${shq(server)} --username ${shq(username)} --password-stdin`;
}

export function logoutCommand(dir: string): string {
  return `rm -rf ${shq(dir)}`;
}

/** Every command runs with DOCKER_CONFIG=dir, so pulls by Compose (both flavors) and docker use the login. */
export class DockerConfigRemote extends PrefixedRemote {
  constructor(
    inner: Remote,
    readonly dir: string,
  ) {
    super(inner, `DOCKER_CONFIG=${shq(dir)}; export DOCKER_CONFIG\n`);
  }
}

export class RegistryLoginError extends Error {
  constructor(server: string, detail: string) {
    super(
      `registry login to ${server} failed (inputs registry, registry_username, registry_password): ${detail}. Nothing on the host was changed.`,
    );
    this.name = 'RegistryLoginError';
  }
}

/** Log in; on failure the directory is removed and the error names the registry (never the password). */
export async function registryLogin(
  remote: Remote,
  dir: string,
  registry: { server: string; username: string; password: string },
): Promise<DockerConfigRemote> {
  const r = await remote.exec(loginCommand(dir, registry.server, registry.username), {
    stdin: `${registry.password}\n`,
    check: false,
    timeoutMs: QUICK_COMMAND_MS * 2,
  });
  if (r.code !== 0) {
    await remote.exec(logoutCommand(dir), { check: false, timeoutMs: QUICK_COMMAND_MS });
    const detail = (r.stderr || r.stdout).trim().split('\n').slice(-2).join(' ').split(registry.password).join('***') || `exit ${r.code}`;
    throw new RegistryLoginError(registry.server, detail);
  }
  return new DockerConfigRemote(remote, dir);
}
