// The bench's stand-in for systemd's healthcheck timers under Podman (plain JS: runs on any Node).
// Podman 4.3 schedules each container's healthcheck as a systemd transient timer that runs
// `podman healthcheck run <id>` every interval; the bench VM has no systemd (PID 1 is not systemd),
// so health would stay `starting` forever. This runs the same check through Podman's API
// (GET /libpod/containers/<id>/healthcheck: run it, update .State.Health, emit health_status) for
// every running container with a healthcheck, once per its interval from its start, like the timer.
// Usage: node podman-health-ticker.mjs [socket]   (default /run/podman/podman.sock; runs until killed)
import http from 'node:http';

const socketPath = process.argv[2] || '/run/podman/podman.sock';
const TICK_MS = 250;
// The list of running containers is read at most once a second (a new container's first check is
// due one interval after its start anyway): idle, the ticker and the service cost ~1% of a core.
const REFRESH_MS = 1000;
let refreshedAt = 0;
/** id -> { intervalMs, next } for running containers with a healthcheck; null for those without. */
const known = new Map();
const busy = new Set();

function api(path, timeoutMs = 30_000) {
  return new Promise((resolve) => {
    const req = http.request({ socketPath, path: `/v4.0.0/libpod${path}`, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', () => resolve({ status: 0, body: '' }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end();
  });
}

async function refresh() {
  const r = await api('/containers/json?filters=' + encodeURIComponent(JSON.stringify({ status: ['running'] })));
  if (r.status !== 200) return;
  const running = new Set(JSON.parse(r.body).map((c) => c.Id));
  for (const id of known.keys()) if (!running.has(id)) known.delete(id);
  for (const id of running) {
    if (known.has(id)) continue;
    const c = await api(`/containers/${id}/json`);
    if (c.status !== 200) continue;
    const hc = JSON.parse(c.body).Config?.Healthcheck;
    const usable = hc?.Test?.length && hc.Test[0] !== 'NONE';
    // Podman's default interval is 30 s; the first check runs one interval after the start.
    const intervalMs = usable ? Math.max(TICK_MS, (hc.Interval || 30e9) / 1e6) : 0;
    known.set(id, usable ? { intervalMs, next: Date.now() + intervalMs } : null);
  }
}

async function tick() {
  if (Date.now() - refreshedAt >= REFRESH_MS) {
    refreshedAt = Date.now();
    await refresh().catch(() => {});
  }
  const now = Date.now();
  for (const [id, hc] of known) {
    if (!hc || busy.has(id) || now < hc.next) continue;
    hc.next = now + hc.intervalMs;
    busy.add(id);
    void api(`/containers/${id}/healthcheck`, 120_000).finally(() => busy.delete(id));
  }
}

for (;;) {
  const started = Date.now();
  await tick();
  await new Promise((r) => setTimeout(r, Math.max(10, TICK_MS - (Date.now() - started))));
}
