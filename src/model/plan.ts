/**
 * The deploy plan: what happens to each service, compared from the desired state (Compose config
 * hash + image ID + replica count) and the containers running under the project. Pure.
 *
 * A re-run after an interrupted deploy converges: exited/crashed containers are cleaned
 * first, containers already on the new config count as done, surplus old ones are removed first.
 */
import type { ComposeService, UpdateOrder } from './compose.js';
import { flavorOfLabel } from './config-hash.js';
import { isBroken, type ContainerInfo } from '../engine/docker/containers.js';
import type { ServicePolicy } from './rollout-policy.js';

export interface DesiredService {
  service: ComposeService;
  /** The hash `up` writes for this config today (shown in the plan). */
  configHash: string;
  /** Every hash that means this config (see config-hash.ts); includes configHash. Default [configHash]. */
  configHashes?: string[];
  /**
   * Containers written by the other Compose flavor (v1 labels on a v2 host, or the reverse) have
   * hashes this Compose cannot reproduce: they count as current when the service's config is the
   * same as in the release that is serving (hashed now by this Compose), whose containers they are.
   */
  adopt?: { flavor: 'v1' | 'v2'; release: string };
  /** The image ID the service's image reference resolves to on the host; undefined = unknown (compare hashes only). */
  imageId?: string;
  policy: ServicePolicy;
}

export type ServiceAction = 'keep' | 'create' | 'roll' | 'scale' | 'clean' | 'remove' | 'skip';

export interface Batch {
  /** New replicas to start in this batch. */
  start: number;
  /** Old containers (ids) to drain, stop and remove in this batch. */
  remove: string[];
}

export interface ServicePlan {
  service: string;
  action: ServiceAction;
  order: UpdateOrder;
  /** Why this order (the rollout policy's rule). */
  reason: string;
  /** Why this action: config changed, image changed, forced, replicas differ... */
  changes: string[];
  /** Serving replicas now (broken ones not counted). */
  oldReplicas: number;
  newReplicas: number;
  /** Exited or crash-looping containers: stopped and removed before anything else (a running unhealthy one is rolled). */
  cleanup: string[];
  /** Containers already on the desired config: left as they are. */
  current: string[];
  batches: Batch[];
  warnings: string[];
  /** undefined for orphans. */
  desired?: DesiredService;
}

export interface Plan {
  /** In dependency order; orphans last. */
  services: ServicePlan[];
  /** True when anything on the host changes. */
  changes: boolean;
}

export interface PlanInput {
  desired: DesiredService[];
  running: ContainerInfo[];
  /** Services to deploy (the `services` input); others are skipped, orphans are kept. */
  only?: readonly string[];
  /** Roll selected services even when unchanged. */
  force?: boolean;
}

export function planDeploy(input: PlanInput): Plan {
  const { desired, running, only, force = false } = input;
  const selected = (name: string) => !only?.length || only.includes(name);
  const byService = new Map<string, ContainerInfo[]>();
  for (const c of running) {
    if (c.oneoff) continue;
    const list = byService.get(c.service) ?? [];
    list.push(c);
    byService.set(c.service, list);
  }

  const services: ServicePlan[] = [];
  for (const d of orderByDependencies(desired)) {
    const containers = byService.get(d.service.name) ?? [];
    services.push(selected(d.service.name) ? planService(d, containers, force) : skipped(d, containers));
  }
  const desiredNames = new Set(desired.map((d) => d.service.name));
  for (const [name, containers] of [...byService].sort(([a], [b]) => a.localeCompare(b))) {
    if (desiredNames.has(name)) continue;
    services.push(planOrphan(name, containers, !only?.length));
  }
  return { services, changes: services.some((s) => s.action !== 'keep' && s.action !== 'skip') };
}

function base(d: DesiredService, live: ContainerInfo[]): ServicePlan {
  return {
    service: d.service.name,
    action: 'keep',
    order: d.policy.order,
    reason: d.policy.reason,
    changes: [],
    oldReplicas: live.length,
    newReplicas: d.service.replicas,
    cleanup: [],
    current: [],
    batches: [],
    warnings: [],
    desired: d,
  };
}

