/**
 * Releases as data: the id, the manifest kept in each release directory on the host, which release
 * a rollback goes back to, and which releases and images retention lets go. Pure; the host side is
 * release-store.ts.
 */

export type ReleaseResult = 'pending' | 'success' | 'failed' | 'rolled-back';

export interface ServiceImage {
  /** The image reference as written in the Compose file (after interpolation). */
  image: string;
  /** The image ID (sha256:...) the service ran when the release was recorded; pins rollbacks. */
  imageId: string;
  digest?: string;
}

export interface ReleaseManifest {
  id: string;
  project: string;
  sha: string;
  ref: string;
  actor: string;
  runUrl: string;
  /** ISO 8601 time the release was created. */
  createdAt: string;
  /** Repo-relative paths of the uploaded files (the Compose files among them). */
  files: string[];
  composeFiles: string[];
  services: Record<string, ServiceImage>;
  result: ReleaseResult;
  /** Set on a rollback release: the id of the release whose files and images it re-deployed. */
  rollbackOf?: string;
  probe?: { sent: number; lost: number; p99Ms: number };
  durationS?: number;
}

export const RELEASE_ID = /^\d{8}T\d{6}Z-[0-9a-z]{7}$/;

/** `20261123T193000Z-abc1234`: UTC to the second, then the short sha, so ids sort by time. */
export function releaseId(date: Date, sha: string): string {
  const short = sha.slice(0, 7).toLowerCase();
  if (!/^[0-9a-z]{7}$/.test(short)) throw new Error(`cannot make a release id from sha '${sha}': need at least 7 letters or digits`);
  const stamp = date.toISOString().replace(/\.\d+Z$/, 'Z').replace(/[-:]/g, '');
  return `${stamp}-${short}`;
}

export function isReleaseId(id: string): boolean {
  return RELEASE_ID.test(id);
}

const RESULTS: readonly ReleaseResult[] = ['pending', 'success', 'failed', 'rolled-back'];

/** Parse and check a release.json; the error says which field is wrong. */
export function parseManifest(text: string): ReleaseManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`release.json is not JSON: ${(e as Error).message}`);
  }
  if (!isObject(raw)) throw new Error('release.json: expected an object');
  const bad = (field: string, want: string): never => {
    throw new Error(`release.json${typeof raw.id === 'string' ? ` (${raw.id})` : ''}: '${field}' must be ${want}`);
  };
  for (const f of ['id', 'project', 'sha', 'ref', 'actor', 'runUrl', 'createdAt'] as const) {
    if (typeof raw[f] !== 'string') bad(f, 'a string');
  }
  if (!isReleaseId(raw.id as string)) bad('id', 'a release id like 20261123T193000Z-abc1234');
  for (const f of ['files', 'composeFiles'] as const) {
    const v = raw[f];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) bad(f, 'a list of strings');
  }
  if (!isObject(raw.services)) bad('services', 'an object');
  const services: Record<string, ServiceImage> = {};
  for (const [name, s] of Object.entries(raw.services as Record<string, unknown>)) {
    if (!isObject(s) || typeof s.image !== 'string' || typeof s.imageId !== 'string') bad(`services.${name}`, 'an object with image and imageId strings');
    const svc = s as Record<string, unknown>;
    if (svc.digest !== undefined && typeof svc.digest !== 'string') bad(`services.${name}.digest`, 'a string');
    services[name] = { image: svc.image as string, imageId: svc.imageId as string, ...(typeof svc.digest === 'string' ? { digest: svc.digest } : {}) };
  }
  if (!RESULTS.includes(raw.result as ReleaseResult)) bad('result', RESULTS.join(', '));
  if (raw.rollbackOf !== undefined && (typeof raw.rollbackOf !== 'string' || !isReleaseId(raw.rollbackOf))) bad('rollbackOf', 'a release id');
  let probe: ReleaseManifest['probe'];
  if (raw.probe !== undefined) {
    const p = raw.probe;
    if (!isObject(p) || typeof p.sent !== 'number' || typeof p.lost !== 'number' || typeof p.p99Ms !== 'number') bad('probe', 'an object with numbers sent, lost, p99Ms');
    const q = p as Record<string, number>;
    probe = { sent: q.sent!, lost: q.lost!, p99Ms: q.p99Ms! };
  }
  if (raw.durationS !== undefined && typeof raw.durationS !== 'number') bad('durationS', 'a number');
  const m: ReleaseManifest = {
    id: raw.id as string,
    project: raw.project as string,
    sha: raw.sha as string,
    ref: raw.ref as string,
    actor: raw.actor as string,
    runUrl: raw.runUrl as string,
    createdAt: raw.createdAt as string,
    files: raw.files as string[],
    composeFiles: raw.composeFiles as string[],
    services,
    result: raw.result as ReleaseResult,
  };
  if (raw.rollbackOf !== undefined) m.rollbackOf = raw.rollbackOf as string;
  if (probe) m.probe = probe;
  if (raw.durationS !== undefined) m.durationS = raw.durationS as number;
  return m;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Newest first (ids sort by time). */
