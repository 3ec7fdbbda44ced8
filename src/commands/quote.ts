/**
 * The one quoting function for every value that reaches a remote shell.
 * POSIX single quotes: nothing inside is special except the quote itself,
 * which is closed, escaped and reopened.
 */
export function shq(value: string | number): string {
  const s = String(value);
  if (s.includes('\0')) throw new Error('a value for the remote shell contains a NUL byte');
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Quote each word and join them into one command line. */
export function shqAll(words: Array<string | number>): string {
  return words.map(shq).join(' ');
}
