import bencode from 'bencode';
import { BencodeSpanError, findValueSpan } from './bencode-span.js';
import { Bitfield } from './bitfield.js';

/**
 * BitTorrent v1 metainfo (.torrent, BEP 3): parsing with validation and path sanitizing, building,
 * and magnet URIs. Pure: the SHA-1 function is handed in.
 */

export type Sha1 = (data: Uint8Array) => Uint8Array;

export interface TorrentFile {
  /** Path components below the torrent's folder (single-file torrents: just the name). */
  path: string[];
  length: number;
  /** Offset of the file's first byte in the torrent's concatenated data. */
  offset: number;
}

export interface Metainfo {
  infoHash: Uint8Array;
  infoHashHex: string;
  name: string;
  pieceLength: number;
  /** SHA-1 of each piece, 20 bytes each, concatenated. */
  pieceHashes: Uint8Array;
  pieceCount: number;
  length: number;
  files: TorrentFile[];
  multiFile: boolean;
  /** Tracker URLs: `announce` then the `announce-list` tiers, flattened, without duplicates. */
  trackers: string[];
  /**
   * The trackers in tiers (BEP 12): `announce-list` when there is one (the `announce` key is then
   * ignored, as the BEP says), else `announce` alone as one tier. Empty tiers and repeats dropped.
   */
  tiers: string[][];
  /** The bencoded `info` dictionary exactly as in the file. */
  infoBytes: Uint8Array;
  /** A private torrent (BEP 27: `info.private` is 1): peers come from its trackers only, no PEX or DHT. */
  private: boolean;
  /** Web seeds (BEP 19 `url-list`): http(s) URLs of the file, or of a folder holding the torrent's folder. */
  webSeeds: string[];
}

/** Largest piece length accepted: 64 MiB (clients use 16 KiB to 16 MiB). */
export const MAX_PIECE_LENGTH = 64 * 1024 * 1024;
/** Files one torrent may list. */
export const MAX_FILES = 100_000;
/** Tracker URLs and tiers read from one .torrent at most (real torrents list a few dozen). */
export const MAX_TRACKERS = 200;
/** Largest .torrent file read: 64 MiB holds the piece hashes of a multi-terabyte torrent. */
export const MAX_TORRENT_BYTES = 64 * 1024 * 1024;

export class MetainfoError extends Error {
  readonly code = 'ERR_BAD_TORRENT' as const;
}

const text = (v: unknown, what: string): string => {
  if (!(v instanceof Uint8Array)) throw new MetainfoError(`${what} must be a string`);
  const s = new TextDecoder('utf-8', { fatal: false }).decode(v);
  return s;
};

const int = (v: unknown, what: string, min: number, max: number): number => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new MetainfoError(`${what} must be an integer from ${min} to ${max}`);
  }
  return v;
};

