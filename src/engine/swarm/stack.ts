/**
 * The Swarm engine: a release deployed as a stack on a swarm manager, the update awaited to its real
 * outcome with every routed task drained before it stops (commands/swarm.ts has the host side).
 */
import type { Remote } from '../../host/remote.js';
import {
  convergeCommand,
  failedTasksCommand,
  imageIdsCommand,
  stackDeployCommand,
  runningTaskNodesCommand,
  stackServicesCommand,
  stopWatcherCommand,
  swarmNodeCommand,
  swarmNodesCommand,
  swarmStateCommand,
} from '../../commands/swarm.js';
import { parseConverge, parseStackServices, type Drain, type SwarmServiceState } from '../../model/swarm-stack.js';

const QUICK_MS = 30_000;

/** Fails, naming the fix, unless the host's engine is a swarm manager. */
export async function requireSwarmManager(remote: Remote): Promise<void> {
  const out = (await remote.exec(swarmStateCommand(), { timeoutMs: QUICK_MS })).stdout.trim();
  if (out !== 'active true')
    throw new Error(
      `input 'target': swarm needs the host's Docker engine to be a swarm manager (it reports '${out}'): run \`docker swarm init\` there, or set target: compose`,
    );
}

/** The image ID of each reference on the host; a reference not there maps to undefined. */
export async function imageIds(remote: Remote, images: string[]): Promise<Map<string, string | undefined>> {
  const out = new Map<string, string | undefined>();
  if (!images.length) return out;
  const text = (await remote.exec(imageIdsCommand(images), { timeoutMs: QUICK_MS })).stdout;
  for (const line of text.split('\n')) {
    const [ref, id] = line.split('\t');
    if (ref) out.set(ref, id && id !== '-' ? id : undefined);
  }
  return out;
}

export async function stackServices(remote: Remote, stack: string): Promise<SwarmServiceState[]> {
  return parseStackServices((await remote.exec(stackServicesCommand(stack), { timeoutMs: QUICK_MS })).stdout);
}

/** `docker stack deploy`: returns once Swarm stored the specs (the update runs on after it). */
export async function deployStack(
  remote: Remote,
  at: { composeDir: string; envFile: string },
  composeFiles: string[],
  stack: string,
  timeoutMs: number,
): Promise<string> {
  const r = await remote.exec(stackDeployCommand(at.composeDir, at.envFile, composeFiles, stack), { timeoutMs, check: false });
  if (r.code !== 0) throw new Error(`docker stack deploy failed (exit ${r.code}): ${(r.stderr || r.stdout).trim()}`);
  return r.stdout + r.stderr;
}

/**
 * Waits on the host until the update settles (or the deadline), draining each task Swarm stops; with
 * `otherNodes`, also until no task told to stop runs on another node (their watchers drain those).
 */
export async function converge(
  remote: Remote,
  stack: string,
  drainTimeoutS: number,
  deadlineS: number,
  onDrain: (d: Drain) => void,
  otherNodes = false,
): Promise<{ drains: Drain[]; settled: boolean }> {
  const r = await remote.exec(convergeCommand(stack, drainTimeoutS, deadlineS, 'manager', otherNodes), {
    timeoutMs: (deadlineS + 60) * 1000,
    onOutput: lineReader((line) => parseConverge(line).drains.forEach(onDrain)),
  });
  return parseConverge(r.stdout);
}

/** Calls `onLine` with each complete stdout line of a streamed command. */
function lineReader(onLine: (line: string) => void) {
  let pending = '';
  return (chunk: string, stream: 'stdout' | 'stderr') => {
    if (stream !== 'stdout') return;
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    lines.forEach(onLine);
  };
}

/** A drain watcher on another node of the swarm: running once returned, until stop(). */
export interface NodeWatcher {
  stop(): Promise<{ drains: Drain[]; settled: boolean }>;
}

/**
 * Starts the drain watcher on a node that is not the manager (mode node) and returns once it runs:
 * it drains the tasks Swarm stops on that node's engine until stop().
 */
export async function watchNode(
  remote: Remote,
  stack: string,
  drainTimeoutS: number,
  deadlineS: number,
  onDrain: (d: Drain) => void,
): Promise<NodeWatcher> {
  let started: (dir: string) => void = () => {};
  const dir = new Promise<string>((resolve) => (started = resolve));
  const run = remote.exec(convergeCommand(stack, drainTimeoutS, deadlineS, 'node'), {
    timeoutMs: (deadlineS + 60) * 1000,
    repeatable: false,
    onOutput: lineReader((line) => {
      if (line.startsWith('dir ')) started(line.slice(4).trim());
      parseConverge(line).drains.forEach(onDrain);
    }),
  });
  const ended = run.then((r) => Promise.reject(new Error(`the drain watcher ended at once: ${r.stderr.trim()}`)));
  ended.catch(() => {}); // stop() reads the outcome
  const at = await Promise.race([dir, ended]);
  return {
    async stop() {
      await remote.exec(stopWatcherCommand(at), { timeoutMs: QUICK_MS });
      return parseConverge((await run).stdout);
    },
  };
}

/** This engine's place in a swarm: its state (`active` in one), node ID and node name. */
export async function swarmNode(remote: Remote): Promise<{ state: string; id: string; name: string }> {
  const [state = '', id = '', name = ''] = (await remote.exec(swarmNodeCommand(), { timeoutMs: QUICK_MS })).stdout.trim().split(/\s+/);
  return { state, id, name };
}

/** The swarm's nodes, from the manager. */
export async function swarmNodes(remote: Remote): Promise<Array<{ id: string; name: string; ready: boolean; active: boolean }>> {
  const text = (await remote.exec(swarmNodesCommand(), { timeoutMs: QUICK_MS })).stdout;
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const [id = '', name = '', status = '', availability = ''] = l.split('\t');
      return { id, name, ready: status === 'Ready', active: availability === 'Active' };
    });
}

/** Which nodes run a task of each of these Swarm services now: service -> node IDs. */
export async function runningTaskNodes(remote: Remote, services: string[]): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  if (!services.length) return out;
  const text = (await remote.exec(runningTaskNodesCommand(services), { timeoutMs: QUICK_MS })).stdout;
  for (const line of text.split('\n')) {
    const [service, node] = line.split('\t');
    if (!service || !node) continue;
    out.set(service, (out.get(service) ?? new Set()).add(node));
  }
  return out;
}

/** The failed tasks' errors and last log lines, for the job log. */
export async function failedTasks(remote: Remote, stack: string): Promise<string> {
  const r = await remote.exec(failedTasksCommand(stack, 30), { timeoutMs: QUICK_MS, check: false });
  return r.stdout.trim();
}
