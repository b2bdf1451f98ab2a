import { open, readdir, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { Hasher } from '../core/deps.js';
import { buildTorrent, checkPathComponent, type Metainfo, parseTorrent } from '../core/metainfo.js';
import { nodeHasher } from '../net/system.js';

/**
 * Makes a v1 .torrent from a file or a folder: walks the folder (sorted, symlinks skipped), hashes
 * the pieces across file boundaries while reading each file once in large chunks.
 */

export const DEFAULT_PIECE_LENGTH = 256 * 1024;
/** Read size while hashing: large reads, few syscalls. */
const READ_CHUNK = 4 * 1024 * 1024;

export interface CreateOpts {
  pieceLength?: number;
  /** Tracker URLs, each its own tier. */
  trackers?: string[];
  /** Tracker tiers (BEP 12), when several trackers share a tier; `trackers` then adds tiers after them. */
  tiers?: string[][];
  name?: string;
  /** Web seeds (BEP 19 `url-list`). */
  webSeeds?: string[];
  /** A private torrent (BEP 27): peers from its trackers only, never PEX or the DHT. */
  private?: boolean;
  /** SHA-1 (default: node:crypto's). */
  hasher?: Hasher;
}

interface FileEntry {
  abs: string;
  path: string[];
  length: number;
}

async function walk(dir: string, prefix: string[], out: FileEntry[]): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const abs = join(dir, e.name);
    if (e.isSymbolicLink()) continue;
    if (e.isDirectory()) await walk(abs, [...prefix, e.name], out);
    else if (e.isFile())
      out.push({ abs, path: [...prefix, checkPathComponent(e.name)], length: (await stat(abs)).size });
  }
}

export async function createTorrent(
  source: string,
  opts: CreateOpts = {},
): Promise<{ bytes: Uint8Array; meta: Metainfo }> {
  const abs = resolve(source);
  const st = await stat(abs);
  const pieceLength = opts.pieceLength ?? DEFAULT_PIECE_LENGTH;
  if (!Number.isInteger(pieceLength) || pieceLength < 16 * 1024 || (pieceLength & (pieceLength - 1)) !== 0) {
    throw new Error('piece size must be a power of two of at least 16 KiB');
  }
  const name = checkPathComponent(opts.name ?? basename(abs));
  const files: FileEntry[] = [];
  const multiFile = st.isDirectory();
  if (multiFile) {
    await walk(abs, [], files);
    if (files.length === 0) throw new Error(`${source} holds no files`);
  } else if (st.isFile()) {
    files.push({ abs, path: [name], length: st.size });
  } else {
    throw new Error(`${source} is neither a file nor a folder`);
  }
  const hasher = opts.hasher ?? nodeHasher;
  const hashes: Uint8Array[] = [];
  let hash = hasher.sha1Stream();
  let inPiece = 0;
  const buf = Buffer.allocUnsafe(READ_CHUNK);
  for (const f of files) {
    const fh = await open(f.abs, 'r');
    try {
      let pos = 0;
      while (pos < f.length) {
        const { bytesRead } = await fh.read(buf, 0, Math.min(READ_CHUNK, f.length - pos), pos);
        if (bytesRead === 0) throw new Error(`${f.abs} changed while hashing`);
        let off = 0;
        while (off < bytesRead) {
          const take = Math.min(pieceLength - inPiece, bytesRead - off);
          hash.update(buf.subarray(off, off + take));
          inPiece += take;
          off += take;
          if (inPiece === pieceLength) {
            hashes.push(hash.digest());
            hash = hasher.sha1Stream();
            inPiece = 0;
          }
        }
        pos += bytesRead;
      }
    } finally {
      await fh.close();
    }
  }
  if (inPiece > 0) hashes.push(hash.digest());
  const bytes = buildTorrent({
    name,
    pieceLength,
    pieceHashes: Buffer.concat(hashes),
    files: files.map((f) => ({ path: f.path, length: f.length })),
    multiFile,
    tiers: [...(opts.tiers ?? []), ...(opts.trackers ?? []).map((u) => [u])],
    createdBy: 'swarmshare 0.1.0',
    private: opts.private,
    webSeeds: opts.webSeeds,
    creationDate: Math.floor(Date.now() / 1000),
  });
  return { bytes, meta: parseTorrent(bytes, hasher.sha1) };
}

/** Parses a size like `256KiB`, `4MiB`, `1GiB`, `16384`, `1.5MB`. */
export function parseSize(text: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*(b|k|kb|kib|m|mb|mib|g|gb|gib)?$/i.exec(text.trim());
  if (!m) throw new Error(`'${text}' is not a size (e.g. 256KiB, 4MiB, 1GiB)`);
  const n = Number(m[1]);
  const unit = (m[2] ?? 'b').toLowerCase();
  const mult: Record<string, number> = {
    b: 1,
    k: 1024,
    kb: 1000,
    kib: 1024,
    m: 1024 ** 2,
    mb: 1000 ** 2,
    mib: 1024 ** 2,
    g: 1024 ** 3,
    gb: 1000 ** 3,
    gib: 1024 ** 3,
  };
  const v = Math.round(n * (mult[unit] as number));
  if (!Number.isSafeInteger(v)) throw new Error(`'${text}' is too large`);
  return v;
}
