/**
 * A user-space TCP proxy on loopback in front of the bench sshd that stalls the link on a schedule:
 * every `everyMs` it stops forwarding in both directions for `pauseMs` (nothing is read, written or
 * dropped; what arrives is held and delivered in order afterwards), like a congested or flapping
 * path. The schedule stops by itself after `durationMs`; cut() kills every connection through it.
 */
import net from 'node:net';
import { bench } from './harness.js';

export interface StallProxyOptions {
  /** Where to forward; the bench sshd by default. Loopback only. */
  target?: { host: string; port: number };
  /** Listen port; a free one chosen by the kernel by default. */
  port?: number;
  /** Length of one cycle: the link flows for everyMs - pauseMs, then stalls for pauseMs. */
  everyMs: number;
  pauseMs: number;
  /** The schedule ends (and the link flows again) this long after start. */
  durationMs: number;
}

export interface StallEvent {
  /** ms since start */
  at: number;
  durationMs: number;
  /** Connections open when the stall began. */
  connections: number;
  /** Bytes that arrived during the stall and waited in the proxy until it ended (more may have waited in the kernel). */
  heldBytes: number;
}

export interface StallStats {
  connections: number;
  /** Client → server bytes forwarded. */
  bytesUp: number;
  /** Server → client bytes forwarded. */
  bytesDown: number;
  pauses: StallEvent[];
  cuts: number;
}

export interface StallProxy {
  readonly port: number;
  readonly stats: StallStats;
  readonly stalled: boolean;
  /** Pauses so far that began while at least one connection was open (the ones that tested something). */
  readonly effectivePauses: number;
  /** Destroy every connection through the proxy (it keeps listening); returns how many. */
  cut(): number;
  /** End the schedule now and let the link flow (connections stay). */
  stopStalling(): void;
  /** Stop listening, end the schedule, destroy every connection. */
  close(): Promise<void>;
}

const LOOPBACK = '127.0.0.1';

/** One direction of one connection: holds data (and the end) while the link is stalled. */
class Pipe {
  private readonly held: Array<Buffer | null> = [];
  private waitingDrain = false;

  constructor(
    private readonly src: net.Socket,
    private readonly dst: net.Socket,
    private readonly isStalled: () => boolean,
    private readonly onBytes: (n: number, held: boolean) => void,
  ) {
    src.on('data', (chunk: Buffer) => {
      if (this.isStalled() || this.held.length) {
        // Normally nothing arrives while paused; a chunk already read out of the kernel still must wait.
        this.held.push(chunk);
        this.onBytes(chunk.length, true);
        src.pause();
        return;
      }
      this.forward(chunk);
    });
    src.on('end', () => {
      if (this.isStalled() || this.held.length) this.held.push(null);
      else dst.end();
    });
    dst.on('drain', () => {
      this.waitingDrain = false;
      if (!this.isStalled() && !this.held.length) src.resume();
    });
  }

  private forward(chunk: Buffer): void {
    this.onBytes(chunk.length, false);
    if (!this.dst.write(chunk)) {
      this.waitingDrain = true;
      this.src.pause();
    }
  }

  stall(): void {
    this.src.pause();
  }

  /** Bytes read from the kernel and waiting in the source stream's buffer (paused). */
  buffered(): number {
    return this.src.readableLength;
  }

  flow(): void {
    while (this.held.length) {
      const chunk = this.held.shift()!;
      if (chunk === null) {
        this.dst.end();
        return;
      }
      this.forward(chunk);
    }
    if (!this.waitingDrain) this.src.resume();
  }
}

interface Conn {
  client: net.Socket;
  server: net.Socket;
  pipes: Pipe[];
}

