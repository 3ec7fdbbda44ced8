/**
 * A Docker host in memory, for the rollout engine's unit tests: containers with id, name, service,
 * config hash, state, health and IP, answering the exact commands rollout.ts sends through the
 * Remote (recognised by their leading words), on a virtual clock. Every command is kept in
 * `commands`; the ones that change the host (compose up, stop+rm) and `docker logs` are also written
 * to the shared `steps` list, which a RecordingGate writes to as well, so a test sees the whole
 * interleaving. A command it does not know rejects: a new remote step in rollout.ts shows up here.
 */
import type { Duplex } from 'node:stream';
import type { ProxyGate, Replica } from '../../src/proxy/gate.js';
import { RemoteCommandError, type ExecOptions, type ExecResult, type Remote } from '../../src/host/remote.js';
import { shqAll } from '../../src/commands/quote.js';
import { parseDockerInspect } from '../../src/engine/docker/containers.js';
import { stateSignature } from '../../src/engine/docker/health.js';

/** Virtual time: sleep() advances it at once, so health timeouts and `monitor` pass instantly. */
export class FakeClock {
  t = Date.UTC(2026, 0, 1, 12, 0, 0);
  /** Total virtual ms slept; a runaway poll loop fails instead of spinning forever. */
  slept = 0;
  constructor(readonly limitMs = 3_600_000) {}
  now = (): number => this.t;
  sleep = async (ms: number): Promise<void> => {
    if (!(ms >= 0)) throw new Error(`fake clock: sleep(${ms})`);
    this.t += ms;
    this.slept += ms;
    if (this.slept > this.limitMs)
      throw new Error(`fake clock: more than ${this.limitMs} ms of virtual sleep: a poll loop that never ends?`);
    await Promise.resolve();
  };
}

/** What Docker reports for a container this old (ms since it started). */
export interface Status {
  state: 'created' | 'running' | 'restarting' | 'exited' | 'dead';
  health: 'healthy' | 'unhealthy' | 'starting' | 'none';
  exitCode?: number;
  restartCount?: number;
}
export type Behavior = (ageMs: number) => Status;

export const behaviors = {
  /** `starting` until ms, then `healthy`. */
  healthyAfter:
    (ms: number): Behavior =>
    (age) => ({ state: 'running', health: age >= ms ? 'healthy' : 'starting' }),
  /** Health check never passes and never fails: only the health timeout ends the wait. */
  neverHealthy: (): Behavior => () => ({ state: 'running', health: 'starting' }),
  /** `starting`, then `unhealthy` from ms on. */
  unhealthyAfter:
    (ms: number): Behavior =>
    (age) => ({ state: 'running', health: age >= ms ? 'unhealthy' : 'starting' }),
  /** Healthy after `healthyMs`, exits with `code` at `exitMs`. */
  exitsAfter:
    (healthyMs: number, exitMs: number, code = 137): Behavior =>
    (age) =>
      age >= exitMs
        ? { state: 'exited', health: 'unhealthy', exitCode: code }
        : { state: 'running', health: age >= healthyMs ? 'healthy' : 'starting' },
  /** No healthcheck at all: running, health `none`. */
  noHealthcheck: (): Behavior => () => ({ state: 'running', health: 'none' }),
  /** A fixed status (for containers left from an earlier run). */
  fixed:
    (s: Status): Behavior =>
    () =>
      s,
};

export interface FakeContainer {
  id: string;
  name: string;
  service: string;
  number: number;
  configHash: string;
  imageId: string;
  image: string;
  /** Virtual ms when it started. */
  startedAt: number;
  ips: Record<string, string>;
  behavior: Behavior;
  /** Made by `up --no-start`: not started yet (no IP, behavior's clock not running). */
  created?: boolean;
}

export interface ServiceRelease {
  configHash: string;
  imageId: string;
  image?: string;
  /** The n-th container `up` creates for the service (0-based) behaves like this; default healthy after 2 s. */
  behavior?: (n: number) => Behavior;
}

