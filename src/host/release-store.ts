/**
 * The release directories on the host (layout in docs/architecture.md): upload, activate into app/,
 * list, current, manifest updates, copy for rollbacks and pruning. The commands themselves are built
 * in commands/release-store.ts (every path absolute under the resolved remote dir, through shq());
 * this module decides what to run and reads the answers.
 *
 * Modes: the remote dir, releases/, each releases/<id>/ and app/ are 0700, so nothing below them is
 * reachable by other host users; .env and release.json are 0600. Subdirectories inside a release and
 * in app/ are 0755 and files keep their (group/other-write stripped) mode, because Docker bind-mounts
 * them into containers that may run as another user (the official haproxy image runs as `haproxy`).
 */
import { posix } from 'node:path';
import {
  activateCommand,
  activationReadCommand,
  copyReleaseCommand,
  listReleasesCommand,
  RECORD_SEP,
  releasePaths as paths,
  removeReleasesCommand,
  resolveRemoteDirCommand,
  siblingManifestsCommand,
  uploadReleaseCommand,
} from '../commands/release-store.js';
import { removeImagesCommand } from '../commands/images.js';
import type { Remote } from './remote.js';
import { QUICK_COMMAND_MS, RELEASE_COMMAND_MS } from '../support/timeouts.js';
import { buildTar, type TarEntry } from '../model/tar.js';
import {
  abandonedReason,
  isReleaseId,
  KEEP_FAILED,
  parseManifest,
  retention,
  type PrunedRelease,
  type ReleaseManifest,
} from '../model/release.js';
import type { AuditEntry } from './audit.js';

export interface UploadFile {
  /** Repo-relative path. */
  path: string;
  data: Buffer;
  mode?: number;
}

/** Names the release directory keeps for itself. */
const RESERVED = new Set(['release.json', '.env']);
const IMAGE_ID = /^sha256:[0-9a-f]{64}$/;

/** A repo-relative path that is safe to place under a release directory and to pass through `read -r`. */
function checkReleasePath(path: string): void {
  if (!path || path.startsWith('/')) throw new Error(`release file '${path}': must be a relative path`);
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(path))
    throw new Error(`release file ${JSON.stringify(path)}: control characters are not allowed in file names`);
  if (path.split('/').some((p) => p === '' || p === '.' || p === '..'))
    throw new Error(`release file '${path}': no '..', '.' or empty parts`);
  if (RESERVED.has(path))
    throw new Error(
      `release file '${path}': the name is reserved for handoff's own ${path} at the top of the release; move the file into a directory`,
    );
}

function checkId(id: string): void {
  if (!isReleaseId(id)) throw new Error(`'${id}' is not a release id`);
}

/**
 * The absolute, symlink-free remote dir: a relative input (or `~/...`) is under the deploy user's
 * home. Created 0700 when missing.
 */
export async function resolveRemoteDir(remote: Remote, remoteDirInput: string): Promise<string> {
  const r = await remote.exec(resolveRemoteDirCommand(remoteDirArgument(remoteDirInput)), { timeoutMs: QUICK_COMMAND_MS });
  return parseRemoteDir(r.stdout, remoteDirInput);
}

/** The remote_dir input as resolveRemoteDirCommand takes it: relative to the home, no `~/`, no trailing slash. */
export function remoteDirArgument(remoteDirInput: string): string {
  const input = remoteDirInput.replace(/^~(\/|$)/, '').replace(/\/+$/, '') || '.';
  if (input.includes('\0')) throw new Error('remote_dir contains a NUL byte');
  return input;
}

/** resolveRemoteDirCommand's answer: its last line, an absolute path. */
export function parseRemoteDir(stdout: string, remoteDirInput: string): string {
  const dir = stdout.trim().split('\n').pop() ?? '';
  if (!dir.startsWith('/')) throw new Error(`could not resolve remote_dir '${remoteDirInput}' on the host (got '${dir}')`);
  return dir;
}

