/**
 * Issue #14 acceptance, shared by caddy.test.ts and nginx.test.ts: one stack per proxy (the
 * examples/<proxy>/ config, test/e2e/stacks/<proxy>.yaml, the app stopped by SIGKILL so only the drain
 * saves requests in flight), deployed once, then in sequence through the bundled action:
 * 1. v1 -> v2 with keep-alive GETs, 1 s GETs and 1 s POSTs in flight: nothing lost (probe and load);
 * 2. an unhealthy v3: refused and rolled back, v2 keeps serving, nothing lost;
 * 3. a broken proxy config: refused with the proxy's own message, the running proxy untouched.
 * Each proxy runs all three on the newest version in Debian's archive (sid: what the official images
 * are today); an older version (bookworm's) runs the first, the core of the guarantee.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  appImage,
  cleanupProject,
  connectionInputs,
  freePort,
  projectContainers,
  repo,
  runAction,
  sh,
  uniqueProject,
  type ActionRun,
} from '../harness.js';
import { startLoad, type LoadResult } from '../load.js';
import { request, serviceIps, sleep, summaryTimeline, waitServing, type RawAnswer } from './helpers.js';

/** A witness request's error, with when it was sent and when it failed (to match it to a config change). */
type FailedAt = Error & { sentAt: number; at: number };
const failedAt =
  (sentAt: number) =>
  (e: Error): FailedAt =>
    Object.assign(e, { sentAt, at: Date.now() });

export interface UpstreamProxyOptions {
  /** The proxy image (default the stack's: sid's). */
  image?: string;
  /** For messages and the project name: the proxy's version. */
  version: string;
  /**
   * The v1 -> v2 deploy allows the probe up to 3 lost requests, and passes only when each is a
   * reused keep-alive connection reset at one of the proxy's config changes (every Caddy config load,
   * and an nginx reload without keepalive_min_timeout, closes the idle HTTP/1.1 client connections:
   * README Limits); the independent load may see such resets too. Everything else stays at 0: the
   * probe's fresh lane, the 1 s GETs and POSTs on the drained replicas. Without it nothing may fail.
   */
  keepAliveResets?: boolean;
  /** Only the v1 -> v2 scenario (an older version's core check). */
  swapOnly?: boolean;
  /** Rewrites the example config before it is uploaded (e.g. what an older version lacks). */
  editConfig?: (text: string) => string;
  /** nginx: whether the deploy must warn that the config sets no keepalive_min_timeout. */
  reloadAdvice?: boolean;
}

