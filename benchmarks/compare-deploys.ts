/**
 * Deploy strategies side by side: what a v1 -> v2 deploy of the sample stack (examples/: app x3
 * behind HAProxy) loses with
 *   1. compose-up       what SSH deploy actions do: `docker-compose ... up -d` over SSH with the new
 *                       image in the env file (Compose recreates every replica at once, stop-first);
 *   2. handoff-nodrain  handoff's start-first rollout with no Runtime API (the proxy config has no
 *                       `stats socket`, so handoff runs degraded: retries and health checks only);
 *   3. handoff          the full action: start-first, wait UP, drain through the Runtime API;
 *   4. handoff-caddy    the full action behind Caddy (sid's, 2.11 when written; examples/caddy/, test/e2e/stacks/caddy.yaml);
 *   5. handoff-nginx    the full action behind nginx (sid's, 1.30 when written; examples/nginx/, test/e2e/stacks/nginx.yaml).
 *                       These two stacks stop the app by SIGKILL: only the drain saves requests in flight.
 * Every lane first deploys v1 through handoff (the bundled action, probe off), then changes it to v2
 * while the same open-loop prober (src/probe/prober.ts, in this process) sends traffic through
 * HAProxy: started 3 s before the change, stopped 3 s after the change command returned.
 *
 *   node --import tsx benchmarks/compare-deploys.ts [runs=1] [rate=100] [strategies=all, comma-separated]
 *
 * Needs the bench (scripts/bench/setup.sh). Traffic goes to 127.0.0.1 only; every project is removed
 * afterwards (containers, networks, /home/deploy/handoff/<project>).
 */
import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { startProbe } from '../src/probe/prober.js';
import { summarize, type ProbeSummary } from '../src/probe/stats.js';
import { LOSS_KINDS } from '../src/probe/record.js';
import { bench, cleanupProject, freePort, repo, runAction, sampleInputs, sampleWorkspace, uniqueProject } from '../test/e2e/harness.js';
import { waitServing } from '../test/e2e/stacks/helpers.js';

const execFileP = promisify(execFile);
const runs = Number(process.argv[2] ?? 1);
const rate = Number(process.argv[3] ?? 100);
const WINDOW_MS = 3000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Strategy = 'compose-up' | 'handoff-nodrain' | 'handoff' | 'handoff-caddy' | 'handoff-nginx';
const ALL: Strategy[] = ['compose-up', 'handoff-nodrain', 'handoff', 'handoff-caddy', 'handoff-nginx'];
const STRATEGIES: Strategy[] = process.argv[4] ? (process.argv[4].split(',') as Strategy[]).filter((x) => ALL.includes(x)) : ALL;
const LABEL: Record<Strategy, string> = {
  'compose-up': '1. `docker-compose up -d` (SSH deploy actions)',
  'handoff-nodrain': '2. handoff without drain (no Runtime API)',
  handoff: '3. handoff (drain through the Runtime API)',
  'handoff-caddy': '4. handoff behind Caddy (upstream file, SIGKILL app)',
  'handoff-nginx': '5. handoff behind nginx (upstream file, SIGKILL app)',
};

/** The Caddy or nginx workspace of the e2e tests: examples/<proxy>/ and its stack as deploy/compose.yaml. */
async function proxyWorkspace(kind: 'caddy' | 'nginx'): Promise<string> {
  const ws = await mkdtemp(join(tmpdir(), `handoff-bench-${kind}-`));
  await mkdir(join(ws, 'deploy'));
  await cp(join(repo, 'examples', kind), join(ws, 'deploy', kind), { recursive: true });
  await cp(join(repo, 'test/e2e/stacks', `${kind}.yaml`), join(ws, 'deploy/compose.yaml'));
  return ws;
}

interface Result {
  strategy: Strategy;
  run: number;
  summary: ProbeSummary;
  changeMs: number;
  handoffDurationS?: string;
  /** ms after the change command returned of the last lost request (negative: before). */
  lastLossAfterEndMs?: number;
  /** Versions answering in the last second of the probe. */
  finalVersions: string[];
  degradedWarning?: boolean;
}

/** The change of strategy 1, run the way an SSH deploy action runs it: one remote shell command. */
async function composeUp(project: string): Promise<void> {
  const b = bench();
  const app = `/home/deploy/handoff/${project}/app`;
  const remote =
    `sed -i 's/^APP_IMAGE=.*/APP_IMAGE=handoff-test-app:v2/' ${app}/.env && ` +
    `docker-compose -p ${project} -f ${app}/deploy/compose.yaml --env-file ${app}/.env up -d`;
  await execFileP(
    'ssh',
    [
      '-p',
      String(b.port),
      '-i',
      b.keys.ed25519,
      '-o',
      `UserKnownHostsFile=${b.knownHosts}`,
      '-o',
      'StrictHostKeyChecking=yes',
      '-o',
      'BatchMode=yes',
      `${b.user}@${b.host}`,
      remote,
    ],
    { timeout: 300_000 },
  );
}

/**
 * runAction, again when dist/ was missing for a moment (others rebuild it in this shared checkout:
 * ncc empties the directory first). Bounded: 6 tries.
 */
