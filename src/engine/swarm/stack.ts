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
  stackServicesCommand,
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

/** Waits on the host until the update settles (or the deadline), draining each task Swarm stops. */
export async function converge(
  remote: Remote,
  stack: string,
  drainTimeoutS: number,
  deadlineS: number,
  onDrain: (d: Drain) => void,
): Promise<{ drains: Drain[]; settled: boolean }> {
  let pending = '';
  const r = await remote.exec(convergeCommand(stack, drainTimeoutS, deadlineS), {
    timeoutMs: (deadlineS + 60) * 1000,
    onOutput: (chunk, stream) => {
      if (stream !== 'stdout') return;
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const d of parseConverge(lines.join('\n')).drains) onDrain(d);
    },
  });
  return parseConverge(r.stdout);
}

/** The failed tasks' errors and last log lines, for the job log. */
export async function failedTasks(remote: Remote, stack: string): Promise<string> {
  const r = await remote.exec(failedTasksCommand(stack, 30), { timeoutMs: QUICK_MS, check: false });
  return r.stdout.trim();
}
