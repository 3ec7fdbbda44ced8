/**
 * Docker Swarm command lines (the Swarm target, engine/swarm/): deploy a release as a stack, wait
 * for Swarm's updater to settle while draining every task it stops, read the outcome and the failed
 * tasks. Every value goes through shq().
 */
import { shq, shqAll } from './quote.js';

/** The label Swarm puts on a stack's services and containers. */
export const STACK_LABEL = 'com.docker.stack.namespace';
/** Labels handoff adds to a gated service's containers: the signal and grace it really stops with. */
export const STOP_SIGNAL_LABEL = 'handoff.stop-signal';
export const STOP_GRACE_LABEL = 'handoff.stop-grace';

/** Is this engine a swarm manager? Prints the node's `LocalNodeState ControlAvailable`. */
export function swarmStateCommand(): string {
  return `docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.ControlAvailable}}'`;
}

/**
 * `docker stack deploy` from app/, its variables from the release's env file (stack deploy reads no
 * .env of its own; sourced on the host, so secrets never reach a command line). `--resolve-image
 * never`: the override pins every image by ID, which no registry knows.
 */
export function stackDeployCommand(composeDir: string, envFile: string, composeFiles: string[], stack: string): string {
  const files = composeFiles.flatMap((f) => ['-c', f]);
  return `cd ${shq(composeDir)} && set -a && . ${shq(envFile)} && set +a && ${shqAll(['docker', 'stack', 'deploy', '--resolve-image', 'never', ...files, stack])}`;
}

/** The stack's services, one line each: `name<TAB>replicas (running/desired)<TAB>update state<TAB>message`. */
export function stackServicesCommand(stack: string): string {
  return `ids=$(${shqAll(['docker', 'service', 'ls', '-q', '--filter', `label=${STACK_LABEL}=${stack}`])}) || exit
[ -n "$ids" ] || exit 0
docker service inspect --format '{{.Spec.Name}}	{{if .Spec.Mode.Replicated}}{{.Spec.Mode.Replicated.Replicas}}{{end}}	{{if .UpdateStatus}}{{.UpdateStatus.State}}	{{.UpdateStatus.Message}}{{end}}' $ids`;
}

/** The image ID behind each reference, one `ref<TAB>id` line each (`-` when not on the host). */
export function imageIdsCommand(images: string[]): string {
  return `for i in ${images.map(shq).join(' ')}; do printf '%s\\t%s\\n' "$i" "$(docker image inspect -f '{{.Id}}' "$i" 2>/dev/null || echo -)"; done`;
}

// The gate, on one node, for the whole update. Each pass:
//  - a running container of the stack whose task Swarm has told to shut down is drained: Swarm has
//    already removed it from DNS (the proxy stops sending new requests within its resolve interval,
//    and Swarm's own stop signal is one nothing handles), so handoff waits until no connection from
//    outside the container is ESTABLISHED in its network namespace (read from /proc, seen at 0 twice
//    1 s apart, the first at least 2 s after the shutdown was seen), or drain_timeout, and then sends
//    the service's real stop signal (labels) and stops it with its real grace;
//  - mode manager (the node handoff deploys on): a task told to shut down is one whose desired state
//    is shutdown (a manager's view). The update is settled when no service is `updating`/
//    `rollback_started`, every service runs its replicas, no container here is left to drain and, when
//    other nodes have watchers (others = 1), no task of the stack told to shut down still runs on any
//    node (they drain theirs), twice in a row and at least 3 s after the deploy;
//  - mode node (every other node: a worker cannot read a task's desired state): a task told to shut
//    down is one whose container got a kill since the watcher started (Swarm's stop sends the inert
//    signal as a kill). It prints `dir <path>` first and ends once handoff creates <path>/stop and no
//    container here is left to drain.
// Lines out: `drain <container> <task> <seconds> <0|timeout> <service>` per stop, then `settled` or
// `deadline`. Arguments: stack, drain timeout s, deadline s, mode (manager when absent), others (0/1).
const CONVERGE_SCRIPT = `stack=$1; drain_s=$2; deadline=$(( $(date +%s) + $3 )); start=$(date +%s); since=$start; mode=\${4:-manager}; others=\${5:-0}
dir=$(mktemp -d) || exit 1; trap 'rm -rf "$dir"' EXIT
[ "$mode" = manager ] || echo "dir $dir"
told() { # container task: has Swarm told this task to shut down?
  if [ "$mode" = manager ]; then [ "$(docker inspect --type task -f '{{.DesiredState}}' "$2" 2>/dev/null)" = shutdown ]
  else grep -q "^$1" "$dir/killed"; fi
}
conns() { # ESTABLISHED (01) TCP connections in a process's namespace whose peer is not loopback
  cat /proc/$1/net/tcp /proc/$1/net/tcp6 2>/dev/null | awk '$4=="01" && $3 !~ /^0100007F:/ && $3 !~ /^0000000000000000FFFF00000100007F:/ && $3 !~ /^00000000000000000000000001000000:/ {n++} END {print n+0}'
}
calm=0
while :; do
  now=$(date +%s); busy=0
  # Kept in a file: the engine remembers only its last 256 events (health checks fill them fast).
  [ "$mode" = manager ] || { docker events --since "$since" --until "$now" --filter type=container --filter event=kill \\
    --filter "label=${STACK_LABEL}=$stack" --format '{{.Actor.ID}}' >> "$dir/killed" 2>/dev/null; since=$((now - 1)); }
  for c in $(docker ps -q --filter "label=${STACK_LABEL}=$stack" --filter status=running); do
    set -- $(docker inspect -f '{{.State.Pid}} {{index .Config.Labels "com.docker.swarm.task.id"}} {{index .Config.Labels "${STOP_SIGNAL_LABEL}"}} {{index .Config.Labels "${STOP_GRACE_LABEL}"}} {{index .Config.Labels "com.docker.swarm.service.name"}}' "$c" 2>/dev/null) || continue
    pid=$1; task=$2; sig=\${3:-}; grace=\${4:-10}; svc=\${5:-}
    told "$c" "$task" || continue
    busy=1
    [ -n "$sig" ] || continue # not gated: Swarm stops it
    [ -f "$dir/$c.done" ] && continue
    [ -f "$dir/$c" ] || echo "$now 0" > "$dir/$c"
    read seen zero < "$dir/$c"
    n=$(conns "$pid"); why=""
    if [ $(( now - seen )) -ge "$drain_s" ]; then why=timeout
    elif [ $(( now - seen )) -ge 2 ] && [ "$n" = 0 ]; then
      if [ "$zero" = 1 ]; then why=0; else echo "$seen 1" > "$dir/$c"; fi
    else echo "$seen 0" > "$dir/$c"; fi
    if [ -n "$why" ]; then
      echo "drain $c $task $(( now - seen )) $why $svc"; : > "$dir/$c.done"
      docker kill -s "$sig" "$c" >/dev/null 2>&1
      [ "$sig" = SIGKILL ] || [ "$sig" = KILL ] || [ "$sig" = 9 ] || docker stop -t "$grace" "$c" >/dev/null 2>&1 &
    fi
  done
  if [ "$mode" != manager ]; then
    [ -f "$dir/stop" ] && [ "$busy" = 0 ] && { wait; echo settled; exit 0; }
    [ "$now" -ge "$deadline" ] && { wait; echo deadline; exit 0; }
    sleep 0.5; continue
  fi
  docker service ls --filter "label=${STACK_LABEL}=$stack" --format '{{.Replicas}}' | awk '{split($1, a, "/"); if (a[1] != a[2]) b = 1} END {exit !b}' && busy=1
  ids=$(docker service ls -q --filter "label=${STACK_LABEL}=$stack")
  [ -z "$ids" ] || docker service inspect -f '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' $ids | grep -qE '^(updating|rollback_started)$' && busy=1
  [ "$others" = 1 ] && [ -n "$ids" ] && docker service ps --filter desired-state=shutdown --format '{{.CurrentState}}' $ids | grep -q '^Running' && busy=1
  if [ "$busy" = 0 ] && [ $(( now - start )) -ge 3 ]; then calm=$((calm + 1)); else calm=0; fi
  [ "$calm" -ge 2 ] && { wait; echo settled; exit 0; }
  [ "$now" -ge "$deadline" ] && { wait; echo deadline; exit 0; }
  sleep 0.5
done`;

