/**
 * The images a deploy runs, resolved to image IDs on the host: pulled per the `pull` input, and
 * compared by ID so a re-pushed tag counts as a change.
 */
import type { ComposeFlavor, ComposeProject } from './compose-cli.js';
import { composeCommand } from './compose-cli.js';
import type { ComposeService } from '../../model/compose.js';
import { imageIdsCommand, pinCheckScript, pinImagesCommand, repoDigestsCommand } from '../../commands/images.js';
import type { Remote } from '../../host/remote.js';
import { DOCKER_COMMAND_MS } from '../../support/timeouts.js';
import type { Log } from '../../support/log.js';

export type PullPolicy = 'always' | 'missing' | 'never';

/** `image id` lines; the id is empty when the image is not on the host. */
function parseImageIds(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const m = /^(\S+) (sha256:[0-9a-f]{64})?\s*$/.exec(line);
    if (m) out.set(m[1]!, m[2] ?? '');
  }
  return out;
}

export async function imageIds(remote: Remote, images: string[]): Promise<Map<string, string>> {
  if (images.length === 0) return new Map();
  return parseImageIds((await remote.exec(imageIdsCommand(images), { timeoutMs: DOCKER_COMMAND_MS })).stdout);
}

/**
 * Pull what the policy asks for, then return each service's image ID. A failed pull of an image that
 * is on the host already is a warning (offline registries, local builds); a missing image is an error.
 */
export async function resolveImages(
  remote: Remote,
  flavor: ComposeFlavor,
  project: ComposeProject,
  services: ComposeService[],
  policy: PullPolicy,
  log: Log,
  timeoutMs: number,
): Promise<Map<string, string>> {
  const withImage = services.filter((s) => s.image);
  const images = [...new Set(withImage.map((s) => s.image!))];
  let ids = await imageIds(remote, images);
  const toPull = policy === 'always' ? withImage : policy === 'missing' ? withImage.filter((s) => !ids.get(s.image!)) : [];
  const pullable = toPull.filter((s) => !s.hasBuild);
  if (pullable.length) {
    const names = pullable.map((s) => s.name);
    log.info(`pulling ${names.join(', ')}`);
    const r = await remote.exec(composeCommand(flavor, project, ['pull', '--quiet', '--ignore-pull-failures', ...names]), {
      check: false,
      timeoutMs,
    });
    ids = await imageIds(remote, images);
    if (r.code !== 0 || /error|denied|not found/i.test(r.stderr)) {
      for (const s of pullable) {
        if (ids.get(s.image!)) log.warning(`service ${s.name}: could not pull ${s.image}; using the image already on the host`);
      }
    }
  }
  const byService = new Map<string, string>();
  for (const s of withImage) {
    const id = ids.get(s.image!);
    if (!id) {
      throw new Error(
        `service ${s.name}: image ${s.image} is not on the host and could not be pulled` +
          (policy === 'never'
            ? ' (pull: never): load it on the host or allow pulls'
            : ': check the name/tag and the registry login on the host'),
      );
    }
    byService.set(s.name, id);
  }
  return byService;
}

/** Point each image reference at a pinned image ID again (rollback to a release whose tag was re-pushed). */
export async function pinImages(remote: Remote, pins: Array<{ image: string; imageId: string }>): Promise<void> {
  if (pins.length === 0) return;
  await remote.exec(pinImagesCommand(pins), { timeoutMs: DOCKER_COMMAND_MS });
}

export interface Pin {
  service?: string;
  image: string;
  imageId: string;
  digest?: string;
}

/** The pins whose image is neither on the host nor brought back by a pull. */
export function parsePinCheck(stdout: string, pins: readonly Pin[]): Pin[] {
  const state = new Map<number, string>();
  for (const line of stdout.split('\n')) {
    const m = /^(\d+) (present|pulled|missing)$/.exec(line.trim());
    if (m) state.set(Number(m[1]), m[2]!);
  }
  // No answer counts as missing: a rollback must not start on an image it could not confirm.
  return pins.filter((_, n) => state.get(n) !== 'present' && state.get(n) !== 'pulled');
}

/** Before a rollback changes anything: which of the release's pinned images cannot be had. */
export async function missingPins(remote: Remote, pins: readonly Pin[], pull: boolean, timeoutMs: number): Promise<Pin[]> {
  if (pins.length === 0) return [];
  const r = await remote.exec(pinCheckScript(pins, pull), { timeoutMs, check: false });
  return parsePinCheck(r.stdout, pins);
}

/** docker.io/library/app, docker.io/app and app are one repository. */
function normalRepo(repo: string): string {
  return repo.replace(/^docker\.io\//, '').replace(/^library\//, '');
}

/** The digest under which `image`'s repository knows this image, from its RepoDigests. */
export function pickDigest(image: string, repoDigests: readonly string[]): string | undefined {
  const repo = normalRepo(image.replace(/@.*$/, '').replace(/:[^/:]*$/, ''));
  const hit = repoDigests.find((d) => d.includes('@') && normalRepo(d.slice(0, d.indexOf('@'))) === repo);
  return hit?.slice(hit.indexOf('@') + 1);
}

/**
 * The registry digest of each pinned image, when the image came from a registry: a rollback whose
 * image was deleted from the host can then pull exactly it, by digest. Local-only images have none.
 */
export async function repoDigests(remote: Remote, pins: ReadonlyArray<{ image: string; imageId: string }>): Promise<Map<string, string>> {
  const ids = [...new Set(pins.map((p) => p.imageId).filter((i) => /^sha256:[0-9a-f]{64}$/.test(i)))];
  const out = new Map<string, string>();
  if (ids.length === 0) return out;
  const r = await remote.exec(repoDigestsCommand(ids), { timeoutMs: DOCKER_COMMAND_MS, check: false });
  const byId = new Map<string, string[]>();
  for (const line of r.stdout.split('\n')) {
    const [id, ...digests] = line.trim().split(/\s+/);
    if (id) byId.set(id, digests);
  }
  for (const p of pins) {
    const d = pickDigest(p.image, byId.get(p.imageId) ?? []);
    if (d) out.set(`${p.image} ${p.imageId}`, d);
  }
  return out;
}
