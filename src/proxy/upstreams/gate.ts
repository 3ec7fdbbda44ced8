/**
 * The ProxyGate of proxies without a runtime drain API (Caddy 2.6, nginx open source): handoff
 * owns one upstream file per routed service, listing its replicas by container IP, and each change
 * is a hitless config change of the running proxy (Caddy: POST /load; nginx: nginx -t and -s reload,
 * both in the driver's applier). Verified on the bench (docs/proxies-on-the-bench.md):
 * - a new replica is listed only once Docker says healthy (the rollout's gate) and it answers HTTP
 *   from inside the proxy's network namespace (waitUp);
 * - one change per replica swap: the new replica is added and the old one removed together
 *   (waitUp defers the addition when the rollout says which replicas it replaces), because each
 *   change closes some idle client keep-alive connections;
 * - an old replica is done when no ESTABLISHED connection from the proxy's IPs to the app port is
 *   left in its network namespace (read on the host from /proc/<pid>/net/tcp and tcp6), seen twice
 *   1 s apart, or at the drain timeout: in-flight requests finished, not a sleep.
 * A change the proxy refuses puts the previous files back (the proxy kept its config) and throws its message.
 */
import type { Remote } from '../../host/remote.js';
import type { Timeline } from '../../model/timeline.js';
import { answersCommand, netTcpCommand } from '../../commands/proxy.js';
import { quietLog, type ProgressLog } from '../../support/log.js';
import { sleep } from '../../support/time.js';
import { QUICK_COMMAND_MS } from '../../support/timeouts.js';
import type { ProxyGate, Replica } from '../gate.js';
import { connectionsFrom, parseNetTcpByContainer } from './net-tcp.js';

/** One service whose replica list handoff writes. */
export interface ManagedUpstream {
  service: string;
  port: number;
  /** The file on the host (in app/, inside a directory the proxy bind-mounts). */
  hostPath: string;
  render(ips: readonly string[]): string;
}

export interface UpstreamApplier {
  /** Make the running proxy use the files as they are now; throws the proxy's own message when it refuses. */
  apply(reason: string): Promise<void>;
  /**
   * Until nothing in the proxy still routes with the lists from before the last apply (nginx: its
   * old workers, which answer the client connections they hold with the previous upstream list and
   * may open a new connection to a replica just taken out); false when the deadline came first.
   * Proxies whose change takes effect for every request at once leave it out.
   */
  settled?(deadline: number): Promise<boolean>;
}

export interface UpstreamGateOptions {
  remote: Remote;
  /** For messages: Caddy, nginx. */
  label: string;
  /** The running proxy container and its IPs on every network. */
  proxy: { id: string; name: string; ips: readonly string[] };
  upstreams: readonly ManagedUpstream[];
  /** The replica IPs of each managed service in the proxy now. */
  current: ReadonlyMap<string, readonly string[]>;
  applier: UpstreamApplier;
  drainTimeoutMs: number;
  pollMs?: number;
  log?: ProgressLog;
  timeline?: Timeline;
}

/** A drain is complete after this long with no connection left, read at least twice. */
const SETTLE_MS = 1000;

export class UpstreamGate implements ProxyGate {
  readonly drains = true;
  private readonly lists = new Map<string, string[]>();
  /** Healthy, answering new replicas whose addition waits for the drain of the replicas they replace. */
  private readonly pending = new Map<string, Replica[]>();
  private readonly byService: Map<string, ManagedUpstream>;
  private readonly log: ProgressLog;
  private readonly pollMs: number;
  private noClient = false;

  constructor(private readonly o: UpstreamGateOptions) {
    this.byService = new Map(o.upstreams.map((u) => [u.service, u]));
    for (const u of o.upstreams) this.lists.set(u.service, byAddress(o.current.get(u.service) ?? []));
    this.log = o.log ?? quietLog;
    this.pollMs = o.pollMs ?? 500;
  }

  /** The replica IPs handoff has the proxy route to now. */
  listed(service: string): readonly string[] {
    return this.lists.get(service) ?? [];
  }

