/**
 * The images a deploy runs, resolved to image IDs on the host: pulled per the `pull` input, and
 * compared by ID so a re-pushed tag counts as a change.
 */
import type { ComposeFlavor, ComposeProject } from './compose-cli.js';
import { composeCommand } from './compose-cli.js';
import type { ComposeService } from './compose.js';
import { shq, shqAll } from './quote.js';
import type { Remote } from './remote.js';
import type { Log } from './log.js';

export type PullPolicy = 'always' | 'missing' | 'never';

/** `image id` lines; the id is empty when the image is not on the host. */
export function parseImageIds(stdout: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const m = /^(\S+) (sha256:[0-9a-f]{64})?\s*$/.exec(line);
    if (m) out.set(m[1]!, m[2] ?? '');
  }
  return out;
}

export async function imageIds(remote: Remote, images: string[]): Promise<Map<string, string>> {
  if (images.length === 0) return new Map();
  const script = `for i in ${shqAll(images)}; do printf '%s %s\\n' "$i" "$(docker image inspect --format '{{.Id}}' "$i" 2>/dev/null)"; done`;
  return parseImageIds((await remote.exec(script, { timeoutMs: 60_000 })).stdout);
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
          (policy === 'never' ? ' (pull: never): load it on the host or allow pulls' : ': check the name/tag and the registry login on the host'),
      );
    }
    byService.set(s.name, id);
  }
  return byService;
}

/** Point each image reference at a pinned image ID again (rollback to a release whose tag was re-pushed). */
export async function pinImages(remote: Remote, pins: Array<{ image: string; imageId: string }>): Promise<void> {
  if (pins.length === 0) return;
  const cmds = pins.map(
    (p) => `docker image inspect ${shq(p.imageId)} >/dev/null 2>&1 || { echo "image ${p.imageId} of ${p.image} is no longer on the host" >&2; exit 3; }; docker tag ${shq(p.imageId)} ${shq(p.image)}`,
  );
  await remote.exec(cmds.join('\n'), { timeoutMs: 60_000 });
}
