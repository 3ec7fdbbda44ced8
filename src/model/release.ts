/**
 * Releases as data: the id, the manifest kept in each release directory on the host, which release
 * a rollback goes back to, and which releases and images retention lets go. Pure; the host side is
 * release-store.ts.
 */

/**
 * `pending` while its deploy runs; `abandoned` when that deploy stopped before recording a result
 * (an error before the rollout, a killed or cancelled job), set by the deploy itself when it could,
 * else by the next deploy under the lock.
 */
export type ReleaseResult = 'pending' | 'success' | 'failed' | 'rolled-back' | 'abandoned';

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
  /** Why the release is `abandoned` (or failed), when known. */
  reason?: string;
  probe?: { sent: number; lost: number; p99Ms: number };
  durationS?: number;
}

const RELEASE_ID = /^\d{8}T\d{6}Z-[0-9a-z]{7}$/;

/** `20261123T193000Z-abc1234`: UTC to the second, then the short sha, so ids sort by time. */
export function releaseId(date: Date, sha: string): string {
  const short = sha.slice(0, 7).toLowerCase();
  if (!/^[0-9a-z]{7}$/.test(short)) throw new Error(`cannot make a release id from sha '${sha}': need at least 7 letters or digits`);
  const stamp = date
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/[-:]/g, '');
  return `${stamp}-${short}`;
}

export function isReleaseId(id: string): boolean {
  return RELEASE_ID.test(id);
}

const RESULTS: readonly ReleaseResult[] = ['pending', 'success', 'failed', 'rolled-back', 'abandoned'];

/** Throws the error for one wrong field of a release.json. */
type BadField = (field: string, want: string) => never;

/** Parse and check a release.json; the error says which field is wrong. */
export function parseManifest(text: string): ReleaseManifest {
  const raw = parseJsonObject(text);
  const bad: BadField = (field, want) => {
    throw new Error(`release.json${typeof raw.id === 'string' ? ` (${raw.id})` : ''}: '${field}' must be ${want}`);
  };
  checkRecord(raw, bad);
  const services = parseServiceImages(raw.services, bad);
  if (!RESULTS.includes(raw.result as ReleaseResult)) bad('result', RESULTS.join(', '));
  if (raw.rollbackOf !== undefined && (typeof raw.rollbackOf !== 'string' || !isReleaseId(raw.rollbackOf)))
    bad('rollbackOf', 'a release id');
  const probe = parseProbeSummary(raw.probe, bad);
  if (raw.durationS !== undefined && typeof raw.durationS !== 'number') bad('durationS', 'a number');
  if (raw.reason !== undefined && typeof raw.reason !== 'string') bad('reason', 'a string');
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
  if (raw.reason !== undefined) m.reason = raw.reason as string;
  if (probe) m.probe = probe;
  if (raw.durationS !== undefined) m.durationS = raw.durationS as number;
  return m;
}

function parseJsonObject(text: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`release.json is not JSON: ${(e as Error).message}`, { cause: e });
  }
  if (!isObject(raw)) throw new Error('release.json: expected an object');
  return raw;
}

/** The fields every release records when it is created: who, what, when, and which files. */
function checkRecord(raw: Record<string, unknown>, bad: BadField): void {
  for (const f of ['id', 'project', 'sha', 'ref', 'actor', 'runUrl', 'createdAt'] as const) {
    if (typeof raw[f] !== 'string') bad(f, 'a string');
  }
  if (!isReleaseId(raw.id as string)) bad('id', 'a release id like 20261123T193000Z-abc1234');
  for (const f of ['files', 'composeFiles'] as const) {
    const v = raw[f];
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) bad(f, 'a list of strings');
  }
}

function parseServiceImages(value: unknown, bad: BadField): Record<string, ServiceImage> {
  if (!isObject(value)) return bad('services', 'an object');
  const services: Record<string, ServiceImage> = {};
  for (const [name, s] of Object.entries(value)) {
    if (!isObject(s) || typeof s.image !== 'string' || typeof s.imageId !== 'string')
      return bad(`services.${name}`, 'an object with image and imageId strings');
    if (s.digest !== undefined && typeof s.digest !== 'string') bad(`services.${name}.digest`, 'a string');
    services[name] = {
      image: s.image,
      imageId: s.imageId,
      ...(typeof s.digest === 'string' ? { digest: s.digest } : {}),
    };
  }
  return services;
}