export function upstreamProxySuite(kind: 'caddy' | 'nginx', options: UpstreamProxyOptions): void {
  const label = `${kind === 'caddy' ? 'Caddy' : 'nginx'} ${options.version}`;
  const gateLabel = kind === 'caddy' ? 'Caddy' : 'nginx';
  const project = uniqueProject(`${kind}-${options.version}`);
  const port = freePort();
  const v3Tag = `handoff-test-app:${kind}-v3-${process.pid}`;
  const cfgRel = kind === 'caddy' ? 'deploy/caddy/Caddyfile' : 'deploy/nginx/nginx.conf';
  const upstreamRel = kind === 'caddy' ? 'deploy/caddy/handoff/app.upstreams' : 'deploy/nginx/handoff/app.conf';
  const appDir = `/home/deploy/handoff/${project}/app`;
  let workspace: string;
  let originalCfg: string;
  let image = 'handoff-test-app:v1';
  let healthFail = '0';

  const inputs = (extra: Record<string, string> = {}) => ({
    ...connectionInputs(),
    project,
    compose_files: 'deploy/compose.yaml',
    files: `deploy/${kind}/`,
    env: `PROXY_PORT=${port}\nAPP_IMAGE=${image}\nHEALTH_FAIL=${healthFail}${options.image ? `\nPROXY_IMAGE=${options.image}` : ''}`,
    pull: 'never',
    keep_releases: '20',
    probe_url: `http://127.0.0.1:${port}/`,
    ...extra,
  });

  const describeFailures = (load: LoadResult) =>
    `${load.failures.length} of ${load.sent} requests failed: ${JSON.stringify(load.failures.slice(0, 10))}`;

  async function deployUnderLoad(
    onLog?: (c: string) => void,
    extra: Record<string, string> = {},
  ): Promise<{ run: ActionRun; load: LoadResult; actionStart: number }> {
    const load = startLoad({ port, rate: 40, maxDurationMs: 240_000, paths: ['/', '/slow?ms=1000'], postEvery: 3 });
    await sleep(500);
    let run: ActionRun;
    const actionStart = Date.now();
    try {
      run = await runAction(inputs(extra), { workspace, onLog });
    } finally {
      await sleep(500);
    }
    return { run: run!, load: await load.stop(), actionStart };
  }

  /**
   * The load's failures split in two: a connection reset (nearly always a reused keep-alive one)
   * within a moment of one of the proxy's config changes (each Caddy load / nginx reload closes the idle client
   * connections; a client sending on one at that instant sees a reset: README, Limits), and the rest.
   */
  function splitResets(load: LoadResult, run: ActionRun, actionStart: number) {
    const changes = summaryTimeline(run.summary)
      .filter((e) => e.action === 'up-in-proxy' || e.action === 'proxy-reload')
      .map((e) => actionStart + e.t * 1000);
    const atChange = (f: LoadResult['failures'][number]) => {
      const at = (load.startedAt ?? 0) + f.at;
      // Mostly reused connections; once (Caddy 2.11, a busy runner) a fresh POST sent at the instant of a load too.
      return /ECONNRESET|socket hang up|EPIPE/.test(f.kind) && changes.some((c) => at >= c - 1000 && at <= c + 2500);
    };
    return { resets: load.failures.filter(atChange), others: load.failures.filter((f) => !atChange(f)), changes: changes.length };
  }

  /** The probe's lost requests that are not a connection reset at a config change (from its records file). */
  async function probeLossesApartFromResets(run: ActionRun, actionStart: number) {
    const changes = summaryTimeline(run.summary)
      .filter((e) => e.action === 'up-in-proxy' || e.action === 'proxy-reload')
      .map((e) => actionStart + e.t * 1000);
    const { records } = JSON.parse(await readFile(run.outputs.probe_records!, 'utf8')) as {
      records: Array<{ lane: string; outcome: string; scheduledAt: number; sentAt?: number; doneAt: number }>;
    };
    const lost = records.filter((r) => r.outcome !== 'ok' && r.outcome !== 'unmeasured');
    // Any lane: a Caddy load also resets a fresh connection whose request arrives at that instant.
    // Refused at once only (within 500 ms): a request cut while in flight still counts as lost.
    const reset = (r: (typeof lost)[number]) =>
      (r.outcome === 'empty' || r.outcome === 'reset') &&
      r.doneAt - (r.sentAt ?? r.scheduledAt) < 500 &&
      changes.some((c) => (r.sentAt ?? r.scheduledAt) >= c - 1500 && (r.sentAt ?? r.scheduledAt) <= c + 2500);
    return { resets: lost.filter(reset), others: lost.filter((r) => !reset(r)) };
  }

  before(async () => {
    workspace = await mkdtemp(join(tmpdir(), `handoff-ws-${kind}-`));
    await mkdir(join(workspace, 'deploy'));
    await cp(join(repo, 'examples', kind), join(workspace, 'deploy', kind), { recursive: true });
    await cp(join(repo, 'test/e2e/stacks', `${kind}.yaml`), join(workspace, 'deploy/compose.yaml'));
    if (options.editConfig) await writeFile(join(workspace, cfgRel), options.editConfig(await readFile(join(workspace, cfgRel), 'utf8')));
    originalCfg = await readFile(join(workspace, cfgRel), 'utf8');
    // No probe on the very first deploy: nothing serves before it.
    const first = await runAction(inputs({ probe_url: '' }), { workspace });
    assert.equal(first.code, 0, `the v1 deploy succeeds:\n${first.log}`);
    await waitServing(port, 'v1');
  });

  after(async () => {
    await cleanupProject(project);
    await sh(`docker rmi -f ${v3Tag} >/dev/null 2>&1 || true`);
  });

  test(
    `${label}: v1 -> v2 with keep-alive GETs, 1 s GETs and 1 s POSTs in flight (app stopped by SIGKILL): nothing lost`,
    { timeout: 420_000 },
    async () => {
      // The witness lane: a 1 s GET and a 1 s POST (answered 1 s after its body) every 150 ms,
      // alternating keep-alive and fresh connections, each with its answer.
      const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 32 });
      const slow: Array<Promise<RawAnswer | Error>> = [];
      const posts: Array<{ body: string; answer: Promise<RawAnswer | Error> }> = [];
      let swapAt = 0;
      let stopped = false;
      let i = 0;
      const lane = (async () => {
        const deadline = Date.now() + 240_000;
        while (!stopped && Date.now() < deadline) {
          const agent = i % 2 === 0 ? keepAlive : false;
          slow.push(request(port, { path: '/slow?ms=1000', agent }).catch(failedAt(Date.now())));
          const body = `body-${i}-${'y'.repeat(1000 + (i % 500))}`;
          posts.push({ body, answer: request(port, { path: '/echo?ms=1000', method: 'POST', body, agent }).catch(failedAt(Date.now())) });
          i++;
          await sleep(150);
        }
      })();
      image = 'handoff-test-app:v2';
      const { run, load, actionStart } = await deployUnderLoad(
        (c) => {
          if (!swapAt && new RegExp(`${gateLabel}: swap app`).test(c)) swapAt = Date.now();
        },
        options.keepAliveResets ? { max_lost: '3' } : {},
      );
      stopped = true;
      await lane;
      const slowAnswers = await Promise.all(slow);
      const postAnswers = await Promise.all(posts.map(async (p) => ({ body: p.body, answer: await p.answer })));
      keepAlive.destroy();

      const badWitness = [...slowAnswers, ...postAnswers.map((p) => p.answer)].filter((a) => a instanceof Error || a.status !== 200).length;
      console.log(
        `${label} v1->v2: probe sent ${run.outputs.requests_sent}, lost ${run.outputs.requests_lost}; load sent ${load.sent}, failed ${load.failures.length} ${JSON.stringify(load.failures.slice(0, 5))}; witness ${slowAnswers.length} slow GETs + ${postAnswers.length} slow POSTs, ${badWitness} failed`,
      );
      assert.equal(run.code, 0, `the v2 deploy succeeds:\n${run.log}`);
      if (kind === 'nginx')
        assert.equal(
          /::warning::.*sets no keepalive_min_timeout/.test(run.log),
          Boolean(options.reloadAdvice),
          `the deploy ${options.reloadAdvice ? 'warns' : 'does not warn'} about keepalive_min_timeout`,
        );
      const { resets, others, changes } = splitResets(load, run, actionStart);
      if (resets.length)
        console.log(
          `${label} v1->v2: ${resets.length} load connection(s) reset at the ${changes} config changes: ${JSON.stringify(resets)}`,
        );
      assert.deepEqual(others, [], `no other request failed (${load.sent} sent)`);
      if (options.keepAliveResets)
        assert.ok(resets.length <= changes * 3, `keep-alive resets stay at config changes and few (${resets.length})`);
      else assert.deepEqual(resets, [], `no keep-alive connection was reset at a config change (${load.sent} sent)`);
      if (options.keepAliveResets) {
        const probe = await probeLossesApartFromResets(run, actionStart);
        console.log(`${label} v1->v2: probe connection resets at config changes: ${probe.resets.length}`);
        assert.deepEqual(probe.others, [], 'the probe lost nothing but connections reset at config changes');
      } else assert.equal(run.outputs.requests_lost, '0', 'the probe lost nothing');
      // With Caddy, a witness request sent at the instant of a config load can meet the same reset as
      // the load lanes: counted with them. Only one refused at once (within 500 ms of being sent): a
      // request cut while in flight is what the drain must prevent, and still fails the test.
      const changeTimes = summaryTimeline(run.summary)
        .filter((e) => e.action === 'up-in-proxy' || e.action === 'proxy-reload')
        .map((e) => actionStart + e.t * 1000);
      const witnessReset = (a: RawAnswer | Error) =>
        Boolean(options.keepAliveResets) &&
        a instanceof Error &&
        /ECONNRESET|socket hang up|EPIPE/.test(a.message) &&
        (a as FailedAt).at - (a as FailedAt).sentAt < 500 &&
        changeTimes.some((c) => (a as FailedAt).at >= c - 1000 && (a as FailedAt).at <= c + 2500);
      const witnessResets = [...slowAnswers, ...postAnswers.map((p) => p.answer)].filter(witnessReset);
      if (witnessResets.length) console.log(`${label} v1->v2: ${witnessResets.length} witness request(s) reset at a config change`);
      if (options.keepAliveResets)
        assert.ok(
          resets.length + witnessResets.length <= changes * 3,
          `resets stay at config changes and few (${resets.length + witnessResets.length})`,
        );
      const badSlow = slowAnswers.filter((a) => !witnessReset(a) && (a instanceof Error || a.status !== 200 || !/slow=1000/.test(a.body)));
      assert.deepEqual(
        badSlow.map((a) => (a instanceof Error ? a.message : `${a.status} ${a.body.slice(0, 80)}`)),
        [],
        `every 1 s GET completes with 200 (${slowAnswers.length} sent)`,
      );
      const badPosts = postAnswers.filter(
        (p) => !witnessReset(p.answer) && (p.answer instanceof Error || p.answer.status !== 200 || p.answer.body !== p.body),
      );
      assert.deepEqual(
        badPosts.map((p) =>
          p.answer instanceof Error ? p.answer.message : `${p.answer.status} body ${p.answer.body === p.body ? 'ok' : 'differs'}`,
        ),
        [],
        `every 1 s POST comes back with 200 and its own body (${postAnswers.length} sent)`,
      );
      // They really were in flight on the replicas being drained (stopped by SIGKILL right after).
      assert.ok(swapAt > 0, `the log shows a swap through ${label}`);
      const overlapping = slowAnswers.filter(
        (a): a is RawAnswer => !(a instanceof Error) && a.headers['x-app-version'] === 'v1' && a.start < swapAt && a.end > swapAt,
      );
      assert.ok(overlapping.length > 0, 'some 1 s v1 requests were in flight when the first swap began, and completed');
      const timeline = summaryTimeline(run.summary);
      assert.equal(
        timeline.filter((e) => e.action === 'drained' && e.service === 'app' && !/timeout/.test(e.detail)).length,
        3,
        'three replicas drained, none by timeout',
      );
      assert.match(run.summary, new RegExp(`\\| proxy drain \\| ${kind} \\|`), 'the summary names the gate that ran');
      // handoff's file lists the three new replicas by IP.
      const ips = [...(await serviceIps(project, 'app')).values()].sort();
      const listed = ((await sh(`cat ${appDir}/${upstreamRel}`)).match(/\d+\.\d+\.\d+\.\d+(?=:8080)/g) ?? []).sort();
      assert.deepEqual(listed, ips, 'the upstream file lists the running replicas');
    },
  );

  if (options.swapOnly) return;

  test(
    `${label}: an unhealthy v3 is never listed, the deploy rolls back, v2 keeps serving with nothing lost`,
    { timeout: 420_000 },
    async () => {
      await appImage(v3Tag, 'v3');
      image = v3Tag;
      healthFail = '1';
      try {
        const { run, load } = await deployUnderLoad();
        assert.notEqual(run.code, 0, 'the deploy fails');
        assert.match(run.log, /unhealthy|health/i);
        console.log(
          `${label} unhealthy v3: probe sent ${run.outputs.requests_sent}, lost ${run.outputs.requests_lost}; load sent ${load.sent}, failed ${load.failures.length}`,
        );
        assert.equal(load.failures.length, 0, describeFailures(load));
        assert.equal(run.outputs.requests_lost, '0', 'the probe lost nothing');
        assert.deepEqual([...load.versions.keys()], ['v2'], 'only v2 answered');
      } finally {
        image = 'handoff-test-app:v2';
        healthFail = '0';
      }
      const r = await request(port);
      assert.equal(r.headers['x-app-version'], 'v2');
    },
  );

  test(
    `${label}: a broken config is refused with ${label}'s own message; the running proxy and live config are untouched`,
    { timeout: 300_000 },
    async () => {
      const liveBefore = await sh(`cat ${appDir}/${cfgRel}`);
      const containersBefore = (await projectContainers(project)).map((c) => c.id).sort();
      const broken =
        kind === 'caddy'
          ? originalCfg.replace('lb_policy round_robin', 'lb_policy round_robin\n\t\tbogus_handoff_directive on')
          : originalCfg.replace('proxy_connect_timeout 2s;', 'proxy_connect_timeout 2s;\n            bogus_handoff_directive on;');
      assert.notEqual(broken, originalCfg);
      await writeFile(join(workspace, cfgRel), broken);
      try {
        const { run, load } = await deployUnderLoad();
        assert.notEqual(run.code, 0, 'the deploy fails');
        assert.match(run.log, /bogus_handoff_directive/, `${label}'s error names the bad line`);
        assert.match(
          run.log,
          kind === 'caddy' ? /unrecognized subdirective/ : /unknown directive/,
          `${label}'s own error text is in the log`,
        );
        assert.equal(load.failures.length, 0, `the running proxy kept serving: ${describeFailures(load)}`);
        assert.deepEqual([...load.versions.keys()], ['v2'], 'the previous version served throughout');
      } finally {
        await writeFile(join(workspace, cfgRel), originalCfg);
      }
      assert.equal(await sh(`cat ${appDir}/${cfgRel}`), liveBefore, 'the live config is unchanged');
      assert.deepEqual((await projectContainers(project)).map((c) => c.id).sort(), containersBefore, 'no container changed');
      const r = await request(port);
      assert.equal(r.status, 200);
      assert.equal(r.headers['x-app-version'], 'v2');
    },
  );
}
