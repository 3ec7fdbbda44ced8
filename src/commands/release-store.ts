/**
 * The release store's commands (layout in docs/architecture.md; run by src/release-store.ts). Every
 * path is absolute under the resolved remote dir and goes through shq(); per-file lists and archives
 * travel on stdin, so a command's length does not grow with the release.
 */
import { posix } from 'node:path';
import { shq, shqAll } from './quote.js';

/** Separates the records of a listing: never appears raw in JSON.stringify output. */
export const RECORD_SEP = '\x1e';

/** app/.handoff-files: the files the last activation placed, so the next one can drop stale ones. */
export const FILE_LIST = '.handoff-files';

/** Where things are under the remote dir. */
export const releasePaths = (remoteDir: string) => ({
  releases: posix.join(remoteDir, 'releases'),
  release: (id: string) => posix.join(remoteDir, 'releases', id),
  manifest: (id: string) => posix.join(remoteDir, 'releases', id, 'release.json'),
  tmp: (id: string) => posix.join(remoteDir, 'releases', `.${id}.tmp`),
  app: posix.join(remoteDir, 'app'),
  current: posix.join(remoteDir, 'current'),
});

/** Creates the remote dir (0700) under the deploy user's home when relative, and prints its symlink-free path. */
export function resolveRemoteDirCommand(input: string): string {
  return `cd && umask 077 && mkdir -p ${shq(input)} && cd ${shq(input)} && (chmod 700 . 2>/dev/null || true) && pwd -P`;
}

/** The same release already in place is this very command, repeated after a dropped connection. */
function placeOnce(T: string, D: string, id: string): string {
  return `if [ -e ${D} ]; then if cmp -s ${T}/release.json ${D}/release.json; then rm -rf ${T}; exit 0; fi; rm -rf ${T}; echo ${shq(`release ${id} exists already on the host`)} >&2; exit 17; fi`;
}

/** Stdin: the release's tar archive. Extracted into releases/.<id>.tmp, then renamed to releases/<id>. */
export function uploadReleaseCommand(remoteDir: string, id: string): string {
  const p = releasePaths(remoteDir);
  const T = shq(p.tmp(id));
  const D = shq(p.release(id));
  return [
    'set -e',
    'umask 022',
    `mkdir -p ${shq(p.releases)}`,
    `chmod 700 ${shq(p.releases)}`,
    `rm -rf ${T}`,
    `mkdir -m 700 ${T}`,
    // -o: the deploy user owns what it extracts, whatever the archive says
    `tar -x -o -f - -C ${T}`,
    `chmod 700 ${T}`,
    placeOnce(T, D, id),
    `mv ${T} ${D}`,
  ].join('\n');
}

/** Stdin: the new release.json. Copies releases/<fromId> to releases/<toId> with that manifest. */
export function copyReleaseCommand(remoteDir: string, fromId: string, toId: string): string {
  const p = releasePaths(remoteDir);
  const F = shq(p.release(fromId));
  const T = shq(p.tmp(toId));
  const D = shq(p.release(toId));
  return [
    'set -e',
    'umask 022',
    `if [ ! -d ${F} ]; then echo ${shq(`release ${fromId} is not on the host`)} >&2; exit 2; fi`,
    `rm -rf ${T}`,
    `cp -Rp ${F} ${T}`,
    `chmod 700 ${T}`,
    `rm -f ${T}/release.json`,
    `(umask 077; cat > ${T}/release.json)`,
    placeOnce(T, D, toId),
    `mv ${T} ${D}`,
  ].join('\n');
}

/** Release <id>'s manifest, RECORD_SEP, then app/.handoff-files (empty when missing): one round trip. */
export function activationReadCommand(remoteDir: string, id: string): string {
  const p = releasePaths(remoteDir);
  return `cat ${shq(p.manifest(id))}; printf '${RECORD_SEP}'; cat ${shq(posix.join(p.app, FILE_LIST))} 2>/dev/null || true`;
}

/**
 * Stdin: one operation per line, `put <file>`, `del <file>` or `list <file>` (activateRelease builds
 * them). Each put copies the file from releases/<id>/ to a temp name in its directory under app/ and
 * renames it over the old one; del removes a regular file; list records the file in .handoff-files.
 */
export function activateCommand(remoteDir: string, id: string): string {
  const p = releasePaths(remoteDir);
  const S = shq(p.release(id));
  const A = shq(p.app);
  return `set -e
umask 022
mkdir -p ${A}
chmod 700 ${A}
cd ${A}
: > ${FILE_LIST}.new
while IFS= read -r line; do
  op=\${line%% *}; f=\${line#* }
  case $op in
  put)
    case $f in */*) d=\${f%/*};; *) d=.;; esac
    mkdir -p "$d"
    if [ -d "$f" ]; then echo "handoff: app/$f is a directory on the host; a release file cannot replace it" >&2; exit 20; fi
    t="$d/.handoff-new-$$"
    rm -f "$t"
    cp ${S}/"$f" "$t"
    mv -f "$t" "$f"
    ;;
  del)
    if [ -f "$f" ] && [ ! -L "$f" ]; then rm -f "$f"; fi
    ;;
  list)
    printf '%s\\n' "$f" >> ${FILE_LIST}.new
    ;;
  esac
done
mv -f ${FILE_LIST}.new ${FILE_LIST}`;
}

/** Per release dir with a release.json: RECORD_SEP, the dir name, a newline, the manifest. */
export function listReleasesCommand(remoteDir: string): string {
  return `cd ${shq(releasePaths(remoteDir).releases)} 2>/dev/null || exit 0
for d in */; do
  [ -f "\${d}release.json" ] || continue
  printf '${RECORD_SEP}%s\\n' "\${d%/}"
  cat "\${d}release.json"
done`;
}

/** The manifests of the other projects next to this one (the default layout's siblings), concatenated. */
export function siblingManifestsCommand(parent: string, self: string): string {
  return `cd ${shq(parent)} 2>/dev/null || exit 0
for f in */releases/*/release.json; do
  case $f in ${shq(self)}/*) continue;; esac
  [ -f "$f" ] && cat "$f"
done; true`;
}

/** Removes these release dirs (ids checked by the caller) and any leftover .<id>.tmp dirs. */
export function removeReleasesCommand(remoteDir: string, ids: readonly string[]): string {
  return `cd ${shq(releasePaths(remoteDir).releases)} 2>/dev/null || exit 0
${ids.length ? `rm -rf -- ${shqAll([...ids])}` : ':'}
for d in .*.tmp; do if [ -d "$d" ]; then rm -rf -- "$d"; fi; done`;
}

/** Remove one release dir (a dry run's, which nothing references). */
export function removeReleaseCommand(remoteDir: string, id: string): string {
  return `rm -rf ${shq(releasePaths(remoteDir).release(id))}`;
}
