// Keep-alive client for the reload experiments: C clients, each with its own single keep-alive
// connection (http.Agent keepAlive, maxSockets 1), send GET requests one after another with a short
// idle gap, so that a connection is often idle at the instant the proxy reloads. Bounded by a
// request count and a duration. Prints one JSON line: sent, ok, errors by code, and how many errors
// happened on a reused connection (the case a reload can cause) or on a fresh one.
// Usage: node ka-client.mjs URL [clients=8] [durationMs=10000] [maxRequests=20000] [gapMs=20]
import http from 'node:http';

const [url, clients = '8', durationMs = '10000', maxRequests = '20000', gapMs = '20'] = process.argv.slice(2);
if (!url || !/^http:\/\/127\.0\.0\.1:\d+\//.test(url)) {
  console.error('usage: node ka-client.mjs http://127.0.0.1:PORT/path [clients] [durationMs] [maxRequests] [gapMs]');
  process.exit(2);
}
const deadline = Date.now() + Number(durationMs);
const max = Number(maxRequests);
const gap = Number(gapMs);
const stats = { sent: 0, ok: 0, non2xx: 0, errors: {}, errorsOnReused: 0, errorsOnFresh: 0, firstErrors: [] };
const t0 = Date.now();

function one(agent) {
  return new Promise((resolve) => {
    const req = http.get(url, { agent, timeout: 10000 }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode >= 200 && res.statusCode < 300) stats.ok++;
        else stats.non2xx++;
        resolve();
      });
      res.on('error', (e) => fail(e, req, resolve));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e) => fail(e, req, resolve));
  });
}

function fail(e, req, resolve) {
  const code = e.code || e.message;
  stats.errors[code] = (stats.errors[code] || 0) + 1;
  if (req.reusedSocket) stats.errorsOnReused++;
  else stats.errorsOnFresh++;
  if (stats.firstErrors.length < 5) stats.firstErrors.push({ atMs: Date.now() - t0, code, reused: req.reusedSocket });
  resolve();
}

async function client() {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  while (Date.now() < deadline && stats.sent < max) {
    stats.sent++;
    await one(agent);
    await new Promise((r) => setTimeout(r, gap));
  }
  agent.destroy();
}

await Promise.all(Array.from({ length: Number(clients) }, client));
console.log(JSON.stringify({ ...stats, ms: Date.now() - t0 }));
