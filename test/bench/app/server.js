// handoff bench test app: plain Node.js, no dependencies (runs inside handoff-test-app images).
//
// Env knobs:
//   PORT (8080), HOST (0.0.0.0), APP_VERSION ("dev")
//   HEALTH_FAIL=1            GET /health always answers 503
//   HEALTH_FAIL_AFTER=<s>    GET /health answers 503 once <s> seconds have passed since start
//   CRASH_AFTER=<s>          the process exits with code 1 <s> seconds after start
//   STARTUP_DELAY=<s>        wait <s> seconds before listening
//   SHUTDOWN_TIMEOUT=<s>     hard exit (code 1) <s> seconds after SIGTERM/SIGINT (default 10)
//
// Routes: GET / , GET /health , GET /slow?ms=N , GET /stream?ms=N , POST /echo[?ms=N]. Every response carries
// X-Served-By (hostname) and X-App-Version. /stream sends its headers and a first chunk at once and
// the rest after N ms (a large response being produced): a stop in between cuts it, and no proxy
// can retry a response that has started. On SIGTERM/SIGINT: stop accepting connections, close
// idle keep-alive connections, finish in-flight requests with `Connection: close`, exit 0.

// ES module (the repo's package.json says "type": "module"; the image ships /app/package.json too).
import http from 'node:http';
import os from 'node:os';

const startedAt = Date.now();
const PORT = Number(process.env.PORT || 8080);
const HOST = process.env.HOST || '0.0.0.0';
const VERSION = process.env.APP_VERSION || 'dev';
const HOSTNAME = os.hostname();

function seconds(name) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) {
    log(`ignoring invalid ${name}=${JSON.stringify(raw)}`);
    return undefined;
  }
  return n;
}

function log(msg) {
  process.stdout.write(`${new Date().toISOString()} [app ${VERSION} ${HOSTNAME} pid=${process.pid}] ${msg}\n`);
}

const HEALTH_FAIL = process.env.HEALTH_FAIL === '1' || process.env.HEALTH_FAIL === 'true';
const HEALTH_FAIL_AFTER = seconds('HEALTH_FAIL_AFTER');
const CRASH_AFTER = seconds('CRASH_AFTER');
const STARTUP_DELAY = seconds('STARTUP_DELAY') || 0;
const SHUTDOWN_TIMEOUT = seconds('SHUTDOWN_TIMEOUT') ?? 10;

let shuttingDown = false;
let inFlight = 0;
let server = null;

function send(res, status, body, headers) {
  if (res.writableEnded || res.destroyed) return;
  const h = Object.assign({ 'Content-Type': 'text/plain; charset=utf-8' }, headers || {});
  // Decide on Connection: close at answer time, so requests that were in flight when SIGTERM
  // arrived are told not to reuse the connection.
  if (shuttingDown) h.Connection = 'close';
  const buf = Buffer.isBuffer(body) ? body : Buffer.from(String(body));
  h['Content-Length'] = String(buf.length);
  res.writeHead(status, h);
  res.end(buf);
}

function healthy() {
  if (HEALTH_FAIL) return false;
  if (HEALTH_FAIL_AFTER !== undefined && Date.now() - startedAt >= HEALTH_FAIL_AFTER * 1000) return false;
  return true;
}

