/**
 * Round trips to the host: every call that waits for the host's answer (a command, a file read or
 * write, a stream opened to a socket) costs at least one network round trip, and a runner far from
 * its host pays each one in full. Counting them per batch and per deploy shows where latency goes.
 */
import type { Duplex } from 'node:stream';
import type { ExecOptions, ExecResult, Remote } from './remote.js';

export type RoundTripKind = 'exec' | 'read' | 'write' | 'stream';

/** A running count of round trips by kind. */
export class RoundTrips {
  readonly byKind: Record<RoundTripKind, number> = { exec: 0, read: 0, write: 0, stream: 0 };

  count(kind: RoundTripKind): void {
    this.byKind[kind]++;
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
    const kinds = Object.keys(this.byKind) as RoundTripKind[];
    const byKind = Object.fromEntries(kinds.map((k) => [k, this.byKind[k] - before[k]])) as Record<RoundTripKind, number>;
    return { total: kinds.reduce((n, k) => n + byKind[k], 0), byKind };
  }
}

export interface RoundTripCount {
  total: number;
  byKind: Record<RoundTripKind, number>;
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
    writeFile(path: string, data: string | Buffer, mode?: number): Promise<void> {
      counter.count('write');
      return remote.writeFile(path, data, mode);
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
