/**
 * The project's audit log on the host: one JSON line per deploy, rollback, lock takeover, pruned
 * release and release marked abandoned, in <remoteDir>/audit.log (0600). JSON.stringify escapes
 * newlines and control characters, so an entry is always exactly one line, and each line is one
 * shq()'d printf argument, so nothing in it reaches the shell as syntax.
 */
import { auditCommand } from '../commands/audit.js';
import type { Remote } from './remote.js';
import { QUICK_COMMAND_MS } from '../support/timeouts.js';

/** `prune`: a release retention removed; `abandon`: a release whose deploy stopped before recording a result. */
export type AuditKind = 'deploy' | 'rollback' | 'lock-takeover' | 'prune' | 'abandon';

export interface AuditEntry {
  at: string;
  kind: AuditKind;
  release?: string;
  sha?: string;
  actor?: string;
  runUrl?: string;
  result?: string;
  /** Image IDs (a prune: the ones it deleted). */
  images?: string[];
  detail?: string;
}

/** An entry of this run now: the time, the actor and the run's URL stamped on the given fields. */
export function auditEntry(
  kind: AuditKind,
  run: { actor?: string; runUrl?: string },
  fields: Omit<AuditEntry, 'at' | 'kind' | 'actor' | 'runUrl'>,
): AuditEntry {
  return { at: new Date().toISOString(), kind, ...fields, actor: run.actor, runUrl: run.runUrl };
}

/** Long details (an error with stderr) are cut so a line stays one small O_APPEND write. */
const MAX_DETAIL = 2000;

export function auditLine(entry: AuditEntry): string {
  const e = { ...entry };
  if (e.detail && e.detail.length > MAX_DETAIL) e.detail = `${e.detail.slice(0, MAX_DETAIL)}…`;
  // U+2028/2029 are legal in JSON strings but split lines for some readers.
  return JSON.stringify(e)
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/**
 * Appends one line per entry, in one command (commands/audit.ts), safe to repeat after a dropped
 * connection: a line already there is not written again.
 */
export async function appendAudit(remote: Remote, remoteDir: string, entry: AuditEntry | readonly AuditEntry[]): Promise<void> {
  const entries: readonly AuditEntry[] = Array.isArray(entry) ? entry : [entry as AuditEntry];
  if (entries.length === 0) return;
  await remote.exec(auditCommand(remoteDir, entries.map(auditLine)), { timeoutMs: QUICK_COMMAND_MS });
}

/** Parse audit.log text (for tests and tooling); lines that are not JSON are skipped. */
export function parseAuditLog(text: string): AuditEntry[] {
  const out: AuditEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as AuditEntry);
    } catch {
      // a torn or foreign line: not ours to interpret
    }
  }
  return out;
}
