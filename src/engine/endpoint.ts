/**
 * Which engine the host's docker CLI and Compose talk to. Docker: the CLI's default endpoint.
 * Podman: its Docker-compatible API socket (`podman system service`, systemd's podman.socket), the
 * SSH user's own (rootless) or the system one (rootful), reached by setting DOCKER_HOST on every
 * command. The same command lines then run against either engine, and Compose v2 (the one tested
 * against Docker) drives both; see docs/architecture.md for why not podman-compose.
 */
import { shq } from '../commands/quote.js';
import { PrefixedRemote, type Remote } from '../host/remote.js';

/** The `engine` input. */
export type EnginePreference = 'auto' | 'docker' | 'podman';

export interface EngineEndpoint {
  engine: 'docker' | 'podman';
  /** The engine's version (Docker's server version, or Podman's). */
  version: string;
  /** Set when the CLI's default endpoint is not the engine: `unix://<Podman API socket>`. */
  dockerHost?: string;
}

const VERSION = /^\d+\.\d+/;

interface EngineFacts {
  /** `docker version` against the CLI's default endpoint: the server version, or its error. */
  docker: string;
  /** podman-docker (a docker.sock that is Podman's) shows "Podman Engine" among the server components. */
  defaultIsPodman: boolean;
  /** Podman API sockets that answered, in the order looked up (the user's own first). */
  sockets: Array<{ path: string; version: string }>;
  /** Sockets that exist but did not answer, with why. */
  socketErrors: string[];
}

function readEngineFacts(stdout: string): EngineFacts {
  return {
    docker: /^docker=(.*)$/m.exec(stdout)?.[1]?.trim() ?? '',
    defaultIsPodman: /Podman/i.test(/^server=(.*)$/m.exec(stdout)?.[1] ?? ''),
    sockets: [...stdout.matchAll(/^podman=(\S+)\s+(\S+)/gm)]
      .filter((m) => VERSION.test(m[2]!))
      .map((m) => ({ path: m[1]!, version: m[2]! })),
    socketErrors: [...stdout.matchAll(/^podman-error=(\S+)\s*(.*)$/gm)].map((m) => `${m[1]}: ${m[2]!.trim() || 'no answer'}`),
  };
}

function noPodmanSocket(f: EngineFacts, username: string): Error {
  const tried = f.socketErrors.length
    ? ` (${f.socketErrors.join('; ')})`
    : ' (none found at $XDG_RUNTIME_DIR/podman/podman.sock or /run/podman/podman.sock)';
  return new Error(
    `input 'engine' is podman, but no Podman API socket answers for user '${username}'${tried}: start it (rootless: systemctl --user enable --now podman.socket, and loginctl enable-linger ${username}; rootful: systemctl enable --now podman.socket and give the user access to /run/podman/podman.sock), and install the docker CLI and Compose v2 (Debian: docker-cli and docker-compose)`,
  );
}

function noEngine(f: EngineFacts, username: string, prefer: EnginePreference): Error {
  if (/permission denied/i.test(f.docker)) {
    return new Error(
      `user '${username}' cannot reach the Docker engine (permission denied on docker.sock): add it to the docker group (sudo usermod -aG docker ${username}) and reconnect`,
    );
  }
  const podmanNote =
    prefer === 'auto' && f.socketErrors.length ? `; a Podman API socket was found but did not answer (${f.socketErrors.join('; ')})` : '';
  return new Error(
    `Docker is not usable on the host: ${f.docker || 'no docker command'}${podmanNote}. Install the Docker engine and make sure it is running (or, for Podman, its API socket and engine: podman).`,
  );
}

/** Pick the endpoint from hostFactsCommand's `docker=`, `server=`, `podman=` and `podman-error=` lines. */
export function chooseEngine(stdout: string, username: string, prefer: EnginePreference): EngineEndpoint {
  const f = readEngineFacts(stdout);
  const socket = f.sockets[0];
  const podman = socket ? { engine: 'podman' as const, version: socket.version, dockerHost: `unix://${socket.path}` } : undefined;
  const viaDefault = VERSION.test(f.docker)
    ? { engine: f.defaultIsPodman ? ('podman' as const) : ('docker' as const), version: f.docker }
    : undefined;
  if (prefer === 'podman') {
    if (podman) return podman;
    if (viaDefault?.engine === 'podman') return viaDefault;
    throw noPodmanSocket(f, username);
  }
  if (viaDefault) return viaDefault;
  if (prefer === 'auto' && podman) return podman;
  throw noEngine(f, username, prefer);
}

/** `DOCKER_HOST=...; export DOCKER_HOST` before a command, when the engine is not the CLI's default. */
export function engineEnvPrefix(endpoint: Pick<EngineEndpoint, 'dockerHost'>): string {
  return endpoint.dockerHost ? `DOCKER_HOST=${shq(endpoint.dockerHost)}; export DOCKER_HOST\n` : '';
}

/** The remote as the engine needs it: unchanged for Docker's default endpoint. */
export function onEngine(remote: Remote, endpoint: Pick<EngineEndpoint, 'dockerHost'>): Remote {
  const prefix = engineEnvPrefix(endpoint);
  return prefix ? new PrefixedRemote(remote, prefix) : remote;
}

/** For the log: "Docker 20.10.24" or "Podman 4.3.1 (unix:///run/podman/podman.sock)". */
export function describeEngine(endpoint: EngineEndpoint): string {
  const name = endpoint.engine === 'podman' ? 'Podman' : 'Docker';
  return `${name} ${endpoint.version}${endpoint.dockerHost ? ` (${endpoint.dockerHost})` : ''}`;
}
