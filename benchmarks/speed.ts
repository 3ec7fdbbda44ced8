/**
 * How long a v1 -> v2 deploy of the sample stack (examples/: app x3 behind HAProxy, healthcheck every
 * 2 s, monitor 5 s) takes and what it loses, side by side on the bench, with the same load on each:
 *   handoff          the action (dist/), runner beside the host;
 *   handoff-rtt      the same with `rtt` ms of round-trip time added on the SSH link (a user-space
 *                    delay proxy on 127.0.0.1 in front of sshd: benchmarks/delay-proxy.ts);
 *   compose-up       `docker compose up -d` over SSH with the new image (every replica at once);
 *   scale-then-stop  docker-rollout's way: scale to 6 beside the old 3, wait until the new ones are
 *                    healthy, then stop and remove the old ones (no drain);
 *   one-at-a-time    a stop / rm / up script: per replica, stop and remove one old container, `up
 *                    --scale app=3` creates its replacement, wait until healthy, next.
 * Load on each, from this process (src/probe/prober.ts), 5 s before the change until 3 s after:
 * short GETs at `rate`/s on a keep-alive and a fresh-connection lane (2 s deadline), 1 s GETs
 * (/slow?ms=1000) and 1 s POSTs (/echo?ms=1000) at 4/s each (5 s deadline). Reported per strategy:
 * lost per lane, the change's wall time, handoff's own figures (its rollout against the floor,
 * round trips per batch), and the short lanes' p99 before and during the change.
 *
 *   node --import tsx benchmarks/speed.ts [rtt=100] [rate=40] [strategies=all, comma-separated] [dist=dist/]
 *
 * With HANDOFF_BENCH_KEEP=DIR, each handoff run's log and job summary (its rollout timeline) are kept
 * there as <strategy>.log and <strategy>.summary.md.
 *
 * Needs the bench (scripts/bench/setup.sh). Traffic goes to 127.0.0.1 only, every loop is bounded,
 * and every project is removed afterwards.
 */