function skipped(d: DesiredService, containers: ContainerInfo[]): ServicePlan {
  const p = base(
    d,
    containers.filter((c) => !isBroken(c)),
  );
  p.action = 'skip';
  p.newReplicas = p.oldReplicas;
  p.changes.push('not in the services input');
  return p;
}

function planService(d: DesiredService, containers: ContainerInfo[], force: boolean): ServicePlan {
  const broken = containers.filter(isBroken);
  // Unhealthy ones first: they are the first a scale-down removes and the first a roll replaces.
  const live = oldestFirst(containers.filter((c) => !isBroken(c))).sort(
    (a, b) => Number(b.health === 'unhealthy') - Number(a.health === 'unhealthy'),
  );
  const p = base(d, live);
  p.cleanup = broken.map((c) => c.id);
  if (broken.length)
    p.changes.push(`${broken.length} exited/crashed container(s) from an earlier run to remove: ${broken.map((c) => c.name).join(', ')}`);

  const hashes = d.configHashes?.length ? d.configHashes : [d.configHash];
  const adopted = (c: ContainerInfo) => !!d.adopt && !!c.composeVersion && flavorOfLabel(c.composeVersion) !== d.adopt.flavor;
  const sameConfig = (c: ContainerInfo) => hashes.includes(c.configHash) || adopted(c);
  const isCurrent = (c: ContainerInfo) => !force && sameConfig(c) && (!d.imageId || c.imageId === d.imageId) && c.health !== 'unhealthy';
  const current = live.filter(isCurrent);
  const outdated = live.filter((c) => !isCurrent(c));
  p.current = current.map((c) => c.id);
  const N = d.service.replicas;
  const adoptedNow = current.filter((c) => !hashes.includes(c.configHash));
  if (adoptedNow.length && d.adopt) {
    p.changes.push(
      `adopted ${adoptedNow.length} container(s) written by Compose ${adoptedNow[0]!.composeVersion} (config unchanged since release ${d.adopt.release})`,
    );
  }

  if (force && live.length) p.changes.push('forced');
  else {
    if (outdated.some((c) => !sameConfig(c)))
      p.changes.push(`config changed (hash ${short(outdated.find((c) => !sameConfig(c))!.configHash)} → ${short(d.configHash)})`);
    else if (outdated.length && d.imageId) {
      p.changes.push(`image changed (${short(outdated[0]!.imageId)} → ${short(d.imageId)}; same config: a re-pushed tag)`);
    }
  }

  if (outdated.length) {
    p.action = 'roll';
    p.batches = rollBatches(
      current.length,
      outdated.map((c) => c.id),
      N,
      d.service.updateConfig.parallelism,
    );
  } else if (live.length === 0 && N > 0) {
    p.action = 'create';
    p.batches = [{ start: N, remove: [] }];
    p.changes.push(`not running: create ${N} replica(s)`);
  } else if (current.length < N) {
    p.action = 'scale';
    p.batches = [{ start: N - current.length, remove: [] }];
  } else if (current.length > N) {
    p.action = 'scale';
    // Oldest first: the newest containers are the ones most recently proven healthy.
    p.batches = [{ start: 0, remove: current.slice(0, current.length - N).map((c) => c.id) }];
    p.current = current.slice(current.length - N).map((c) => c.id);
  } else if (broken.length) {
    p.action = 'clean';
  }
  if (p.action === 'scale') p.changes.push(`replicas ${live.length} → ${N}`);
  if (p.action !== 'keep') p.warnings.push(...d.policy.warnings);
  return p;
}

/**
 * Batches of at most `parallelism` starts and removals. When more containers serve than wanted
 * (an interrupted earlier run left new ones beside old ones), the surplus old ones go first.
 */
export function rollBatches(currentCount: number, outdatedIds: string[], replicas: number, parallelism: number): Batch[] {
  const p = Math.max(1, parallelism);
  const old = [...outdatedIds];
  let toStart = Math.max(0, replicas - currentCount);
  const batches: Batch[] = [];
  // Only old containers are surplus: current ones above the count are left for the next run's scale.
  let surplus = Math.min(old.length, currentCount + old.length - replicas);
  while (surplus > 0) {
    const n = Math.min(p, surplus);
    batches.push({ start: 0, remove: old.splice(0, n) });
    surplus -= n;
  }
  while (old.length || toStart > 0) {
    const k = Math.min(p, toStart);
    batches.push({ start: k, remove: old.splice(0, Math.min(p, old.length)) });
    toStart -= k;
  }
  return batches;
}

