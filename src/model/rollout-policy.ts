/**
 * Which order a service is updated in, and what handoff refuses or warns about before the host changes.
 *
 * The rule:
 *   1. `deploy.update_config.order` set in the Compose file wins (start-first or stop-first).
 *   2. Otherwise a service the proxy routes to is rolled start-first: new replicas start and pass
 *      their health gate beside the old ones, so the proxy always has one to send requests to.
 *   3. Otherwise stop-first, Compose's own default: a stateful service (say a database with a
 *      volume) never has two containers on the same data.
 * A start-first service cannot set container_name, publish a fixed host port or use
 * network_mode: host (a second replica could not start): refused.
 */
import type { ComposeModel, ComposeService, UpdateOrder } from './compose.js';

export interface ServicePolicy {
  service: string;
  order: UpdateOrder;
  /** Why this order: shown in the plan. */
  reason: string;
  /** Shown in the plan for services that change. */
  warnings: string[];
  /** Errors that stop the deploy before the host changes. */
  refusals: string[];
}

export function decidePolicy(s: ComposeService, routed: ReadonlySet<string>): ServicePolicy {
  let order: UpdateOrder;
  let reason: string;
  if (s.updateConfig.order) {
    order = s.updateConfig.order;
    reason = `update_config.order: ${order}`;
  } else if (routed.has(s.name)) {
    order = 'start-first';
    reason = 'routed by the proxy and no update_config.order: new replicas start beside the old ones';
  } else {
    order = 'stop-first';
    reason = s.hasNamedVolume
      ? 'has a named volume and no update_config.order: Compose default stop-first (stateful)'
      : 'not routed by the proxy and no update_config.order: Compose default stop-first';
  }

  const refusals: string[] = [];
  const overlap = order === 'start-first' ? 'is rolled start-first' : s.replicas > 1 ? `has ${s.replicas} replicas` : '';
  if (overlap) {
    const fix =
      order === 'start-first'
        ? 'or set deploy.update_config.order: stop-first (requests will drop while it restarts)'
        : 'or set deploy.replicas: 1';
    if (s.containerName) {
      refusals.push(
        `service "${s.name}" ${overlap} but sets container_name "${s.containerName}": a second container cannot have the same name. Remove container_name ${fix}.`,
      );
    }
    if (s.fixedHostPorts.length) {
      refusals.push(
        `service "${s.name}" ${overlap} but publishes fixed host port(s) ${s.fixedHostPorts.join(', ')}: a second replica cannot bind them. ` +
          `Publish only the container port (e.g. "${s.ports.find((p) => p.published)?.target ?? '80'}") and reach it through the proxy, ${fix}.`,
      );
    }
    if (s.networkMode === 'host') {
      refusals.push(
        `service "${s.name}" ${overlap} but uses network_mode: host: two replicas would share the host's ports. Use a Compose network ${fix}.`,
      );
    }
  }

  const warnings: string[] = [];
  if (s.replicas > 0 && (!s.healthcheck || s.healthcheck.disabled)) {
    warnings.push(
      `service "${s.name}" has no healthcheck in the Compose file: there is no health gate. Unless its image defines a HEALTHCHECK, ` +
        `handoff only waits until it has been running for update_config.monitor (${s.updateConfig.monitorS}s). Add a healthcheck.`,
    );
  }
  if (order === 'stop-first' && s.replicas === 1) {
    warnings.push(`service "${s.name}" has one replica and is updated stop-first: requests to it will drop while it restarts.`);
  }
  return { service: s.name, order, reason, warnings, refusals };
}

export interface PolicyCheck {
  policies: Map<string, ServicePolicy>;
  /** Every refusal, plus unknown names in `only`. Empty = go. */
  errors: string[];
  warnings: string[];
}

/** Policies for every service; refusals only for those in scope (`only`, or all). */
export function checkPolicies(model: ComposeModel, routed: Iterable<string>, only?: readonly string[]): PolicyCheck {
  const routedSet = new Set(routed);
  const names = model.services.map((s) => s.name);
  const errors: string[] = [];
  for (const o of only ?? []) {
    if (!names.includes(o)) errors.push(`unknown service "${o}" in the services input: the Compose files define ${names.join(', ')}`);
  }
  const policies = new Map<string, ServicePolicy>();
  const warnings: string[] = [];
  for (const s of model.services) {
    const p = decidePolicy(s, routedSet);
    policies.set(s.name, p);
    if (!only?.length || only.includes(s.name)) {
      errors.push(...p.refusals);
      warnings.push(...p.warnings);
    }
  }
  return { policies, errors, warnings };
}