  /** Nothing to park: a new replica is not in the file until waitUp lists it. */
  async park(): Promise<void> {}

  /** The service is done: a deferred addition still waiting (its drain never came) is applied now. */
  async unpark(service: string): Promise<void> {
    const waiting = this.pending.get(service);
    this.pending.delete(service);
    if (waiting?.length) await this.change(service, waiting, [], 'add');
  }

  async waitUp(service: string, replicas: Replica[], deadline: number, replacing: Replica[] = []): Promise<void> {
    if (!this.byService.has(service) || replicas.length === 0) return;
    await this.waitAnswering(service, replicas, deadline);
    if (replacing.length) {
      // Listed together with the removal of the replicas they replace: one config change per swap.
      this.pending.set(service, [...(this.pending.get(service) ?? []), ...replicas]);
      return;
    }
    await this.change(service, replicas, [], 'add');
  }

  async drain(service: string, replicas: Replica[]): Promise<void> {
    const upstream = this.byService.get(service);
    if (!upstream) return;
    const removing = new Set(replicas.map((r) => r.id));
    const adding = (this.pending.get(service) ?? []).filter((r) => !removing.has(r.id));
    this.pending.delete(service);
    const listed = replicas.filter((r) => this.listed(service).includes(r.ip));
    await this.change(service, adding, replicas, adding.length ? 'swap' : 'drain');
    for (const r of listed)
      this.o.timeline?.add('drain', { service, container: r.name, detail: `${r.ip} out of the ${this.o.label} upstreams` });
    if (!listed.length) return;
    const deadline = Date.now() + this.o.drainTimeoutMs;
    if (this.o.applier.settled && !(await this.o.applier.settled(deadline)))
      this.log.warning(`${this.o.label}: the previous config still runs after ${this.o.drainTimeoutMs} ms (drain timeout)`);
    await this.waitDrained(service, upstream.port, listed, deadline);
  }

  /** Nothing to hand back: the files list addresses, not slots. */
  async release(): Promise<void> {}

  /** Activation put the uploaded seeds back: write what the proxy runs with again (no apply needed). */
  async activated(): Promise<void> {
    for (const [path, text] of this.rendered()) await this.o.remote.writeFile(path, text, 0o644);
  }

  /** Write the current lists (replacing a seed or a stale file after activation) and apply them. */
  async sync(reason: string): Promise<void> {
    for (const u of this.o.upstreams) await this.o.remote.writeFile(u.hostPath, u.render(this.listed(u.service)), 0o644);
    await this.o.applier.apply(reason);
  }

  /** The rendered files for the current lists (to compare with what the proxy was given). */
  rendered(): Map<string, string> {
    return new Map(this.o.upstreams.map((u) => [u.hostPath, u.render(this.listed(u.service))]));
  }

  /** Add and remove replicas in one config change; on refusal the previous file is put back. */
  private async change(service: string, add: Replica[], remove: Replica[], what: 'add' | 'drain' | 'swap'): Promise<void> {
    const upstream = this.byService.get(service)!;
    const before = this.listed(service);
    const gone = new Set(remove.map((r) => r.ip));
    const next = byAddress([...before.filter((ip) => !gone.has(ip)), ...add.map((r) => r.ip).filter((ip) => ip && !before.includes(ip))]);
    if (next.length === before.length && next.every((ip, i) => ip === before[i])) return;
    await this.o.remote.writeFile(upstream.hostPath, upstream.render(next), 0o644);
    const detail = `${service}: ${[...add.map((r) => `+${r.name} (${r.ip})`), ...remove.filter((r) => before.includes(r.ip)).map((r) => `-${r.name} (${r.ip})`)].join(' ')}`;
    try {
      await this.o.applier.apply(detail);
    } catch (e) {
      await this.o.remote.writeFile(upstream.hostPath, upstream.render(before), 0o644).catch(() => {});
      throw e;
    }
    this.lists.set(service, next);
    this.log.info(`${this.o.label}: ${what} ${detail}; upstreams now ${next.join(', ') || '(none)'}`);
    for (const r of add)
      this.o.timeline?.add('up-in-proxy', { service, container: r.name, detail: `${r.ip} in the ${this.o.label} upstreams` });
  }

