import http from 'node:http';
import tls from 'node:tls';
import { Duplex } from 'node:stream';

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
        if (!this.tlsOptions) {
          const socket = socketLike(stream);
          // As net.createConnection does: the agent's idle limit, counted from the last byte either way.
          if (options.timeout) socket.setTimeout(options.timeout);
          return callback?.(null, socket);
        }
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
 * A dialed stream (an ssh2 channel) as the client net.Socket the agent and ClientRequest expect.
 * An ssh2 channel differs where the keep-alive pool relies on a socket:
 * - Channel.destroy() only sends EOF and CLOSE: `destroyed` stays false and 'close' comes when the
 *   server answers (a round trip through sshd, later still on a busy main thread). A pooled channel
 *   the agent had closed at its idle limit thus stayed in the pool looking alive, and the agent gave
 *   it to the next request, which hung until 'close' and failed as "socket hang up" without having
 *   been sent. Here destroy() is a stream's: `destroyed` at once and 'close' on the next tick, so
 *   the agent skips and drops it as it does a net.Socket; the channel closes behind it.
 * - it stays half-open after the server's EOF (allowHalfOpen) where a net.Socket closes: the pool
 *   kept a connection the server had closed. Here the peer's EOF ends and then destroys the socket.
 * - no setTimeout: here it has net.Socket's semantics (an idle timer refreshed by traffic in either
 *   direction, `timeout` set, setTimeout(0, cb) removes cb), so the agent's idle limit for pooled
 *   connections counts idle time and listeners do not pile up.
 * - setKeepAlive, setNoDelay, ref and unref exist (no-ops: the SSH connection carries the bytes).
 */
export function socketLike(stream: Duplex): TunnelSocket {
  return new TunnelSocket(stream);
}

export class TunnelSocket extends Duplex {
  timeout = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly channel: Duplex;

  constructor(channel: Duplex) {
    super({ allowHalfOpen: false });
    this.channel = channel;
    channel.on('data', (chunk: Buffer) => {
      this.touch();
      if (!this.push(chunk)) channel.pause();
    });
    channel.once('end', () => this.push(null));
    // ssh2 emits 'close' after 'end'; a channel that closed without it (the SSH connection died) ends here too.
    channel.once('close', () => {
      if (!this.readableEnded) this.push(null);
      this.read(0);
    });
    channel.on('error', (err: Error) => this.destroy(err));
    // The peer's EOF, once read: a client net.Socket (allowHalfOpen false) closes then.
    this.once('end', () => this.destroy());
    // An error after the agent let go of the socket (no listener left) must not crash the prober.
    this.on('error', () => {});
  }

  override _read(): void {
    this.channel.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: (err?: Error | null) => void): void {
    this.touch();
    this.channel.write(chunk, encoding, callback);
  }

  override _final(callback: (err?: Error | null) => void): void {
    this.channel.end();
    callback();
  }

  override _destroy(err: Error | null, callback: (err?: Error | null) => void): void {
    clearTimeout(this.idleTimer);
    this.channel.destroy();
    callback(err);
  }

  /** net.Socket's: 'timeout' after `ms` without traffic; 0 disarms (and removes `callback`). */
  setTimeout(ms: number, callback?: () => void): this {
    this.timeout = ms;
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    if (ms === 0) {
      if (callback) this.removeListener('timeout', callback);
      return this;
    }
    if (callback) this.once('timeout', callback);
    if (!this.destroyed) this.idleTimer = setTimeout(() => this.emit('timeout'), ms).unref();
    return this;
  }

  setKeepAlive(): this {
    return this;
  }

  setNoDelay(): this {
    return this;
  }

  ref(): this {
    return this;
  }

  unref(): this {
    return this;
  }

  private touch(): void {
    this.idleTimer?.refresh();
  }
}
