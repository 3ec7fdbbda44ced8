/**
 * Drives the bundled action (dist/) the way a GitHub runner does: INPUT_* variables, GITHUB_OUTPUT,
 * GITHUB_STEP_SUMMARY and GITHUB_STATE files, then the post step with the saved state, against the
 * bench's real sshd, Docker engine and HAProxy. Every log and summary is checked for secrets.
 */
import { test } from 'node:test';
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile, appendFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import assert from 'node:assert/strict';

const run = promisify(execFile);
export const repo = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

export interface Bench {
  host: string;
  port: number;
  jumpPort: number;
  user: string;
  keys: Record<'ed25519' | 'ed25519_enc' | 'ecdsa' | 'rsa' | 'pkcs8' | 'wrong', string>;
  passphrase: string;
  knownHosts: string;
  knownHostsHashed: string;
  jumpKnownHosts: string;
  fingerprint: string;
  jumpFingerprint: string;
}

export function bench(): Bench {
  const path = join(repo, '.bench/bench.json');
  if (!existsSync(path)) throw new Error(`${path} is missing: run scripts/bench/setup.sh (npm test does)`);
  return JSON.parse(readFileSync(path, 'utf8')) as Bench;
}

/** Values that must never appear in any log or summary. */
export function secrets(b: Bench, extra: string[] = []): string[] {
  const out = [b.passphrase, ...extra];
  for (const k of [b.keys.ed25519, b.keys.ed25519_enc, b.keys.rsa]) {
    for (const line of readFileSync(k, 'utf8').split('\n')) {
      if (line.length > 20 && !line.startsWith('-----')) out.push(line.trim());
    }
  }
  return out.filter(Boolean);
}

/** What a runner does with `::add-mask::` lines: consumes them. Everything else is the visible log. */
export function visibleLog(text: string): string {
  return text
    .split('\n')
    .filter((l) => !l.startsWith('::add-mask::'))
    .join('\n');
}

export function assertNoSecrets(text: string, values: string[], what: string): void {
  for (const v of values) {
    assert.ok(!text.includes(v), `${what} contains a secret value (${v.length} chars starting ${JSON.stringify(v.slice(0, 2))})`);
  }
}

export interface ActionRun {
  code: number;
  log: string;
  postLog: string;
  outputs: Record<string, string>;
  summary: string;
  state: Record<string, string>;
}

/** Parse GITHUB_OUTPUT / GITHUB_STATE files (`name<<delim` heredoc form and `name=value`). */
export function parseCommandFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name, delim] = heredoc;
      const body: string[] = [];
      for (i++; i < lines.length && lines[i] !== delim; i++) body.push(lines[i]!);
      out[name!] = body.join('\n');
    } else if (line.includes('=')) {
      out[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
    }
  }
  return out;
}

const logDir = join(repo, '.bench/logs');

export interface RunOptions {
  workspace: string;
  /** Extra secret values to look for in the logs (env secrets). */
  secrets?: string[];
  /** Extra process environment (e.g. GITHUB_* variables). */
  env?: Record<string, string>;
  /** Kill the main step after this many ms (a cancelled job), then run the post step. */
  killAfterMs?: number;
  /** Skip the post step. */
  noPost?: boolean;
  /** Called with each chunk of the main step's log. */
  onLog?: (chunk: string) => void;
  /** Kill the main step (SIGKILL, a runner gone) as soon as this is true of its log so far. */
  killWhen?: (log: string) => boolean;
  /** Called with each chunk of the post step's log. */
  onPostLog?: (chunk: string) => void;
  /** The bundle to run (a directory with main/ and post/); default this checkout's dist/ (benchmarks compare builds). */
  dist?: string;
}

function spawnNode(
  entry: string,
  env: NodeJS.ProcessEnv,
  killAfterMs?: number,
  onLog?: (c: string) => void,
  killWhen?: (log: string) => boolean,
): Promise<{ code: number; log: string }> {
  const node = join(repo, 'node_modules/.bin/node');
  return new Promise((resolvePromise) => {
    const child = spawn(node, [entry], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    const take = (d: Buffer) => {
      log += d.toString();
      onLog?.(d.toString());
      if (killWhen?.(log)) child.kill('SIGKILL');
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const timer = killAfterMs ? setTimeout(() => child.kill('SIGKILL'), killAfterMs) : undefined;
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolvePromise({ code: code ?? (signal ? 137 : 1), log });
    });
  });
}

