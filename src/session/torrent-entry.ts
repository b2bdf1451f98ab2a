import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Bitfield } from '../core/bitfield.js';
import { bytesHeld, holdsWanted, type Metainfo, pieceSize, wantedPieces } from '../core/metainfo.js';
import { AdjustablePacer } from '../core/token-bucket.js';
import { FileStreams } from '../node/file-stream.js';
import type { PeerNode } from '../node/peer-node.js';
import type { PeerNodeOpts } from '../node/peer-options.js';
import { type QueuedTorrent, stateOf, type TorrentState } from './queue.js';
import type { ResumeData } from './state-store.js';

/** File priorities as the API names them, and as the picker counts them. */
export type FilePriority = 'high' | 'normal' | 'low';
export const PRIORITY: Record<FilePriority, number> = { high: 2, normal: 1, low: 0 };

/** What one torrent's peer may do differently from the session's defaults (`share`, `get`). */
export type TorrentPeerOpts = Partial<
  Pick<
    PeerNodeOpts,
    | 'mode'
    | 'trackers'
    | 'peers'
    | 'strategy'
    | 'superSeed'
    | 'maxConnections'
    | 'maxPerIp'
    | 'dhtIntervalMs'
    | 'unwantedFiles'
  >
>;

/** One torrent of a session: what is kept of it across restarts, and its running peer when it runs. */
export class TorrentEntry implements QueuedTorrent {
  readonly id: string;
  readonly meta: Metainfo;
  readonly downloadDir: string;
  readonly addedAt: number;
  completedAt: number | null;
  paused: boolean;
  position: number;
  /** Its number in Transmission's RPC, given when added and kept in its resume data. */
  rpcId = 0;
  /** Free-form labels (Transmission's `labels`), kept in its resume data. */
  labels: string[] = [];
  /** Why it stopped, when an error stopped it. */
  error: string | null = null;
  node: PeerNode | null = null;
  /** File selection: the files not wanted (PATCH files); kept in its resume data. */
  unwanted: ReadonlySet<number> = new Set<number>();
  /** File priorities other than normal (2 high, 0 low), by index; kept in its resume data. */
  priorities = new Map<number, number>();
  /** Readers of its files (streaming), for its running peer. */
  #streams: FileStreams | null = null;
  /** Its running peer's start: open, verified what is on disk, listening (rejects as its start did). */
  started: Promise<void> | null = null;
  /** How its peer runs, beyond the session's defaults. */
  readonly peerOpts: TorrentPeerOpts;
  /** Its peer is starting: reading and hashing what is on disk. */
  checking = false;
  /** Pieces known verified, when the peer is not running (from resume data or the last run). */
  have: Bitfield;
  /** Resume data that may be trusted without re-hashing (files unchanged since). */
  trusted: Bitfield | null = null;
  /** Totals of earlier runs (a running peer adds its own). */
  uploadedBefore: number;
  downloadedBefore: number;
  /** Of the bytes downloaded in earlier runs, those from web seeds (BEP 19). */
  webSeedBefore = 0;
  /** Pieces hashed at the last start (0: resume data trusted). */
  hashChecks = 0;
  downloadLimit: number | null;
  uploadLimit: number | null;
  /** Its own rate limits (under the session's), changeable while it runs. */
  readonly limits = { down: new AdjustablePacer(null, 0), up: new AdjustablePacer(null, 0) };
  /** Bytes up and down when the resume data was last written. */
  savedTotals = -1;
  /** Something changed since the resume data was last written. */
  dirty = true;
  /** Each tracker's last answer: peers given, or the error (url -> result). */
  readonly trackers = new Map<string, { peers: number; error: string | null; at: number }>();
  /** Per linked peer (by address), what it had sent and been sent at the last sample, for rates. */
  peerSamples = new Map<string, { down: number; up: number; rateDown: number; rateUp: number }>();
  /** When bytes last moved either way (ms; its add until then). */
  activityAt = 0;
  /** Bytes/s over the last few seconds, sampled by the session. */
  rateDown = 0;
  rateUp = 0;
  lastSample = { at: 0, down: 0, up: 0 };

  /** Its .torrent as added (a magnet link's: made from the fetched metadata). */
  readonly torrentBytes: Uint8Array;

