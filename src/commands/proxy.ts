/**
 * Commands of the Caddy and nginx gates (run by src/proxy/upstreams/, caddy/ and nginx/): a config
 * checked in a throwaway container of the proxy's image, a new replica reached from inside the
 * proxy's network namespace, an old replica's TCP table read from /proc on the host, and nginx's
 * test, reload and worker processes. Every value goes through shq().
 */
import { shq, shqAll } from './quote.js';

/** A read-only bind mount of the throwaway check: a host path at a path in the container. */
export interface CheckMount {
  source: string;
  target: string;
}

/**
 * `docker run --rm --network none --entrypoint <binary>` with the proxy's config mounts (read-only;
 * `--mount` fails on a missing source instead of creating it as root), output merged into stdout.
 */
export function throwawayCheckCommand(image: string, binary: string, mounts: readonly CheckMount[], args: readonly string[]): string {
  const m = mounts.flatMap((x) => ['--mount', `type=bind,source=${x.source},target=${x.target},readonly`]);
  return `${shqAll(['docker', 'run', '--rm', '--network', 'none', '--entrypoint', binary, ...m, image, ...args])} 2>&1`;
}

/**
 * Whether each URL answers HTTP from inside the proxy container (its network namespace), with
 * whatever client the image has: wget (busybox or GNU: an error status is still an answer), curl,
 * or bash's /dev/tcp. One line per URL: `ok <url>` or `fail <url> <why>`; exit 3 when the image has
 * none of them.
 */
export function answersCommand(containerId: string, urls: readonly string[]): string {
  const script = [
    'for u in "$@"; do',
    '  if command -v wget >/dev/null 2>&1; then',
    // No -T: Debian's busybox 1.35 wget segfaults with it (bench). timeout bounds it when present.
    '    t=; if command -v timeout >/dev/null 2>&1; then t="timeout 3"; fi',
    '    out=$($t wget -q -O /dev/null "$u" 2>&1); rc=$?',
    '    case "$rc:$out" in 0:*|8:*|*"server returned error"*) echo "ok $u";; *) echo "fail $u $(echo "$out" | tail -n 1)";; esac',
    '  elif command -v curl >/dev/null 2>&1; then',
    '    code=$(curl -s -o /dev/null -m 2 -w "%{http_code}" "$u"); if [ "$code" != 000 ]; then echo "ok $u"; else echo "fail $u no answer (curl)"; fi',
    '  elif command -v bash >/dev/null 2>&1; then',
    '    hp=${u#http://}; hp=${hp%%/*}',
    '    if bash -c \'exec 3<>"/dev/tcp/${1%:*}/${1##*:}" && printf "GET / HTTP/1.0\\r\\n\\r\\n" >&3 && head -c 5 <&3 | grep -q HTTP\' bash "$hp" 2>/dev/null; then echo "ok $u"; else echo "fail $u no answer (bash)"; fi',
    '  else echo "none $u"; exit 3',
    '  fi',
    'done',
  ].join('\n');
  return shqAll(['docker', 'exec', containerId, 'sh', '-c', script, 'sh', ...urls]);
}

/**
 * For each container: a `== <id> <pid>` line, then its network namespace's TCP tables
 * (/proc/<pid>/net/tcp and tcp6, readable on the host by any user). pid 0: the container is not running.
 */
export function netTcpCommand(ids: readonly string[]): string {
  return `for id in ${shqAll([...ids])}; do
  pid=$(docker inspect --format '{{.State.Pid}}' "$id" 2>/dev/null) || pid=0
  echo "== $id \${pid:-0}"
  if [ "\${pid:-0}" -gt 0 ] 2>/dev/null; then cat /proc/"$pid"/net/tcp /proc/"$pid"/net/tcp6 2>/dev/null; fi
done`;
}

/** A command run inside a container (`docker exec`), output merged into stdout. */
export function execInContainerCommand(containerId: string, args: readonly string[]): string {
  return `${shqAll(['docker', 'exec', containerId, ...args])} 2>&1`;
}

/** The processes of a container, as `<host pid> <args>` lines (docker top runs ps on the host: nothing needed in the image). */
export function containerProcessesCommand(containerId: string): string {
  return shqAll(['docker', 'top', containerId, '-eo', 'pid,args']);
}

/**
 * Waits on the host until none of `pids` is among the container's processes (exit 0; also when the
 * container is gone), or about `ms` passed (exit 1): one round trip instead of a `docker top` each poll.
 */
export function awaitProcessesGoneCommand(containerId: string, pids: number[], ms: number, pollMs = 200): string {
  if (!pids.every((p) => Number.isInteger(p) && p > 0)) throw new Error(`invalid PIDs: ${pids.join(' ')}`);
  const polls = Math.max(0, Math.ceil(ms / pollMs));
  const top = shqAll(['docker', 'top', containerId, '-eo', 'pid']);
  return `i=0; while ${top} 2>/dev/null | awk 'NR>1{print $1}' | grep -qxE '${pids.join('|')}'; do [ $i -ge ${polls} ] && exit 1; i=$((i+1)); sleep ${pollMs / 1000}; done`;
}

/** A directory for the throwaway check's rendered files, emptied first. */
export function freshDirCommand(path: string): string {
  return `rm -rf ${shq(path)} && mkdir -p ${shq(path)}`;
}

/** Remove a directory tree (the throwaway check's files). */
export function removeTreeCommand(path: string): string {
  return `rm -rf ${shq(path)}`;
}