/**
 * The v1 pass (test/e2e/v1/*) re-runs a file's core tests on Compose v1; tests of what does not depend
 * on the Compose flavor (locks, retention) register only in the main pass, so neither pass skips any.
 */
export const composeV1Pass = process.env.HANDOFF_E2E_COMPOSE === 'v1';

/** `test` in the main pass; registers nothing in the Compose v1 pass (a test of what the flavor does not change). */
export const mainPassOnly: typeof test = composeV1Pass ? ((() => {}) as unknown as typeof test) : test;

/** Run dist/main then dist/post like a runner, with `inputs` as INPUT_* variables. */
export async function runAction(inputs: Record<string, string>, options: RunOptions): Promise<ActionRun> {
  const b = bench();
  const dir = await mkdtemp(join(tmpdir(), 'handoff-run-'));
  const files = {
    output: join(dir, 'output'),
    summary: join(dir, 'summary.md'),
    state: join(dir, 'state'),
    env: join(dir, 'env'),
    path: join(dir, 'path'),
  };
  for (const f of Object.values(files)) await writeFile(f, '');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    GITHUB_ACTIONS: 'true',
    GITHUB_WORKSPACE: options.workspace,
    GITHUB_REPOSITORY: 'example/handoff-e2e',
    GITHUB_SHA: 'e2e0000000000000000000000000000000000000',
    GITHUB_REF: 'refs/heads/main',
    GITHUB_ACTOR: 'e2e',
    GITHUB_RUN_ID: String(Date.now()),
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_SERVER_URL: 'http://127.0.0.1:9',
    GITHUB_API_URL: 'http://127.0.0.1:9',
    GITHUB_OUTPUT: files.output,
    GITHUB_STEP_SUMMARY: files.summary,
    GITHUB_STATE: files.state,
    GITHUB_ENV: files.env,
    GITHUB_PATH: files.path,
    RUNNER_TEMP: dir,
    RUNNER_DEBUG: '',
    ...options.env,
  };
  // The v1 pass of the suite (scripts/test.sh) runs the same tests with compose: v1.
  const compose = process.env.HANDOFF_E2E_COMPOSE;
  if (compose && inputs.compose === undefined) inputs = { ...inputs, compose };
  for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;

  const dist = options.dist ?? join(repo, 'dist');
  const main = await spawnNode(join(dist, 'main/index.js'), env, options.killAfterMs, options.onLog, options.killWhen);
  const state = parseCommandFile(await readFile(files.state, 'utf8'));
  let post = { code: 0, log: '' };
  if (!options.noPost) {
    const postEnv = { ...env };
    for (const [k, v] of Object.entries(state)) postEnv[`STATE_${k}`] = v;
    post = await spawnNode(join(dist, 'post/index.js'), postEnv, undefined, options.onPostLog);
  }
  const result: ActionRun = {
    code: main.code,
    log: main.log,
    postLog: post.log,
    outputs: parseCommandFile(await readFile(files.output, 'utf8')),
    summary: await readFile(files.summary, 'utf8'),
    state,
  };
  await mkdir(logDir, { recursive: true });
  await appendFile(
    join(logDir, 'runs.log'),
    `\n=== run ${new Date().toISOString()}\n${result.log}\n--- post\n${result.postLog}\n--- summary\n${result.summary}\n`,
  );
  const values = secrets(b, options.secrets);
  assertNoSecrets(visibleLog(result.log), values, 'the action log');
  assertNoSecrets(visibleLog(result.postLog), values, 'the post step log');
  assertNoSecrets(result.summary, values, 'the job summary');
  assertNoSecrets(JSON.stringify(result.outputs), values, 'the outputs');
  // RUNNER_TEMP outlives the step on a runner too (later steps upload artifacts from it).
  for (const f of Object.values(files)) await rm(f, { force: true });
  return result;
}

/** The inputs every bench deploy needs: host, user, key and the pinned host key. */
export function connectionInputs(b = bench()): Record<string, string> {
  return {
    host: b.host,
    port: String(b.port),
    username: b.user,
    key: readFileSync(b.keys.ed25519, 'utf8'),
    known_hosts: readFileSync(b.knownHosts, 'utf8'),
  };
}

let portCounter = 0;
/**
 * A loopback port for this test file's proxy, distinct per test process and call. Below the
 * kernel's ephemeral range (an outgoing connection can hold a port there: CI once failed on "address
 * already in use"), and not bound by anything right now.
 */