/** Windows drive letters, device names and other components no file path may contain. */
const BAD_COMPONENT = /^(\.{1,2}|[a-zA-Z]:.*|(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?)$/i;

function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/**
 * Checks one path component from a torrent: it must name a file or folder inside the download
 * folder, so no separators, no `.` or `..`, no drive letters, no NUL or control characters.
 */
export function checkPathComponent(c: string): string {
  if (c.length === 0) throw new MetainfoError('empty path component in torrent');
  if (c.length > 255) throw new MetainfoError('path component longer than 255 characters');
  if (/[/\\]/.test(c) || hasControlChar(c))
    throw new MetainfoError(`unsafe path component '${c}' (separator or control character)`);
  if (BAD_COMPONENT.test(c)) throw new MetainfoError(`unsafe path component '${c}'`);
  return c;
}

export function parseTorrent(bytes: Uint8Array, sha1: Sha1): Metainfo {
  if (bytes.length > MAX_TORRENT_BYTES) throw new MetainfoError('torrent file larger than 64 MiB');
  let span: [number, number] | null;
  let root: Record<string, unknown>;
  try {
    span = findValueSpan(bytes, 'info');
    root = bencode.decode(bytes) as Record<string, unknown>;
  } catch (e) {
    const msg = e instanceof BencodeSpanError ? e.message : 'not valid bencode';
    throw new MetainfoError(`not a torrent file: ${msg}`);
  }
  if (span === null || typeof root !== 'object' || root === null)
    throw new MetainfoError('torrent has no info dictionary');
  const info = root.info as Record<string, unknown> | undefined;
  if (typeof info !== 'object' || info === null || info instanceof Uint8Array || Array.isArray(info)) {
    throw new MetainfoError('info must be a dictionary');
  }
  const infoBytes = bytes.subarray(span[0], span[1]);
  const name = checkPathComponent(text(info.name, 'info.name'));
  const pieceLength = int(info['piece length'], 'info.piece length', 1, MAX_PIECE_LENGTH);
  const pieces = info.pieces;
  if (!(pieces instanceof Uint8Array) || pieces.length % 20 !== 0) {
    throw new MetainfoError('info.pieces must be a string of 20-byte SHA-1 hashes');
  }
  const files: TorrentFile[] = [];
  let length = 0;
  let multiFile = false;
  if (info.files !== undefined) {
    if (info.length !== undefined) throw new MetainfoError('info has both length and files');
    if (!Array.isArray(info.files) || info.files.length === 0)
      throw new MetainfoError('info.files must be a non-empty list');
    if (info.files.length > MAX_FILES) throw new MetainfoError(`more than ${MAX_FILES} files`);
    multiFile = true;
    const seen = new Set<string>();
    for (const [i, f] of (info.files as unknown[]).entries()) {
      const entry = f as Record<string, unknown>;
      if (typeof entry !== 'object' || entry === null)
        throw new MetainfoError(`info.files[${i}] must be a dictionary`);
      const len = int(entry.length, `info.files[${i}].length`, 0, Number.MAX_SAFE_INTEGER);
      if (!Array.isArray(entry.path) || entry.path.length === 0) {
        throw new MetainfoError(`info.files[${i}].path must be a non-empty list`);
      }
      const path = (entry.path as unknown[]).map((c) => checkPathComponent(text(c, `info.files[${i}].path`)));
      const key = path.join('/').toLowerCase();
      if (seen.has(key)) throw new MetainfoError(`file listed twice: ${path.join('/')}`);
      seen.add(key);
      files.push({ path, length: len, offset: length });
      length += len;
      if (!Number.isSafeInteger(length)) throw new MetainfoError('torrent too large');
    }
    // A file may not also be a folder of another (a/b and a/b/c).
    for (const f of files) {
      for (let k = 1; k < f.path.length; k++) {
        if (seen.has(f.path.slice(0, k).join('/').toLowerCase())) {
          throw new MetainfoError(`'${f.path.slice(0, k).join('/')}' is both a file and a folder`);
        }
      }
    }
  } else {
    length = int(info.length, 'info.length', 0, Number.MAX_SAFE_INTEGER);
    files.push({ path: [name], length, offset: 0 });
  }
  const pieceCount = Math.ceil(length / pieceLength);
  if (pieces.length / 20 !== pieceCount) {
    throw new MetainfoError(
      `info.pieces has ${pieces.length / 20} hashes; ${length} bytes in ${pieceLength}-byte pieces need ${pieceCount}`,
    );
  }
  const trackers: string[] = [];
  const addTracker = (v: unknown) => {
    if (!(v instanceof Uint8Array)) return;
    const url = text(v, 'announce');
    if (url !== '' && !trackers.includes(url)) trackers.push(url);
  };
  addTracker(root.announce);
  const tiers: string[][] = [];
  const listed = new Set<string>();
  if (Array.isArray(root['announce-list'])) {
    for (const tier of (root['announce-list'] as unknown[]).slice(0, MAX_TRACKERS)) {
      if (!Array.isArray(tier)) continue;
      const urls: string[] = [];
      for (const u of tier.slice(0, MAX_TRACKERS)) {
        addTracker(u);
        if (!(u instanceof Uint8Array)) continue;
        const url = text(u, 'announce-list');
        if (url !== '' && !listed.has(url)) {
          listed.add(url);
          urls.push(url);
        }
      }
      if (urls.length > 0) tiers.push(urls);
    }
  }
  if (tiers.length === 0 && trackers[0] !== undefined) tiers.push([trackers[0]]);
  const infoHash = sha1(infoBytes);
  const urlList = root['url-list'];
  const webSeeds = webSeedUrls(
    (Array.isArray(urlList) ? urlList : [urlList])
      .slice(0, MAX_WEB_SEEDS)
      .filter((u): u is Uint8Array => u instanceof Uint8Array)
      .map((u) => text(u, 'url-list')),
  );
  return {
    infoHash,
    infoHashHex: Buffer.from(infoHash).toString('hex'),
    name,
    pieceLength,
    pieceHashes: pieces,
    pieceCount,
    length,
    files,
    multiFile,
    trackers: trackers.slice(0, MAX_TRACKERS),
    tiers,
    infoBytes,
    private: info.private === 1,
    webSeeds,
  };
}

/** Web seeds read from a torrent or a magnet link at most (an ISO's mirror list is a few dozen). */
export const MAX_WEB_SEEDS = 64;

/** The usable web seed URLs: http(s) only, without duplicates (others are ignored, as trackers are). */
export function webSeedUrls(urls: readonly string[]): string[] {
  const out: string[] = [];
  for (const u of urls) {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      continue;
    }
    if ((url.protocol === 'http:' || url.protocol === 'https:') && !out.includes(u)) out.push(u);
  }
  return out.slice(0, MAX_WEB_SEEDS);
}

