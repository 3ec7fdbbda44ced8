/**
 * Caddy's admin API over its unix socket, reached from the runner through SSH streamlocal
 * forwarding (Remote.openUnixSocket). One HTTP/1.1 request per connection, `Connection: close`.
 * Over a unix socket Caddy 2.6 accepts only an empty Host header (`Host: localhost` answers
 * "host not allowed"; no Host at all is a 400): both verified on the bench.
 */
import type { Duplex } from 'node:stream';

export type StreamOpener = () => Promise<Duplex>;

export interface HttpAnswer {
  status: number;
  body: string;
}

/** The request bytes. Pure. */
export function adminRequest(method: 'GET' | 'POST', path: string, body?: { contentType: string; text: string }): string {
  const head = [`${method} ${path} HTTP/1.1`, 'Host: ', 'Connection: close'];
  if (body) head.push(`Content-Type: ${body.contentType}`, `Content-Length: ${Buffer.byteLength(body.text)}`);
  return `${head.join('\r\n')}\r\n\r\n${body?.text ?? ''}`;
}

/** Status and body of a whole HTTP/1.1 answer (Content-Length or chunked, as Go's server sends them). Pure. */
export function parseHttpAnswer(raw: string): HttpAnswer {
  const end = raw.indexOf('\r\n\r\n');
  const head = end < 0 ? raw : raw.slice(0, end);
  const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
  if (!m) throw new Error(`Caddy admin API: not an HTTP answer: ${JSON.stringify(raw.slice(0, 80))}`);
  let body = end < 0 ? '' : raw.slice(end + 4);
  if (/^transfer-encoding:\s*chunked/im.test(head)) body = dechunk(body);
  return { status: Number(m[1]), body };
}

function dechunk(body: string): string {
  let out = '';
  let rest = body;
  for (;;) {
    const nl = rest.indexOf('\r\n');
    if (nl < 0) break;
    const size = parseInt(rest.slice(0, nl).split(';')[0]!, 16);
    if (!(size > 0)) break;
    out += rest.slice(nl + 2, nl + 2 + size);
    rest = rest.slice(nl + 2 + size + 2);
  }
  return out;
}

/** The error text of a Caddy answer (`{"error":"..."}`), else the body. Pure. */
export function caddyError(body: string): string {
  try {
    const j = JSON.parse(body) as { error?: unknown };
    if (typeof j.error === 'string') return j.error;
  } catch {
    // not JSON: the body as it is
  }
  return body.trim();
}

/** One request to the admin API; rejects when the stream fails or no answer comes within timeoutMs. */
export async function adminCall(
  open: StreamOpener,
  method: 'GET' | 'POST',
  path: string,
  body?: { contentType: string; text: string },
  timeoutMs = 30_000,
): Promise<HttpAnswer> {
  const stream = await open();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stream.destroy();
      if (err) return reject(err);
      try {
        resolve(parseHttpAnswer(Buffer.concat(chunks).toString('utf8')));
      } catch (e) {
        reject(e as Error);
      }
    };
    const timer = setTimeout(() => finish(new Error(`Caddy admin API: no answer to ${method} ${path} within ${timeoutMs} ms`)), timeoutMs);
    stream.on('data', (c: Buffer | string) => chunks.push(typeof c === 'string' ? Buffer.from(c) : c));
    stream.on('end', () => finish());
    stream.on('close', () => finish());
    stream.on('error', (e) => finish(new Error(`Caddy admin API: ${method} ${path}: ${e.message}`)));
    stream.write(adminRequest(method, path, body));
  });
}

/** POST /load with a Caddyfile: 200 once the new config is live; anything else throws Caddy's own message (nothing changed). */
export async function loadCaddyfile(open: StreamOpener, caddyfile: string): Promise<void> {
  const a = await adminCall(open, 'POST', '/load', { contentType: 'text/caddyfile', text: caddyfile });
  if (a.status !== 200) throw new Error(`Caddy rejects the config (HTTP ${a.status}): ${caddyError(a.body)}`);
}