function parseProbeSummary(value: unknown, bad: BadField): ReleaseManifest['probe'] {
  if (value === undefined) return undefined;
  if (!isObject(value) || typeof value.sent !== 'number' || typeof value.lost !== 'number' || typeof value.p99Ms !== 'number')
    return bad('probe', 'an object with numbers sent, lost, p99Ms');
  return { sent: value.sent, lost: value.lost, p99Ms: value.p99Ms };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Newest first (ids sort by time). */
function newestFirst(releases: readonly ReleaseManifest[]): ReleaseManifest[] {
  return [...releases].sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
}

/** "45 s", "12 min", "3 h", "2 d": how long ago, for choosing a release at a glance. */
export function age(createdAt: string, now: number): string {
  const t = Date.parse(createdAt);
  if (!Number.isFinite(t)) return '?';
  const s = Math.max(0, Math.round((now - t) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function oneLine(text: string, max: number): string {
  const t = text.replace(/\s+/g, ' ').trim();
  return t.length > max ? `${t.slice(0, max - 1)}…` : t;
}

/** What a row of the release list says besides id, result, sha and age. */
function notes(r: ReleaseManifest, currentId: string | undefined, pick: string | undefined): string[] {
  return [
    r.id === currentId ? 'serving' : '',
    r.id === pick ? '`rollback: true` picks this' : '',
    r.rollbackOf ? `rollback of ${r.rollbackOf}` : '',
    r.reason ? oneLine(r.reason, 120) : '',
  ].filter(Boolean);
}

/**
 * A table of releases, newest first, for error messages and the log: id, result, sha, age, and
 * which one is serving and which one `rollback: true` would pick.
 */
export function formatReleaseList(releases: readonly ReleaseManifest[], currentId?: string, now = Date.now()): string {
  if (releases.length === 0) return '  (no releases on the host)';
  const pick = defaultRollbackTarget(releases, currentId)?.id;
  const rows = newestFirst(releases).map((r) => [
    r.id,
    r.result,
    r.sha.slice(0, 7),
    age(r.createdAt, now),
    notes(r, currentId, pick).join('; ').replace(/`/g, ''),
  ]);
  const width = [0, 1, 2, 3].map((c) => Math.max(...rows.map((row) => row[c]!.length)));
  return rows
    .map((row) =>
      `  ${row
        .slice(0, 4)
        .map((v, c) => v.padEnd(width[c]!))
        .join('  ')}${row[4] ? `  (${row[4]})` : ''}`.trimEnd(),
    )
    .join('\n');
}

/** The same list as a Markdown table, for the job summary. */
function releaseTableMarkdown(releases: readonly ReleaseManifest[], currentId?: string, now = Date.now()): string {
  const pick = defaultRollbackTarget(releases, currentId)?.id;
  const cell = (v: string) => v.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return [
    '| release | result | sha | age | |',
    '|---|---|---|---|---|',
    ...newestFirst(releases).map(
      (r) =>
        `| \`${r.id}\` | ${r.result} | \`${r.sha.slice(0, 7)}\` | ${age(r.createdAt, now)} | ${cell(notes(r, currentId, pick).join('; '))} |`,
    ),
  ].join('\n');
}

/**
 * Follow rollbackOf links to the id of the release that first shipped these files and images. The
 * id, not the manifest: that release may have been pruned since, and "older than it" still holds.
 */
function originId(byId: Map<string, ReleaseManifest>, r: ReleaseManifest): string {
  let id = r.id;
  let cur: ReleaseManifest | undefined = r;
  const seen = new Set<string>();
  while (cur?.rollbackOf && !seen.has(cur.id)) {
    seen.add(cur.id);
    id = cur.rollbackOf;
    cur = byId.get(id);
  }
  return id;
}

/**
 * What `rollback: true` without `release` goes back to: the newest successful release older than the
 * one serving. When the one serving is itself a rollback, "older" counts from the release it went
 * back to, so rolling back twice steps further back instead of swinging back to the release just
 * rolled away from. Undefined when there is none.
 */
export function defaultRollbackTarget(releases: readonly ReleaseManifest[], currentId: string | undefined): ReleaseManifest | undefined {
  const byId = new Map(releases.map((r) => [r.id, r]));
  const current = currentId ? byId.get(currentId) : undefined;
  if (!current) return undefined;
  const from = originId(byId, current);
  return newestFirst(releases).find((r) => r.result === 'success' && r.id < from && originId(byId, r) !== from);
}

/**
 * The release a rollback re-deploys. With an id: that release (an unknown id, or one that never
 * recorded what it ran, is an error that lists what there is). Without: defaultRollbackTarget.
 */
export function selectRollbackTarget(
  releases: readonly ReleaseManifest[],
  currentId: string | undefined,
  requested?: string,
  now = Date.now(),
): ReleaseManifest {
  const list = () => `Releases on the host (newest first):\n${formatReleaseList(releases, currentId, now)}`;
  if (requested) {
    const hit = releases.find((r) => r.id === requested);
    if (!hit) throw new Error(`release '${requested}' is not on the host. ${list()}`);
    // No image IDs were recorded for these: nothing to pin, so "rolling back" would run whatever the tags point at now.
    if (hit.result === 'abandoned' || hit.result === 'pending') {
      throw new Error(
        `release '${requested}' is ${hit.result}${hit.reason ? ` (${hit.reason})` : ''}: its deploy never recorded the images it ran, so it cannot be rolled back to; pick a successful release. ${list()}`,
      );
    }
    return hit;
  }
  const byId = new Map(releases.map((r) => [r.id, r]));
  const current = currentId ? byId.get(currentId) : undefined;
  if (!current) {
    throw new Error(
      `no release is recorded as serving${currentId ? ` (current names '${currentId}', which is not on the host)` : ''}, so there is no "previous" one; ` +
        `pass release: <id>. ${list()}`,
    );
  }
  const target = defaultRollbackTarget(releases, currentId);
  if (!target) {
    const from = originId(byId, current);
    throw new Error(
      `there is no successful release older than ${from}${from !== current.id ? ` (the release ${current.id} rolled back to)` : ''} to roll back to; ` +
        `pass release: <id>. ${list()}`,
    );
  }
  return target;
}

/**
 * The "Roll back" part of the job summary: what `rollback: true` would do from here, and the kept
 * releases to choose from.
 */
export function rollbackHintMarkdown(
  releases: readonly ReleaseManifest[],
  currentId: string | undefined,
  now = Date.now(),
): string | undefined {
  if (!currentId) return undefined;
  const pick = defaultRollbackTarget(releases, currentId);
  const head = pick
    ? [
        `Release \`${currentId}\` is serving. \`rollback: true\` returns to \`${pick.id}\` (${pick.sha.slice(0, 7)}, ${age(pick.createdAt, now)}); for another one, name it:`,
        '',
        '```yaml',
        'rollback: true',
        `release: ${pick.id}   # or any successful release below`,
        '```',
      ]
    : [`Release \`${currentId}\` is serving. There is no earlier successful release for \`rollback: true\` to return to.`];
  return [...head, '', releaseTableMarkdown(releases, currentId, now)].join('\n');
}

/** Failed, rolled-back and abandoned releases kept for diagnosis, on top of keep_releases. */
export const KEEP_FAILED = 3;

/** Results of releases that never became a good one to return to. */
const NOT_GOOD: ReadonlySet<ReleaseResult> = new Set(['failed', 'rolled-back', 'abandoned']);

export interface PrunedRelease {
  id: string;
  result: ReleaseResult;
  sha: string;
  /** Image IDs freed by pruning it (each image is named by the first pruned release that pinned it). */
  images: string[];
}

export interface RetentionPlan {
  /** Release ids whose directories go: failed ones first, then good ones, oldest first within each. */
  prune: string[];
  /** The same, with what each one frees. */
  pruned: PrunedRelease[];
  /** Image IDs only the pruned releases referenced. */
  images: string[];
}

/**
 * What pruning may remove from this project's releases. Kept:
 * - good releases: the one serving, and the newest successful ones up to `keep` in all (serving
 *   counted); failed, rolled-back and abandoned releases never push one out;
 * - the release `rollback: true` would go back to, even beyond `keep`;
 * - the newest `keepFailed` failed, rolled-back or abandoned releases, for diagnosis;
 * - every pending release (under the lock, the next deploy marks those abandoned first).
 * Releases of other projects are never pruned and their images count as referenced; an image goes
 * only when no kept release (of any project) refers to it.
 */
export function retention(
  releases: readonly ReleaseManifest[],
  keep: number,
  currentId: string | undefined,
  project?: string,
  keepFailed = KEEP_FAILED,
): RetentionPlan {
  if (!Number.isInteger(keep) || keep < 1) throw new Error(`keep must be a whole number of at least 1, got ${keep}`);
  if (!Number.isInteger(keepFailed) || keepFailed < 0) throw new Error(`keepFailed must be a whole number, got ${keepFailed}`);
  const ours = newestFirst(releases.filter((r) => project === undefined || r.project === project));
  const protect = new Set<string>();
  if (currentId && ours.some((r) => r.id === currentId)) protect.add(currentId);
  for (const r of ours) if (protect.size < keep && r.result === 'success') protect.add(r.id);
  const target = defaultRollbackTarget(ours, currentId);
  if (target) protect.add(target.id);
  for (const r of ours.filter((x) => NOT_GOOD.has(x.result) && !protect.has(x.id)).slice(0, keepFailed)) protect.add(r.id);
  for (const r of ours) if (r.result === 'pending') protect.add(r.id);

  const oldestFirst = [...ours].reverse().filter((r) => !protect.has(r.id));
  const pruned = [...oldestFirst.filter((r) => r.result !== 'success'), ...oldestFirst.filter((r) => r.result === 'success')];
  const prunedIds = new Set(pruned.map((r) => r.id));
  const referenced = new Set<string>();
  for (const r of releases) {
    if (prunedIds.has(r.id)) continue;
    for (const s of Object.values(r.services)) if (s.imageId) referenced.add(s.imageId);
  }
  const freed = new Set<string>();
  const perRelease = pruned.map((r) => {
    const images: string[] = [];
    for (const s of Object.values(r.services)) {
      if (!s.imageId || referenced.has(s.imageId) || freed.has(s.imageId)) continue;
      freed.add(s.imageId);
      images.push(s.imageId);
    }
    return { id: r.id, result: r.result, sha: r.sha, images: images.sort() };
  });
  return { prune: pruned.map((r) => r.id), pruned: perRelease, images: [...freed].sort() };
}

/** A pending release found by a deploy holding the lock: its deploy is over, and never recorded a result. */
export function abandonedReason(r: ReleaseManifest): string {
  return `its deploy${r.runUrl ? ` (${r.runUrl})` : ''} stopped before recording a result: killed, cancelled or disconnected`;
}

/**
 * A rollback whose pinned images are gone from the host and could not be pulled: refused before
 * anything changes, naming each image and the release, with the list to pick another one from.
 */
export function missingImagesError(
  target: ReleaseManifest,
  missing: ReadonlyArray<{ service?: string; image: string; imageId: string }>,
  releases: readonly ReleaseManifest[],
  currentId: string | undefined,
  pulled: boolean,
  now = Date.now(),
): Error {
  const what = missing.map((m) => `${m.service ? `service ${m.service}: ` : ''}${m.image} (${m.imageId})`).join('; ');
  return new Error(
    `cannot roll back to release ${target.id} (${target.sha.slice(0, 7)}): ${missing.length === 1 ? 'its image is' : 'its images are'} no longer on the host` +
      `${pulled ? ' and a pull did not bring the pinned image back' : ' (pull: never)'}: ${what}. Nothing was changed. ` +
      `Push or load that image on the host, or pick another release. Releases on the host (newest first):\n${formatReleaseList(releases, currentId, now)}`,
  );
}
