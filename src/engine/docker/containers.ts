/**
 * The containers Compose runs for a project, read from `docker inspect`. The labels Compose sets
 * (project, service, container-number, config-hash) tie each container to its service and config.
 */
import type { ExecResult, Remote } from '../../host/remote.js';
import { inspectCommand, projectContainersCommand } from '../../commands/docker.js';
import { DOCKER_COMMAND_MS } from '../../support/timeouts.js';

export type HealthStatus = 'healthy' | 'unhealthy' | 'starting' | 'none';

export interface HealthLogEntry {
  start: string;
  end: string;
  exitCode: number;
  output: string;
}

export interface ContainerInfo {
  /** Full id. */
  id: string;
  /** Without Docker's leading '/'. */
  name: string;
  service: string;
  project: string;
  /** com.docker.compose.container-number; 0 when missing. */
  number: number;
  configHash: string;
  /** The image ID (sha256:...) the container runs, not the tag. */
  imageId: string;
  /** The image reference it was created from (Config.Image). */
  image: string;
  /** Docker's State.Status: created, running, paused, restarting, removing, exited, dead. */
  state: string;
  health: HealthStatus;
  healthLog: HealthLogEntry[];
  exitCode: number;
  restartCount: number;
  createdAt: string;
  startedAt: string;
  /** IP per network name. */
  ips: Record<string, string>;
  /** A `compose run` container: not a replica. */
  oneoff: boolean;
  /** com.docker.compose.version: the Compose that created it ('' when unknown). */
  composeVersion: string;
}

/** The part of one `docker inspect` entry read here; Docker prints null for some empty maps. */
interface InspectEntry {
  Id?: string;
  Name?: string;
  Image?: string;
  Created?: string;
  RestartCount?: number;
  Config?: { Image?: string; Labels?: Record<string, string> | null } | null;
  State?: InspectState | null;
  NetworkSettings?: { Networks?: Record<string, { IPAddress?: string } | null> | null } | null;
}

interface InspectState {
  Status?: string;
  ExitCode?: number;
  StartedAt?: string;
  Health?: { Status?: string; Log?: InspectHealthLogEntry[] | null } | null;
}

interface InspectHealthLogEntry {
  Start?: string;
  End?: string;
  ExitCode?: number;
  Output?: string;
}

/** Parse the JSON array `docker inspect` prints. */
export function parseDockerInspect(json: string | unknown): ContainerInfo[] {
  const data = typeof json === 'string' ? (json.trim() ? JSON.parse(json) : []) : json;
  if (!Array.isArray(data)) throw new Error('docker inspect output is not a JSON array');
  return (data as (InspectEntry | null)[]).map(toContainer);
}

// The fields are built in ContainerInfo's order (the spreads included), so the objects print as before.
function toContainer(entry: InspectEntry | null): ContainerInfo {
  const c = entry ?? {};
  const labels = c.Config?.Labels ?? {};
  const state = c.State ?? {};
  return {
    id: String(c.Id ?? ''),
    name: String(c.Name ?? '').replace(/^\//, ''),
    ...composeIdentity(labels),
    imageId: String(c.Image ?? ''),
    image: String(c.Config?.Image ?? ''),
    ...stateOf(state),
    restartCount: Number(c.RestartCount ?? 0),
    createdAt: String(c.Created ?? ''),
    startedAt: String(state.StartedAt ?? ''),
    ips: ipsOf(c.NetworkSettings?.Networks ?? {}),
    oneoff: /^true$/i.test(labels['com.docker.compose.oneoff'] ?? ''),
    composeVersion: labels['com.docker.compose.version'] ?? '',
  };
}

/** The service, project, replica number and config hash Compose labels a container with. */
function composeIdentity(labels: Record<string, string>): Pick<ContainerInfo, 'service' | 'project' | 'number' | 'configHash'> {
  return {
    service: labels['com.docker.compose.service'] ?? '',
    project: labels['com.docker.compose.project'] ?? '',
    number: Number(labels['com.docker.compose.container-number'] ?? 0) || 0,
    configHash: labels['com.docker.compose.config-hash'] ?? '',
  };
}

function stateOf(state: InspectState): Pick<ContainerInfo, 'state' | 'health' | 'healthLog' | 'exitCode'> {
  const health = state.Health;
  return {
    state: String(state.Status ?? 'unknown'),
    health: health?.Status ? (health.Status as HealthStatus) : 'none',
    healthLog: (health?.Log ?? []).map((e) => ({
      start: String(e.Start ?? ''),
      end: String(e.End ?? ''),
      exitCode: Number(e.ExitCode ?? -1),
      output: String(e.Output ?? ''),
    })),
    exitCode: Number(state.ExitCode ?? 0),
  };
}

/** IP per network name; networks without an address left out. */
function ipsOf(networks: Record<string, { IPAddress?: string } | null>): Record<string, string> {
  const ips: Record<string, string> = {};
  for (const [net, v] of Object.entries(networks)) {
    if (v?.IPAddress) ips[net] = v.IPAddress;
  }
  return ips;
}

/**
 * Exited, dead, never started or crash-looping: cleaned up, never counted as a serving replica. A
 * running but unhealthy one is not: it may still be serving (a health check that fails under load
 * or on a slow dependency), so it is replaced like an outdated replica, never removed up front.
 */
export function isBroken(c: ContainerInfo): boolean {
  return c.state !== 'running';
}

/** The IP to give the proxy: on a network the proxy shares, else the first one. */
export function replicaIp(c: ContainerInfo, preferredNetworks: readonly string[] = []): string {
  for (const n of preferredNetworks) if (c.ips[n]) return c.ips[n];
  return Object.values(c.ips)[0] ?? '';
}

/** Every container of the project (all states), one-off `run` containers left out: one round trip. */
export async function listProjectContainers(remote: Remote, project: string, timeoutMs = DOCKER_COMMAND_MS): Promise<ContainerInfo[]> {
  const r = await remote.exec(projectContainersCommand(project), { timeoutMs, check: false });
  checkInspect(r);
  return parseDockerInspect(r.stdout).filter((c) => !c.oneoff && c.project === project);
}

/**
 * Inspect these containers; ones removed in the meantime are left out (docker inspect exits 1
 * but still prints the others).
 */
export async function inspectContainers(remote: Remote, ids: string[], timeoutMs = DOCKER_COMMAND_MS): Promise<ContainerInfo[]> {
  if (ids.length === 0) return [];
  const r = await remote.exec(inspectCommand(ids), { timeoutMs, check: false });
  checkInspect(r);
  return parseDockerInspect(r.stdout);
}

/** A `docker inspect` that failed for another reason than a container removed meanwhile throws. */
export function checkInspect(r: ExecResult): void {
  if (r.code !== 0 && !/No such (container|object)/i.test(r.stderr)) {
    throw new Error(`docker inspect failed (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' ')}`);
  }
}
