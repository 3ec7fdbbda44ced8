/**
 * Round trips to the host: every call that waits for the host's answer (a command, a file read or
 * write, a stream opened to a socket) costs at least one network round trip, and a runner far from
 * its host pays each one in full. Counting them per batch and per deploy shows where latency goes.
 */
import type { Duplex } from 'node:stream';
import type { ExecOptions, ExecResult, Remote } from './remote.js';

export type RoundTripKind = 'exec' | 'read' | 'write' | 'stream';

/** A running count of round trips by kind, and by the phase of the deploy they were made in. */
export class RoundTrips {
  readonly byKind: Record<RoundTripKind, number> = { exec: 0, read: 0, write: 0, stream: 0 };
  private readonly marks: Array<{ phase: string; at: Record<RoundTripKind, number>; atMs: number }> = [];

  /** `phase`: what the first round trips count toward, until the first enter(). */
  constructor(phase?: string) {
    if (phase) this.enter(phase);
  }

  count(kind: RoundTripKind): void {
    this.byKind[kind]++;
  }

  /** From now on, round trips count toward `phase` (until the next enter). */
  enter(phase: string): void {
    this.marks.push({ phase, at: this.snapshot(), atMs: Date.now() });
  }

  /** Round trips and wall time per phase entered, in order of first entry (a phase entered twice sums). */
  byPhase(nowMs = Date.now()): PhaseRoundTrips[] {
    const out = new Map<string, PhaseRoundTrips>();
    this.marks.forEach((m, i) => {
      const next = this.marks[i + 1];
      const count = diff(next ? next.at : this.byKind, m.at);
      const ms = (next ? next.atMs : nowMs) - m.atMs;
      const seen = out.get(m.phase);
      out.set(m.phase, seen ? { phase: m.phase, count: sum(seen.count, count), ms: seen.ms + ms } : { phase: m.phase, count, ms });
    });
    return [...out.values()];
  }

  get total(): number {
    return this.byKind.exec + this.byKind.read + this.byKind.write + this.byKind.stream;
  }

  /** The counts so far. */
  current(): RoundTripCount {
    return { total: this.total, byKind: { ...this.byKind } };
  }

  /** A copy of the counts now, to subtract later (see since). */
  snapshot(): Record<RoundTripKind, number> {
    return { ...this.byKind };
  }

  /** The counts since a snapshot, by kind and in total. */
  since(before: Record<RoundTripKind, number>): RoundTripCount {
    return diff(this.byKind, before);
  }
}

const KINDS: RoundTripKind[] = ['exec', 'read', 'write', 'stream'];

function diff(now: Record<RoundTripKind, number>, before: Record<RoundTripKind, number>): RoundTripCount {
  const byKind = Object.fromEntries(KINDS.map((k) => [k, now[k] - before[k]])) as Record<RoundTripKind, number>;
  return { total: KINDS.reduce((n, k) => n + byKind[k], 0), byKind };
}

function sum(a: RoundTripCount, b: RoundTripCount): RoundTripCount {
  const byKind = Object.fromEntries(KINDS.map((k) => [k, a.byKind[k] + b.byKind[k]])) as Record<RoundTripKind, number>;
  return { total: a.total + b.total, byKind };
}

export interface RoundTripCount {
  total: number;
  byKind: Record<RoundTripKind, number>;
}

export interface PhaseRoundTrips {
  phase: string;
  count: RoundTripCount;
  /** Wall time from entering the phase to the next phase (or to now). */
  ms: number;
}

/** "upload: 2 (exec 2) in 0.4 s": one phase's line for the log. */
export function describePhase(p: PhaseRoundTrips): string {
  return `${p.phase}: ${describeRoundTrips(p.count)} in ${(p.ms / 1000).toFixed(1)} s`;
}

/** "12 (exec 9, stream 3)": the kinds that occurred. */
export function describeRoundTrips(c: RoundTripCount): string {
  const parts = (Object.entries(c.byKind) as Array<[RoundTripKind, number]>).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`);
  return parts.length ? `${c.total} (${parts.join(', ')})` : `${c.total}`;
}

/** The same Remote, each call that waits for the host counted once in `counter`. */
export function countRoundTrips<R extends Remote>(remote: R, counter: RoundTrips): Remote {
  return {
    exec(command: string, options?: ExecOptions): Promise<ExecResult> {
      counter.count('exec');
      return remote.exec(command, options);
    },
    writeFile(path: string, data: string | Buffer, mode?: number, options?: { public?: boolean }): Promise<void> {
      counter.count('write');
      return remote.writeFile(path, data, mode, options);
    },
    readFile(path: string): Promise<string | undefined> {
      counter.count('read');
      return remote.readFile(path);
    },
    openUnixSocket(path: string): Promise<Duplex> {
      counter.count('stream');
      return remote.openUnixSocket(path);
    },
    openTcp(host: string, port: number): Promise<Duplex> {
      counter.count('stream');
      return remote.openTcp(host, port);
    },
    close: () => remote.close(),
  };
}
