/**
 * Sessions for the phase tests (test/unit/phase-*.test.ts): a Session built from action inputs, a run
 * context and a log that keeps its lines, over a host that runs the release store, lock and audit
 * commands in a temp dir (ShellRemote) while every Docker command goes to an answer the test gives
 * (never to a real Docker). Also: seeding releases on that host, reading its audit log and the
 * action's saved state (GITHUB_STATE).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { readInputs, type Inputs } from '../../src/action/inputs.js';
import { newReport } from '../../src/action/report.js';
import { parseAuditLog, type AuditEntry } from '../../src/host/audit.js';
import type { ExecOptions, ExecResult, Remote } from '../../src/host/remote.js';
import { resolveRemoteDir, setCurrent, uploadRelease } from '../../src/host/release-store.js';
import type { ReleaseManifest } from '../../src/model/release.js';
import { Timeline } from '../../src/model/timeline.js';
import type { RunContext, Session } from '../../src/phases/session.js';
import type { Log } from '../../src/support/log.js';
import { collectLog } from './collect-log.js';
import { ShellRemote } from './shell-remote.js';

/** Action inputs as the runner would give them (a string per input name); the SSH ones filled in. */
export function testInputs(raw: Record<string, string> = {}): Inputs {
  const given: Record<string, string> = {
    host: 'h',
    username: 'u',
    key: 'k',
    known_hosts: 'h ssh-ed25519 AAAA',
    project: 'shop',
    compose_files: 'deploy/compose.yaml',
    ...raw,
  };
  return readInputs((n) => given[n] ?? '');
}

export const testRun: RunContext = {
  sha: 'abcdef0123456789abcdef0123456789abcdef01',
  ref: 'refs/heads/main',
  actor: 'alice',
  runId: '4242',
  runUrl: 'https://github.com/o/shop/actions/runs/4242',
  workspace: '/nonexistent-workspace',
};

/** A full Log keeping each line ("warning: …", "error: …" prefixed; debug dropped). */
export function testLog(lines: string[]): Log {
  return { ...collectLog(lines), error: (m) => void lines.push(`error: ${m}`), debug() {} };
}

export interface SessionOptions {
  remote: Remote;
  remoteDir?: string;
  /** Raw action inputs (see testInputs). */
  inputs?: Record<string, string>;
  run?: Partial<RunContext>;
  flavor?: Session['flavor'];
}

/** A Session over `remote`, with its log lines kept in `lines`. */
export function testSession(o: SessionOptions): { s: Session; lines: string[] } {
  const lines: string[] = [];
  const inputs = testInputs(o.inputs);
  const timeline = new Timeline();
  const report = newReport(inputs.project, inputs.rollback ? 'rollback' : 'deploy');
  report.events = timeline.events;
  const s: Session = {
    cleanups: [],
    inputs,
    run: { ...testRun, ...o.run },
    remote: o.remote,
    flavor: o.flavor ?? 'v2',
    remoteDir: o.remoteDir ?? '/srv/handoff/shop',
    timeline,
    log: testLog(lines),
    report,
  };
  return { s, lines };
}

const ok = (stdout = '', stderr = '', code = 0): ExecResult => ({ code, stdout, stderr });

/** An answer to a Docker command: a fixed result, or computed from the command line. */
export type DockerAnswer = ExecResult | string | ((command: string, options: ExecOptions) => ExecResult | string | Promise<ExecResult>);

