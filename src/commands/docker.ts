/**
 * Docker commands on containers (Compose's own command lines are in compose-cli.ts): list and
 * inspect a project's containers, logs, stop + remove by id, signals, a file written inside a
 * container. Every value goes through shq().
 */
import { shqAll } from './quote.js';

/** Every container id (all states) carrying the project's Compose label, full length. */
export function projectContainerIdsCommand(project: string): string {
  return shqAll(['docker', 'ps', '-aq', '--no-trunc', '--filter', `label=com.docker.compose.project=${project}`]);
}

/** The JSON array of these containers (exits 1 naming any removed meanwhile, still printing the others). */
export function inspectCommand(ids: string[]): string {
  return shqAll(['docker', 'inspect', '--type', 'container', ...ids]);
}

/** The last `tail` lines of a container's log, stderr merged into stdout. */
export function containerLogsCommand(id: string, tail: number): string {
  return `${shqAll(['docker', 'logs', '--tail', tail, id])} 2>&1`;
}

/** A container's log since a time (RFC 3339, the host's clock), stderr merged into stdout. */
export function containerLogsSinceCommand(id: string, since: string): string {
  return `${shqAll(['docker', 'logs', '--since', since, id])} 2>&1`;
}

/** The host's clock, as `docker logs --since` takes it. */
export function hostTimeCommand(): string {
  return `date -u +%Y-%m-%dT%H:%M:%S.%NZ`;
}

/** Send a signal to a container's main process. */
export function killCommand(id: string, signal: string): string {
  return shqAll(['docker', 'kill', '--signal', signal, id]);
}

/** Stdin: the file's content, written to `path` inside the container (docker exec: no host path or permissions to map). */
export function writeInContainerCommand(id: string, path: string): string {
  return `${shqAll(['docker', 'exec', '-i', id, 'sh', '-c', 'cat > "$1"', 'sh', path])}`;
}

/**
 * Stop (with the grace period) and remove the containers that still exist: repeated after a
 * dropped connection, the ones already gone are skipped instead of failing the batch.
 */
export function stopAndRemoveCommand(ids: string[], grace: number): string {
  const filters = ids.flatMap((id) => ['--filter', `id=${id}`]);
  return `set -- $(${shqAll(['docker', 'ps', '-aq', '--no-trunc', ...filters])})
[ "$#" -eq 0 ] || { ${shqAll(['docker', 'stop', '-t', grace])} "$@" >/dev/null && docker rm -f "$@" >/dev/null; }`;
}
