/**
 * pre_deploy / post_deploy: a command run once in a one-off container of one service (`compose run
 * --rm --no-deps -T SERVICE sh -c CMD`), so it has the service's image, env and networks (a
 * migration reaches the database by its service name). pre_deploy runs from the new release before
 * any replica changes; post_deploy from app/ after a successful rollout.
 */
import { composeCommand, type ComposeFlavor, type ComposeProject } from '../engine/docker/compose-cli.js';
import type { ComposeService } from '../model/compose.js';
import type { Log } from '../support/log.js';
import type { Remote } from '../host/remote.js';
import type { Timeline } from '../model/timeline.js';

export type HookKind = 'pre_deploy' | 'post_deploy';

/** The command that runs a hook in a one-off container (removed afterwards). */
export function hookCommand(flavor: ComposeFlavor, stack: ComposeProject, service: string, command: string): string {
  return composeCommand(flavor, stack, ['run', '--rm', '--no-deps', '-T', service, 'sh', '-c', command]);
}

/**
 * The service hooks run in: `hook_service` when given (it must exist), else the first service the
 * proxy routes to, else the first service with an image.
 */
export function hookService(services: readonly ComposeService[], routed: readonly string[], wanted?: string): string {
  if (wanted) {
    if (!services.some((s) => s.name === wanted)) {
      throw new Error(
        `input 'hook_service': ${wanted} is not a service of the Compose files (services: ${services.map((s) => s.name).join(', ')})`,
      );
    }
    return wanted;
  }
  const pick = routed.find((r) => services.some((s) => s.name === r)) ?? services.find((s) => s.image)?.name ?? services[0]?.name;
  if (!pick) throw new Error('pre_deploy/post_deploy: the Compose files define no service to run them in');
  return pick;
}

export interface HookRun {
  remote: Remote;
  flavor: ComposeFlavor;
  stack: ComposeProject;
  service: string;
  timeoutMs: number;
  log: Log;
  timeline: Timeline;
}

/** Run one hook, its output streamed into the log; throws naming the hook when it fails. */
export async function runHook(kind: HookKind, command: string, h: HookRun): Promise<void> {
  h.log.info(`${kind}: running in a one-off ${h.service} container`);
  const started = Date.now();
  const seconds = () => ((Date.now() - started) / 1000).toFixed(1);
  try {
    // Not repeated after a dropped connection: a migration must not run twice on a guess.
    await h.remote.exec(hookCommand(h.flavor, h.stack, h.service, command), {
      timeoutMs: h.timeoutMs,
      repeatable: false,
      onOutput: (chunk) => h.log.info(chunk.trimEnd()),
    });
  } catch (e) {
    h.timeline.add('hook', { service: h.service, detail: `${kind} failed after ${seconds()} s` });
    const why = e instanceof Error ? e.message.split('\n').slice(-5).join('\n') : String(e);
    throw new Error(`${kind} failed in a one-off ${h.service} container (${seconds()} s): ${why}`, { cause: e });
  }
  h.timeline.add('hook', { service: h.service, detail: `${kind} ok (${seconds()} s)` });
  h.log.info(`${kind}: done in ${seconds()} s`);
}