/** Commands that talk to Docker (by how the command builders start them). */
export function isDockerCommand(command: string): boolean {
  return /^(docker(-compose)?\s|for i in |have\(\) \{|set -- \$\(docker|ids=\$\(docker|sh -c .*docker events|DOCKER_CONFIG=)/s.test(
    command,
  );
}

/**
 * The host: shell commands (release store, lock, audit, files) run for real under `home`; Docker
 * commands are answered by the first rule whose pattern matches, then by `fallback` (e.g. a
 * FakeDockerHost), else they reject naming the command. A command that would reach a real Docker
 * through the shell rejects too.
 */
export class TestHost implements Remote {
  readonly shell: ShellRemote;
  /** Every command, in order. */
  readonly commands: string[] = [];
  /** The Docker commands only, in order. */
  readonly docker: string[] = [];
  readonly rules: Array<[RegExp, DockerAnswer]> = [];

  constructor(
    readonly home: string,
    readonly fallback?: Remote,
  ) {
    this.shell = new ShellRemote(home);
  }

  /** Answer Docker commands matching `pattern` (rules added later win). */
  on(pattern: RegExp, answer: DockerAnswer): this {
    this.rules.unshift([pattern, answer]);
    return this;
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    this.commands.push(command);
    if (!isDockerCommand(command)) {
      if (/\bdocker\b/.test(command) && !command.startsWith('umask 077 && touch'))
        throw new Error(`test host: a Docker command not recognised as one: ${command}`);
      return this.shell.exec(command, options);
    }
    this.docker.push(command);
    const rule = this.rules.find(([p]) => p.test(command));
    if (!rule) {
      if (this.fallback) return this.fallback.exec(command, options);
      throw new Error(`test host: no answer for ${command}`);
    }
    const a = typeof rule[1] === 'function' ? await rule[1](command, options) : rule[1];
    const r = typeof a === 'string' ? ok(a) : a;
    if (r.code !== 0 && options.check !== false) throw new Error(`test host: ${command} exited ${r.code}: ${r.stderr}`);
    return r;
  }

  writeFile(path: string, data: string | Buffer, mode?: number): Promise<void> {
    this.commands.push(`write ${path}`);
    return this.shell.writeFile(path, data, mode);
  }

  readFile(path: string): Promise<string | undefined> {
    return this.shell.readFile(path);
  }

  openUnixSocket(): Promise<Duplex> {
    return Promise.reject(new Error('test host: no sockets'));
  }

  openTcp(): Promise<Duplex> {
    return Promise.reject(new Error('test host: no TCP'));
  }

  async close(): Promise<void> {}
}

/** A TestHost in a fresh temp dir, its project dir resolved (handoff/shop), with a cleanup. */
export async function tempHost(fallback?: Remote): Promise<{ host: TestHost; remoteDir: string; cleanup: () => Promise<void> }> {
  const home = await mkdtemp(join(tmpdir(), 'handoff-phase-'));
  const host = new TestHost(home, fallback);
  const remoteDir = await resolveRemoteDir(host, 'handoff/shop');
  return { host, remoteDir, cleanup: () => rm(home, { recursive: true, force: true }) };
}

/** Release ids in time order: R(1) < R(2) < … */
export const R = (n: number): string => `202611${String(10 + n).padStart(2, '0')}T100000Z-aaaa${String(n).padStart(3, '0')}`;

/** An image ID made of one repeated hex digit (or pair). */
export const imageId = (d: string): string => `sha256:${d.repeat(64 / d.length)}`;

export function manifest(id: string, extra: Partial<ReleaseManifest> = {}): ReleaseManifest {
  return {
    id,
    project: 'shop',
    sha: `${id.slice(-7)}${'0'.repeat(33)}`,
    ref: 'refs/heads/main',
    actor: 'bob',
    runUrl: `https://github.com/o/shop/actions/runs/${id.slice(-3)}`,
    createdAt: '2026-11-20T10:00:00Z',
    files: ['deploy/compose.yaml'],
    composeFiles: ['deploy/compose.yaml'],
    services: {},
    result: 'success',
    ...extra,
  };
}

/**
 * Put releases on the host as earlier deploys left them, and `current`. Each file of a manifest holds
 * `contents[path]`, else a comment naming the release and the path.
 */
export async function seedReleases(
  host: Remote,
  remoteDir: string,
  releases: ReleaseManifest[],
  current?: string,
  contents: Record<string, string> = {},
): Promise<void> {
  for (const m of releases) {
    const files = m.files.map((path) => ({ path, data: Buffer.from(contents[path] ?? `# ${m.id} ${path}\n`) }));
    await uploadRelease(host, remoteDir, m.id, files, `RELEASE=${m.id}\n`, m);
  }
  if (current) await setCurrent(host, remoteDir, current);
}

export async function readManifestFile(remoteDir: string, id: string): Promise<ReleaseManifest> {
  return JSON.parse(await readFile(join(remoteDir, 'releases', id, 'release.json'), 'utf8')) as ReleaseManifest;
}

export async function readAudit(remoteDir: string): Promise<AuditEntry[]> {
  const text = await readFile(join(remoteDir, 'audit.log'), 'utf8').catch(() => '');
  return parseAuditLog(text);
}

/**
 * The action's saved state: GITHUB_STATE pointed at a fresh file for the test; `read()` gives the
 * last value saved per name (core.saveState's `name<<delimiter` form).
 */
export async function savedState(): Promise<{ read: () => Promise<Record<string, string>>; restore: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'handoff-state-'));
  const file = join(dir, 'state');
  await writeFile(file, ''); // the runner creates it; @actions/core refuses a missing one
  const before = process.env.GITHUB_STATE;
  process.env.GITHUB_STATE = file;
  return {
    async read() {
      const text = await readFile(file, 'utf8').catch(() => '');
      const out: Record<string, string> = {};
      const re = /^([^\n<]+)<<(\S+)\n([\s\S]*?)\n?\2\n/gm;
      for (const m of text.matchAll(re)) out[m[1]!] = m[3]!;
      return out;
    },
    async restore() {
      if (before === undefined) delete process.env.GITHUB_STATE;
      else process.env.GITHUB_STATE = before;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface ComposeAnswers {
  /** The loaded model, as `config --format json` prints it. */
  model: { services: Record<string, Record<string, unknown>> };
  /** What `config --hash` prints per service (both the plain and the no-depends_on round trip). */
  hashes: Record<string, string>;
  /** The image ID behind each tag on the host (missing: not on the host). */
  images: Record<string, string>;
}

/**
 * Answer what reading a stack's desired state asks Docker (Compose v2): the loaded model, its config
 * hashes, the image IDs behind the tags, and pulls (which change nothing). `answers` may be changed
 * between calls.
 */
export function answerCompose(host: TestHost, answers: ComposeAnswers): TestHost {
  return host
    .on(/ config --format json$/, () => JSON.stringify(answers.model))
    .on(/ config '?--hash=\*'?$/, () =>
      Object.entries(answers.hashes)
        .map(([svc, h]) => `${svc} ${h}\n`)
        .join(''),
    )
    .on(/^for i in .*docker image inspect --format '\{\{\.Id\}\}'/, (cmd) => {
      const list = /^for i in (.*?); do/.exec(cmd)?.[1] ?? '';
      return [...list.matchAll(/'([^']*)'|(\S+)/g)]
        .map((m) => m[1] ?? m[2]!)
        .map((i) => `${i} ${answers.images[i] ?? ''}\n`)
        .join('');
    })
    .on(/ pull --quiet /, '');
}