/**
 * Wait for the stack's update (or rollback) to settle, draining each task Swarm stops (see above):
 * on the manager (mode manager), or on another node until handoff says stop (mode node).
 */
export function convergeCommand(
  stack: string,
  drainTimeoutS: number,
  deadlineS: number,
  mode: 'manager' | 'node' = 'manager',
  otherNodes = false,
): string {
  return `sh -c ${shq(CONVERGE_SCRIPT)} converge ${shqAll([stack, drainTimeoutS, deadlineS, mode, otherNodes ? 1 : 0])}`;
}

/** Ends a node's watcher (mode node): `dir` is the path it printed. */
export function stopWatcherCommand(dir: string): string {
  return `touch ${shq(`${dir}/stop`)}`;
}

/** `<state> <node ID> <node name>` of this engine in its swarm. */
export function swarmNodeCommand(): string {
  return `docker info --format '{{.Swarm.LocalNodeState}} {{.Swarm.NodeID}} {{.Name}}'`;
}

/** The swarm's nodes (manager only), one `ID<TAB>hostname<TAB>status<TAB>availability` line each. */
export function swarmNodesCommand(): string {
  return `docker node ls --format '{{.ID}}\t{{.Hostname}}\t{{.Status}}\t{{.Availability}}'`;
}

/** The node ID of each running task of these Swarm services (`<stack>_<service>`), one `service<TAB>node ID` each. */
export function runningTaskNodesCommand(services: string[]): string {
  return `for s in ${services.map(shq).join(' ')}; do docker service ps -q --filter desired-state=running "$s" 2>/dev/null | while read -r t; do printf '%s\\t%s\\n' "$s" "$(docker inspect --type task -f '{{.NodeID}}' "$t" 2>/dev/null)"; done; done`;
}

/**
 * The stack's tasks that failed since `since` (RFC 3339, the host's clock), with the error Swarm
 * recorded and the last log lines of their containers: what the job log shows when an update failed.
 */
export function failedTasksCommand(stack: string, logLines: number): string {
  return `ids=$(${shqAll(['docker', 'service', 'ls', '-q', '--filter', `label=${STACK_LABEL}=${stack}`])}) || exit
[ -n "$ids" ] || exit 0
for s in $ids; do
  docker service ps --no-trunc --filter desired-state=shutdown --format '{{.ID}}	{{.Name}}	{{.Image}}	{{.CurrentState}}	{{.Error}}' "$s" | awk -F'\\t' '$5 != ""' | head -3 |
  while IFS='	' read -r id name image state err; do
    echo "task $name ($image): $state: $err"
    c=$(docker ps -aq --filter "label=com.docker.swarm.task.id=$id" | head -1)
    [ -n "$c" ] && docker logs --tail ${logLines} "$c" 2>&1 | sed 's/^/    /'
  done
done`;
}