async function action(inputs: Record<string, string>, workspace: string) {
  for (let i = 0; ; i++) {
    const r = await runAction(inputs, { workspace });
    if (r.code === 0 || i >= 5 || !/Cannot find module '.*dist\//.test(r.log)) return r;
    process.stderr.write('  dist/ is being rebuilt: trying again in 5 s\n');
    await sleep(5000);
  }
}

async function lane(strategy: Strategy, run: number): Promise<Result> {
  const project = uniqueProject(`cmp-${strategy}`);
  const port = freePort();
  const kind = strategy === 'handoff-caddy' ? 'caddy' : strategy === 'handoff-nginx' ? 'nginx' : undefined;
  const ws = kind ? await proxyWorkspace(kind) : await sampleWorkspace();
  try {
    if (strategy === 'handoff-nodrain') {
      const cfg = join(ws, 'deploy/haproxy/haproxy.cfg');
      const text = await readFile(cfg, 'utf8');
      const stripped = text.replace(/^\s*stats socket .*$/m, '    # (stats socket removed for the benchmark: no Runtime API)');
      if (stripped === text) throw new Error('no stats socket line to remove');
      await writeFile(cfg, stripped);
    }
    const inputs = (version: string) => sampleInputs(project, port, version, kind ?? 'haproxy');
    const first = await action(inputs('v1'), ws);
    if (first.code !== 0) throw new Error(`v1 deploy failed (${strategy}):\n${first.log.slice(-3000)}`);
    await waitServing(port, 'v1', 60_000, 20);
    await sleep(1000);

    const probe = startProbe({ url: `http://127.0.0.1:${port}/`, rate, timeoutMs: 2000, bodyMarker: 'version=', maxDurationMs: 300_000 });
    await sleep(WINDOW_MS);
    const t0 = Date.now();
    let handoffDurationS: string | undefined;
    let degradedWarning: boolean | undefined;
    if (strategy === 'compose-up') {
      await composeUp(project);
    } else {
      const r = await action(inputs('v2'), ws);
      if (r.code !== 0) throw new Error(`v2 deploy failed (${strategy}):\n${r.log.slice(-3000)}`);
      handoffDurationS = r.outputs.duration_s;
      degradedWarning = /Runtime API is not reachable/.test(r.log + r.summary);
    }
    const t1 = Date.now();
    await sleep(WINDOW_MS);
    const result = await probe.stop();
    const summary = summarize(result.records, { startedAt: result.startedAt, endedAt: result.endedAt });
    const lostAt = result.records.filter((x) => x.outcome !== 'ok').map((x) => x.sentAt ?? x.scheduledAt);
    const lastSecond = result.records.filter((x) => x.scheduledAt >= result.endedAt - 1000 && x.version);
    return {
      strategy,
      run,
      summary,
      changeMs: t1 - t0,
      handoffDurationS,
      lastLossAfterEndMs: lostAt.length ? Math.max(...lostAt) - t1 : undefined,
      finalVersions: [...new Set(lastSecond.map((x) => x.version!))],
      degradedWarning,
    };
  } finally {
    await cleanupProject(project);
    await rm(ws, { recursive: true, force: true });
  }
}

function lostKinds(s: ProbeSummary): string {
  const parts = LOSS_KINDS.filter((k) => s.total.lostByKind[k] > 0).map((k) => `${k} ${s.total.lostByKind[k]}`);
  return parts.length ? parts.join(', ') : '—';
}

function row(r: Result): string {
  const s = r.summary.total;
  const ka = r.summary.lanes.keepalive.lost;
  const fr = r.summary.lanes.fresh.lost;
  const pct = s.scheduled ? ((100 * s.lost) / s.scheduled).toFixed(1) : '0';
  const p99 = s.latency.p99 === null ? '—' : `${s.latency.p99.toFixed(0)} ms`;
  const dur = `${(r.changeMs / 1000).toFixed(1)} s${r.handoffDurationS ? ` (action: ${r.handoffDurationS} s)` : ''}`;
  const last = r.lastLossAfterEndMs === undefined ? '—' : `${(r.lastLossAfterEndMs / 1000).toFixed(1)} s`;
  return `| ${LABEL[r.strategy]} | ${r.run} | ${s.sent} | ${s.lost} (${pct} %) | ${ka} / ${fr} | ${lostKinds(r.summary)} | ${p99} | ${dur} | ${last} | ${r.finalVersions.join(',') || '—'} |`;
}

const results: Result[] = [];
for (let run = 1; run <= runs; run++) {
  for (const strategy of STRATEGIES) {
    process.stderr.write(`run ${run}: ${strategy}...\n`);
    const r = await lane(strategy, run);
    if (r.strategy === 'handoff-nodrain' && !r.degradedWarning)
      process.stderr.write('  warning: handoff did not report a degraded rollout\n');
    process.stderr.write(`  ${row(r)}\n`);
    if (r.summary.firstLost)
      process.stderr.write(
        `  first lost: ${JSON.stringify(r.summary.firstLost)}; lost per second: ${r.summary.seconds
          .filter((x) => x.lost)
          .map((x) => `${x.second}s:${x.lost}`)
          .join(' ')}\n`,
      );
    results.push(r);
  }
}

const header =
  '| strategy | run | sent | lost | lost keep-alive / fresh | lost by kind | p99 latency (ok) | deploy duration | last loss after end | serving at end |\n' +
  '| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- |';
const ordered = STRATEGIES.flatMap((s) => results.filter((r) => r.strategy === s));
console.log(`rate ${rate}/s (both lanes), timeout 2 s, window 3 s before / 3 s after, ${runs} run(s)\n`);
console.log(header);
for (const r of ordered) console.log(row(r));