export function newestFirst(releases: readonly ReleaseManifest[]): ReleaseManifest[] {
  return [...releases].sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

/** A table of releases, newest first, for error messages and the log. */
export function formatReleaseList(releases: readonly ReleaseManifest[], currentId?: string): string {
  if (releases.length === 0) return '  (no releases on the host)';
  return newestFirst(releases)
    .map((r) => {
      const extra = [r.id === currentId ? 'current' : '', r.rollbackOf ? `rollback of ${r.rollbackOf}` : ''].filter(Boolean).join(', ');
      return `  ${r.id}  ${r.sha.slice(0, 7)}  ${r.createdAt}  ${r.result}${extra ? `  (${extra})` : ''}`;
    })
    .join('\n');
}

/** Follow rollbackOf links to the release that first shipped these files and images. */
function origin(byId: Map<string, ReleaseManifest>, r: ReleaseManifest): ReleaseManifest {
  let cur = r;
  const seen = new Set<string>();
  while (cur.rollbackOf && !seen.has(cur.id)) {
    seen.add(cur.id);
    const next = byId.get(cur.rollbackOf);
    if (!next) break;
    cur = next;
  }
  return cur;
}

/**
 * The release a rollback re-deploys. With an id: that release (an unknown id is an error that lists
 * what there is). Without: the newest successful release older than the one serving. When the one
 * serving is itself a rollback, "older" counts from the release it went back to, so rolling back
 * twice steps further back instead of swinging back to the release just rolled away from.
 */
export function selectRollbackTarget(releases: readonly ReleaseManifest[], currentId: string | undefined, requested?: string): ReleaseManifest {
  if (requested) {
    const hit = releases.find((r) => r.id === requested);
    if (hit) return hit;
    throw new Error(`release '${requested}' is not on the host. Releases there (newest first):\n${formatReleaseList(releases, currentId)}`);
  }
  const byId = new Map(releases.map((r) => [r.id, r]));
  const current = currentId ? byId.get(currentId) : undefined;
  if (!current) {
    throw new Error(
      `no release is recorded as serving${currentId ? ` (current names '${currentId}', which is not on the host)` : ''}, so there is no "previous" one; ` +
        `pass release: <id>. Releases on the host (newest first):\n${formatReleaseList(releases, currentId)}`,
    );
  }
  const from = origin(byId, current);
  const target = newestFirst(releases).find((r) => r.result === 'success' && r.id < from.id && origin(byId, r).id !== from.id);
  if (!target) {
    throw new Error(
      `there is no successful release older than ${from.id}${from.id !== current.id ? ` (the release ${current.id} rolled back to)` : ''} to roll back to; ` +
        `pass release: <id>. Releases on the host (newest first):\n${formatReleaseList(releases, currentId)}`,
    );
  }
  return target;
}

export interface RetentionPlan {
  /** Release ids whose directories go. */
  prune: string[];
  /** Image IDs only the pruned releases referenced. */
  images: string[];
}

/**
 * What pruning may remove: of this project's releases, everything but the newest `keep`, the one
 * serving and the one a rollback would go to. Releases of other projects are never pruned and their
 * images count as referenced; an image goes only when no kept release (of any project) refers to it.
 */
export function retention(releases: readonly ReleaseManifest[], keep: number, currentId: string | undefined, project?: string): RetentionPlan {
  if (!Number.isInteger(keep) || keep < 1) throw new Error(`keep must be a whole number of at least 1, got ${keep}`);
  const ours = newestFirst(releases.filter((r) => project === undefined || r.project === project));
  const protect = new Set<string>(ours.slice(0, keep).map((r) => r.id));
  if (currentId) protect.add(currentId);
  try {
    if (currentId) protect.add(selectRollbackTarget(releases, currentId).id);
  } catch {
    // no rollback target: nothing extra to keep
  }
  const pruned = ours.filter((r) => !protect.has(r.id));
  const prunedIds = new Set(pruned.map((r) => r.id));
  const referenced = new Set<string>();
  for (const r of releases) {
    if (prunedIds.has(r.id)) continue;
    for (const s of Object.values(r.services)) if (s.imageId) referenced.add(s.imageId);
  }
  const images = new Set<string>();
  for (const r of pruned) for (const s of Object.values(r.services)) if (s.imageId && !referenced.has(s.imageId)) images.add(s.imageId);
  return { prune: pruned.map((r) => r.id).sort(), images: [...images].sort() };
}
