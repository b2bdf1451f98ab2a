import { open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { makeDir } from '../storage/make-dir.js';

/**
 * The daemon's state folder: its settings and, per torrent, its .torrent and its resume data.
 * Every file is written atomically (a temporary file, fsync, rename, then the folder synced), so a
 * crash leaves the old or the new file, never half of one. Reading is defensive: a file that is
 * missing, truncated or not what we wrote comes back as a problem to report, never a throw.
 *
 *   <state>/settings.json
 *   <state>/torrents/<info hash>.torrent
 *   <state>/torrents/<info hash>.resume.json
 */

/** A torrent's resume data: what lets a restart skip re-hashing its files. */
export interface ResumeData {
  version: 1;
  id: string;
  downloadDir: string;
  addedAt: number;
  completedAt: number | null;
  paused: boolean;
  position: number;
  uploaded: number;
  downloaded: number;
  /** Of `downloaded`, the bytes from web seeds (absent: none). */
  downloadedWebSeed?: number;
  /** Verified pieces, as a base64 bitfield (BEP 3 bit order). */
  have: string;
  /** Each file's size and mtime when `have` was recorded; they must match for `have` to be trusted. */
  files: { path: string; size: number; mtimeMs: number }[];
  /** Per-torrent rate limits, bytes/s (null: none). */
  downloadLimit: number | null;
  uploadLimit: number | null;
  /** File selection: indexes of the files not wanted (absent: every file). */
  unwanted?: number[];
  /** File priorities other than normal, as [index, 2 high | 0 low] pairs. */
  priorities?: [number, number][];
  /** Its number in Transmission's RPC (stays the same across restarts). */
  rpcId?: number;
  /** Its labels (absent: none). */
  labels?: string[];
}

/** One torrent found in the state folder. */
export interface StoredTorrent {
  id: string;
  torrent: Uint8Array;
  /** Null when there is none or it cannot be read; `problem` says why. */
  resume: ResumeData | null;
  problem: string | null;
}

/** Largest resume file read (a torrent of 100,000 files records each): beyond it, a re-check. */
const MAX_RESUME_BYTES = 64 * 1024 * 1024;

export class StateStore {
  readonly dir: string;
  readonly torrentsDir: string;

  constructor(dir: string) {
    this.dir = dir;
    this.torrentsDir = join(dir, 'torrents');
  }

  async open(): Promise<void> {
    await makeDir(this.torrentsDir);
  }

  async saveTorrent(id: string, bytes: Uint8Array): Promise<void> {
    await writeAtomic(join(this.torrentsDir, `${id}.torrent`), bytes);
  }

  async saveResume(r: ResumeData): Promise<void> {
    await writeAtomic(join(this.torrentsDir, `${r.id}.resume.json`), Buffer.from(`${JSON.stringify(r)}\n`));
  }

  async remove(id: string): Promise<void> {
    await rm(join(this.torrentsDir, `${id}.torrent`), { force: true });
    await rm(join(this.torrentsDir, `${id}.resume.json`), { force: true });
  }

  async saveSettings(settings: object): Promise<void> {
    await writeAtomic(join(this.dir, 'settings.json'), Buffer.from(`${JSON.stringify(settings, null, 2)}\n`));
  }

  /** The saved settings, or null (none yet, or unreadable: `problem` says which). */
  async loadSettings(): Promise<{ settings: Record<string, unknown> | null; problem: string | null }> {
    let text: string;
    try {
      text = await readFile(join(this.dir, 'settings.json'), 'utf8');
    } catch {
      return { settings: null, problem: null };
    }
    try {
      const v = JSON.parse(text) as unknown;
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not an object');
      return { settings: v as Record<string, unknown>, problem: null };
    } catch (e) {
      return { settings: null, problem: `settings.json: ${(e as Error).message}` };
    }
  }

  /** Every torrent in the folder, with its resume data where it can be read. */
  async loadTorrents(): Promise<StoredTorrent[]> {
    const out: StoredTorrent[] = [];
    const names = (await readdir(this.torrentsDir)).filter((n) => /^[0-9a-f]{40}\.torrent$/.test(n)).sort();
    for (const n of names) {
      const id = n.slice(0, 40);
      const torrent = await readFile(join(this.torrentsDir, n));
      const { resume, problem } = await this.#readResume(id);
      out.push({ id, torrent, resume, problem });
    }
    return out;
  }

  async #readResume(id: string): Promise<{ resume: ResumeData | null; problem: string | null }> {
    const path = join(this.torrentsDir, `${id}.resume.json`);
    let text: string;
    try {
      const b = await readFile(path);
      if (b.length > MAX_RESUME_BYTES)
        return { resume: null, problem: `${path}: larger than ${MAX_RESUME_BYTES} bytes` };
      text = b.toString('utf8');
    } catch {
      return { resume: null, problem: `${path}: missing` };
    }
    try {
      return { resume: checkResume(JSON.parse(text) as unknown, id), problem: null };
    } catch (e) {
      return { resume: null, problem: `${path}: ${(e as Error).message}` };
    }
  }
}

/** Resume data as we wrote it, or a throw saying what is wrong. */
export function checkResume(v: unknown, id: string): ResumeData {
  const r = v as Partial<ResumeData> | null;
  const num = (x: unknown) => typeof x === 'number' && Number.isFinite(x) && x >= 0;
  if (typeof r !== 'object' || r === null) throw new Error('not an object');
  if (r.version !== 1) throw new Error(`unknown version ${String(r.version)}`);
  if (r.id !== id) throw new Error('written for another torrent');
  if (typeof r.downloadDir !== 'string' || r.downloadDir === '') throw new Error('no download folder');
  if (!num(r.addedAt) || !num(r.position) || !num(r.uploaded) || !num(r.downloaded))
    throw new Error('bad numbers');
  if (r.completedAt !== null && !num(r.completedAt)) throw new Error('bad completion time');
  if (typeof r.paused !== 'boolean' || typeof r.have !== 'string') throw new Error('bad fields');
  if (
    !Array.isArray(r.files) ||
    !r.files.every((f) => typeof f?.path === 'string' && num(f.size) && num(f.mtimeMs))
  )
    throw new Error('bad file list');
  const limit = (x: unknown) => x === null || x === undefined || num(x);
  if (!limit(r.downloadLimit) || !limit(r.uploadLimit)) throw new Error('bad limits');
  if (
    r.unwanted !== undefined &&
    !(Array.isArray(r.unwanted) && r.unwanted.every((i) => Number.isInteger(i) && i >= 0))
  )
    throw new Error('bad file selection');
  if (
    r.priorities !== undefined &&
    !(
      Array.isArray(r.priorities) &&
      r.priorities.every(
        (p) => Array.isArray(p) && Number.isInteger(p[0]) && p[0] >= 0 && (p[1] === 0 || p[1] === 2),
      )
    )
  )
    throw new Error('bad file priorities');
  return {
    ...(r as ResumeData),
    downloadLimit: r.downloadLimit ?? null,
    uploadLimit: r.uploadLimit ?? null,
  };
}

/** Writes `data` to `path` so that a crash leaves the old file or the new one, whole. */
export async function writeAtomic(path: string, data: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const f = await open(tmp, 'w', 0o600);
  try {
    await f.writeFile(data);
    await f.sync();
  } finally {
    await f.close();
  }
  await rename(tmp, path);
  const dir = await open(join(path, '..'), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