export interface FakeDockerHostOptions {
  project?: string;
  /** Networks every new container joins (IPs handed out in order). Default [`${project}_default`]. */
  networks?: string[];
  /** Compose v2 names project-svc-N, v1 project_svc_N. */
  flavor?: 'v1' | 'v2';
}

const ok = (stdout = '', stderr = '', code = 0): ExecResult => ({ code, stdout, stderr });

export class FakeDockerHost implements Remote {
  readonly project: string;
  readonly networks: string[];
  readonly flavor: 'v1' | 'v2';
  readonly containers = new Map<string, FakeContainer>();
  /** Every command, in order. */
  readonly commands: string[] = [];
  /** Grace periods passed to `docker stop -t`, per stop command. */
  readonly graces: number[] = [];
  /** The wait (ms) of each awaitChangeCommand, in order. */
  readonly waits: number[] = [];
  /** The next stop+rm command exits with this code (once). */
  failNextStop?: number;
  /** `compose up` creates this many fewer containers than asked (once). */
  upShortfall = 0;
  /** The next `up --no-start` creates its containers, then exits 1 (once). */
  failNextCreate = false;
  private readonly releases = new Map<string, ServiceRelease>();
  private readonly created = new Map<string, number>();
  private idSeq = 0;
  private ipSeq = 10;

  constructor(
    readonly clock: FakeClock,
    readonly steps: string[],
    options: FakeDockerHostOptions = {},
  ) {
    this.project = options.project ?? 'p';
    this.networks = options.networks ?? [`${this.project}_default`];
    this.flavor = options.flavor ?? 'v2';
  }

  /** What `compose up` creates for this service from now on. */
  release(service: string, r: ServiceRelease): void {
    this.releases.set(service, r);
  }

  /** A container already there (started `agoMs` before now), as an earlier deploy left it. */
  seed(
    service: string,
    fields: { configHash: string; imageId: string; behavior?: Behavior; agoMs?: number; ips?: Record<string, string> },
  ): FakeContainer {
    return this.add(
      service,
      fields.configHash,
      fields.imageId,
      'app:old',
      fields.behavior ?? behaviors.healthyAfter(0),
      this.clock.now() - (fields.agoMs ?? 3_600_000),
      fields.ips,
    );
  }

  /** Containers of a service, by container number. */
  of(service: string): FakeContainer[] {
    return [...this.containers.values()].filter((c) => c.service === service).sort((a, b) => a.number - b.number);
  }

  names(service: string): string[] {
    return this.of(service).map((c) => c.name);
  }

  byName(name: string): FakeContainer {
    const c = [...this.containers.values()].find((x) => x.name === name);
    if (!c) throw new Error(`fake host: no container ${name}`);
    return c;
  }

  status(c: FakeContainer): Status {
    if (c.created) return { state: 'created', health: 'none' };
    return c.behavior(this.clock.now() - c.startedAt);
  }

  private add(
    service: string,
    configHash: string,
    imageId: string,
    image: string,
    behavior: Behavior,
    startedAt: number,
    ips?: Record<string, string>,
  ): FakeContainer {
    const number = Math.max(0, ...this.of(service).map((c) => c.number)) + 1;
    const sep = this.flavor === 'v1' ? '_' : '-';
    const id = (++this.idSeq).toString(16).padStart(4, '0').repeat(16);
    const c: FakeContainer = {
      id,
      name: `${this.project}${sep}${service}${sep}${number}`,
      service,
      number,
      configHash,
      imageId,
      image,
      startedAt,
      ips: ips ?? Object.fromEntries(this.networks.map((n, i) => [n, `172.${18 + i}.0.${this.ipSeq}`])),
      behavior,
    };
    if (!ips) this.ipSeq++;
    this.containers.set(id, c);
    return c;
  }