function handle(req, res) {
  inFlight++;
  res.on('close', () => { inFlight--; });
  res.setHeader('X-Served-By', HOSTNAME);
  res.setHeader('X-App-Version', VERSION);
  const url = new URL(req.url || '/', 'http://localhost');
  const base = `version=${VERSION} host=${HOSTNAME}`;
  const method = req.method || 'GET';
  const isGet = method === 'GET' || method === 'HEAD';

  if (url.pathname === '/echo') {
    if (method !== 'POST') {
      req.resume();
      return send(res, 405, 'method not allowed\n', { Allow: 'POST' });
    }
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const headers = {};
      if (req.headers['content-type']) headers['Content-Type'] = req.headers['content-type'];
      else headers['Content-Type'] = 'application/octet-stream';
      // ?ms=N: answer N ms after the body arrived (a slow POST, in flight on the replica meanwhile).
      const ms = Number(url.searchParams.get('ms') || 0);
      if (!(ms > 0)) return send(res, 200, Buffer.concat(chunks), headers);
      const t = setTimeout(() => send(res, 200, Buffer.concat(chunks), headers), ms);
      res.on('close', () => clearTimeout(t));
    });
    req.on('error', () => res.destroy());
    return;
  }

  req.resume();
  if (!isGet) return send(res, 405, 'method not allowed\n', { Allow: 'GET, HEAD' });

  switch (url.pathname) {
    case '/':
      return send(res, 200, `${base}\n`);
    case '/health':
      return healthy() ? send(res, 200, 'ok') : send(res, 503, 'unhealthy');
    case '/slow': {
      const q = url.searchParams.get('ms');
      let ms = q === null || q === '' ? 1000 : Number(q);
      if (!Number.isFinite(ms) || ms < 0) ms = 1000;
      const t = setTimeout(() => send(res, 200, `${base} slow=${ms}\n`), ms);
      res.on('close', () => clearTimeout(t));
      return;
    }
    case '/stream': {
      const q = url.searchParams.get('ms');
      let ms = q === null || q === '' ? 1000 : Number(q);
      if (!Number.isFinite(ms) || ms < 0) ms = 1000;
      const head = `${base} stream=${ms} start\n`;
      const tail = `${base} stream=${ms} end\n`;
      res.writeHead(200, {
        'Content-Type': 'text/plain; charset=utf-8',
        'Content-Length': String(Buffer.byteLength(head) + Buffer.byteLength(tail)),
        ...(shuttingDown ? { Connection: 'close' } : {}),
      });
      res.write(head);
      const t = setTimeout(() => res.end(tail), ms);
      res.on('close', () => clearTimeout(t));
      return;
    }
    default:
      return send(res, 404, 'not found\n');
  }
}

function exit(code, why) {
  log(`exit code=${code} (${why})`);
  process.exit(code);
}

function shutdown(signal) {
  if (shuttingDown) {
    log(`${signal} received again, still draining (${inFlight} in flight)`);
    return;
  }
  shuttingDown = true;
  log(`${signal} received: closing listener, ${inFlight} request(s) in flight`);
  const hard = setTimeout(() => exit(1, `shutdown timeout ${SHUTDOWN_TIMEOUT}s, ${inFlight} request(s) cut`), SHUTDOWN_TIMEOUT * 1000);
  hard.unref();
  if (!server || !server.listening) return exit(0, `${signal} before listening`);
  server.close(() => exit(0, `${signal}, drained`));
  server.closeIdleConnections();
}

process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));

if (CRASH_AFTER !== undefined) {
  setTimeout(() => exit(1, `CRASH_AFTER=${CRASH_AFTER}`), CRASH_AFTER * 1000);
}

function listen() {
  if (shuttingDown) return;
  server = http.createServer(handle);
  server.keepAliveTimeout = 65000; // longer than the proxy's idle timeouts: the proxy closes first
  server.headersTimeout = 66000;
  server.on('error', (err) => {
    log(`server error: ${err && err.message}`);
    process.exit(1);
  });
  server.listen(PORT, HOST, () => {
    log(`listening on ${HOST}:${PORT} version=${VERSION} host=${HOSTNAME}` +
      (HEALTH_FAIL ? ' HEALTH_FAIL=1' : '') +
      (HEALTH_FAIL_AFTER !== undefined ? ` HEALTH_FAIL_AFTER=${HEALTH_FAIL_AFTER}` : '') +
      (CRASH_AFTER !== undefined ? ` CRASH_AFTER=${CRASH_AFTER}` : '') +
      (STARTUP_DELAY ? ` STARTUP_DELAY=${STARTUP_DELAY}` : ''));
  });
}

log(`starting version=${VERSION} port=${PORT}${STARTUP_DELAY ? `, listening in ${STARTUP_DELAY}s` : ''}`);
if (STARTUP_DELAY > 0) setTimeout(listen, STARTUP_DELAY * 1000);
else listen();
