/**
 * The tests' own witness, independent of the action's probe: a steady, bounded request loop through
 * the proxy on keep-alive and fresh connections, counting every non-2xx answer and connection error.
 */
import http from 'node:http';

export interface LoadResult {
  sent: number;
  ok: number;
  /** `reused`: the request went out on a keep-alive connection used before (a reset there can be the server closing it idle). */
  failures: Array<{ at: number; kind: string; path: string; reused?: boolean }>;
  /** Date.now() when the load started (failures' `at` counts from it). */
  startedAt?: number;
  versions: Map<string, number>;
  /** App version of each ok answer, in order. */
  sequence: string[];
}

export interface LoadOptions {
  port: number;
  /** The proxy's address (default 127.0.0.1). */
  host?: string;
  /** Requests per second, across both lanes. */
  rate?: number;
  /** Hard cap; the loop also stops at stop(). */
  maxDurationMs?: number;
  /** Each request picks its path from this list in turn (e.g. '/', '/slow?ms=1000'). */
  paths?: string[];
  /** POST this body to /echo every n-th request and check it comes back. */
  postEvery?: number;
}

export function startLoad(options: LoadOptions) {
  const rate = options.rate ?? 40;
  const paths = options.paths ?? ['/'];
  const maxMs = options.maxDurationMs ?? 300_000;
  const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const started = Date.now();
  const result: LoadResult = { sent: 0, ok: 0, failures: [], versions: new Map(), sequence: [], startedAt: started };
  const inflight = new Set<Promise<void>>();
  let n = 0;
  let stopped = false;

  const one = (i: number): Promise<void> =>
    new Promise((done) => {
      const post = options.postEvery && i % options.postEvery === 0;
      const path = post ? '/echo' : paths[i % paths.length]!;
      const body = post ? `payload-${i}-${'x'.repeat(i % 200)}` : undefined;
      const fresh = i % 2 === 1;
      const req = http.request(
        {
          host: options.host ?? '127.0.0.1',
          port: options.port,
          path,
          method: post ? 'POST' : 'GET',
          agent: fresh ? false : keepAlive,
          headers: { ...(fresh ? { Connection: 'close' } : {}), ...(body ? { 'Content-Type': 'text/plain' } : {}) },
          timeout: 5000,
        },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c) => (text += c));
          res.on('end', () => {
            const good = res.statusCode! >= 200 && res.statusCode! < 300 && (!body || text === body);
            if (good) {
              result.ok++;
              const v = String(res.headers['x-app-version'] ?? '?');
              result.versions.set(v, (result.versions.get(v) ?? 0) + 1);
              result.sequence.push(v);
            } else {
              result.failures.push({ at: Date.now() - started, kind: body && text !== body ? 'body' : `status ${res.statusCode}`, path });
            }
            done();
          });
          res.on('error', (e) => {
            result.failures.push({ at: Date.now() - started, kind: `cut: ${e.message}`, path });
            done();
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (e) => {
        result.failures.push({
          at: Date.now() - started,
          kind: (e as NodeJS.ErrnoException).code ?? e.message,
          path,
          reused: req.reusedSocket,
        });
        done();
      });
      req.end(body);
    });

  const timer = setInterval(() => {
    if (stopped || Date.now() - started > maxMs) return;
    const due = Math.floor(((Date.now() - started) / 1000) * rate);
    while (n < due) {
      const p = one(n++);
      result.sent++;
      inflight.add(p);
      void p.then(() => inflight.delete(p));
    }
  }, 10);

  return {
    result,
    async stop(): Promise<LoadResult> {
      stopped = true;
      clearInterval(timer);
      await Promise.all([...inflight]);
      keepAlive.destroy();
      return result;
    },
  };
}

/** GET once through the proxy: status, body and version header. */
export function get(port: number, path = '/'): Promise<{ status: number; body: string; version: string; servedBy: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          body,
          version: String(res.headers['x-app-version'] ?? ''),
          servedBy: String(res.headers['x-served-by'] ?? ''),
        }),
      );
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}
