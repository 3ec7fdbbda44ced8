/**
 * Facts about the deploy host that every later step needs, read in one round trip (with the remote
 * dir resolved, for a deploy: readHostSetup): which engine
 * the docker CLI reaches (Docker's default endpoint or Podman's Docker-compatible socket), can this
 * user run it, and which Compose flavor is installed.
 */
import type { ComposeFlavor } from '../engine/docker/compose-cli.js';
import { hostFactsCommand, hostSetupCommand, REMOTE_DIR_MARK } from '../commands/host.js';
import { resolveRemoteDirCommand } from '../commands/release-store.js';
import { RemoteCommandError, type Remote } from './remote.js';
import { parseRemoteDir, remoteDirArgument } from './release-store.js';
import { DOCKER_COMMAND_MS } from '../support/timeouts.js';
import { chooseEngine, type EnginePreference, type EngineEndpoint } from '../engine/endpoint.js';

export interface HostFacts extends EngineEndpoint {
  dockerVersion: string;
  compose: ComposeFlavor;
  composeVersion: string;
}

/** The `compose` input: which Compose to drive when a host has both. */
export type ComposePreference = 'auto' | ComposeFlavor;

export function parseHostFacts(
  stdout: string,
  username: string,
  prefer: ComposePreference = 'auto',
  engine: EnginePreference = 'docker',
  needsCompose = true,
): HostFacts {
  const endpoint = chooseEngine(stdout, username, engine);
  const found = [...stdout.matchAll(/^compose=(v1|v2)\s*(\S*)/gm)].map((m) => ({ flavor: m[1] as ComposeFlavor, version: m[2] ?? '' }));
  // v2 first when both are there: v1 is end-of-life.
  const compose = prefer === 'auto' ? (found.find((f) => f.flavor === 'v2') ?? found[0]) : found.find((f) => f.flavor === prefer);
  if (!compose && prefer !== 'auto') {
    const other = found[0] ? ` (the host has Compose ${found[0].flavor} ${found[0].version}: set compose: ${found[0].flavor} or auto)` : '';
    const cmd = prefer === 'v2' ? '`docker compose` (the Compose v2 plugin)' : '`docker-compose` (Compose v1)';
    throw new Error(`input 'compose' asks for ${prefer}, but ${cmd} does not work on the host${other}`);
  }
  // The Swarm target runs `docker stack deploy`: Compose is not needed there (the flavor is then unused).
  if (!compose && !needsCompose) return { ...endpoint, dockerVersion: endpoint.version, compose: 'v2', composeVersion: 'none' };
  if (!compose) {
    throw new Error(
      'neither `docker compose` (v2) nor `docker-compose` (v1) works on the host: install the Compose plugin (docker-compose-plugin) or docker-compose',
    );
  }
  return { ...endpoint, dockerVersion: endpoint.version, compose: compose.flavor, composeVersion: compose.version.replace(/^v/, '') };
}

export async function readHostFacts(
  remote: Remote,
  username: string,
  prefer: ComposePreference = 'auto',
  engine: EnginePreference = 'docker',
  podmanSocket?: string,
  needsCompose = true,
): Promise<HostFacts> {
  const r = await remote.exec(hostFactsCommand(engine, podmanSocket), { check: false, timeoutMs: DOCKER_COMMAND_MS });
  return parseHostFacts(r.stdout, username, prefer, engine, needsCompose);
}

/**
 * The host facts and the resolved remote dir (created 0700 when missing) in one round trip
 * (hostSetupCommand). A remote dir that cannot be made fails as resolveRemoteDir does; the facts
 * are judged after it, as when they were read first.
 */
export async function readHostSetup(
  remote: Remote,
  options: {
    username: string;
    remoteDir: string;
    compose?: ComposePreference;
    engine?: EnginePreference;
    podmanSocket?: string;
    needsCompose?: boolean;
  },
): Promise<{ facts: HostFacts; remoteDir: string }> {
  const engine = options.engine ?? 'docker';
  const dirArgument = remoteDirArgument(options.remoteDir);
  const command = hostSetupCommand(engine, options.podmanSocket, dirArgument);
  const r = await remote.exec(command, { check: false, timeoutMs: DOCKER_COMMAND_MS });
  const at = r.stdout.lastIndexOf(`${REMOTE_DIR_MARK}\n`);
  const factsText = at < 0 ? r.stdout : r.stdout.slice(0, at);
  const dirText = at < 0 ? '' : r.stdout.slice(at + REMOTE_DIR_MARK.length + 1);
  // Named as when the remote dir had its own command.
  if (r.code !== 0) throw new RemoteCommandError(resolveRemoteDirCommand(dirArgument), { ...r, stdout: dirText });
  const facts = parseHostFacts(factsText, options.username, options.compose, engine, options.needsCompose);
  return { facts, remoteDir: parseRemoteDir(dirText, options.remoteDir) };
}
