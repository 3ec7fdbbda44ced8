/**
 * A command's stdin carried in the command itself, as a here-document. ssh2 sends stdin only once
 * the host answered the exec request, so a command with stdin costs one more round trip than one
 * without; in the command line it costs none. Only for stdin that is no secret (the command line
 * shows in the host's process list), short, and UTF-8 text ending in a newline (a here-document
 * ends with one); anything else goes the usual way (undefined).
 */

/** Well under Linux's 128 KiB limit on one argument (`sh -c COMMAND`). */
export const INLINE_STDIN_MAX = 32 * 1024;

export function inlineStdin(command: string, stdin: string | Buffer): string | undefined {
  const bytes = typeof stdin === 'string' ? Buffer.from(stdin, 'utf8') : stdin;
  if (bytes.length === 0 || bytes.length > INLINE_STDIN_MAX) return undefined;
  const text = bytes.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(bytes) || text.includes('\0') || !text.endsWith('\n')) return undefined;
  // A delimiter no line of the text equals.
  const lines = new Set(text.split('\n'));
  let mark = 'HANDOFF_STDIN';
  while (lines.has(mark)) mark += '_';
  return `{\n${command}\n} <<'${mark}'\n${text}${mark}\n`;
}
