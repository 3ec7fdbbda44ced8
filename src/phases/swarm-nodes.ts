/**
 * The swarm's other nodes (input swarm_nodes): each reached over SSH like `host`, so that a task
 * Swarm stops there is drained by a watcher on that node's engine (a worker cannot read a task's
 * desired state, and no connection count crosses nodes). All checked before anything changes:
 * every node answers and is a node of the manager's swarm, and no routed task runs on a node left out.
 */
import type { Remote } from '../host/remote.js';
import { runningTaskNodes, swarmNode, swarmNodes } from '../engine/swarm/stack.js';
import { InputError } from '../action/inputs.js';
import { connectHost } from './connect.js';
import type { Session } from './session.js';

/** A node other than the manager, with its own connection. */
export interface SwarmNode {
  /** The node's name in the swarm (its hostname). */
  name: string;
  remote: Remote;
}

/**
 * Connect to every node of swarm_nodes and check them against the manager's swarm. The connections
 * close with the deploy (s.cleanups).
 */
export async function connectSwarmNodes(s: Session, routed: string[]): Promise<{ manager: string; nodes: SwarmNode[] }> {
  const { inputs, log, timeline } = s;
  const manager = await swarmNode(s.remote);
  const members = await swarmNodes(s.remote);
  const nodes: SwarmNode[] = [];
  const covered = new Set([manager.id]);
  for (const [i, at] of inputs.swarmNodes.entries()) {
    const which = `node ${i + 1} of swarm_nodes (port ${at.port})`;
    const remote = await connectHost({ ...inputs, host: at.host, port: at.port }, log, { timeline }).catch((e: Error) => {
      throw new InputError('swarm_nodes', `${which}: cannot connect: ${e.message}`);
    });
    s.cleanups.push(() => remote.close());
    const node = await swarmNode(remote);
    if (node.state !== 'active' || !members.some((m) => m.id === node.id))
      throw new InputError(
        'swarm_nodes',
        `${which}: its engine is not a node of the manager's swarm (swarm state '${node.state}'): list only nodes of that swarm (\`docker node ls\` on the manager)`,
      );
    if (covered.has(node.id)) {
      log.info(`${which} is node ${node.name}, already covered: skipped`);
      continue;
    }
    covered.add(node.id);
    nodes.push({ name: node.name, remote });
  }
  await checkUncovered(s, routed, members, covered);
  if (nodes.length) log.info(`drained on the manager (${manager.name}) and on ${nodes.map((n) => n.name).join(', ')}`);
  return { manager: manager.name, nodes };
}

/**
 * A routed task running on a node handoff cannot reach would be stopped undrained: refused. A ready
 * node left out with no such task yet is a warning (Swarm may place tasks there).
 */
async function checkUncovered(
  s: Session,
  routed: string[],
  members: Awaited<ReturnType<typeof swarmNodes>>,
  covered: Set<string>,
): Promise<void> {
  const left = members.filter((m) => !covered.has(m.id));
  if (!left.length) return;
  const running = await runningTaskNodes(
    s.remote,
    routed.map((r) => `${s.inputs.project}_${r}`),
  );
  const undrained: string[] = [];
  for (const [service, on] of running) {
    const names = left.filter((m) => on.has(m.id)).map((m) => m.name);
    if (names.length) undrained.push(`${service.replace(`${s.inputs.project}_`, '')} on ${names.join(', ')}`);
  }
  if (undrained.length)
    throw new InputError(
      'swarm_nodes',
      `tasks of ${undrained.join('; ')} run on nodes handoff does not reach, so Swarm would stop them undrained: add those nodes (host[:port], reached with the same username, key and known_hosts as host)`,
    );
  const idle = left.filter((m) => m.ready && m.active).map((m) => m.name);
  if (idle.length)
    s.log.warning(
      `swarm_nodes does not list ${idle.join(', ')}: a routed task Swarm places there is stopped without a drain (list every node that can run one, or constrain the services' placement)`,
    );
}