  constructor(
    meta: Metainfo,
    torrentBytes: Uint8Array,
    o: { downloadDir: string; addedAt: number; paused: boolean; position: number; peer?: TorrentPeerOpts },
  ) {
    this.peerOpts = o.peer ?? {};
    this.id = meta.infoHashHex;
    this.torrentBytes = torrentBytes;
    this.meta = meta;
    this.downloadDir = o.downloadDir;
    this.addedAt = o.addedAt;
    this.paused = o.paused;
    this.position = o.position;
    this.activityAt = o.addedAt;
    this.completedAt = null;
    this.have = new Bitfield(meta.pieceCount);
    this.uploadedBefore = 0;
    this.downloadedBefore = 0;
    this.downloadLimit = null;
    this.uploadLimit = null;
  }

  get failed(): boolean {
    return this.error !== null;
  }

  /** Verified pieces now: the running peer's, else the last known. */
  get pieces(): Bitfield {
    return this.node?.core?.have ?? this.have;
  }

  /** The pieces touching a wanted file; null: every piece (made once per choice: `unwanted` is replaced, never changed). */
  get wanted(): Bitfield | null {
    if (this.unwanted.size === 0) return null;
    if (this.#wantedFor !== this.unwanted) {
      this.#wantedFor = this.unwanted;
      this.#wanted = wantedPieces(this.meta, this.unwanted);
    }
    return this.#wanted;
  }
  #wantedFor: ReadonlySet<number> | null = null;
  #wanted: Bitfield | null = null;

  /** Every wanted piece verified and, while its peer runs, its files under their final names. */
  get complete(): boolean {
    const store = this.node?.store;
    const done =
      this.node?.core !== undefined ? this.node.core.complete : holdsWanted(this.pieces, this.wanted);
    return store === undefined ? done : done && store.finished;
  }

  /** Bytes of the wanted pieces, and of those verified (what progress counts). */
  get wantedBytes(): { size: number; done: number } {
    const w = this.wanted;
    if (w === null) return { size: this.meta.length, done: this.bytesDone };
    const have = this.pieces;
    let size = 0;
    let done = 0;
    for (let i = 0; i < this.meta.pieceCount; i++) {
      if (!w.has(i)) continue;
      const n = pieceSize(this.meta, i);
      size += n;
      if (have.has(i)) done += n;
    }
    return { size, done };
  }

  get uploaded(): number {
    return this.uploadedBefore + (this.node?.uploaded ?? 0);
  }

  get downloaded(): number {
    return this.downloadedBefore + (this.node?.downloaded ?? 0);
  }

  /** Of `downloaded`, the bytes web seeds sent. */
  get downloadedWebSeed(): number {
    return this.webSeedBefore + (this.node?.webSeedDownloaded ?? 0);
  }

  /** Bytes of the torrent we hold verified. */
  get bytesDone(): number {
    return bytesHeld(this.meta, this.pieces);
  }

  /** Where its files are now: under the final name once complete, else the partial name. */
  basePath(finished: boolean): string {
    return join(this.downloadDir, finished ? this.meta.name : `${this.meta.name}.part`);
  }

  /** Deletes its data: only its own name (final or partial) in its folder, and its parts file. */
  async deleteData(): Promise<void> {
    // Paths were checked when the .torrent was parsed: nothing outside the folder is named.
    for (const finished of [true, false]) await rm(this.basePath(finished), { recursive: true, force: true });
    await rm(join(this.downloadDir, `.${this.meta.name}.parts`), { force: true });
  }

  filePaths(finished: boolean): string[] {
    const base = this.basePath(finished);
    return this.meta.multiFile ? this.meta.files.map((f) => join(base, ...f.path)) : [base];
  }

  /** Each file's size and mtime as they are now (missing files: size -1). */
  async fileStats(finished: boolean): Promise<ResumeData['files']> {
    const out: ResumeData['files'] = [];
    for (const p of this.filePaths(finished)) {
      try {
        const st = await stat(p);
        out.push({ path: p, size: st.size, mtimeMs: st.mtimeMs });
      } catch {
        out.push({ path: p, size: -1, mtimeMs: 0 });
      }
    }
    return out;
  }

  async resumeData(): Promise<ResumeData> {
    const finished = this.node?.store?.finished ?? this.completedAt !== null;
    const files = (await this.fileStats(finished)).filter((f) => f.size >= 0);
    return {
      version: 1,
      id: this.id,
      downloadDir: this.downloadDir,
      addedAt: this.addedAt,
      completedAt: this.completedAt,
      paused: this.paused,
      position: this.position,
      uploaded: this.uploaded,
      downloaded: this.downloaded,
      downloadedWebSeed: this.downloadedWebSeed,
      have: Buffer.from(this.pieces.bytes).toString('base64'),
      files,
      downloadLimit: this.downloadLimit,
      uploadLimit: this.uploadLimit,
      unwanted: [...this.unwanted].sort((a, b) => a - b),
      priorities: [...this.priorities].sort((a, b) => a[0] - b[0]),
      rpcId: this.rpcId,
      labels: this.labels,
    };
  }