export interface BuildTorrentInput {
  name: string;
  pieceLength: number;
  pieceHashes: Uint8Array;
  /** One entry: a single-file torrent; several (or `forceMulti`): a folder. */
  files: { path: string[]; length: number }[];
  multiFile: boolean;
  /** Tiers of tracker URLs (BEP 12): `announce` is the first URL, `announce-list` the tiers. */
  tiers: string[][];
  createdBy?: string;
  creationDate?: number;
  /** A private torrent (BEP 27): `info.private` = 1. */
  private?: boolean;
  /** Web seeds (BEP 19): written as `url-list`. */
  webSeeds?: string[];
}

/** A bencoded v1 .torrent. */
export function buildTorrent(t: BuildTorrentInput): Uint8Array {
  checkPathComponent(t.name);
  const info: Record<string, unknown> = {
    name: t.name,
    'piece length': t.pieceLength,
    pieces: t.pieceHashes,
  };
  if (t.private === true) info.private = 1;
  if (t.multiFile) {
    info.files = t.files.map((f) => ({ length: f.length, path: f.path.map(checkPathComponent) }));
  } else {
    info.length = (t.files[0] as { length: number }).length;
  }
  const root: Record<string, unknown> = { info };
  const tiers = t.tiers.filter((tier) => tier.length > 0);
  const first = tiers[0]?.[0];
  if (first !== undefined) root.announce = first;
  if (tiers.length > 1 || (tiers[0]?.length ?? 0) > 1) root['announce-list'] = tiers;
  if (t.webSeeds !== undefined && t.webSeeds.length > 0)
    root['url-list'] = t.webSeeds.length === 1 ? t.webSeeds[0] : t.webSeeds;
  if (t.createdBy !== undefined) root['created by'] = t.createdBy;
  if (t.creationDate !== undefined) root['creation date'] = t.creationDate;
  return bencode.encode(root);
}

export function magnetUri(
  m: Pick<Metainfo, 'infoHashHex' | 'name' | 'trackers' | 'length'> & { webSeeds?: readonly string[] },
): string {
  const parts = [`xt=urn:btih:${m.infoHashHex}`, `dn=${encodeURIComponent(m.name)}`, `xl=${m.length}`];
  for (const t of m.trackers) parts.push(`tr=${encodeURIComponent(t)}`);
  for (const w of m.webSeeds ?? []) parts.push(`ws=${encodeURIComponent(w)}`);
  return `magnet:?${parts.join('&')}`;
}

/** Byte length of piece `index`. */
export function pieceSize(m: Pick<Metainfo, 'pieceLength' | 'length' | 'pieceCount'>, index: number): number {
  return index === m.pieceCount - 1 ? m.length - m.pieceLength * index : m.pieceLength;
}

/** Bytes of a torrent held in the pieces `have` marks (the last piece counts its own length). */
export function bytesHeld(
  m: { pieceCount: number; pieceLength: number; length: number },
  have: { count: number; has(i: number): boolean },
): number {
  const last = m.pieceCount - 1;
  return have.count * m.pieceLength - (have.has(last) ? m.pieceLength * m.pieceCount - m.length : 0);
}

/**
 * The pieces that touch a wanted file (file selection): every piece holding a byte of a file not
 * in `unwanted`. A piece shared by a wanted and an unwanted file is wanted (it is fetched and
 * verified whole).
 */
export function wantedPieces(
  m: Pick<Metainfo, 'files' | 'pieceLength' | 'pieceCount'>,
  unwanted: ReadonlySet<number>,
): Bitfield {
  const wanted = new Bitfield(m.pieceCount);
  m.files.forEach((f, i) => {
    if (unwanted.has(i) || f.length === 0) return;
    const last = Math.floor((f.offset + f.length - 1) / m.pieceLength);
    for (let p = Math.floor(f.offset / m.pieceLength); p <= last; p++) wanted.set(p);
  });
  return wanted;
}

/** Every wanted piece held (`wanted` null: every piece). */
export function holdsWanted(have: Bitfield, wanted: Bitfield | null): boolean {
  if (wanted === null) return have.complete;
  for (let i = 0; i < have.length; i++) if (wanted.has(i) && !have.has(i)) return false;
  return true;
}

/** Each piece's priority from its files' (2 high, 1 normal, 0 low): the highest of the files it touches. */
export function piecePriorities(
  m: Pick<Metainfo, 'files' | 'pieceLength' | 'pieceCount'>,
  filePriority: readonly number[],
): Uint8Array {
  const out = new Uint8Array(m.pieceCount);
  m.files.forEach((f, i) => {
    if (f.length === 0) return;
    const p = filePriority[i] ?? 1;
    const last = Math.floor((f.offset + f.length - 1) / m.pieceLength);
    for (let k = Math.floor(f.offset / m.pieceLength); k <= last; k++) out[k] = Math.max(out[k] as number, p);
  });
  return out;
}
