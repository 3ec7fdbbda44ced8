/**
 * The Swarm target's view of a release (pure): what the stack needs (refused before any change),
 * the override file handoff deploys beside the user's files, and the outcome of an update.
 *
 * The override pins every image by ID (a re-pushed tag is a change, a rollback returns to the exact
 * image) and gates each service the proxy routes: Swarm's own stop (DNS record removed, 2 s, stop
 * signal) is no drain, so the task is stopped by handoff once drained (commands/swarm.ts) and Swarm's
 * stop signal is one nothing handles, with a grace that covers the drain.
 */
import { stringify } from 'yaml';
import type { ComposeModel, ComposeService } from './compose.js';

/** Sent by Swarm to a gated task: continues a stopped process, a no-op for a running one. */
export const INERT_STOP_SIGNAL = 'SIGCONT';
export const OVERRIDE_FILE = 'handoff.swarm.yaml';

export interface SwarmStackInput {
  model: ComposeModel;
  /** Service name -> image ID on the host. */
  imageIds: ReadonlyMap<string, string>;
  /** The services the proxy routes: drained by handoff before they stop. */
  gated: readonly string[];
  drainTimeoutS: number;
}

/** What a service stops with, from its Compose definition (Docker's defaults otherwise). */
export function stopOf(svc: ComposeService, raw: Record<string, unknown>): { signal: string; graceS: number } {
  const def = ((raw.services as Record<string, Record<string, unknown>> | undefined) ?? {})[svc.name] ?? {};
  const signal = typeof def.stop_signal === 'string' && def.stop_signal ? def.stop_signal : 'SIGTERM';
  return { signal, graceS: svc.stopGracePeriodS };
}

/** The override file: images by ID for every service, the stop gate and start-first rollback for gated ones. */
export function renderSwarmOverride(input: SwarmStackInput): string {
  const { model, imageIds, gated, drainTimeoutS } = input;
  const services: Record<string, Record<string, unknown>> = {};
  for (const svc of model.services) {
    const out: Record<string, unknown> = {};
    const id = imageIds.get(svc.name);
    if (id) out.image = id;
    const stop = stopOf(svc, model.raw);
    if (gated.includes(svc.name) && stop.signal.replace(/^SIG/, '') !== INERT_STOP_SIGNAL.replace(/^SIG/, '')) {
      out.stop_signal = INERT_STOP_SIGNAL;
      // Swarm's backstop: a task handoff never drained (handoff gone, a node failing) is killed after this.
      out.stop_grace_period = `${drainTimeoutS + stop.graceS}s`;
      out.labels = { 'handoff.stop-signal': stop.signal, 'handoff.stop-grace': String(stop.graceS) };
      // Swarm's rollback defaults to stop-first, which would stop a serving task before its replacement is healthy.
      const u = svc.updateConfig;
      out.deploy = { rollback_config: { parallelism: u.parallelism, order: 'start-first', monitor: `${u.monitorS}s` } };
    }
    if (Object.keys(out).length) services[svc.name] = out;
  }
  return `# Written by handoff for this release: images pinned by ID; routed services drained before they stop.\n${stringify({ version: '3.8', services })}`;
}

/**
 * Refusals before any change on the host: a routed service must be reachable task by task (the
 * routing mesh's virtual IP would keep sending to stopping tasks), and the stack file must be a
 * Compose file format 3 (what `docker stack deploy` reads).
 */
export function checkSwarmStack(
  model: ComposeModel,
  routed: readonly string[],
  proxyConfigText: string,
): { errors: string[]; warnings: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  const version = String(model.raw.version ?? '');
  if (!/^3(\.\d+)?$/.test(version))
    errors.push(`the stack file needs \`version: "3.8"\` (docker stack deploy reads Compose file format 3; found ${version || 'none'})`);
  const raw = (model.raw.services ?? {}) as Record<string, Record<string, unknown>>;
  for (const name of routed) {
    const deploy = (raw[name]?.deploy ?? {}) as Record<string, unknown>;
    const byTask = deploy.endpoint_mode === 'dnsrr' || new RegExp(`\\btasks\\.${name}\\b`).test(proxyConfigText);
    if (!byTask)
      errors.push(
        `service ${name} is routed through Swarm's virtual IP, which keeps sending to stopping tasks: set \`deploy.endpoint_mode: dnsrr\` on it, or point the proxy at \`tasks.${name}\``,
      );
    const svc = model.services.find((s) => s.name === name);
    if (svc && !svc.healthcheck) warnings.push(`service ${name} has no healthcheck: Swarm counts a task as ready as soon as it starts`);
  }
  return { errors, warnings };
}

export type UpdateState = 'completed' | 'rollback_completed' | 'paused' | 'rollback_paused' | 'updating' | 'rollback_started' | '';

export interface SwarmServiceState {
  name: string;
  replicas?: number;
  update: UpdateState;
  message: string;
}

/** `stackServicesCommand` output. */
export function parseStackServices(text: string): SwarmServiceState[] {
  return text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const [name = '', replicas = '', update = '', message = ''] = l.split('\t');
      return { name, ...(replicas ? { replicas: Number(replicas) } : {}), update: update as UpdateState, message };
    });
}

export interface Drain {
  container: string;
  task: string;
  /** The Swarm service (`<stack>_<service>`). */
  service: string;
  seconds: number;
  /** 'idle': no connection left; 'timeout': drain_timeout reached with connections open. */
  end: 'idle' | 'timeout';
}

/** `convergeCommand` output. */
export function parseConverge(text: string): { drains: Drain[]; settled: boolean } {
  const drains: Drain[] = [];
  let settled = false;
  for (const line of text.split('\n')) {
    const w = line.trim().split(/\s+/);
    if (w[0] === 'drain' && w.length >= 5)
      drains.push({
        container: w[1]!,
        task: w[2]!,
        service: w[5] ?? '',
        seconds: Number(w[3]),
        end: w[4] === 'timeout' ? 'timeout' : 'idle',
      });
    if (w[0] === 'settled') settled = true;
  }
  return { drains, settled };
}

/**
 * The real outcome, which `docker stack deploy` (exit 0 as soon as the specs are stored) never says:
 * a failure message when any service rolled back, paused, or never settled.
 */
export function updateOutcome(services: SwarmServiceState[], settled: boolean): { failed: boolean; rolledBack: boolean; message?: string } {
  const bad = services.filter((s) => s.update && s.update !== 'completed');
  const rolledBack = bad.some((s) => s.update.startsWith('rollback'));
  if (bad.length) return { failed: true, rolledBack, message: bad.map((s) => `service ${s.name}: ${s.update} (${s.message})`).join('; ') };
  if (!settled)
    return {
      failed: true,
      rolledBack: false,
      message: 'the stack did not settle before the deadline (replicas not running, or tasks left to drain)',
    };
  return { failed: false, rolledBack: false };
}
