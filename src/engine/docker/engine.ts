/** The Engine over Docker and Compose (v1 or v2), through the host's Remote. */
import { startCommand, stopAndRemoveCommand } from '../../commands/docker.js';
import { RemoteCommandError, type Remote } from '../../host/remote.js';
import { DOCKER_COMMAND_MS, LONG_COMMAND_MS } from '../../support/timeouts.js';
import type { Engine } from '../engine.js';
import { createAheadCommand, scaleUpCommand, type ComposeFlavor, type ComposeProject } from './compose-cli.js';
import { checkInspect, inspectContainers, listProjectContainers, parseDockerInspect } from './containers.js';
import { collectDiagnostics, monitorContainers, waitHealthy } from './health.js';

export interface DockerEngineOptions {
  remote: Remote;
  flavor: ComposeFlavor;
  /** The Compose project as the host runs it (project name, files, env file). */
  stack: ComposeProject;
  /** Limit for `compose up` (creating containers). Default 10 min. */
  upTimeoutMs?: number;
}

export function dockerEngine({ remote, flavor, stack, upTimeoutMs = LONG_COMMAND_MS }: DockerEngineOptions): Engine {
  const replicas = async (service: string) => (await listProjectContainers(remote, stack.project)).filter((c) => c.service === service);
  return {
    replicas,
    inspect: (ids) => inspectContainers(remote, ids),
    scaleTo: async (service, count, onOutput) => {
      await remote.exec(scaleUpCommand(flavor, stack, service, count), {
        timeoutMs: upTimeoutMs,
        onOutput: onOutput && ((chunk) => onOutput(chunk)),
      });
    },
    createAhead: async (service, count) => {
      await remote.exec(createAheadCommand(flavor, stack, service, count), { timeoutMs: upTimeoutMs });
      return replicas(service);
    },
    start: async (ids) => {
      const command = startCommand(ids);
      const r = await remote.exec(command, { timeoutMs: DOCKER_COMMAND_MS, check: false });
      // No JSON: the start itself failed. JSON with an error: one was removed meanwhile (left out).
      if (r.code !== 0 && !r.stdout.trim()) throw new RemoteCommandError(command, r);
      checkInspect(r);
      return parseDockerInspect(r.stdout);
    },
    stopAndRemove: async (ids, graceS) => {
      await remote.exec(stopAndRemoveCommand(ids, graceS), { timeoutMs: (graceS + 180) * 1000 });
    },
    waitHealthy: (ids, deadline, timeline, options) => waitHealthy(remote, ids, deadline, timeline, options),
    monitor: (ids, ms, timeline, options) => monitorContainers(remote, ids, ms, timeline, options),
    diagnostics: (containers) => collectDiagnostics(remote, containers),
  };
}