export function freePort(): number {
  const [ephemeralLow] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  const low = 20000;
  const span = Math.max(1000, (ephemeralLow ?? 32768) - low);
  for (let i = 0; i < span; i++) {
    const port = low + ((process.pid * 7 + portCounter++ * 13) % span);
    if (!portsInUse().has(port)) return port;
  }
  throw new Error('no free loopback port below the ephemeral range');
}

/** Local ports of every TCP socket on the machine (any state), from /proc. */
function portsInUse(): Set<number> {
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const local = line.trim().split(/\s+/)[1];
      if (local) ports.add(parseInt(local.split(':').pop()!, 16));
    }
  }
  return ports;
}

/**
 * A network cut between runner and host, as the bench can make one: every SSH session process of the
 * bench's sshd ends at once (the listener stays, so a reconnect works). Returns how many it ended.
 */
export async function cutSsh(): Promise<number> {
  const pids = (await sh(`pgrep -f '^sshd: ${bench().user}' || true`)).split('\n').filter(Boolean);
  if (pids.length) await sh(`kill -KILL ${pids.join(' ')} 2>/dev/null || true`);
  return pids.length;
}

/** A workspace holding a copy of examples/ (the sample stack), as actions/checkout would. */
export async function sampleWorkspace(): Promise<string> {
  const ws = await mkdtemp(join(tmpdir(), 'handoff-ws-'));
  await cp(join(repo, 'examples'), join(ws, 'deploy'), { recursive: true });
  return ws;
}

/** Deploy inputs for the sample stack of sampleWorkspace(): app at `version` behind the proxy of `proxyDir` on `port`. */
export function sampleInputs(project: string, port: number, version: string, proxyDir = 'haproxy'): Record<string, string> {
  return {
    ...connectionInputs(),
    project,
    compose_files: 'deploy/compose.yaml',
    files: `deploy/${proxyDir}/`,
    pull: 'never',
    env: `PROXY_PORT=${port}\nAPP_IMAGE=handoff-test-app:${version}`,
  };
}

export async function sh(command: string, timeoutMs = 120_000): Promise<string> {
  const { stdout } = await run('sh', ['-c', command], { timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

export interface ProjectContainer {
  id: string;
  name: string;
  service: string;
  image: string;
  state: string;
  health?: string;
}

export async function projectContainers(project: string): Promise<ProjectContainer[]> {
  const ids = (await sh(`docker ps -aq --filter label=com.docker.compose.project=${project}`)).split('\n').filter(Boolean);
  if (ids.length === 0) return [];
  const inspect = JSON.parse(await sh(`docker inspect ${ids.join(' ')}`)) as Array<{
    Id: string;
    Name: string;
    Image: string;
    State: { Status: string; Health?: { Status: string } };
    Config: { Labels: Record<string, string> };
  }>;
  return inspect.map((c) => ({
    id: c.Id,
    name: c.Name.replace(/^\//, ''),
    service: c.Config.Labels['com.docker.compose.service'] ?? '',
    image: c.Image,
    state: c.State.Status,
    health: c.State.Health?.Status,
  }));
}

/** Remove a test project's containers, networks, volumes and its remote dir. */
export async function cleanupProject(project: string): Promise<void> {
  const ids = (await sh(`docker ps -aq --filter label=com.docker.compose.project=${project}`)).split('\n').filter(Boolean);
  if (ids.length) await sh(`docker rm -f ${ids.join(' ')} >/dev/null`);
  await sh(
    `docker network ls -q --filter label=com.docker.compose.project=${project} | xargs -r docker network rm >/dev/null 2>&1 || true`,
  );
  await sh(`docker volume ls -q --filter label=com.docker.compose.project=${project} | xargs -r docker volume rm >/dev/null 2>&1 || true`);
  await sh(`rm -rf /home/deploy/handoff/${project}`);
}

export function uniqueProject(prefix: string): string {
  return `${prefix}-${process.pid}-${Math.floor(Math.random() * 1e4)}`.toLowerCase();
}

/** Make an app image with APP_VERSION baked in (a distinct image id per call). */
export async function appImage(tag: string, version: string): Promise<string> {
  await sh(`bash ${join(repo, 'scripts/bench/make-app-image.sh')} ${tag} ${version}`);
  return (await sh(`docker image inspect --format '{{.Id}}' ${tag}`)).trim();
}
