/**
 * Reading a file on the host. The command prints the file, or exits with NO_FILE when there is no
 * readable regular file at the path (missing, a directory, unreadable), so the caller can tell
 * "absent" from a failed read without parsing stderr.
 */
import { shq } from './quote.js';

/** The exit status of readFileCommand when there is nothing to read. */
export const NO_FILE = 3;

export function readFileCommand(path: string): string {
  const p = shq(path);
  return `if [ -f ${p} ] && [ -r ${p} ]; then cat -- ${p}; else exit ${NO_FILE}; fi`;
}

/**
 * Stdin: the file's bytes, written to `tmp` (a name in the same directory), given `mode`, then
 * renamed over `path`. umask first, so the data is never readable by others, even for the instant
 * before chmod; a failure removes the temp file.
 */
export function writeFileCommand(path: string, tmp: string, mode: number): string {
  const m = (mode & 0o7777).toString(8).padStart(4, '0');
  return (
    `umask 077; cat > ${shq(tmp)} && chmod ${m} ${shq(tmp)} && mv -f ${shq(tmp)} ${shq(path)}` +
    ` || { rc=$?; rm -f ${shq(tmp)}; exit $rc; }`
  );
}

/** Create a directory and its parents (nothing when it exists). */
export function mkdirCommand(path: string): string {
  return `mkdir -p ${shq(path)}`;
}

/** Remove a file (nothing when it is gone). */
export function removeFileCommand(path: string): string {
  return `rm -f ${shq(path)}`;
}
