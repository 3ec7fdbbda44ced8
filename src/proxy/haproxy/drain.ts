/**
 * The ProxyGate for HAProxy: new replicas are waited for until HAProxy sends them traffic, old ones
 * are drained through the Runtime API before they stop, and their slots are handed back afterwards.
 *
 * Why `maint` and not `drain`: a slot in `drain` still takes requests that persistence (cookies,
 * stick tables) pins to it and keeps being health-checked; `maint` stops all new traffic and the
 * checks at once, while sessions already on the server run to completion (we never use
 * `shutdown sessions`). A request that still lands on a stopped replica is caught by
 * `retries` + `option redispatch` in the config.
 *
 * HAProxy 2.6 has no `wait srv-removable` (3.0+): we poll `show stat` for scur/qcur.
 */
import type { ProxyGate, Replica } from '../gate.js';
import type { Timeline } from '../../model/timeline.js';
import { sleep } from '../../support/time.js';
import { RuntimeApi, type StreamOpener } from './runtime.js';
import {
  checkPassed,
  hasAddress,
  describeAdminState,
  isForcedMaint,
  isUp,
  OpState,
  slotsForAddress,
  type ServerState,
  type StatRow,
} from './stats.js';
import { quietLog, type ProgressLog } from '../../support/log.js';

export interface HaproxyGateOptions {
  /** Opens a stream to the Runtime API (Remote.openUnixSocket / openTcp, or net.connect in tests). */
  opener: StreamOpener;
  /** How long in-flight requests get before the replica is stopped anyway. Default 30 s. */
  drainTimeoutMs?: number;
  /**
   * Poll interval. Default 100 ms: each poll is one line on the kept Runtime API connection (one
   * round trip, a few hundred bytes), and every interval between a change and its poll is time the
   * batch waits for nothing.
   */
  pollMs?: number;
  /** How long release waits for DNS to drop an old IP from its slot. Default 10 s. */
  releaseTimeoutMs?: number;
  /** Per Runtime API command. Default 10 s. */
  commandTimeoutMs?: number;
  /** @actions/core fits (core.info / core.warning). */
  log?: ProgressLog;
  timeline?: Timeline;
}

/** A slot we put in maint, and the IP it held then. */
interface DrainedSlot {
  backend: string;
  server: string;
  ip: string;
}

export class HaproxyGate implements ProxyGate {
  readonly drains = true;
  readonly api: RuntimeApi;
  private readonly drainTimeoutMs: number;
  private readonly pollMs: number;
  private readonly releaseTimeoutMs: number;
  private readonly log: ProgressLog;
  private readonly timeline: Timeline | undefined;
  /** Replica id → the slots drained for it, until release. */
  private readonly drained = new Map<string, DrainedSlot[]>();
  /** Service → empty slots put in maint by park(), until unpark(). */
  private readonly parked = new Map<string, Array<{ backend: string; server: string }>>();
  /** Every slot this gate put in maint (parked or drained): a new replica landing there is routine. */
  private readonly maintByUs = new Set<string>();

  constructor(options: HaproxyGateOptions) {
    // Interactive: the gate polls (waitUp, drain, release), and each poll on a kept connection is
    // one round trip instead of two.
    this.api = new RuntimeApi(options.opener, { timeoutMs: options.commandTimeoutMs ?? 10_000, interactive: true });
    this.drainTimeoutMs = options.drainTimeoutMs ?? 30_000;
    this.pollMs = options.pollMs ?? 100;
    this.releaseTimeoutMs = options.releaseTimeoutMs ?? 10_000;
    this.log = options.log ?? quietLog;
    this.timeline = options.timeline;
  }

  /**
   * HAProxy 2.6 sends traffic to a slot as soon as DNS fills it, before its first health check: an
   * app that is not ready (or never will be) would answer real requests. So the empty slots of the
   * service's backends go to maint first; DNS fills one with the new replica's IP and it stays out
   * of rotation (the maint-slot "trap", used on purpose) until waitUp, called once Docker says the
   * replica is healthy, sets it ready.
   */
  async park(service: string, current: Replica[]): Promise<void> {
    const states = await this.api.showServersState();
    const backends = new Set(current.flatMap((r) => slotsForAddress(states, r.ip).map((s) => s.backend)));
    if (backends.size === 0) return;
    const parked = this.parked.get(service) ?? [];
    const empty = states.filter((s) => backends.has(s.backend) && !hasAddress(s) && !isForcedMaint(s));
    // One round trip for all of them.
    await this.api.setStates(empty.map((s) => ({ backend: s.backend, server: s.server, state: 'maint' as const })));
    for (const s of empty) {
      this.maintByUs.add(`${s.backend}/${s.server}`);
      parked.push({ backend: s.backend, server: s.server });
    }
    this.parked.set(service, parked);
    if (parked.length)
      this.log.info(
        `HAProxy: ${parked.length} empty ${service} slot(s) parked in maint: a new replica gets traffic only once it is healthy`,
      );
  }

