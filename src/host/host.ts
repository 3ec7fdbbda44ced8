/**
 * Facts about the deploy host that every later step needs, read in one round trip:
 * can this user run docker, and which Compose flavor is installed.
 */
import type { ComposeFlavor } from '../engine/docker/compose-cli.js';
import { hostFactsCommand } from '../commands/host.js';
import type { Remote } from './remote.js';
import { DOCKER_COMMAND_MS } from '../support/timeouts.js';

export interface HostFacts {
  dockerVersion: string;
  compose: ComposeFlavor;
  composeVersion: string;
}

/** The `compose` input: which Compose to drive when a host has both. */
export type ComposePreference = 'auto' | ComposeFlavor;

export function parseHostFacts(stdout: string, username: string, prefer: ComposePreference = 'auto', needsCompose = true): HostFacts {
  const docker = /^docker=(.*)$/m.exec(stdout)?.[1]?.trim() ?? '';
  const found = [...stdout.matchAll(/^compose=(v1|v2)\s*(\S*)/gm)].map((m) => ({ flavor: m[1] as ComposeFlavor, version: m[2] ?? '' }));
  // v2 first when both are there: v1 is end-of-life.
  const compose = prefer === 'auto' ? (found.find((f) => f.flavor === 'v2') ?? found[0]) : found.find((f) => f.flavor === prefer);
  if (!/^\d+\.\d+/.test(docker)) {
    if (/permission denied/i.test(docker)) {
      throw new Error(
        `user '${username}' cannot reach the Docker engine (permission denied on docker.sock): add it to the docker group (sudo usermod -aG docker ${username}) and reconnect`,
      );
    }
    throw new Error(
      `Docker is not usable on the host: ${docker || 'no docker command'}. Install the Docker engine and make sure it is running.`,
    );
  }
  if (!compose && prefer !== 'auto') {
    const other = found[0] ? ` (the host has Compose ${found[0].flavor} ${found[0].version}: set compose: ${found[0].flavor} or auto)` : '';
    const cmd = prefer === 'v2' ? '`docker compose` (the Compose v2 plugin)' : '`docker-compose` (Compose v1)';
    throw new Error(`input 'compose' asks for ${prefer}, but ${cmd} does not work on the host${other}`);
  }
  // The Swarm target runs `docker stack deploy`: Compose is not needed there (the flavor is then unused).
  if (!compose && !needsCompose) return { dockerVersion: docker, compose: 'v2', composeVersion: 'none' };
  if (!compose) {
    throw new Error(
      'neither `docker compose` (v2) nor `docker-compose` (v1) works on the host: install the Compose plugin (docker-compose-plugin) or docker-compose',
    );
  }
  return { dockerVersion: docker, compose: compose.flavor, composeVersion: compose.version.replace(/^v/, '') };
}

export async function readHostFacts(
  remote: Remote,
  username: string,
  prefer: ComposePreference = 'auto',
  needsCompose = true,
): Promise<HostFacts> {
  const r = await remote.exec(hostFactsCommand(), { check: false, timeoutMs: DOCKER_COMMAND_MS });
  return parseHostFacts(r.stdout, username, prefer, needsCompose);
}
