/**
 * Helpers shared by rollout.test.ts and proxy.test.ts: the summary's timeline, HAProxy's Runtime
 * API on the host (as root, straight to the unix socket), container IPs, and raw HTTP requests.
 */
import http from 'node:http';
import net from 'node:net';
import assert from 'node:assert/strict';
import { get } from '../load.js';
import { sh } from '../harness.js';

export interface SummaryEvent {
  t: number;
  action: string;
  service: string;
  container: string;
  detail: string;
}

/** The rows of the "Rollout timeline" table of the job summary. */
export function summaryTimeline(summary: string): SummaryEvent[] {
  const out: SummaryEvent[] = [];
  for (const line of summary.split('\n')) {
    const m = /^\| \+(-?[\d.]+) s \| ([a-z-]+) \| (.*?) \| (.*?) \| (.*) \|$/.exec(line);
    if (m) out.push({ t: Number(m[1]), action: m[2]!, service: m[3]!.trim(), container: m[4]!.trim(), detail: m[5]!.trim() });
  }
  return out;
}

/** The host path of the sample stack's HAProxy admin socket for a project. */
export function adminSocket(project: string): string {
  return `/home/deploy/handoff/${project}/app/deploy/run/admin.sock`;
}

/** One Runtime API command over the unix socket; resolves with the whole answer. */
export function haproxy(socketPath: string, command: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath);
    let text = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`haproxy '${command}' timed out`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${command}\n`));
    sock.on('data', (d) => (text += d));
    sock.on('end', () => {
      clearTimeout(timer);
      resolve(text);
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

export interface Slot {
  backend: string;
  server: string;
  addr: string;
  opState: number;
  adminState: number;
}

/** `show servers state BACKEND`, parsed (format version 1). */
export async function serversState(socketPath: string, backend = 'app'): Promise<Slot[]> {
  const text = await haproxy(socketPath, `show servers state ${backend}`);
  const slots: Slot[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim() || line.startsWith('#') || /^\d+$/.test(line.trim())) continue;
    const f = line.trim().split(/\s+/);
    if (f.length < 7) continue;
    slots.push({ backend: f[1]!, server: f[3]!, addr: f[4]!, opState: Number(f[5]), adminState: Number(f[6]) });
  }
  return slots;
}

/** IPv4 addresses of a project's running containers of a service, by container id. */
export async function serviceIps(project: string, service: string): Promise<Map<string, string>> {
  const ids = (
    await sh(
      `docker ps -q --no-trunc --filter label=com.docker.compose.project=${project} --filter label=com.docker.compose.service=${service}`,
    )
  )
    .split('\n')
    .filter(Boolean);
  const out = new Map<string, string>();
  for (const id of ids) {
    const ip =
      (await sh(`docker inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}' ${id}`)).trim().split(/\s+/)[0] ?? '';
    out.set(id, ip);
  }
  return out;
}

/** Wait until the proxy answers 200 with the given version (a fresh stack needs DNS + checks). */
export async function waitServing(port: number, version: string, timeoutMs = 30_000, streak = 1): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  let inARow = 0;
  while (Date.now() < deadline) {
    try {
      const r = await get(port);
      last = `${r.status} ${r.version}`;
      inARow = r.status === 200 && r.version === version ? inARow + 1 : 0;
      if (inARow >= streak) return;
    } catch (e) {
      last = e;
      inARow = 0;
    }
    await new Promise((r) => setTimeout(r, streak > 1 ? 100 : 200));
  }
  assert.fail(`the proxy on ${port} did not serve ${version} ${streak} time(s) in a row within ${timeoutMs} ms (last: ${String(last)})`);
}

export interface RawAnswer {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
  start: number;
  end: number;
}

/** One request on a fresh connection or the given agent, with status, body and headers. */
export function request(
  port: number,
  options: { path?: string; method?: string; body?: string; agent?: http.Agent | false; timeoutMs?: number; host?: string } = {},
): Promise<RawAnswer> {
  const start = Date.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: options.host ?? '127.0.0.1',
        port,
        path: options.path ?? '/',
        method: options.method ?? 'GET',
        agent: options.agent ?? false,
        timeout: options.timeoutMs ?? 10_000,
        headers: options.body !== undefined ? { 'Content-Type': 'text/plain' } : {},
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers, start, end: Date.now() }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** Samples `docker ps` for a service until stopped: the most containers seen running at once. */
export function watchRunning(project: string, service: string, everyMs = 150) {
  let max = 0;
  let samples = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const n = (
        await sh(
          `docker ps -q --filter label=com.docker.compose.project=${project} --filter label=com.docker.compose.service=${service}`,
        ).catch(() => '')
      )
        .split('\n')
        .filter(Boolean).length;
      samples++;
      max = Math.max(max, n);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { max, samples };
    },
  };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The APP_VERSION baked into a container's image (robust to the bench re-importing an image under the same tag). */
export async function containerVersion(id: string): Promise<string> {
  const env = (await sh(`docker inspect --format '{{range .Config.Env}}{{println .}}{{end}}' ${id}`)).split('\n');
  return env.find((l) => l.startsWith('APP_VERSION='))?.slice('APP_VERSION='.length) ?? '';
}