  async unpark(service: string): Promise<void> {
    const parked = this.parked.get(service) ?? [];
    this.parked.delete(service);
    if (parked.length === 0) return;
    const states = await this.api.showServersState();
    // A slot that holds an address now is a replica's: waitUp or release decided its state.
    const empty = parked.filter((p) => {
      const now = states.find((s) => s.backend === p.backend && s.server === p.server);
      return now && isForcedMaint(now) && !hasAddress(now);
    });
    // One round trip for all of them.
    await this.api.setStates(empty.map((p) => ({ backend: p.backend, server: p.server, state: 'ready' as const })));
  }

  async waitUp(service: string, replicas: Replica[], deadline: number): Promise<void> {
    const pending = new Map(replicas.map((r) => [r.id, r]));
    let last: ServerState[] = [];
    let toReady: Array<{ backend: string; server: string; state: 'ready' }> = [];
    for (;;) {
      // Slots to set ready go in the same round trip as the next read of the state.
      last = toReady.length ? await this.api.setStatesThenShow(toReady) : await this.api.showServersState();
      toReady = [];
      for (const r of [...pending.values()]) {
        const slots = slotsForAddress(last, r.ip);
        for (const slot of slots) {
          // The trap: DNS handed this new replica's IP to a slot we (or someone) put in maint
          // earlier. A valid DNS answer clears only the DNS bit, so the slot would stay out of
          // rotation forever. Put it back.
          if (isForcedMaint(slot)) {
            // Routine when the slot is one this gate parked or drained (every rollout); worth a
            // warning only when someone else put it in maint.
            const ours = this.maintByUs.has(`${slot.backend}/${slot.server}`);
            (ours ? this.log.info : this.log.warning).call(
              this.log,
              ours
                ? `HAProxy: ${service} replica ${r.name} (${r.ip}) landed in ${slot.backend}/${slot.server}, parked by handoff: healthy, so setting it ready`
                : `HAProxy: ${service} replica ${r.name} (${r.ip}) landed in ${slot.backend}/${slot.server}, which someone put in maintenance (${describeAdminState(slot.adminState)}): setting it ready`,
            );
            toReady.push({ backend: slot.backend, server: slot.server, state: 'ready' });
            this.timeline?.add('note', {
              service,
              container: r.name,
              detail: `${slot.backend}/${slot.server} was in maint with a new replica's IP: set ready`,
            });
          }
        }
        const serving = slots.find(isUp);
        if (serving) {
          pending.delete(r.id);
          this.log.info(`HAProxy: ${service} replica ${r.name} (${r.ip}) is UP in ${serving.backend}/${serving.server}`);
          this.timeline?.add('up-in-proxy', { service, container: r.name, detail: `${serving.backend}/${serving.server}` });
        }
      }
      if (pending.size === 0 && !toReady.length) return;
      if (pending.size && Date.now() >= deadline) {
        const why = [...pending.values()].map((r) => `${r.name} (${r.ip}): ${describeSlots(slotsForAddress(last, r.ip))}`);
        throw new Error(`HAProxy does not send traffic to every new ${service} replica: ${why.join('; ')}`);
      }
      if (toReady.length) continue;
      await sleep(Math.min(this.pollMs, Math.max(0, deadline - Date.now())));
    }
  }

  async drain(service: string, replicas: Replica[]): Promise<void> {
    const states = await this.api.showServersState();
    const watching: Array<{ replica: Replica; slots: DrainedSlot[] }> = [];
    for (const r of replicas) {
      const slots = slotsForAddress(states, r.ip).map((s) => ({ backend: s.backend, server: s.server, ip: r.ip }));
      if (slots.length === 0) {
        // Not in the proxy (crashed, never resolved, or already dropped by DNS): nothing to drain.
        this.log.info(`HAProxy: ${service} replica ${r.name} (${r.ip}) holds no proxy slot: nothing to drain`);
        continue;
      }
      for (const s of slots) this.maintByUs.add(`${s.backend}/${s.server}`);
      this.drained.set(r.id, [...(this.drained.get(r.id) ?? []), ...slots]);
      const names = slots.map((s) => `${s.backend}/${s.server}`).join(', ');
      this.log.info(`HAProxy: draining ${service} replica ${r.name} (${r.ip}): ${names} set to maint`);
      this.timeline?.add('drain', { service, container: r.name, detail: names });
      watching.push({ replica: r, slots });
    }
    if (watching.length === 0) return;

    const deadline = Date.now() + this.drainTimeoutMs;
    // Every slot to maint and the first read of their sessions: one round trip.
    const maint = watching.flatMap((w) => w.slots.map((s) => ({ backend: s.backend, server: s.server, state: 'maint' as const })));
    let stats: StatRow[] = [];
    for (let first = true; ; first = false) {
      stats = first ? await this.api.setStatesThenStat(maint) : await this.api.showStat();
      for (const w of [...watching]) {
        if (w.slots.every((s) => activity(stats, s) === 0)) {
          watching.splice(watching.indexOf(w), 1);
          this.timeline?.add('drained', { service, container: w.replica.name });
          this.log.info(`HAProxy: ${service} replica ${w.replica.name} drained`);
        }
      }
      if (watching.length === 0) return;
      if (Date.now() >= deadline) break;
      await sleep(Math.min(this.pollMs, Math.max(0, deadline - Date.now())));
    }
    for (const w of watching) {
      const left = w.slots.map((s) => `${s.backend}/${s.server}: ${activity(stats, s)} sessions/queued`).join(', ');
      this.log.warning(
        `HAProxy: ${service} replica ${w.replica.name} still busy after the ${this.drainTimeoutMs} ms drain timeout (${left}); stopping it anyway`,
      );
      this.timeline?.add('drained', { service, container: w.replica.name, detail: `timeout after ${this.drainTimeoutMs} ms (${left})` });
    }
  }

