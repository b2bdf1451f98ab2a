import { extname } from 'node:path';
import { Readable } from 'node:stream';
import { pieceSize } from '../core/metainfo.js';
import { streamWindowPieces } from '../swarm/picker.js';
import type { PeerNode } from './peer-node.js';

/**
 * Reading a torrent's file while it downloads (streaming): a byte range as a stream whose reads
 * wait for the pieces under them. Each open reader keeps a window of deadlines ahead of it (the
 * next 16 MiB of its range (STREAM_WINDOW_BYTES, swarm/picker.ts)): those pieces are asked for before any other, nearest first, the
 * readers taking turns (PiecePicker.setUrgent); the rest of the torrent stays rarest-first. A seek
 * is a new range, so it moves the window; a reader that goes away frees its window. A piece that
 * does not arrive within READ_WAIT_MS ends the stream with an error (the response is cut short).
 */

/** How long a read waits for the piece under it. */
export const READ_WAIT_MS = 60_000;
/** Bytes handed on at once. */
const CHUNK = 1024 * 1024;

export class FileStreams {
  readonly node: PeerNode;
  /** Each open reader's next piece and its range's last piece. */
  readonly #readers = new Map<number, { piece: number; last: number }>();
  #nextId = 1;
  readonly #waitMs: number;
  /** Reads waiting, by the piece they wait for. */
  readonly #waiting = new Map<number, Set<() => void>>();

  constructor(node: PeerNode, o: { waitMs?: number } = {}) {
    this.node = node;
    this.#waitMs = o.waitMs ?? READ_WAIT_MS;
    node.on('piece', this.#onPiece);
  }

  /** Readers open now. */
  get readers(): number {
    return this.#readers.size;
  }

  /** Bytes `start`..`end` (inclusive) of file `index`. */
  stream(index: number, start: number, end: number): Readable {
    const node = this.node;
    const meta = node.meta;
    const file = meta.files[index];
    if (file === undefined) throw new RangeError(`no file ${index}`);
    const id = this.#nextId++;
    const last = Math.floor((file.offset + end) / meta.pieceLength);
    let pos = start;
    let busy = false;
    const streams = this;
    const readable = new Readable({
      highWaterMark: CHUNK,
      read() {
        if (busy) return;
        busy = true;
        streams.#next(id, file.offset, pos, end, last).then(
          (data) => {
            busy = false;
            if (data === null) {
              streams.#close(id);
              this.push(null);
              return;
            }
            pos += data.length;
            this.push(data);
          },
          (e: Error) => {
            busy = false;
            this.destroy(e);
          },
        );
      },
      destroy(err, callback) {
        streams.#close(id);
        callback(err);
      },
    });
    return readable;
  }

  /** The next chunk at `pos` of the file (offset `at` in the torrent), once its piece is here; null past `end`. */
  async #next(id: number, at: number, pos: number, end: number, last: number): Promise<Buffer | null> {
    if (pos > end) return null;
    const meta = this.node.meta;
    const abs = at + pos;
    const piece = Math.floor(abs / meta.pieceLength);
    this.#readers.set(id, { piece, last });
    this.#update();
    await this.#arrival(piece);
    const begin = abs - piece * meta.pieceLength;
    const length = Math.min(pieceSize(meta, piece) - begin, end - pos + 1, CHUNK);
    return Buffer.from(await this.node.store.read(piece, begin, length));
  }

  /** Resolves once `piece` is verified; rejects after the wait. */
  #arrival(piece: number): Promise<void> {
    if (this.node.core.have.has(piece)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const waiters = this.#waiting.get(piece) ?? new Set();
      this.#waiting.set(piece, waiters);
      const arrived = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        waiters.delete(arrived);
        if (waiters.size === 0) this.#waiting.delete(piece);
        reject(new Error(`piece ${piece} did not arrive within ${Math.round(this.#waitMs / 1000)} s`));
      }, this.#waitMs);
      timer.unref();
      waiters.add(arrived);
    });
  }

  /** A verified piece: the reads waiting for it go on. */
  readonly #onPiece = (index: number): void => {
    const waiters = this.#waiting.get(index);
    if (waiters === undefined) return;
    this.#waiting.delete(index);
    for (const w of waiters) w();
  };

  /** Stops listening to the peer (its readers' waits then run out). */
  close(): void {
    this.node.off('piece', this.#onPiece);
  }

  #close(id: number): void {
    if (this.#readers.delete(id)) this.#update();
  }

  /** Every reader's window, nearest pieces first, readers taking turns: the picker's deadlines. */
  #update(): void {
    const meta = this.node.meta;
    const have = this.node.core.have;
    const size = streamWindowPieces(meta.pieceLength);
    const windows = [...this.#readers.values()].map((r) => {
      const w: number[] = [];
      for (let p = r.piece; p <= Math.min(r.last, r.piece + size - 1); p++) if (!have.has(p)) w.push(p);
      return w;
    });
    const urgent: number[] = [];
    const seen = new Set<number>();
    for (let k = 0; k < size; k++)
      for (const w of windows) {
        const p = w[k];
        if (p !== undefined && !seen.has(p)) {
          seen.add(p);
          urgent.push(p);
        }
      }
    this.node.setUrgent(urgent);
  }
}