  private inspectJson(c: FakeContainer): unknown {
    const s = this.status(c);
    const iso = (ms: number) => new Date(ms).toISOString();
    return {
      Id: c.id,
      Name: `/${c.name}`,
      Image: c.imageId,
      Created: iso(c.startedAt),
      RestartCount: s.restartCount ?? 0,
      Config: {
        Image: c.image,
        Labels: {
          'com.docker.compose.project': this.project,
          'com.docker.compose.service': c.service,
          'com.docker.compose.container-number': String(c.number),
          'com.docker.compose.config-hash': c.configHash,
          'com.docker.compose.oneoff': 'False',
          'com.docker.compose.version': this.flavor === 'v1' ? '1.29.2' : '2.27.0',
        },
      },
      State: {
        Status: s.state,
        ExitCode: s.exitCode ?? 0,
        StartedAt: c.created ? '0001-01-01T00:00:00Z' : iso(c.startedAt),
        ...(s.health === 'none'
          ? {}
          : {
              Health: {
                Status: s.health,
                Log:
                  s.health === 'unhealthy'
                    ? [
                        {
                          Start: iso(this.clock.now() - 1000),
                          End: iso(this.clock.now()),
                          ExitCode: 1,
                          Output: 'curl: (7) connection refused\n',
                        },
                      ]
                    : [],
              },
            }),
      },
      NetworkSettings: { Networks: Object.fromEntries(Object.entries(c.ips).map(([n, ip]) => [n, { IPAddress: c.created ? '' : ip }])) },
    };
  }

