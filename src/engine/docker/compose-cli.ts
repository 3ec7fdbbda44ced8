/**
 * Compose command lines for both flavors, built as strings for the remote shell. Every value goes
 * through shq(). v2 is `docker compose`, v1 `docker-compose` (1.29 on Debian 12); for the
 * subcommands used here both take the same flags.
 */
import { shqAll } from '../../commands/quote.js';

export type ComposeFlavor = 'v1' | 'v2';

export interface ComposeProject {
  project: string;
  /** Compose files on the host, in `-f` order. */
  files: string[];
  envFile?: string;
  projectDirectory?: string;
}

export function composeCommand(flavor: ComposeFlavor, p: ComposeProject, args: string[]): string {
  const words: string[] = flavor === 'v2' ? ['docker', 'compose'] : ['docker-compose'];
  words.push('-p', p.project);
  for (const f of p.files) words.push('-f', f);
  if (p.envFile) words.push('--env-file', p.envFile);
  if (p.projectDirectory) words.push('--project-directory', p.projectDirectory);
  return shqAll([...words, ...args]);
}

/** The resolved configuration (YAML on stdout), parsed with parseCompose(..., {interpolate: false}). */
export function configCommand(flavor: ComposeFlavor, p: ComposeProject): string {
  return composeCommand(flavor, p, ['config']);
}

/**
 * `config --hash=a,b` prints `service hash` lines in both flavors; the hash equals the
 * com.docker.compose.config-hash label of containers created from that config. No services = all ('*').
 */
export function configHashCommand(flavor: ComposeFlavor, p: ComposeProject, services: string[] = []): string {
  return composeCommand(flavor, p, ['config', `--hash=${services.length ? services.join(',') : '*'}`]);
}

/** Parse `svc hash` lines from `config --hash`. */
export function parseConfigHashes(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const m = /^\s*(\S+)\s+([0-9a-f]{64})\s*$/.exec(line);
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

/**
 * Create new replicas beside the running ones: `--no-recreate` keeps the old containers as they
 * are, `--scale` adds containers with the new config up to `count`, `--no-deps` leaves other services alone.
 */
export function scaleUpCommand(flavor: ComposeFlavor, p: ComposeProject, service: string, count: number): string {
  if (!Number.isInteger(count) || count < 0) throw new Error(`invalid replica count ${count} for ${service}`);
  return composeCommand(flavor, p, ['up', '-d', '--no-deps', '--no-recreate', '--scale', `${service}=${count}`, service]);
}

/**
 * Like scaleUpCommand without starting them (`up --no-start`): the next batch's containers, made
 * during a monitor so the batch itself only has to `docker start` them.
 */
export function createAheadCommand(flavor: ComposeFlavor, p: ComposeProject, service: string, count: number): string {
  if (!Number.isInteger(count) || count < 0) throw new Error(`invalid replica count ${count} for ${service}`);
  return composeCommand(flavor, p, ['up', '--no-start', '--no-deps', '--no-recreate', '--scale', `${service}=${count}`, service]);
}

/** Plain `up -d --no-deps SVC` (Compose's own recreate): for a service created from nothing. */
export function upServiceCommand(flavor: ComposeFlavor, p: ComposeProject, service: string): string {
  return composeCommand(flavor, p, ['up', '-d', '--no-deps', service]);
}

export function pullCommand(flavor: ComposeFlavor, p: ComposeProject, services: string[] = []): string {
  return composeCommand(flavor, p, ['pull', '--quiet', ...services]);
}

/** `docker compose version` succeeds only with the v2 plugin; fall back to v1 when it fails. */
