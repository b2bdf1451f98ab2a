import { constants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';

/** Folders made at most by one call: deeper than any real path (PATH_MAX 4096 / 2 bytes a level). */
export const MAX_DIR_DEPTH = 2048;

/**
 * Makes `path` and any missing parents, then checks that we can write into it. Each level is made
 * with a plain `mkdir`, not `{ recursive: true }`: on a pseudo file system such as /proc, Node's
 * recursive mkdir never returns (it retries ENOENT forever), and an unwritable or impossible folder
 * must fail at once with its reason. Throws an Error whose `code` is the system's (ENOENT, ENOTDIR,
 * EACCES, EROFS...) and whose message names the folder. `writable: false` skips the write check
 * (a seed only reads).
 */
export async function makeDir(path: string, opts: { writable?: boolean } = {}): Promise<void> {
  const target = resolve(path);
  const missing: string[] = [];
  let p = target;
  // Walk up to the first folder that exists.
  for (let depth = 0; ; depth++) {
    const kind = await kindOf(p);
    if (kind === 'dir') break;
    if (kind === 'other') throw dirError(target, 'ENOTDIR', `${p} is not a folder (ENOTDIR)`);
    const parent = dirname(p);
    if (parent === p || depth >= MAX_DIR_DEPTH) throw dirError(target, 'ENOENT', 'no such folder (ENOENT)');
    missing.push(p);
    p = parent;
  }
  for (const dir of missing.reverse()) {
    try {
      await mkdir(dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'EIO';
      if (code === 'EEXIST' && (await kindOf(dir)) === 'dir') continue;
      throw dirError(target, code, code);
    }
  }
  if (opts.writable === false) return;
  try {
    await access(target, constants.W_OK | constants.X_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'EACCES';
    throw dirError(target, code, `not writable (${code})`);
  }
}

async function kindOf(p: string): Promise<'dir' | 'other' | 'none'> {
  try {
    return (await stat(p)).isDirectory() ? 'dir' : 'other';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'none';
    if (code === 'ENOTDIR') return 'other';
    throw dirError(p, code ?? 'EIO', code ?? 'cannot stat');
  }
}

function dirError(path: string, code: string, why: string): NodeJS.ErrnoException {
  const e: NodeJS.ErrnoException = new Error(`cannot make folder ${path}: ${why}`);
  e.code = code;
  return e;
}