  async exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    this.commands.push(command);
    const r =
      command.startsWith('sh -c ') && command.includes('docker events') ? await this.awaitChange(command) : this.run(command, options);
    if (r.code !== 0 && options.check !== false) throw new RemoteCommandError(command, r);
    return r;
  }

  /** awaitChangeCommand: the fake clock runs on (100 ms steps) until the state differs from the one seen, or the wait is over. */
  private async awaitChange(command: string): Promise<ExecResult> {
    const [, , , , waitMs, seen, ...ids] = shellWords(command);
    this.waits.push(Number(waitMs));
    const inspect = () => this.run(shqAll(['docker', 'inspect', '--type', 'container', ...ids]), {});
    for (let waited = 0; ;) {
      const r = inspect();
      if (stateSignature(ids, parseDockerInspect(r.stdout)) !== seen || waited >= Number(waitMs)) return r;
      const step = Math.min(100, Number(waitMs) - waited);
      await this.clock.sleep(step);
      waited += step;
    }
  }

  private run(command: string, options: ExecOptions): ExecResult {
    const words = shellWords(command);
    const w = (i: number) => words[i] ?? '';

    // listProjectContainers (projectContainersCommand): the inspect JSON of every container of the project.
    if (
      command.startsWith('ids=$(docker ps -aq --no-trunc --filter') &&
      command.includes(`label=com.docker.compose.project=${this.project}`)
    ) {
      return ok(JSON.stringify([...this.containers.values()].map((c) => this.inspectJson(c))));
    }

    // listProjectContainers: every container of the project, all states.
    if (w(0) === 'docker' && w(1) === 'ps' && words.includes(`label=com.docker.compose.project=${this.project}`)) {
      return ok([...this.containers.keys()].map((id) => `${id}\n`).join(''));
    }
    if (w(0) === 'docker' && w(1) === 'inspect' && w(2) === '--type' && w(3) === 'container') {
      const ids = words.slice(4);
      const found = ids.map((id) => this.containers.get(id)).filter((c): c is FakeContainer => !!c);
      const missing = ids.filter((id) => !this.containers.has(id));
      return ok(
        JSON.stringify(
          found.map((c) => this.inspectJson(c)),
          null,
          2,
        ),
        missing.map((id) => `Error: No such container: ${id}\n`).join(''),
        missing.length ? 1 : 0,
      );
    }
    // stopAndRemoveCommand: `set -- $(docker ps -aq --no-trunc --filter id=…)` then stop -t GRACE and rm -f.
    if (command.startsWith('set -- $(docker ps -aq --no-trunc --filter id=')) {
      const ids = [...command.split('\n')[0]!.matchAll(/--filter id=([0-9a-f]+)/g)].map((m) => m[1]!);
      const grace = /docker stop -t (\d+) "\$@"/.exec(command);
      if (!grace || !/docker rm -f "\$@"/.test(command)) throw new Error(`fake host: unexpected stop script: ${command}`);
      this.graces.push(Number(grace[1]));
      if (this.failNextStop !== undefined) {
        const code = this.failNextStop;
        this.failNextStop = undefined;
        this.steps.push(`stop+rm failed ${ids.map((id) => this.containers.get(id)?.name ?? id).join(' ')}`);
        return ok('', 'Error response from daemon: cannot stop container: permission denied\n', code);
      }
      const there = ids.filter((id) => this.containers.has(id));
      if (there.length) this.steps.push(`stop+rm ${there.map((id) => this.containers.get(id)!.name).join(' ')}`);
      for (const id of there) this.containers.delete(id);
      return ok();
    }
    // startCommand: docker start ID… >/dev/null && docker inspect --type container ID…
    if (w(0) === 'docker' && w(1) === 'start') {
      const [start, inspect] = command.split(' >/dev/null && ');
      if (!inspect) throw new Error(`fake host: unexpected start command: ${command}`);
      const ids = shellWords(start!).slice(2);
      const missing = ids.filter((id) => !this.containers.has(id));
      if (missing.length) return ok('', `Error response from daemon: No such container: ${missing[0]}\n`, 1);
      const cs = ids.map((id) => this.containers.get(id)!);
      for (const c of cs) {
        c.created = false;
        c.startedAt = this.clock.now();
      }
      this.steps.push(`start ${cs.map((c) => c.name).join(' ')}`);
      return this.run(inspect, options);
    }
    if (w(0) === 'docker' && w(1) === 'logs' && w(2) === '--tail') {
      const c = this.containers.get(w(4));
      this.steps.push(`logs ${c?.name ?? w(4)}`);
      if (!c) return ok(`Error: No such container: ${w(4)}\n`, '', 1);
      return ok(`${c.name}: listening on :8080\n${c.name}: fatal: database unreachable\n`);
    }
    // scaleUpCommand: docker compose -p P -f F … up -d --no-deps --no-recreate --scale SVC=N SVC
    const compose = w(0) === 'docker-compose' ? 1 : w(0) === 'docker' && w(1) === 'compose' ? 2 : 0;
    if (compose) {
      const sub = words.slice(compose);
      if (sub[0] !== '-p' || sub[1] !== this.project) throw new Error(`fake host: compose for another project: ${command}`);
      const up = sub.indexOf('up');
      const args = sub.slice(up + 1);
      const scale = args.indexOf('--scale');
      // scaleUpCommand starts them (-d); createAheadCommand only creates them (--no-start).
      const noStart = args.includes('--no-start');
      if (up < 0 || scale < 0 || args.includes('-d') === noStart || !args.includes('--no-recreate') || !args.includes('--no-deps')) {
        throw new Error(`fake host: unexpected compose command: ${command}`);
      }
      const [service, n] = args[scale + 1]!.split('=') as [string, string];
      if (args.at(-1) !== service) throw new Error(`fake host: compose up names another service: ${command}`);
      const release = this.releases.get(service);
      if (!release) throw new Error(`fake host: no release for ${service}`);
      const have = this.of(service).length;
      const target = Number(n);
      if (target < have)
        throw new Error(`fake host: --scale ${service}=${target} below the ${have} containers there: Compose would remove some`);
      const made: FakeContainer[] = [];
      for (let k = have; k < target - this.upShortfall; k++) {
        const nth = this.created.get(service) ?? 0;
        this.created.set(service, nth + 1);
        const behavior = release.behavior?.(nth) ?? behaviors.healthyAfter(2_000);
        const c = this.add(service, release.configHash, release.imageId, release.image ?? 'app:new', behavior, this.clock.now());
        if (noStart) c.created = true;
        made.push(c);
      }
      // `up -d` also starts what an earlier `up --no-start` left created, as Compose does.
      if (!noStart)
        for (const c of this.of(service).filter((x) => x.created)) {
          c.created = false;
          c.startedAt = this.clock.now();
        }
      this.upShortfall = 0;
      this.steps.push(`${noStart ? 'create' : 'up'} ${service}=${target}${made.length ? ` → ${made.map((c) => c.name).join(' ')}` : ''}`);
      if (!noStart) for (const c of made) options.onOutput?.(` Container ${c.name}  Started\n`, 'stderr');
      if (noStart && this.failNextCreate) {
        this.failNextCreate = false;
        return ok('', 'Error response from daemon: connection reset\n', 1);
      }
      return ok();
    }
    throw new Error(`fake host: unexpected command: ${command}`);
  }

  async writeFile(): Promise<void> {
    throw new Error('fake host: writeFile not expected in a rollout');
  }

  async readFile(): Promise<string | undefined> {
    throw new Error('fake host: readFile not expected in a rollout');
  }
  async openUnixSocket(): Promise<Duplex> {
    throw new Error('fake host: openUnixSocket not expected in a rollout');
  }
  async openTcp(): Promise<Duplex> {
    throw new Error('fake host: openTcp not expected in a rollout');
  }
  async close(): Promise<void> {}
}

