/**
 * Image commands: IDs behind tags, pinning a tag back to an image ID, checking (and pulling) pinned
 * images for a rollback, registry digests, removing pruned images. Every value goes through shq().
 */
import { shq, shqAll } from './quote.js';
import type { Pin } from '../engine/docker/images.js';

/** One `<image> <id>` line per image; the id is empty when the image is not on the host. */
export function imageIdsCommand(images: readonly string[]): string {
  return `for i in ${shqAll([...images])}; do printf '%s %s\\n' "$i" "$(docker image inspect --format '{{.Id}}' "$i" 2>/dev/null)"; done`;
}

/**
 * A reference without a registry host (`app:1`, `me/app:1`): Podman resolves it to a local
 * `localhost/app:1` before anything `docker tag` writes through its API (`docker.io/library/app:1`).
 */
export function isUnqualified(image: string): boolean {
  const first = image.split('/')[0]!;
  return !image.includes('/') || (!/[.:]/.test(first) && first !== 'localhost');
}

/**
 * Tag each pinned image ID with its reference again, then check the reference resolves to that ID
 * (what Compose will create from). On Podman a tag written through the Docker API is
 * `docker.io/library/<ref>`, while an unqualified reference resolves to `localhost/<ref>` first
 * (images built or loaded on the host): that name is tagged too. Exits 3 naming the first ID no
 * longer on the host, 4 naming a reference that still resolves to another image.
 */
export function pinImagesCommand(pins: ReadonlyArray<{ image: string; imageId: string }>): string {
  const lines: string[] = [];
  for (const p of pins) {
    const id = shq(p.imageId);
    const ref = shq(p.image);
    const resolves = `[ "$(docker image inspect --format '{{.Id}}' ${ref} 2>/dev/null)" = ${id} ]`;
    lines.push(
      `docker image inspect ${id} >/dev/null 2>&1 || { echo "image ${p.imageId} of ${p.image} is no longer on the host" >&2; exit 3; }; docker tag ${id} ${ref}`,
    );
    if (isUnqualified(p.image)) lines.push(`${resolves} || docker tag ${id} ${shq(`localhost/${p.image}`)}`);
    lines.push(`${resolves} || { printf '%s does not resolve to the pinned image %s after docker tag\\n' ${ref} ${id} >&2; exit 4; }`);
  }
  return lines.join('\n');
}

/** `repo@sha256:...` for a pinned digest: pulling it fetches exactly that image and moves no tag. */
export function digestRef(image: string, digest: string): string {
  const repo = image.replace(/@.*$/, '').replace(/:[^/:]*$/, '');
  return `${repo}@${digest}`;
}

/**
 * One line per pin, `<n> present|pulled|missing`: is the pinned image on the host, and if not (and
 * pulls are allowed) does a pull bring exactly that image back. A pull by digest moves no tag; a pull
 * by tag does, so the tag is put back where it pointed before: checking changes nothing Compose sees.
 */
export function pinCheckScript(pins: readonly Pin[], pull: boolean): string {
  const lines = ['have() { docker image inspect "$1" >/dev/null 2>&1; }'];
  pins.forEach((p, n) => {
    const id = shq(p.imageId);
    const ref = shq(p.image);
    if (!pull) {
      lines.push(`if have ${id}; then echo '${n} present'; else echo '${n} missing'; fi`);
    } else if (p.digest) {
      lines.push(
        `if have ${id}; then echo '${n} present'; else docker pull -q ${shq(digestRef(p.image, p.digest))} >/dev/null 2>&1; if have ${id}; then echo '${n} pulled'; else echo '${n} missing'; fi; fi`,
      );
    } else {
      lines.push(
        `if have ${id}; then echo '${n} present'; else`,
        `  old=$(docker image inspect --format '{{.Id}}' ${ref} 2>/dev/null || true)`,
        `  docker pull -q ${ref} >/dev/null 2>&1`,
        `  if have ${id}; then echo '${n} pulled'; else echo '${n} missing'; fi`,
        `  now=$(docker image inspect --format '{{.Id}}' ${ref} 2>/dev/null || true)`,
        // The pulled image keeps its ID (pinImages tags it later); only the tag goes back.
        `  if [ -n "$now" ] && [ "$now" != "$old" ]; then if [ -n "$old" ]; then docker tag "$old" ${ref}; elif [ "$now" != ${id} ]; then docker image rm ${ref} >/dev/null 2>&1; fi; fi`,
        'fi',
      );
    }
  });
  lines.push('true');
  return lines.join('\n');
}

/** One `<id> <digest> <digest>...` line per image ID (its RepoDigests). */
export function repoDigestsCommand(ids: readonly string[]): string {
  return `for i in ${shqAll([...ids])}; do printf '%s %s\\n' "$i" "$(docker image inspect --format '{{join .RepoDigests " "}}' "$i" 2>/dev/null)"; done`;
}

/** `docker image rm` (never -f: Docker keeps an image a container uses) each ID; prints the ones removed. */
export function removeImagesCommand(ids: readonly string[]): string {
  return `for i in ${shqAll([...ids])}; do if docker image rm "$i" >/dev/null 2>&1; then echo "$i"; fi; done; true`;
}