import { execFile, spawnSync } from 'node:child_process';
import { rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { startProbe } from '../src/probe/prober.js';
import type { ProbeRecord } from '../src/probe/record.js';
import { bench, cleanupProject, freePort, repo, runAction, sampleInputs, sampleWorkspace, uniqueProject } from '../test/e2e/harness.js';
import { waitServing } from '../test/e2e/stacks/helpers.js';
import { startDelayProxy, type DelayProxy } from './delay-proxy.js';

const execFileP = promisify(execFile);
const rtt = Number(process.argv[2] ?? 100);
const rate = Number(process.argv[3] ?? 40);
const ALL = ['handoff', 'handoff-rtt', 'compose-up', 'scale-then-stop', 'one-at-a-time'] as const;
type Strategy = (typeof ALL)[number];
const STRATEGIES = process.argv[4] ? ALL.filter((s) => process.argv[4]!.split(',').includes(s)) : [...ALL];
const dist = process.argv[5] ? resolve(process.argv[5]) : join(repo, 'dist');
const BEFORE_MS = 5000;
const AFTER_MS = 3000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Lanes {
  keepalive: LaneResult;
  fresh: LaneResult;
  slowGet: LaneResult;
  slowPost: LaneResult;
}
interface LaneResult {
  sent: number;
  lost: number;
}
interface Result {
  strategy: Strategy;
  changeMs: number;
  lanes: Lanes;
  p99SteadyMs?: number;
  p99ChangeMs?: number;
  /** handoff's log: "rollout X s, floor Y s (Z x); N round trips to the host in B batch(es) (P per batch)". */
  speedLine?: string;
  deployRoundTrips?: string;
  /** handoff's line per batch: what it took against its floor, its round trips. */
  batchLines?: string[];
  /** handoff's debug lines: the connection's set-up time, then round trips and time per phase. */
  phaseLines?: string[];
}

/** One shell command on the bench host over SSH, as an SSH deploy action runs it. */
async function ssh(remote: string): Promise<void> {
  const b = bench();
  const opts = ['-o', `UserKnownHostsFile=${b.knownHosts}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes'];
  await execFileP('ssh', ['-p', String(b.port), '-i', b.keys.ed25519, ...opts, `${b.user}@${b.host}`, remote], { timeout: 300_000 });
}

/** The scripts of the strategies that are not handoff: the new image in the env file, then their way. */
function script(strategy: Exclude<Strategy, 'handoff' | 'handoff-rtt'>, project: string): string {
  const app = `/home/deploy/handoff/${project}/app`;
  const compose = `docker compose -p ${project} -f ${app}/deploy/compose.yaml --env-file ${app}/.env`;
  const ids = `docker ps -q --filter label=com.docker.compose.project=${project} --filter label=com.docker.compose.service=app`;
  // Every app container healthy (bounded: 120 s).
  const waitHealthy = `i=0; while [ $i -lt 240 ]; do [ "$(docker inspect -f '{{.State.Health.Status}}' $(${ids}) | sort -u)" = healthy ] && break; sleep 0.5; i=$((i+1)); done`;
  const setV2 = `sed -i 's/^APP_IMAGE=.*/APP_IMAGE=handoff-test-app:v2/' ${app}/.env`;
  if (strategy === 'compose-up') return `set -e; ${setV2}; ${compose} up -d`;
  if (strategy === 'scale-then-stop')
    return `set -e; old=$(${ids}); ${setV2}; ${compose} up -d --no-deps --no-recreate --scale app=6 app; ${waitHealthy}; docker stop $old >/dev/null; docker rm $old >/dev/null`;
  return `set -e; old=$(${ids}); ${setV2}; for o in $old; do docker stop $o >/dev/null; docker rm $o >/dev/null; ${compose} up -d --no-deps --no-recreate --scale app=3 app; ${waitHealthy}; done`;
}

/** The three probers: short GETs (keep-alive and fresh), 1 s GETs, 1 s POSTs. */
function startLoad(port: number) {
  const base = `http://127.0.0.1:${port}`;
  const maxDurationMs = 300_000;
  return {
    short: startProbe({ url: `${base}/`, rate, timeoutMs: 2000, bodyMarker: 'version=', maxDurationMs }),
    slowGet: startProbe({ url: `${base}/slow?ms=1000`, rate: 4, lanes: ['keepalive'], timeoutMs: 5000, maxDurationMs }),
    slowPost: startProbe({
      url: `${base}/echo?ms=1000`,
      method: 'POST',
      body: 'payload-of-the-benchmark',
      bodyMarker: 'payload-of-the-benchmark',
      rate: 4,
      lanes: ['keepalive'],
      timeoutMs: 5000,
      maxDurationMs,
    }),
  };
}

function laneOf(records: ProbeRecord[], lane?: string): LaneResult {
  const mine = records.filter((r) => !lane || r.lane === lane);
  return {
    sent: mine.filter((r) => r.outcome !== 'unmeasured').length,
    lost: mine.filter((r) => r.outcome !== 'ok' && r.outcome !== 'unmeasured').length,
  };
}

function p99(records: ProbeRecord[], from: number, to: number): number | undefined {
  const ms = records
    .filter((r) => r.outcome === 'ok' && r.scheduledAt >= from && r.scheduledAt < to && r.latencyMs !== undefined)
    .map((r) => r.latencyMs!)
    .sort((a, b) => a - b);
  return ms.length ? ms[Math.min(ms.length - 1, Math.ceil(ms.length * 0.99) - 1)] : undefined;
}

/** Deploy v1 through handoff, then change it to v2 by `strategy` under load. */
async function lane(strategy: Strategy): Promise<Result> {
  const project = uniqueProject(`speed-${strategy}`);
  const port = freePort();
  const ws = await sampleWorkspace();
  let delay: DelayProxy | undefined;
  try {
    const inputs = (version: string) => sampleInputs(project, port, version);
    const first = await runAction(inputs('v1'), { workspace: ws, dist });
    if (first.code !== 0) throw new Error(`v1 deploy failed (${strategy}):\n${first.log.slice(-3000)}`);
    await waitServing(port, 'v1', 60_000, 20);
    const load = startLoad(port);
    await sleep(BEFORE_MS);
    const t0 = Date.now();
    let log = '';
    if (strategy === 'handoff' || strategy === 'handoff-rtt') {
      let v2 = inputs('v2');
      if (strategy === 'handoff-rtt') {
        const b = bench();
        delay = await startDelayProxy({ host: b.host, port: b.port }, rtt);
        // Another port: the known_hosts line names [127.0.0.1]:2222, so pin by fingerprint.
        const { known_hosts: _k, ...rest } = v2;
        v2 = { ...rest, port: String(delay.port), fingerprint: b.fingerprint } as typeof v2;
      }
      const r = await runAction(v2, { workspace: ws, dist });
      log = r.log;
      // The whole action log and job summary (with the rollout timeline), for reading a run afterwards.
      if (process.env.HANDOFF_BENCH_KEEP) {
        await writeFile(join(process.env.HANDOFF_BENCH_KEEP, `${strategy}.log`), r.log);
        await writeFile(join(process.env.HANDOFF_BENCH_KEEP, `${strategy}.summary.md`), r.summary);
      }
      if (r.code !== 0) throw new Error(`v2 deploy failed (${strategy}):\n${r.log.slice(-3000)}`);
    } else await ssh(script(strategy, project));
    const t1 = Date.now();
    await sleep(AFTER_MS);
    const [short, slowGet, slowPost] = await Promise.all([load.short.stop(), load.slowGet.stop(), load.slowPost.stop()]);
    return {
      strategy,
      changeMs: t1 - t0,
      lanes: {
        keepalive: laneOf(short.records, 'keepalive'),
        fresh: laneOf(short.records, 'fresh'),
        slowGet: laneOf(slowGet.records),
        slowPost: laneOf(slowPost.records),
      },
      p99SteadyMs: p99(short.records, short.startedAt, t0),
      p99ChangeMs: p99(short.records, t0, t1),
      speedLine: /rollout [\d.]+ s, floor .*/.exec(log)?.[0],
      deployRoundTrips: /round trips to the host in this deploy: ([^\n]*)/.exec(log)?.[1],
      batchLines: log.split('\n').filter((l) => /batch \d+\/\d+: (took|failed after)/.test(l)),
      phaseLines: log
        .split('\n')
        .filter((l) => /^::debug::(connected in|round trips in )/.test(l))
        .map((l) => l.replace(/^::debug::(round trips in )?/, '')),
    };
  } finally {
    await delay?.close();
    await cleanupProject(project);
    await rm(ws, { recursive: true, force: true });
  }
}

/** Seconds `node dist/main/index.js` takes to load and stop on its first missing input: the median of 7 loads. */
function bundleLoadS(): number {
  const times = Array.from({ length: 7 }, () => {
    const t = process.hrtime.bigint();
    spawnSync(join(repo, 'node_modules/.bin/node'), [join(dist, 'main/index.js')], { env: { PATH: process.env.PATH }, timeout: 30_000 });
    return Number(process.hrtime.bigint() - t) / 1e9;
  });
  return times.sort((a, b) => a - b)[3];
}

const LABEL: Record<Strategy, string> = {
  handoff: 'handoff',
  'handoff-rtt': `handoff, +${rtt} ms RTT on SSH`,
  'compose-up': '`docker compose up -d`',
  'scale-then-stop': 'scale up, then stop the old',
  'one-at-a-time': 'stop / rm / up, one at a time',
};

function row(r: Result): string {
  const l = (x: LaneResult) => `${x.lost}/${x.sent}`;
  const ms = (x?: number) => (x === undefined ? '—' : `${Math.round(x)} ms`);
  const floor = r.speedLine ? /\(([\d.]+x)\)/.exec(r.speedLine)?.[1] : undefined;
  const perBatch = r.speedLine ? /\(([\d.]+) per batch\)/.exec(r.speedLine)?.[1] : undefined;
  return `| ${LABEL[r.strategy]} | ${l(r.lanes.keepalive)} | ${l(r.lanes.fresh)} | ${l(r.lanes.slowGet)} | ${l(r.lanes.slowPost)} | ${(r.changeMs / 1000).toFixed(1)} s | ${floor ?? '—'} | ${perBatch ?? '—'} | ${ms(r.p99SteadyMs)} / ${ms(r.p99ChangeMs)} |`;
}

const results: Result[] = [];
for (const strategy of STRATEGIES) {
  process.stderr.write(`${strategy}...\n`);
  const r = await lane(strategy);
  process.stderr.write(`  ${row(r)}\n  ${r.speedLine ?? ''}${r.deployRoundTrips ? `; deploy: ${r.deployRoundTrips}` : ''}\n`);
  results.push(r);
}
console.log(`short GETs ${rate}/s (keep-alive + fresh, 2 s deadline); 1 s GETs and 1 s POSTs 4/s each (5 s deadline); dist ${dist}\n`);
console.log(
  '| strategy | lost keep-alive GET | lost fresh GET | lost 1 s GET | lost 1 s POST | change took | handoff: rollout / floor | handoff: round trips per batch | p99 short GET steady / during |',
);
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const r of results) console.log(row(r));
for (const r of results)
  if (r.batchLines?.length) {
    console.log(`\n${LABEL[r.strategy]}: ${r.speedLine ?? ''}; the whole deploy: ${r.deployRoundTrips ?? '?'}`);
    for (const l of r.batchLines) console.log(`    ${l.trim()}`);
    if (r.phaseLines?.length) console.log(`  by phase: ${r.phaseLines.join('; ')}`);
  }
const zero = results.find((r) => r.strategy === 'handoff');
const far = results.find((r) => r.strategy === 'handoff-rtt');
if (zero && far) console.log(`\nhandoff with +${rtt} ms RTT / without: ${(far.changeMs / zero.changeMs).toFixed(2)}x`);
console.log(
  `\nbundle: node ${join(dist, 'main/index.js')} loads and exits on its first missing input in ${bundleLoadS().toFixed(2)} s (median of 7)`,
);