  /** Until every new replica answers HTTP from inside the proxy container (any status: it listens and speaks HTTP). */
  private async waitAnswering(service: string, replicas: Replica[], deadline: number): Promise<void> {
    if (this.noClient) return;
    const port = this.byService.get(service)!.port;
    let waiting = replicas;
    for (;;) {
      const urls = waiting.map((r) => `http://${r.ip}:${port}/`);
      const r = await this.o.remote.exec(answersCommand(this.o.proxy.id, urls), { timeoutMs: QUICK_COMMAND_MS, check: false });
      if (r.code === 3 || /^none /m.test(r.stdout)) {
        this.noClient = true;
        this.log.warning(
          `${this.o.label}: the proxy image has no wget, curl or bash to reach new replicas from inside its network: the gate relies on Docker's health status alone`,
        );
        return;
      }
      const ok = new Set(r.stdout.split('\n').flatMap((l) => (l.startsWith('ok ') ? [l.slice(3).trim()] : [])));
      const last = r.stdout.trim() || r.stderr.trim();
      waiting = waiting.filter((x) => !ok.has(`http://${x.ip}:${port}/`));
      if (waiting.length === 0) return;
      if (Date.now() >= deadline) {
        throw new Error(
          `${this.o.label}: new ${service} replica(s) ${waiting.map((x) => `${x.name} (${x.ip}:${port})`).join(', ')} do not answer from inside the proxy container ${this.o.proxy.name}: ${last}`,
        );
      }
      await sleep(this.pollMs);
    }
  }

  /** Until no connection from the proxy is left on the app port of each replica (twice, 1 s apart), or the deadline. */
  private async waitDrained(service: string, port: number, replicas: Replica[], deadline: number): Promise<void> {
    const peers = new Set(this.o.proxy.ips);
    const pending = new Map(replicas.map((r) => [r.id, r]));
    const zeroSince = new Map<string, number>();
    const left = new Map<string, number>();
    for (;;) {
      const r = await this.o.remote.exec(netTcpCommand([...pending.keys()]), { timeoutMs: QUICK_COMMAND_MS, check: false });
      const tables = parseNetTcpByContainer(r.stdout);
      const now = Date.now();
      for (const [id, replica] of [...pending]) {
        const t = tables.get(id);
        const n = !t || t.pid === 0 ? 0 : connectionsFrom(t.sockets, port, peers);
        left.set(id, n);
        if (n > 0) zeroSince.delete(id);
        else if (!zeroSince.has(id)) zeroSince.set(id, now);
        else if (now - zeroSince.get(id)! >= SETTLE_MS) {
          pending.delete(id);
          this.log.info(`${this.o.label}: ${service} replica ${replica.name} drained (no connection from the proxy left)`);
          this.o.timeline?.add('drained', { service, container: replica.name });
        }
      }
      if (pending.size === 0) return;
      if (now >= deadline) break;
      await sleep(Math.min(this.pollMs, Math.max(0, deadline - Date.now())));
    }
    for (const [id, replica] of pending) {
      const detail = `timeout after ${this.o.drainTimeoutMs} ms (${left.get(id) ?? '?'} connection(s) from the proxy left)`;
      this.log.warning(`${this.o.label}: ${service} replica ${replica.name} still busy: ${detail}; stopping it anyway`);
      this.o.timeline?.add('drained', { service, container: replica.name, detail });
    }
  }
}

/**
 * IPs in one canonical order, so the same replicas always render the same file: a later deploy
 * compares it with what the proxy was given and changes nothing (no reload) when they are equal.
 */
export function byAddress(ips: readonly string[]): string[] {
  const key = (ip: string) =>
    ip
      .split('.')
      .map((n) => n.padStart(3, '0'))
      .join('.');
  return [...ips].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}
