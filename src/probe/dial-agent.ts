import http from 'node:http';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';

/** Opens a byte stream to host:port, e.g. through an SSH tunnel (Remote.openTcp). */
export type Dial = (host: string, port: number) => Promise<Duplex>;

export interface DialAgentOptions extends http.AgentOptions {
  dial: Dial;
  /** Wrap each dialed stream in TLS (for https:// URLs). */
  tls?: { servername?: string; rejectUnauthorized?: boolean; ca?: string | Buffer };
}

/**
 * An http.Agent whose connections come from an async dial function instead of net.connect.
 * Node's Agent accepts a createConnection that answers through its callback, so pooling,
 * keep-alive and maxSockets work as with ordinary sockets.
 */
export class DialAgent extends http.Agent {
  private readonly dial: Dial;
  private readonly tlsOptions: DialAgentOptions['tls'];

  constructor(options: DialAgentOptions) {
    const { dial, tls: tlsOptions, ...agentOptions } = options;
    super(agentOptions);
    this.dial = dial;
    this.tlsOptions = tlsOptions;
    // ClientRequest checks the URL's protocol against the agent's.
    (this as unknown as { protocol: string }).protocol = tlsOptions ? 'https:' : 'http:';
  }

  override createConnection(
    options: http.ClientRequestArgs,
    callback?: (err: Error | null, stream: Duplex) => void,
  ): Duplex | null | undefined {
    const host = options.host ?? options.hostname ?? 'localhost';
    const port = Number(options.port ?? (this.tlsOptions ? 443 : 80));
    this.dial(host, port).then(
      (stream) => {
        if (!this.tlsOptions) return callback?.(null, socketLike(stream));
        const secure = tls.connect({
          socket: stream,
          servername: this.tlsOptions.servername ?? host,
          rejectUnauthorized: this.tlsOptions.rejectUnauthorized ?? true,
          ca: this.tlsOptions.ca,
        });
        // Hand the TLS socket over at once: a handshake failure then surfaces as the request's error.
        callback?.(null, secure);
      },
      (err: unknown) => callback?.(err instanceof Error ? err : new Error(String(err)), undefined as unknown as Duplex),
    );
    return undefined;
  }
}

/**
 * Make a dialed stream (an ssh2 channel) behave like a client net.Socket where the agent relies on it:
 * - the net.Socket methods the agent and ClientRequest call (setKeepAlive, setNoDelay, setTimeout,
 *   ref, unref) exist; setTimeout only serves the agent's idle limit for pooled connections;
 * - the peer's EOF closes it. A net.Socket does that by itself (allowHalfOpen false), but an SSH
 *   channel stays half-open after sshd's EOF until both sides close, so the agent kept it as a free
 *   keep-alive connection and wrote the next request into it, to hang until its deadline (HAProxy
 *   closes idle client connections after `timeout http-keep-alive`). Destroyed on 'end', it is
 *   skipped by the agent at once; a request still waiting on it fails as a real error would.
 * - an error after the agent let go of it (no listener left) does not crash the prober.
 */
export function socketLike(stream: Duplex): Duplex {
  const s = stream as Duplex & Record<string, unknown>;
  for (const name of ['setKeepAlive', 'setNoDelay', 'ref', 'unref']) {
    if (typeof s[name] !== 'function')
      s[name] = function (this: unknown) {
        return this;
      };
  }
  if (typeof s.setTimeout !== 'function') {
    // The agent arms this when the connection goes back to the pool, and closes a pooled one on
    // 'timeout' (its idle limit); requests have their own deadline, so the timer is not reset by traffic.
    let timer: NodeJS.Timeout | undefined;
    s.setTimeout = function (this: Duplex, ms: number, callback?: () => void) {
      clearTimeout(timer);
      if (callback) stream.once('timeout', callback);
      if (ms > 0) timer = setTimeout(() => stream.emit('timeout'), ms).unref();
      return this;
    };
    stream.once('close', () => clearTimeout(timer));
  }
  stream.once('end', () => stream.destroy());
  stream.on('error', () => {});
  return stream;
}