export async function startStallProxy(options: StallProxyOptions): Promise<StallProxy> {
  const target = options.target ?? { host: bench().host, port: bench().port };
  if (target.host !== LOOPBACK) throw new Error(`the stall proxy forwards to ${LOOPBACK} only, not ${target.host}`);
  if (!(options.pauseMs > 0 && options.pauseMs < options.everyMs)) throw new Error('pauseMs must be > 0 and < everyMs');
  if (!(options.durationMs > 0)) throw new Error('durationMs must be > 0');

  const conns = new Set<Conn>();
  const stats: StallStats = { connections: 0, bytesUp: 0, bytesDown: 0, pauses: [], cuts: 0 };
  let stalled = false;
  let current: StallEvent | undefined;
  let timer: NodeJS.Timeout | undefined;
  let scheduleOver = false;
  const started = Date.now();
  const isStalled = () => stalled;

  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    stats.connections++;
    const upstream = net.connect({ host: target.host, port: target.port, allowHalfOpen: true });
    // Held bytes are counted on arrival as held, and as forwarded when they go on.
    const count = (dir: 'up' | 'down') => (n: number, held: boolean) => {
      if (held) {
        if (current) current.heldBytes += n;
      } else if (dir === 'up') stats.bytesUp += n;
      else stats.bytesDown += n;
    };
    const conn: Conn = {
      client,
      server: upstream,
      pipes: [new Pipe(client, upstream, isStalled, count('up')), new Pipe(upstream, client, isStalled, count('down'))],
    };
    conns.add(conn);
    if (stalled) conn.pipes.forEach((p) => p.stall());
    const drop = () => {
      if (!conns.delete(conn)) return;
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('error', drop);
      s.on('close', drop);
    }
  });

  const setStalled = (on: boolean) => {
    if (on === stalled) return;
    stalled = on;
    if (on) {
      current = { at: Date.now() - started, durationMs: 0, connections: conns.size, heldBytes: 0 };
      stats.pauses.push(current);
      for (const c of conns) c.pipes.forEach((p) => p.stall());
    } else {
      if (current) {
        current.durationMs = Date.now() - started - current.at;
        for (const c of conns) for (const p of c.pipes) current.heldBytes += p.buffered();
      }
      current = undefined;
      for (const c of conns) c.pipes.forEach((p) => p.flow());
    }
  };

  // Cycle k: flow from k*everyMs, stall from (k+1)*everyMs - pauseMs to (k+1)*everyMs. Times are
  // taken from the start (not chained), so timer lag does not drift the schedule.
  const schedule = (k: number) => {
    if (scheduleOver) return;
    const stallAt = (k + 1) * options.everyMs - options.pauseMs;
    const flowAt = (k + 1) * options.everyMs;
    if (stallAt >= options.durationMs) return endSchedule();
    timer = setTimeout(
      () => {
        setStalled(true);
        timer = setTimeout(
          () => {
            setStalled(false);
            schedule(k + 1);
          },
          Math.max(0, started + Math.min(flowAt, options.durationMs) - Date.now()),
        );
      },
      Math.max(0, started + stallAt - Date.now()),
    );
  };
  const endSchedule = () => {
    scheduleOver = true;
    if (timer) clearTimeout(timer);
    timer = undefined;
    setStalled(false);
  };

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, LOOPBACK, () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  schedule(0);
  // Bound even if the schedule's own end is missed (e.g. a test that never calls close()).
  const hardStop = setTimeout(endSchedule, options.durationMs + options.everyMs);
  hardStop.unref();

  const cut = () => {
    const n = conns.size;
    for (const c of [...conns]) {
      conns.delete(c);
      c.client.destroy();
      c.server.destroy();
    }
    stats.cuts += n;
    return n;
  };

  return {
    port,
    stats,
    get stalled() {
      return stalled;
    },
    get effectivePauses() {
      return stats.pauses.filter((p) => p.connections > 0).length;
    },
    cut,
    stopStalling: endSchedule,
    async close() {
      endSchedule();
      clearTimeout(hardStop);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      cut();
      await closed;
    },
  };
}
