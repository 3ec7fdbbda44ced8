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

/**
 * Start containers that exist (created ahead of their batch), then print their inspect JSON: the
 * state the rollout reads next, in the same round trip. Nothing is printed when the start fails.
 */
export function startCommand(ids: string[]): string {
  return `${shqAll(['docker', 'start', ...ids])} >/dev/null && ${inspectCommand(ids)}`;
}

/** The JSON array of these containers (exits 1 naming any removed meanwhile, still printing the others). */
export function inspectCommand(ids: string[]): string {
  return shqAll(['docker', 'inspect', '--type', 'container', ...ids]);
}

/**
 * The inspect JSON of every container of the project, in one round trip: the ids listed and
 * inspected on the host (`[]` when there is none). Exits 1 naming a container removed between the
 * two, still printing the others.
 */
export function projectContainersCommand(project: string): string {
  return `ids=$(${projectContainerIdsCommand(project)}) || exit
set -- $ids
if [ "$#" -gt 0 ]; then docker inspect --type container "$@"; else echo '[]'; fi`;
}

/**
 * What a change of a container's lifecycle or health alters, one line per container, as
 * `stateSignature` (engine/docker/health.ts) computes it from the inspect JSON.
 */
export const STATE_SIGNATURE_FORMAT =
  '{{.Id}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.RestartCount}} {{.State.StartedAt}}';

// Arguments: wait ms, the signature last seen, the container ids. The host's clock (ns; whole
// seconds where `date` has no %N) bounds `docker events` (--until), and --since replays what
// happened between the signature check and the subscription, so no change is missed.
const AWAIT_CHANGE_SCRIPT = `wait_ms=$1; seen=$2; shift 2
ns() { t=$(date +%s%N); case $t in *[!0-9]*) t=$(( $(date +%s) * 1000000000 ));; esac; echo "$t"; }
stamp() { echo "$(( $1 / 1000000000 )).$(printf %09d $(( $1 % 1000000000 )))"; }
start=$(ns)
now=$(docker inspect --type container -f '${STATE_SIGNATURE_FORMAT}' "$@" 2>/dev/null)
if [ "$now" = "$seen" ] && [ "$wait_ms" -gt 0 ]; then
  filters=; for id in "$@"; do filters="$filters --filter container=$id"; done
  fifo=$(mktemp -u) && mkfifo -m 600 "$fifo" || exit 70
  docker events --since "$(stamp "$start")" --until "$(stamp $(( start + wait_ms * 1000000 )))" --filter type=container $filters \\
    --filter event=start --filter event=die --filter event=restart --filter event=destroy --filter event=health_status \\
    --format '{{.Action}}' >"$fifo" 2>/dev/null &
  events=$!
  read -r _ <"$fifo" || true
  kill "$events" 2>/dev/null; rm -f "$fifo"
fi
docker inspect --type container "$@"`;

/**
 * Block on the host until one of these containers starts, dies, restarts, is removed or changes
 * health (`docker events`), or `waitMs` passed, then print their inspect JSON: one round trip per
 * change instead of one per poll. Returns at once when their state already differs from `seen`
 * (a STATE_SIGNATURE_FORMAT text). Exits 1 naming a container that is gone, printing the others.
 */
export function awaitChangeCommand(ids: string[], seen: string, waitMs: number): string {
  for (const id of ids) if (!/^[0-9a-f]+$/.test(id)) throw new Error(`not a container id: ${JSON.stringify(id)}`);
  return shqAll(['sh', '-c', AWAIT_CHANGE_SCRIPT, 'sh', Math.max(0, Math.round(waitMs)), seen, ...ids]);
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
