/**
 * Reading a file on the host. The command prints the file, or exits with NO_FILE when there is no
 * readable regular file at the path (missing, a directory, unreadable), so the caller can tell
 * "absent" from a failed read without parsing stderr.
 */
import { shq } from '../quote.js';

/** The exit status of readFileCommand when there is nothing to read. */
export const NO_FILE = 3;

export function readFileCommand(path: string): string {
  const p = shq(path);
  return `if [ -f ${p} ] && [ -r ${p} ]; then cat -- ${p}; else exit ${NO_FILE}; fi`;
}
