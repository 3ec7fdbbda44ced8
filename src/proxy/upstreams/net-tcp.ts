/**
 * The proxy-independent completion check of a drain, pure part: the TCP tables of an old replica's
 * network namespace (/proc/<pid>/net/tcp and tcp6, as netTcpCommand prints them) and the ESTABLISHED
 * connections on the app port whose peer is the proxy. None left, twice 1 s apart: every request
 * the proxy sent there has its answer (a proxy keeps a connection open until the response is done).
 */

export interface TcpSocket {
  localIp: string;
  localPort: number;
  remoteIp: string;
  remotePort: number;
  /** The kernel's state number: 1 is ESTABLISHED. */
  state: number;
}

export const TCP_ESTABLISHED = 1;

/** An IPv4 address as /proc/net/tcp prints it: 8 hex digits, little-endian (0100007F is 127.0.0.1). */
function ipv4FromHex(hex: string): string {
  const n = hex.match(/../g)!.map((b) => parseInt(b, 16));
  return [n[3], n[2], n[1], n[0]].join('.');
}

/** tcp6: 32 hex digits, four little-endian words. v4-mapped (::ffff:a.b.c.d) become a.b.c.d; others stay hex. */
function ipFromHex(hex: string): string {
  if (hex.length === 8) return ipv4FromHex(hex);
  if (hex.length === 32 && /^0{16}FFFF0000$/i.test(hex.slice(0, 24))) return ipv4FromHex(hex.slice(24));
  return hex.toUpperCase();
}

/** Every socket line of /proc/net/tcp or tcp6 text (header lines and anything else skipped). */
export function parseNetTcp(text: string): TcpSocket[] {
  const out: TcpSocket[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*\d+:\s+([0-9A-Fa-f]+):([0-9A-Fa-f]{4})\s+([0-9A-Fa-f]+):([0-9A-Fa-f]{4})\s+([0-9A-Fa-f]{2})\s/.exec(line);
    if (!m) continue;
    out.push({
      localIp: ipFromHex(m[1]!),
      localPort: parseInt(m[2]!, 16),
      remoteIp: ipFromHex(m[3]!),
      remotePort: parseInt(m[4]!, 16),
      state: parseInt(m[5]!, 16),
    });
  }
  return out;
}

/** netTcpCommand's output: per container id, its pid (0: not running) and its sockets. */
export function parseNetTcpByContainer(text: string): Map<string, { pid: number; sockets: TcpSocket[] }> {
  const out = new Map<string, { pid: number; sockets: TcpSocket[] }>();
  let current: { pid: number; lines: string[] } | undefined;
  const flush = (id: string | undefined) => {
    if (id && current) out.set(id, { pid: current.pid, sockets: parseNetTcp(current.lines.join('\n')) });
  };
  let id: string | undefined;
  for (const line of text.split('\n')) {
    const h = /^== (\S+) (\d+)\s*$/.exec(line);
    if (h) {
      flush(id);
      id = h[1]!;
      current = { pid: Number(h[2]), lines: [] };
    } else current?.lines.push(line);
  }
  flush(id);
  return out;
}

/** ESTABLISHED connections to `port` from one of `peers` (the proxy's IPs). */
export function connectionsFrom(sockets: readonly TcpSocket[], port: number, peers: ReadonlySet<string>): number {
  return sockets.filter((s) => s.state === TCP_ESTABLISHED && s.localPort === port && peers.has(s.remoteIp)).length;
}
