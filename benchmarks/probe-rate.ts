/**
 * How fast can the prober send on this machine, and how punctually?
 * Starts a small HTTP server on 127.0.0.1 in a child process (so it does not share the prober's
 * event loop), runs the prober at several rates for ~10 s each, and prints achieved vs requested
 * rate, the late-send share, and the prober process's CPU and memory.
 *
 * With busy=N, N processes spin on the CPU for the whole run (bounded by its length), as other jobs
 * on a shared runner would: the prober then falls behind, and this shows by how much.
 *
 *   node --import tsx benchmarks/probe-rate.ts [seconds=10] [rates=50,200,500] [busy=0]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { startProbe } from '../src/probe/prober.js';
import { summarizeRun } from '../src/probe/stats.js';

const seconds = Number(process.argv[2] ?? 10);
const rates = (process.argv[3] ?? '50,200,500').split(',').map(Number);
const busyLoops = Number(process.argv[4] ?? 0);
const busyMs = (seconds + 2) * rates.length * 1000 + 5000;
const busy = Array.from({ length: busyLoops }, () =>
  spawn(process.execPath, ['-e', `const end = Date.now() + ${busyMs}; while (Date.now() < end) {}`], { stdio: 'ignore' }),
);

const serverSource = `
const http = require('node:http');
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain', 'x-served-by': 'bench-1', 'x-app-version': 'v1' });
  res.end('ok MARK');
});
server.listen(0, '127.0.0.1', () => process.stdout.write(server.address().port + '\\n'));
process.stdin.on('end', () => process.exit(0)); // exits with its parent
process.stdin.resume();
`;

const child = spawn(process.execPath, ['-e', serverSource], { stdio: ['pipe', 'pipe', 'inherit'] });
const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
const port = Number(chunk.toString().trim());

interface Row {
  rate: number;
  scheduled: number;
  sent: number;
  achieved: number;
  lost: number;
  unmeasured: number;
  lateShare: number;
  lagP99: number | null;
  p50: number | null;
  p99: number | null;
  cpuPercent: number;
  rssMaxMb: number;
  heapMaxMb: number;
}

const rows: Row[] = [];
for (const rate of rates) {
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  let rssMax = 0;
  let heapMax = 0;
  const sampler = setInterval(() => {
    const m = process.memoryUsage();
    rssMax = Math.max(rssMax, m.rss);
    heapMax = Math.max(heapMax, m.heapUsed);
  }, 250);
  const result = await startProbe({
    url: `http://127.0.0.1:${port}/health`,
    rate,
    timeoutMs: 2000,
    bodyMarker: 'MARK',
    maxDurationMs: seconds * 1000,
  }).finished;
  clearInterval(sampler);
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - wall0;
  const s = summarizeRun(result);
  rows.push({
    rate,
    scheduled: s.total.scheduled,
    sent: s.total.sent,
    achieved: s.total.sent / (s.durationMs / 1000),
    lost: s.total.lost,
    unmeasured: s.total.unmeasured,
    lateShare: s.late.share,
    lagP99: s.late.lagP99,
    p50: s.total.latency.p50,
    p99: s.total.latency.p99,
    cpuPercent: ((cpu.user + cpu.system) / 1000 / wallMs) * 100,
    rssMaxMb: rssMax / 2 ** 20,
    heapMaxMb: heapMax / 2 ** 20,
  });
  // Let the server's side of the closed connections settle between runs.
  await new Promise((r) => setTimeout(r, 1000));
}
child.stdin!.end();
for (const b of busy) b.kill('SIGKILL');

const f = (n: number | null, d = 1): string => (n === null ? '–' : n.toFixed(d));
console.log(
  `Node ${process.version}, ${seconds} s per rate, server in a child process, both lanes (keep-alive + fresh), ${busyLoops} busy loop(s)\n`,
);
console.log(
  '| requested/s | achieved/s | scheduled | sent | lost | unmeasured | late (>10 ms or not sent) | send lag p99 | latency p50 / p99 | prober CPU | max RSS | max heap |',
);
console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of rows) {
  console.log(
    `| ${r.rate} | ${f(r.achieved)} | ${r.scheduled} | ${r.sent} | ${r.lost} | ${r.unmeasured} | ${f(r.lateShare * 100, 2)} % | ${f(r.lagP99)} ms | ${f(r.p50)} / ${f(r.p99)} ms | ${f(r.cpuPercent)} % | ${f(r.rssMaxMb, 0)} MB | ${f(r.heapMaxMb, 0)} MB |`,
  );
}