/** Split a command line built by shqAll (bare words and POSIX single quotes). */
export function shellWords(command: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < command.length; i++) {
    const ch = command[i]!;
    if (ch === "'") {
      const end = command.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated quote in ${command}`);
      cur += command.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (ch === '\\' && i + 1 < command.length) {
      cur += command[++i];
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

/**
 * A ProxyGate that writes each call to the shared steps list with replica names, and checks what
 * it is told against the host: a replica let UP must be running and healthy (or running without a
 * healthcheck), with the IP the host gave it; a replica drained must still be there.
 */
export class RecordingGate implements ProxyGate {
  readonly drains = true;
  /** Everything the gate saw that a real proxy would have turned into a lost request. */
  readonly violations: string[] = [];
  readonly calls: Array<{ op: string; service: string; replicas: Replica[]; deadline?: number }> = [];
  /** waitUp rejects (the proxy never saw the replica UP). */
  failWaitUp = false;
  /** Virtual ms the proxy takes to see a new replica UP (its health checks), on the host's clock. */
  waitUpMs = 0;

  constructor(
    readonly steps: string[],
    readonly host?: FakeDockerHost,
  ) {}

  private log(op: string, service: string, replicas: Replica[] = [], deadline?: number) {
    this.calls.push({ op, service, replicas, ...(deadline === undefined ? {} : { deadline }) });
    this.steps.push(`${op} ${service}${replicas.length ? ` ${replicas.map((r) => r.name).join(' ')}` : ''}`);
  }

  private check(op: string, r: Replica, wantHealthy: boolean) {
    const c = this.host?.containers.get(r.id);
    if (!this.host) return;
    if (!c) return void this.violations.push(`${op} ${r.name}: no such container`);
    if (c.name !== r.name) this.violations.push(`${op} ${r.name}: the container is called ${c.name}`);
    if (!Object.values(c.ips).includes(r.ip))
      this.violations.push(`${op} ${r.name}: ip ${r.ip} is not the container's (${Object.values(c.ips).join(', ')})`);
    const s = this.host.status(c);
    if (s.state !== 'running') this.violations.push(`${op} ${r.name}: ${s.state}`);
    if (wantHealthy && s.health !== 'healthy' && s.health !== 'none') this.violations.push(`${op} ${r.name}: ${s.health}`);
  }

  async park(service: string, current: Replica[]): Promise<void> {
    this.log('park', service, current);
  }
  async unpark(service: string): Promise<void> {
    this.log('unpark', service);
  }
  async waitUp(service: string, replicas: Replica[], deadline: number): Promise<void> {
    this.log('waitUp', service, replicas, deadline);
    if (this.waitUpMs) await this.host?.clock.sleep(this.waitUpMs);
    if (this.failWaitUp) throw new Error(`${replicas.map((r) => r.name).join(', ')} not UP in the proxy before the deadline`);
    for (const r of replicas) this.check('waitUp', r, true);
  }
  async drain(service: string, replicas: Replica[]): Promise<void> {
    this.log('drain', service, replicas);
    for (const r of replicas) if (!this.host?.containers.has(r.id)) this.violations.push(`drain ${r.name}: no such container`);
  }
  async release(service: string, replicas: Replica[]): Promise<void> {
    this.log('release', service, replicas);
    for (const r of replicas) if (this.host?.containers.has(r.id)) this.violations.push(`release ${r.name}: still there`);
  }
}