  async release(service: string, replicas: Replica[]): Promise<void> {
    const todo: DrainedSlot[] = [];
    for (const r of replicas) {
      todo.push(...(this.drained.get(r.id) ?? []));
      this.drained.delete(r.id);
    }
    const deadline = Date.now() + this.releaseTimeoutMs;
    while (todo.length > 0) {
      const states = await this.api.showServersState();
      const free: DrainedSlot[] = [];
      for (const slot of [...todo]) {
        const now = states.find((s) => s.backend === slot.backend && s.server === slot.server);
        if (!now || !isForcedMaint(now)) {
          // Gone, or already put back (waitUp does that when a new replica landed in it).
          todo.splice(todo.indexOf(slot), 1);
          continue;
        }
        // Wait until DNS dropped the old IP: a slot set ready while it still holds the stopped
        // container's address would get traffic until its health check fails.
        if (now.addr !== slot.ip) free.push(slot);
      }
      await this.api.setStates(free.map((s) => ({ backend: s.backend, server: s.server, state: 'ready' as const })));
      for (const slot of free) {
        this.log.info(`HAProxy: ${slot.backend}/${slot.server} released (old ${service} address ${slot.ip} gone)`);
        todo.splice(todo.indexOf(slot), 1);
      }
      if (todo.length === 0) return;
      if (Date.now() >= deadline) break;
      await sleep(Math.min(this.pollMs, Math.max(0, deadline - Date.now())));
    }
    // Left in maint rather than risking traffic to a dead address; waitUp puts such a slot back
    // as soon as DNS gives it a new replica.
    for (const slot of todo) {
      this.log.warning(
        `HAProxy: ${slot.backend}/${slot.server} still holds the old ${service} address ${slot.ip} after ${this.releaseTimeoutMs} ms; leaving it in maint (check the resolvers' "hold obsolete")`,
      );
    }
  }

  /**
   * Empty slots a lost process parked (in maint, no address) become this gate's: a new replica that
   * lands in one is routine, and unpark returns them when the service is done. Returns how many.
   */
  async claimParked(service: string, running: Replica[]): Promise<number> {
    const states = await this.api.showServersState();
    const backends = new Set(running.flatMap((r) => slotsForAddress(states, r.ip).map((s) => s.backend)));
    const parked = this.parked.get(service) ?? [];
    for (const s of states) {
      if (!backends.has(s.backend) || hasAddress(s) || !isForcedMaint(s)) continue;
      this.maintByUs.add(`${s.backend}/${s.server}`);
      parked.push({ backend: s.backend, server: s.server });
    }
    this.parked.set(service, parked);
    return parked.length;
  }

  /**
   * After a deploy was cut off midway (the gate that parked and drained is gone with its process):
   * every slot in maintenance that holds one of these serving replicas, or no address at all, is
   * set ready. Returns the slots it put back.
   */
  async restore(service: string, serving: Replica[]): Promise<string[]> {
    const states = await this.api.showServersState();
    const ips = new Set(serving.map((r) => r.ip).filter(Boolean));
    const backends = new Set(serving.flatMap((r) => slotsForAddress(states, r.ip).map((s) => s.backend)));
    const back = states.filter((s) => backends.has(s.backend) && isForcedMaint(s) && !(hasAddress(s) && !ips.has(s.addr)));
    await this.api.setStates(back.map((s) => ({ backend: s.backend, server: s.server, state: 'ready' as const })));
    const restored = back.map((s) => `${s.backend}/${s.server}`);
    if (restored.length)
      this.log.info(
        `HAProxy: ${service}: ${restored.length} slot(s) left in maint by the interrupted deploy set ready: ${restored.join(', ')}`,
      );
    return restored;
  }
}

/** Sessions plus queued requests on one slot (0 when the slot is not listed: nothing can be there). */
function activity(stats: StatRow[], slot: { backend: string; server: string }): number {
  const row = stats.find((s) => s.pxname === slot.backend && s.svname === slot.server);
  return row ? row.scur + row.qcur : 0;
}

function describeSlots(slots: ServerState[]): string {
  if (slots.length === 0) return 'in no slot (not resolved by the proxy yet)';
  return slots
    .map(
      (s) =>
        `${s.backend}/${s.server} ${opStateName(s.opState)} ${describeAdminState(s.adminState)}${checkPassed(s) ? '' : ' (health check not passed)'}`,
    )
    .join(', ');
}

function opStateName(op: number): string {
  const name = Object.entries(OpState).find(([, v]) => v === op)?.[0];
  return name ?? `op${op}`;
}
