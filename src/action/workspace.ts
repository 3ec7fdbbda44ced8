import { readdir, readFile, stat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { InputError } from './inputs.js';

/** A file of the release, at its workspace-relative path. */
export interface ReleaseFile {
  path: string;
  data: Buffer;
  /** Permission bits to keep (e.g. an executable entrypoint script). */
  mode: number;
}

const MAX_FILES = 5000;
const MAX_BYTES = 200 * 1024 * 1024;

async function walk(root: string, rel: string, out: ReleaseFile[], input: string): Promise<void> {
  const abs = join(root, rel);
  let st;
  try {
    st = await stat(abs);
  } catch {
    throw new InputError(input, `'${rel}' does not exist in the workspace (did the workflow run actions/checkout?)`);
  }
  if (st.isDirectory()) {
    const names = (await readdir(abs)).sort();
    for (const name of names) {
      if (name === '.git') continue;
      await walk(root, posix.join(rel, name), out, input);
    }
    return;
  }
  if (!st.isFile()) return;
  if (out.length >= MAX_FILES) throw new InputError(input, `more than ${MAX_FILES} files: upload a smaller directory`);
  out.push({ path: rel, data: await readFile(abs), mode: st.mode & 0o777 });
}

/** Read the Compose files and the extra files of a release from the workspace, deduplicated by path. */
export async function collectFiles(workspace: string, composeFiles: string[], files: string[]): Promise<ReleaseFile[]> {
  const out: ReleaseFile[] = [];
  for (const f of composeFiles) await walk(workspace, f.replace(/\/+$/, ''), out, 'compose_files');
  for (const f of files) await walk(workspace, f.replace(/\/+$/, ''), out, 'files');
  const seen = new Map<string, ReleaseFile>();
  for (const f of out) seen.set(f.path, f);
  const all = [...seen.values()];
  const bytes = all.reduce((n, f) => n + f.data.length, 0);
  if (bytes > MAX_BYTES)
    throw new InputError(
      'files',
      `the release is ${Math.round(bytes / 1e6)} MB; keep uploads under ${MAX_BYTES / 1e6} MB (images belong in a registry)`,
    );
  return all;
}