  /** What its resume data says of it, taken back at a restart (pieces aside: see trustedPieces). */
  applyResume(r: ResumeData, now: number): void {
    const nFiles = this.meta.files.length;
    this.completedAt = r.completedAt;
    this.uploadedBefore = r.uploaded;
    this.downloadedBefore = r.downloaded;
    this.webSeedBefore = Number.isSafeInteger(r.downloadedWebSeed) ? (r.downloadedWebSeed as number) : 0;
    this.downloadLimit = r.downloadLimit;
    this.uploadLimit = r.uploadLimit;
    this.unwanted = new Set((r.unwanted ?? []).filter((i) => i < nFiles));
    this.priorities = new Map((r.priorities ?? []).filter(([i]) => i < nFiles));
    this.labels = Array.isArray(r.labels) ? r.labels.filter((l) => typeof l === 'string') : [];
    this.limits.down.set(r.downloadLimit, now);
    this.limits.up.set(r.uploadLimit, now);
  }

  /** Its files' readers (streaming), while its peer runs; null otherwise. */
  streams(): FileStreams | null {
    const node = this.node;
    if (this.#streams !== null && this.#streams.node !== node) {
      this.#streams.close();
      this.#streams = null;
    }
    if (node === null || node.core === undefined) return null;
    this.#streams ??= new FileStreams(node);
    return this.#streams;
  }

  /**
   * The pieces resume data says are verified, if every file it recorded has the same size and
   * mtime now (and nothing is there that it did not record); else null (re-check). Once completed
   * (every wanted file), the files are under their final names, and stay there if more are chosen.
   */
  async trustedPieces(r: {
    have: string;
    files: { path: string; size: number; mtimeMs: number }[];
    completedAt: number | null;
  }): Promise<Bitfield | null> {
    const bytes = Buffer.from(r.have, 'base64');
    if (Bitfield.problem(bytes, this.meta.pieceCount) !== null) return null;
    const have = new Bitfield(this.meta.pieceCount, new Uint8Array(bytes));
    if (have.count === 0) return null;
    const now = (await this.fileStats(r.completedAt !== null)).filter((f) => f.size >= 0);
    if (now.length !== r.files.length) return null;
    for (const f of now) {
      const was = r.files.find((x) => join(x.path) === join(f.path));
      if (was === undefined || was.size !== f.size || was.mtimeMs !== f.mtimeMs) return null;
    }
    return have;
  }

  /** Each linked peer's rates since the last sample (`dt` seconds ago). */
  samplePeers(dt: number): void {
    const next = new Map<string, { down: number; up: number; rateDown: number; rateUp: number }>();
    for (const p of this.node?.peerList() ?? []) {
      const was = this.peerSamples.get(p.address);
      const rate = (now: number, before: number | undefined) =>
        before === undefined || dt <= 0 ? 0 : Math.max(0, (now - before) / dt);
      next.set(p.address, {
        down: p.downloaded,
        up: p.uploaded,
        rateDown: rate(p.downloaded, was?.down),
        rateUp: rate(p.uploaded, was?.up),
      });
    }
    this.peerSamples = next;
  }

  state(running: boolean): TorrentState {
    return stateOf(this, running, this.checking);
  }
}

/**
 * Each torrent's rates since its last sample, and its peers' (the session samples every
 * SAMPLE_MS). Returns the torrents that are active: an idle seed with no link is not (no progress
 * event, no peers to sample).
 */
export function sampleRates(torrents: Iterable<TorrentEntry>, now: number): TorrentEntry[] {
  const moving: TorrentEntry[] = [];
  for (const e of torrents) {
    const dt = (now - e.lastSample.at) / 1000;
    const down = e.downloaded;
    const up = e.uploaded;
    if (e.lastSample.at > 0 && dt > 0) {
      e.rateDown = Math.max(0, (down - e.lastSample.down) / dt);
      e.rateUp = Math.max(0, (up - e.lastSample.up) / dt);
    }
    if (e.lastSample.at > 0 && (down !== e.lastSample.down || up !== e.lastSample.up)) e.activityAt = now;
    e.lastSample = { at: now, down, up };
    const node = e.node;
    if (node === null) continue;
    if (node.connections === 0 && e.complete && e.rateDown === 0 && e.rateUp === 0) {
      if (e.peerSamples.size > 0) e.peerSamples = new Map();
      continue;
    }
    moving.push(e);
    e.samplePeers(dt);
  }
  return moving;
}