function planOrphan(name: string, containers: ContainerInfo[], remove: boolean): ServicePlan {
  const live = containers.filter((c) => !isBroken(c));
  return {
    service: name,
    action: remove ? 'remove' : 'skip',
    order: 'stop-first',
    reason: 'not in the Compose files (orphan)',
    changes: [remove ? 'orphan: not in the Compose files, removed' : 'orphan: kept because the services input limits this deploy'],
    oldReplicas: live.length,
    newReplicas: remove ? 0 : live.length,
    cleanup: remove ? containers.filter(isBroken).map((c) => c.id) : [],
    current: [],
    batches: remove && live.length ? [{ start: 0, remove: oldestFirst(live).map((c) => c.id) }] : [],
    warnings: [],
  };
}

function oldestFirst(cs: ContainerInfo[]): ContainerInfo[] {
  return [...cs].sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.number - b.number);
}

/** Topological order by depends_on, stable in file order; a cycle is an error that names it. */
export function orderByDependencies<T extends { service: Pick<ComposeService, 'name' | 'dependsOn'> }>(items: T[]): T[] {
  const byName = new Map(items.map((d) => [d.service.name, d]));
  const out: T[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (d: T, path: string[]) => {
    const name = d.service.name;
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') {
      const cycle = [...path.slice(path.indexOf(name)), name];
      throw new Error(`depends_on cycle: ${cycle.join(' → ')}: remove one of these dependencies`);
    }
    state.set(name, 'visiting');
    for (const dep of d.service.dependsOn) {
      const dd = byName.get(dep);
      if (dd) visit(dd, [...path, name]);
    }
    state.set(name, 'done');
    out.push(d);
  };
  for (const d of items) visit(d, []);
  return out;
}

function short(hashOrId: string): string {
  return hashOrId.replace(/^sha256:/, '').slice(0, 12) || '?';
}

function describeBatches(s: ServicePlan): string {
  const parts: string[] = [];
  if (s.cleanup.length) parts.push(`clean ${s.cleanup.length}`);
  for (const b of s.batches) {
    const steps = [b.start ? `+${b.start}` : '', b.remove.length ? `-${b.remove.length}` : ''].filter(Boolean);
    parts.push(s.order === 'stop-first' ? steps.reverse().join(' ') : steps.join(' '));
  }
  return parts.join(', ') || '-';
}

/** A plain-text table for the job log. */
export function renderPlan(plan: Plan): string {
  const rows = [['SERVICE', 'ACTION', 'REPLICAS', 'ORDER', 'BATCHES']];
  for (const s of plan.services) {
    rows.push([s.service, s.action, `${s.oldReplicas}→${s.newReplicas}`, s.order, describeBatches(s)]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
  for (const s of plan.services) {
    lines.push('', `${s.service}: ${s.order} (${s.reason})`);
    // Which image a service goes to is the first thing a reader looks for (shown: `env` is plain).
    const image = s.desired?.service.image;
    if (image && s.action !== 'keep' && s.action !== 'skip' && s.action !== 'remove') lines.push(`  - image ${image}`);
    for (const c of s.changes) lines.push(`  - ${c}`);
    for (const w of s.warnings) lines.push(`  ! ${w}`);
  }
  if (!plan.changes) lines.push('', 'Nothing to change.');
  return lines.join('\n');
}

/** The plan as a Markdown table for the job summary. */
export function renderPlanMarkdown(plan: Plan): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const lines = ['| Service | Action | Replicas | Order | Why | Batches |', '|---|---|---|---|---|---|'];
  for (const s of plan.services) {
    lines.push(
      `| ${esc(s.service)} | ${s.action} | ${s.oldReplicas} → ${s.newReplicas} | ${s.order} | ${esc(s.reason)}${s.changes.length ? `; ${esc(s.changes.join('; '))}` : ''} | ${esc(describeBatches(s))} |`,
    );
  }
  const warnings = plan.services.flatMap((s) => s.warnings);
  if (warnings.length) lines.push('', ...warnings.map((w) => `> [!WARNING]\n> ${esc(w)}\n`));
  if (!plan.changes) lines.push('', 'Nothing to change.');
  return lines.join('\n');
}
