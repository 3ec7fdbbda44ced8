/**
 * A POSIX ustar archive built in memory, so a whole release goes to the host in one command's stdin
 * (`tar -x`) instead of a round trip per file. Regular files and directories only; names up to 255
 * bytes (split over the prefix and name fields); sizes under 8 GiB (11 octal digits).
 */

export interface TarEntry {
  /** Relative path with `/` separators; no `..`, not absolute. */
  path: string;
  type: 'file' | 'dir';
  data?: Buffer;
  /** Permission bits, e.g. 0o644. */
  mode: number;
}

const BLOCK = 512;
const MAX_SIZE = 8 * 1024 ** 3 - 1;

/** Split a path over ustar's prefix (155 bytes) and name (100 bytes) fields, at a slash. */
export function splitName(path: string): { prefix: string; name: string } {
  const bytes = Buffer.byteLength(path);
  if (bytes <= 100) return { prefix: '', name: path };
  if (bytes > 256) throw new Error(`tar: path is ${bytes} bytes, longer than ustar allows (255): ${path.slice(0, 80)}...`);
  // The rightmost slash that leaves a name of at most 100 bytes and a prefix of at most 155.
  for (let i = path.length - 1; i > 0; i--) {
    if (path[i] !== '/') continue;
    const prefix = path.slice(0, i);
    const name = path.slice(i + 1);
    if (Buffer.byteLength(name) > 100) break;
    if (name.length > 0 && Buffer.byteLength(prefix) <= 155) return { prefix, name };
  }
  throw new Error(
    `tar: cannot store path in ustar (needs a slash leaving at most 100 bytes after it and 155 before): ${path.slice(0, 80)}...`,
  );
}

function checkPath(path: string): void {
  if (!path || path.startsWith('/') || path.split('/').some((p) => p === '..' || p === '')) {
    throw new Error(`tar: '${path}' is not a relative path without '..' or empty parts`);
  }
  if (path.includes('\0')) throw new Error('tar: path contains a NUL byte');
  const bytes = Buffer.byteLength(path);
  if (bytes > 255) throw new Error(`tar: path is ${bytes} bytes, longer than ustar allows (255): ${path.slice(0, 80)}...`);
}

function octal(buf: Buffer, offset: number, width: number, value: number): void {
  // width-1 octal digits, then NUL
  const s = value.toString(8).padStart(width - 1, '0');
  if (s.length > width - 1) throw new Error(`tar: value ${value} does not fit ${width - 1} octal digits`);
  buf.write(s, offset, width - 1, 'ascii');
  buf[offset + width - 1] = 0;
}

function header(entry: TarEntry, size: number, mtime: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  const path = entry.type === 'dir' ? `${entry.path}/` : entry.path;
  const { prefix, name } = splitName(path);
  h.write(name, 0, 100, 'utf8');
  octal(h, 100, 8, entry.mode & 0o7777);
  octal(h, 108, 8, 0); // uid: extracted with -o, so the deploy user owns everything
  octal(h, 116, 8, 0); // gid
  octal(h, 124, 12, size);
  octal(h, 136, 12, mtime);
  h.fill(0x20, 148, 156); // checksum field counts as spaces while summing
  h.write(entry.type === 'dir' ? '5' : '0', 156, 1, 'ascii');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  // six octal digits, NUL, space (the historical layout every tar accepts)
  h.write(sum.toString(8).padStart(6, '0'), 148, 6, 'ascii');
  h[154] = 0;
  h[155] = 0x20;
  return h;
}

/** The archive: each entry's header and data padded to 512-byte blocks, then two zero blocks. */
export function buildTar(entries: readonly TarEntry[], mtime = Math.floor(Date.now() / 1000)): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    checkPath(e.path);
    const data = e.type === 'file' ? (e.data ?? Buffer.alloc(0)) : Buffer.alloc(0);
    if (data.length > MAX_SIZE) throw new Error(`tar: ${e.path} is ${data.length} bytes; ustar stores under 8 GiB`);
    parts.push(header(e, data.length, mtime));
    if (data.length) {
      parts.push(data);
      const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
      if (pad) parts.push(Buffer.alloc(pad));
    }
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}