/** A `Range` header against a size: the bytes asked for, 'unsatisfiable', or null (send it whole). */
export function parseRange(
  header: string | undefined,
  size: number,
): { start: number; end: number } | 'unsatisfiable' | null {
  if (header === undefined) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // Several ranges, other units, nonsense: a server may ignore the header and send everything.
  if (m === null || (m[1] === '' && m[2] === '')) return null;
  if (m[1] === '') {
    const n = Number(m[2]);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

const TYPES: Record<string, string> = {
  '.webm': 'video/webm',
  '.mp4': 'video/mp4',
  '.m4v': 'video/mp4',
  '.mkv': 'video/x-matroska',
  '.ogv': 'video/ogg',
  '.mov': 'video/quicktime',
  '.mp3': 'audio/mpeg',
  '.ogg': 'audio/ogg',
  '.opus': 'audio/ogg',
  '.flac': 'audio/flac',
  '.wav': 'audio/wav',
  '.m4a': 'audio/mp4',
  '.txt': 'text/plain; charset=utf-8',
  '.html': 'text/html; charset=utf-8',
  '.json': 'application/json',
  '.pdf': 'application/pdf',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.svg': 'image/svg+xml',
  '.zip': 'application/zip',
  '.iso': 'application/x-iso9660-image',
};

/** Content-Type by extension (anything else: bytes). */
export function contentType(name: string): string {
  return TYPES[extname(name).toLowerCase()] ?? 'application/octet-stream';
}

/** What to answer a GET or HEAD of file `index`: status, headers and, for a GET, the bytes as a stream. */
export function fileResponse(
  streams: FileStreams,
  index: number,
  method: string,
  range: string | undefined,
): { status: number; headers: Record<string, string>; body: Readable | null; error?: string } {
  const node = streams.node;
  const file = node.meta.files[index];
  if (file === undefined || !Number.isInteger(index))
    return { status: 404, headers: {}, body: null, error: `no file ${index} in ${node.meta.name}` };
  if (node.opts.unwantedFiles?.includes(index))
    return { status: 404, headers: {}, body: null, error: `file ${index} is not among the chosen files` };
  const name = node.meta.multiFile ? (file.path[file.path.length - 1] as string) : node.meta.name;
  const headers: Record<string, string> = { 'content-type': contentType(name), 'accept-ranges': 'bytes' };
  const r = parseRange(range, file.length);
  if (r === 'unsatisfiable')
    return { status: 416, headers: { ...headers, 'content-range': `bytes */${file.length}` }, body: null };
  const { start, end } = r ?? { start: 0, end: file.length - 1 };
  const length = Math.max(0, end - start + 1);
  headers['content-length'] = String(length);
  if (r !== null) headers['content-range'] = `bytes ${start}-${end}/${file.length}`;
  const body = method === 'HEAD' || length === 0 ? null : streams.stream(index, start, end);
  return { status: r === null ? 200 : 206, headers, body };
}