/** The archive of a release: files with their parent directories, the env file and the manifest. */
export function releaseArchive(files: readonly UploadFile[], envFileText: string, manifest: ReleaseManifest): Buffer {
  const seen = new Set<string>();
  const dirs = new Set<string>();
  for (const f of files) {
    checkReleasePath(f.path);
    if (seen.has(f.path)) throw new Error(`release file '${f.path}' is listed twice`);
    seen.add(f.path);
    const parts = f.path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
  }
  for (const d of dirs) if (seen.has(d)) throw new Error(`release file '${d}' is also a directory of another release file`);
  const entries: TarEntry[] = [...dirs].sort().map((d) => ({ path: d, type: 'dir', mode: 0o755 }));
  for (const f of files) entries.push({ path: f.path, type: 'file', data: f.data, mode: (f.mode ?? 0o644) & 0o755 || 0o644 });
  entries.push({ path: '.env', type: 'file', data: Buffer.from(envFileText), mode: 0o600 });
  entries.push({ path: 'release.json', type: 'file', data: Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`), mode: 0o600 });
  return buildTar(entries);
}

/**
 * Write releases/<id>/ atomically: one tar stream into releases/.<id>.tmp, then a rename. An id that
 * exists already is an error (two deploys of one sha in one second).
 */
export async function uploadRelease(
  remote: Remote,
  remoteDir: string,
  id: string,
  files: readonly UploadFile[],
  envFileText: string,
  manifest: ReleaseManifest,
  _options: { dryRun?: boolean } = {},
): Promise<void> {
  checkId(id);
  if (manifest.id !== id) throw new Error(`manifest id ${manifest.id} does not match release ${id}`);
  const tar = releaseArchive(files, envFileText, manifest);
  await remote.exec(uploadReleaseCommand(remoteDir, id), { stdin: tar, timeoutMs: RELEASE_COMMAND_MS });
}

/**
 * A new release with an old one's files and env (a rollback): copied on the host, with its own
 * manifest, then renamed into place.
 */
export async function copyRelease(
  remote: Remote,
  remoteDir: string,
  fromId: string,
  toId: string,
  manifest: ReleaseManifest,
): Promise<void> {
  checkId(fromId);
  checkId(toId);
  if (manifest.id !== toId) throw new Error(`manifest id ${manifest.id} does not match release ${toId}`);
  await remote.exec(copyReleaseCommand(remoteDir, fromId, toId), {
    stdin: `${JSON.stringify(manifest, null, 2)}\n`,
    stdinPublic: true,
    timeoutMs: RELEASE_COMMAND_MS,
  });
}

/**
 * Make app/ hold release <id>: each file (and .env) copied to a temp name in its target directory,
 * then renamed over the old one, so directories (and the bind mounts on them) stay the same inodes.
 * A file the previously activated release placed and this one lacks is removed; directories are
 * never removed or replaced.
 */
export async function activateRelease(remote: Remote, remoteDir: string, id: string): Promise<void> {
  checkId(id);
  const read = await remote.exec(activationReadCommand(remoteDir, id), { timeoutMs: QUICK_COMMAND_MS });
  const [manifestText, listText = ''] = read.stdout.split(RECORD_SEP);
  const manifest = parseManifest(manifestText ?? '');
  for (const f of manifest.files) checkReleasePath(f);
  const wanted = new Set(manifest.files);
  const previous = listText.split('\n').filter((l) => l && !wanted.has(l));
  const ops = [
    ...manifest.files.map((f) => `put ${f}`),
    'put .env',
    ...previous
      .filter((f) => {
        try {
          checkReleasePath(f);
          return true;
        } catch {
          return false;
        }
      })
      .map((f) => `del ${f}`),
    ...manifest.files.map((f) => `list ${f}`),
  ];
  // The ops name files, no contents: public.
  await remote.exec(activateCommand(remoteDir, id), { stdin: `${ops.join('\n')}\n`, stdinPublic: true, timeoutMs: RELEASE_COMMAND_MS });
}

/** Every readable manifest under releases/, oldest first, in one round trip. */
export async function listReleases(remote: Remote, remoteDir: string, warn?: (message: string) => void): Promise<ReleaseManifest[]> {
  const r = await remote.exec(listReleasesCommand(remoteDir), { timeoutMs: QUICK_COMMAND_MS });
  return parseReleaseListing(r.stdout, warn);
}

function parseReleaseListing(stdout: string, warn?: (message: string) => void): ReleaseManifest[] {
  const out: ReleaseManifest[] = [];
  for (const chunk of stdout.split(RECORD_SEP).slice(1)) {
    const nl = chunk.indexOf('\n');
    const dir = chunk.slice(0, nl);
    try {
      const m = parseManifest(chunk.slice(nl + 1));
      if (m.id !== dir) throw new Error(`its id is ${m.id}`);
      out.push(m);
    } catch (e) {
      warn?.(`ignoring releases/${dir}/release.json: ${(e as Error).message}`);
    }
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** The id in `current`, or undefined before the first successful deploy. */
export async function readCurrent(remote: Remote, remoteDir: string): Promise<string | undefined> {
  const id = ((await remote.readFile(paths(remoteDir).current)) ?? '').trim();
  return isReleaseId(id) ? id : undefined;
}

export async function setCurrent(remote: Remote, remoteDir: string, id: string): Promise<void> {
  checkId(id);
  await remote.writeFile(paths(remoteDir).current, `${id}\n`, 0o600, { public: true });
}

async function readManifest(remote: Remote, remoteDir: string, id: string): Promise<ReleaseManifest> {
  checkId(id);
  const path = paths(remoteDir).manifest(id);
  const text = await remote.readFile(path);
  if (text === undefined) throw new Error(`release ${id}: no readable ${path} on the host`);
  return parseManifest(text);
}

/**
 * Merge `patch` into releases/<id>/release.json (atomic rewrite, 0600). The id cannot change. A
 * patch still in the making (a promise) is awaited alongside the read of the manifest.
 */
export async function updateManifest(
  remote: Remote,
  remoteDir: string,
  id: string,
  patch: Partial<ReleaseManifest> | Promise<Partial<ReleaseManifest>>,
): Promise<ReleaseManifest> {
  const [old, p] = await Promise.all([readManifest(remote, remoteDir, id), patch]);
  const next: ReleaseManifest = { ...old, ...p, id: old.id };
  parseManifest(JSON.stringify(next)); // refuse to write a manifest we could not read back
  // A manifest holds no secret (the env file is beside it): public.
  await remote.writeFile(paths(remoteDir).manifest(id), `${JSON.stringify(next, null, 2)}\n`, 0o600, { public: true });
  return next;
}

/** Image IDs referenced by other projects' releases next to this one (the default layout's siblings). */
async function siblingImageIds(remote: Remote, remoteDir: string): Promise<Set<string>> {
  const parent = posix.dirname(remoteDir);
  const self = posix.basename(remoteDir);
  if (parent === remoteDir) return new Set();
  const r = await remote.exec(siblingManifestsCommand(parent, self), { timeoutMs: QUICK_COMMAND_MS, check: false });
  return new Set([...r.stdout.matchAll(/"imageId"\s*:\s*"(sha256:[0-9a-f]{64})"/g)].map((m) => m[1]!));
}

/** Rewrite a release's manifest as `abandoned` (0600, atomic). */
async function writeAbandoned(remote: Remote, remoteDir: string, m: ReleaseManifest, reason: string): Promise<ReleaseManifest> {
  const next: ReleaseManifest = { ...m, result: 'abandoned', reason };
  await remote.writeFile(paths(remoteDir).manifest(m.id), `${JSON.stringify(next, null, 2)}\n`, 0o600);
  return next;
}

/**
 * Under the lock no deploy of this project is in progress, so a `pending` release is one whose deploy
 * stopped before recording a result (killed, cancelled, disconnected): mark it `abandoned`, so the
 * list says so and retention prunes it like a failed one. Returns the releases as they are now and
 * the ones it marked.
 */
export async function markAbandoned(
  remote: Remote,
  remoteDir: string,
  releases: readonly ReleaseManifest[],
  project: string,
): Promise<{ releases: ReleaseManifest[]; marked: ReleaseManifest[] }> {
  const marked: ReleaseManifest[] = [];
  const out: ReleaseManifest[] = [];
  for (const r of releases) {
    if (r.result === 'pending' && r.project === project && isReleaseId(r.id)) {
      const m = await writeAbandoned(remote, remoteDir, r, abandonedReason(r));
      marked.push(m);
      out.push(m);
    } else {
      out.push(r);
    }
  }
  return { releases: out, marked };
}

/**
 * A deploy that stops on an error before its Record phase marks its own release `abandoned` with the
 * error as the reason (it still holds the lock). Does nothing when the release is gone or recorded.
 */
export async function abandonIfPending(remote: Remote, remoteDir: string, id: string, reason: string): Promise<boolean> {
  checkId(id);
  const text = await remote.readFile(paths(remoteDir).manifest(id));
  if (text === undefined) return false;
  const m = parseManifest(text);
  if (m.result !== 'pending') return false;
  // The first lines say what stopped it; a whole stderr belongs in the job log, not in every release list.
  await writeAbandoned(remote, remoteDir, m, reason.length > 500 ? `${reason.slice(0, 500)}…` : reason);
  return true;
}

export interface PrunedOnHost extends PrunedRelease {
  /** Of `images`, those `docker image rm` removed. */
  imagesRemoved: string[];
  /** Of `images`, those Docker refused to remove (a container uses it, or it has more than one tag). */
  imagesKept: string[];
}

export interface PruneResult {
  removed: string[];
  /** Image IDs `docker image rm` removed. */
  imagesRemoved: string[];
  /** Image IDs that were candidates but Docker kept (in use by a container, or tagged more than once). */
  imagesKept: string[];
  /** Per pruned release, in the order they went (failed ones first): one audit line each. */
  pruned: PrunedOnHost[];
  /** This project's releases left on the host. */
  kept: ReleaseManifest[];
}

/** One audit line per pruned release: which release, which images went, which Docker kept. */
export function pruneAuditEntries(result: PruneResult, at: string, actor?: string, runUrl?: string): AuditEntry[] {
  return result.pruned.map((p) => ({
    at,
    kind: 'prune' as const,
    release: p.id,
    sha: p.sha,
    actor,
    runUrl,
    result: p.result,
    images: p.imagesRemoved,
    ...(p.imagesKept.length ? { detail: `Docker kept ${p.imagesKept.join(', ')}: a container uses it or it has another tag` } : {}),
  }));
}

/**
 * Drop this project's releases that retention (release.ts) lets go, leftover .<id>.tmp dirs, then the
 * images only they referenced. Image candidates come only from this project's pruned manifests, minus
 * anything a kept release or a sibling project's release refers to; `docker image rm` without -f also
 * refuses images a container uses, which is fine. Call it under the lock. `listed`: the releases on
 * the host as the caller knows them (it holds the lock since it listed them), saving the listing.
 */
export async function pruneReleases(
  remote: Remote,
  remoteDir: string,
  project: string,
  keep: number,
  currentId?: string,
  warn?: (message: string) => void,
  keepFailed = KEEP_FAILED,
  listed?: readonly ReleaseManifest[],
): Promise<PruneResult> {
  const releases = listed ? [...listed] : await listReleases(remote, remoteDir, warn);
  const current = currentId ?? (await readCurrent(remote, remoteDir));
  const plan = retention(releases, keep, current, project, keepFailed);
  const removed = plan.prune.filter(isReleaseId);
  await remote.exec(removeReleasesCommand(remoteDir, removed), { timeoutMs: RELEASE_COMMAND_MS });
  const siblings = plan.images.length ? await siblingImageIds(remote, remoteDir) : new Set<string>();
  const candidates = plan.images.filter((i) => IMAGE_ID.test(i) && !siblings.has(i));
  const imagesRemoved: string[] = [];
  if (candidates.length) {
    const r = await remote.exec(removeImagesCommand(candidates), { timeoutMs: RELEASE_COMMAND_MS, check: false });
    for (const line of r.stdout.split('\n')) if (candidates.includes(line.trim())) imagesRemoved.push(line.trim());
  }
  const pruned = plan.pruned
    .filter((x) => removed.includes(x.id))
    .map((x) => {
      // Images another project's release pins were never candidates: not this prune's to name.
      const images = x.images.filter((i) => candidates.includes(i));
      return {
        ...x,
        images,
        imagesRemoved: images.filter((i) => imagesRemoved.includes(i)),
        imagesKept: images.filter((i) => !imagesRemoved.includes(i)),
      };
    });
  const kept = releases.filter((r) => r.project === project && !removed.includes(r.id));
  return { removed, imagesRemoved, imagesKept: candidates.filter((i) => !imagesRemoved.includes(i)), pruned, kept };
}
