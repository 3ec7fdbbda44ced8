/**
 * A user-space TCP proxy on loopback that adds round-trip time: every chunk is held `rttMs / 2` in
 * each direction before it is forwarded (in order), so a runner beside its host measures like one
 * far away. Put in front of the bench sshd, it makes every SSH round trip cost `rttMs` more.
 */
import net from 'node:net';

export interface DelayProxy {
  readonly port: number;
  /** Connections accepted so far. */
  readonly connections: number;
  close(): Promise<void>;
}

/** Listen on 127.0.0.1 (a kernel-chosen port) and forward to `target` with `rttMs` added. */
export async function startDelayProxy(target: { host: string; port: number }, rttMs: number): Promise<DelayProxy> {
  if (target.host !== '127.0.0.1') throw new Error('the delay proxy forwards to loopback only');
  const oneWay = rttMs / 2;
  const sockets = new Set<net.Socket>();
  let connections = 0;
  const server = net.createServer((client) => {
    connections++;
    const upstream = net.connect(target.port, target.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.setNoDelay(true);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    delayed(client, upstream, oneWay);
    delayed(upstream, client, oneWay);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get connections() {
      return connections;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** src → dst, each chunk (and the end) `ms` later: timers of equal delay fire in order. */
function delayed(src: net.Socket, dst: net.Socket, ms: number): void {
  src.on('data', (chunk: Buffer) => setTimeout(() => dst.destroyed || dst.write(chunk), ms));
  src.on('end', () => setTimeout(() => dst.destroyed || dst.end(), ms));
}
