/** The audit log's one command (entries are formatted by src/audit.ts auditLine). */
import { posix } from 'node:path';
import { shq } from './quote.js';

/**
 * Appends each line to <remoteDir>/audit.log (0600), in one command. Each line is one shq()'d
 * argument, so nothing in it reaches the shell as syntax; a line already there is not written again,
 * so the command can be repeated after a dropped connection without doubling the log.
 */
export function auditCommand(remoteDir: string, lines: readonly string[]): string {
  const file = shq(posix.join(remoteDir, 'audit.log'));
  return `umask 077 && touch ${file} && for line in ${lines.map((l) => shq(l)).join(' ')}; do grep -qxF -e "$line" ${file} || printf '%s\\n' "$line" >> ${file}; done && chmod 600 ${file}`;
}
