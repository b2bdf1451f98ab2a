import { Bitfield } from '../core/bitfield.js';
import { BLOCK_LENGTH } from '../wire/messages.js';

/**
 * Which blocks to ask a peer for. Every piece is in exactly one state (STATE.md beside this file):
 *   COMPLETED  verified and stored (`have`)
 *   IN_FLIGHT  some of its blocks requested or received (`active`)
 *   QUEUED     wanted, nothing requested yet
 * Pure: randomness comes in as `rng`.
 */

export type Strategy = 'rarest-first' | 'random' | 'sequential';

/** What `pick` needs to know of a peer's pieces (a Bitfield, or a narrower view of one). */
export interface PieceSet {
  has(index: number): boolean;
  /**
   * The set as BEP 3 bitfield bytes, from `offset` (0 if absent) in `bytes`, when it is exactly
   * that: the picker then scans a byte at a time.
   */
  readonly bytes?: Uint8Array;
  readonly offset?: number;
}

/** A set of pieces that knows its size (for availability counts). */
export interface SizedPieceSet extends PieceSet {
  readonly length: number;
}

/** An empty list (shared, never changed): the links most received blocks have to cancel; no suggestions. */
const NO_LINKS: number[] = Object.freeze([]) as unknown as number[];

function ownedBy(owners: number | Set<number> | undefined, link: number): boolean {
  return owners === link || (owners instanceof Set && owners.has(link));
}

export interface BlockRequest {
  index: number;
  begin: number;
  length: number;
}

interface RarestChoice {
  best: number;
  avail: number;
  ties: number;
}

/**
 * One candidate of a rarest-first scan: the lowest availability wins; equal ones are broken at
 * random with reservoir sampling (each of k tied candidates kept with probability 1/k).
 */
function considerRarest(r: RarestChoice, i: number, av: number, rng: () => number): void {
  if (av < r.avail) {
    r.best = i;
    r.avail = av;
    r.ties = 1;
  } else if (av === r.avail) {
    r.ties++;
    if (rng() * r.ties < 1) r.best = i;
  }
}

/** Per block of an in-flight piece: how many links it is requested from, or RECEIVED. */
const RECEIVED = -1;

interface ActivePiece {
  index: number;
  size: number;
  /** Requests outstanding per block; RECEIVED once its data is in. */
  blocks: Int16Array;
  /**
   * Which links each block is requested from (for endgame cancels): one link as its number (the
   * rule: no Set per block on the hot path), several (endgame) as a Set in request order.
   */
  owners: (number | Set<number> | undefined)[];
  received: number;
  unrequested: number;
}

export interface PickerOpts {
  pieceCount: number;
  pieceLength: number;
  length: number;
  strategy: Strategy;
  rng: () => number;
  /**
   * Bytes per request (default 16 KiB, as every client on the wire uses). A simulator may move
   * whole pieces as one block to model a large swarm at piece level.
   */
  blockLength?: number;
}

/**
 * A streaming reader's window of deadlines, in pieces: the next 16 MiB ahead of it, 4 to 64
 * pieces (node/file-stream.ts for real readers, the simulator's `streamers`).
 */
export const STREAM_WINDOW_BYTES = 16 * 1024 * 1024;
export function streamWindowPieces(pieceLength: number): number {
  return Math.max(4, Math.min(64, Math.ceil(STREAM_WINDOW_BYTES / pieceLength)));
}

export class PiecePicker {
  readonly have: Bitfield;
  /** How many connected peers hold each piece. */
  readonly availability: Uint16Array;
  readonly active = new Map<number, ActivePiece>();
  strategy: Strategy;
  readonly blockLength: number;
  readonly #opts: PickerOpts;
  /** The running choice of a rarest-first scan (reused: picking allocates nothing). */
  readonly #rarest: RarestChoice = { best: -1, avail: 0, ties: 0 };
  /** The keys of `active` as a bitfield (same layout as `have`), for word-at-a-time scans. */
  readonly #activeBits: Uint8Array;
  /** Pieces we do not want and do not hold (file selection), never picked; all clear by default. */
  readonly #skipBits: Uint8Array;
  #skipped = 0;
  /**
   * Pieces with a deadline (readers streaming a file), the most urgent first: picked before
   * anything else, from any peer that has them. Not asked of two peers at once: in the simulator
   * that let a 512 KiB/s streamer's duplicates hold slow links, and one peer finished 55% late
   * (docs/simulator.md).
   */
  #urgent: number[] = [];
  /**
   * File priorities (high, normal, low) as masks of pieces: picking tries the pieces of the first
   * mask, then the second, then any. Empty without priorities (one pass, as always).
   */
  #passes: Uint8Array[] = [];
  /** The mask of the pass under way (null: every piece). */
  #mask: Uint8Array | null = null;

  constructor(opts: PickerOpts, have?: Bitfield, wanted?: Bitfield) {
    this.#opts = opts;
    this.strategy = opts.strategy;
    this.blockLength = opts.blockLength ?? BLOCK_LENGTH;
    if (this.blockLength <= 0 || this.blockLength % BLOCK_LENGTH !== 0)
      throw new RangeError(`block length ${this.blockLength} is not a multiple of ${BLOCK_LENGTH}`);
    this.have = have ?? new Bitfield(opts.pieceCount);
    this.availability = new Uint16Array(opts.pieceCount);
    this.#activeBits = new Uint8Array(Bitfield.byteLength(opts.pieceCount));
    this.#skipBits = new Uint8Array(Bitfield.byteLength(opts.pieceCount));
    if (wanted !== undefined)
      for (let i = 0; i < opts.pieceCount; i++)
        if (!wanted.has(i) && !this.have.has(i)) {
          this.#skipBits[i >>> 3] = (this.#skipBits[i >>> 3] as number) | (0x80 >>> (i & 7));
          this.#skipped++;
        }
  }

  /** Every wanted piece is verified (every piece, without file selection). */
  get complete(): boolean {
    return this.have.count + this.#skipped === this.#opts.pieceCount;
  }

  /** Pieces wanted (held or not). */
  get wantedCount(): number {
    return this.#opts.pieceCount - this.#skipped;
  }

  #skips(i: number): boolean {
    return ((this.#skipBits[i >>> 3] as number) & (0x80 >>> (i & 7))) !== 0;
  }

  pieceSize(index: number): number {
    const o = this.#opts;
    return index === o.pieceCount - 1 ? o.length - o.pieceLength * index : o.pieceLength;
  }

  // ---- availability ----------------------------------------------------------------

  addAvailability(b: SizedPieceSet): void {
    for (let i = 0; i < b.length; i++)
      if (b.has(i)) this.availability[i] = (this.availability[i] as number) + 1;
  }

  removeAvailability(b: SizedPieceSet): void {
    for (let i = 0; i < b.length; i++) {
      if (b.has(i) && (this.availability[i] as number) > 0)
        this.availability[i] = (this.availability[i] as number) - 1;
    }
  }

  addHave(index: number): void {
    this.availability[index] = (this.availability[index] as number) + 1;
  }

  // ---- picking ------------------------------------------------------------------------

  /** The pieces with a deadline, most urgent first (empty: none; rarest-first as usual). */
  setUrgent(pieces: readonly number[]): void {
    this.#urgent = pieces.filter((i) => i >= 0 && i < this.#opts.pieceCount && !this.have.has(i));
  }

  get urgent(): readonly number[] {
    return this.#urgent;
  }

  /** The urgent pieces some of whose blocks nobody has been asked for yet. */
  urgentWaiting(): number[] {
    return this.#urgent.filter((i) => {
      const a = this.active.get(i);
      return a === undefined ? !this.#skips(i) : a.unrequested > 0;
    });
  }

  /**
   * Each piece's priority (2 high, 1 normal, 0 low; a piece takes its highest file's), or null for
   * none: high pieces are picked before normal ones, normal before low; by strategy within each.
   */
  setPriorities(priority: Uint8Array | null): void {
    this.#passes = [];
    if (priority === null || priority.every((p) => p === 1)) return;
    const bytes = Bitfield.byteLength(this.#opts.pieceCount);
    for (const floor of [2, 1]) {
      const m = new Uint8Array(bytes);
      for (let i = 0; i < this.#opts.pieceCount; i++)
        if ((priority[i] ?? 1) >= floor) m[i >>> 3] = (m[i >>> 3] as number) | (0x80 >>> (i & 7));
      this.#passes.push(m);
    }
  }

  #pickUrgent(
    link: number,
    peer: PieceSet,
    out: BlockRequest[],
    max: number,
    already: (index: number, begin: number) => boolean,
  ): void {
    for (const i of this.#urgent) {
      if (out.length >= max) return;
      if (this.have.has(i) || !peer.has(i)) continue;
      const a = this.active.get(i) ?? (this.#skips(i) ? undefined : this.#activate(i));
      if (a !== undefined) this.#takeFrom(a, link, out, max, false, already);
    }
  }

  /**
   * Up to `max` block requests for link `link`, whose pieces are `peer`. `already` tells which
   * blocks this link has outstanding (never asked twice of one link). Partly requested pieces come
   * first, then those the peer suggested (BEP 6), then a new piece by strategy; when nothing is
   * left unrequested (endgame), blocks outstanding elsewhere are requested again.
   */
  pick(
    link: number,
    peer: PieceSet,
    max: number,
    already: (index: number, begin: number) => boolean,
    inOrder = false,
    suggested: readonly number[] = NO_LINKS,
  ): BlockRequest[] {
    const out: BlockRequest[] = [];
    if (max <= 0) return out;
    if (this.#urgent.length > 0) this.#pickUrgent(link, peer, out, max, already);
    for (const a of this.active.values()) {
      if (a.unrequested === 0 || !peer.has(a.index)) continue;
      this.#takeFrom(a, link, out, max, false, already);
      if (out.length >= max) return out;
    }
    for (const i of suggested) {
      if (out.length >= max) return out;
      if (this.have.has(i) || this.active.has(i) || this.#skips(i) || !peer.has(i)) continue;
      this.#takeFrom(this.#activate(i), link, out, max, false, already);
    }
    while (out.length < max) {
      const index = inOrder ? this.#chooseInOrder(peer) : this.#choosePiece(peer);
      if (index === -1) break;
      const a = this.#activate(index);
      this.#takeFrom(a, link, out, max, false, already);
    }
    if (out.length < max && this.#inEndgame()) {
      for (const a of this.active.values()) {
        if (!peer.has(a.index)) continue;
        this.#takeFrom(a, link, out, max, true, already);
        if (out.length >= max) break;
      }
    }
    return out;
  }

  /** Endgame: every block of every missing piece is requested or received. */
  #inEndgame(): boolean {
    for (const a of this.active.values()) if (a.unrequested > 0) return false;
    return this.have.count + this.active.size + this.#skipped === this.#opts.pieceCount;
  }

  #activate(index: number): ActivePiece {
    const size = this.pieceSize(index);
    const n = Math.ceil(size / this.blockLength);
    const a: ActivePiece = {
      index,
      size,
      blocks: new Int16Array(n),
      owners: new Array(n),
      received: 0,
      unrequested: n,
    };
    this.active.set(index, a);
    this.#activeBits[index >>> 3] = (this.#activeBits[index >>> 3] as number) | (0x80 >>> (index & 7));
    return a;
  }

  #deactivate(index: number): void {
    if (!this.active.delete(index)) return;
    this.#activeBits[index >>> 3] = (this.#activeBits[index >>> 3] as number) & ~(0x80 >>> (index & 7));
  }

  #takeFrom(
    a: ActivePiece,
    link: number,
    out: BlockRequest[],
    max: number,
    duplicate: boolean,
    already: (index: number, begin: number) => boolean,
  ): void {
    for (let b = 0; b < a.blocks.length && out.length < max; b++) {
      const state = a.blocks[b] as number;
      if (state === RECEIVED) continue;
      if (state > 0 && !duplicate) continue;
      const begin = b * this.blockLength;
      const owners = a.owners[b];
      if (ownedBy(owners, link) || already(a.index, begin)) continue;
      if (state === 0) a.unrequested--;
      a.blocks[b] = state + 1;
      if (owners === undefined) a.owners[b] = link;
      else if (typeof owners === 'number') a.owners[b] = new Set([owners, link]);
      else owners.add(link);
      out.push({ index: a.index, begin, length: Math.min(this.blockLength, a.size - begin) });
    }
  }

  /** The first candidate piece (priorities first), whatever the strategy: a web seed alone reads its file in order. */
  #chooseInOrder(peer: PieceSet): number {
    const strategy = this.strategy;
    this.strategy = 'sequential';
    const i = this.#choosePiece(peer); // throws nothing
    this.strategy = strategy;
    return i;
  }

  #choosePiece(peer: PieceSet): number {
    for (const mask of this.#passes) {
      this.#mask = mask;
      const i = this.#choosePieceOnce(peer);
      this.#mask = null;
      if (i !== -1) return i;
    }
    return this.#choosePieceOnce(peer);
  }

  #choosePieceOnce(peer: PieceSet): number {
    const bytes = peer.bytes;
    if (bytes !== undefined && this.strategy !== 'sequential')
      return this.#choosePieceIn(bytes, peer.offset ?? 0);
    const n = this.#opts.pieceCount;
    const rng = this.#opts.rng;
    if (this.strategy === 'sequential') {
      for (let i = 0; i < n; i++) if (this.#candidate(i, peer)) return i;
      return -1;
    }
    if (this.strategy === 'random') {
      const start = Math.floor(rng() * n);
      for (let k = 0; k < n; k++) {
        const i = (start + k) % n;
        if (this.#candidate(i, peer)) return i;
      }
      return -1;
    }
    // rarest-first: lowest availability; ties broken at random (reservoir sampling).
    const r = this.#rarest;
    r.best = -1;
    r.avail = Number.POSITIVE_INFINITY;
    r.ties = 0;
    for (let i = 0; i < n; i++)
      if (this.#candidate(i, peer)) considerRarest(r, i, this.availability[i] as number, rng);
    return r.best;
  }

  /**
   * The same choice as the general path below, a byte at a time: the candidates are the peer's
   * pieces that are neither held nor in flight. A large swarm's peers pick pieces millions of
   * times, so this is the picker's hot loop.
   */
  #choosePieceIn(theirs: Uint8Array, at: number): number {
    const mine = this.have.bytes;
    const act = this.#activeBits;
    const skip = this.#skipBits;
    const mask = this.#mask;
    const rng = this.#opts.rng;
    const bytes = mine.length;
    if (this.strategy === 'random') {
      const n = this.#opts.pieceCount;
      const start = Math.floor(rng() * n);
      // From `start` to the end, then from 0 to `start`: the first candidate found.
      for (let k = 0; k <= bytes; k++) {
        const j = ((start >>> 3) + k) % bytes;
        let c =
          (theirs[at + j] as number) &
          ~(mine[j] as number) &
          ~(act[j] as number) &
          ~(skip[j] as number) &
          0xff;
        if (mask !== null) c &= mask[j] as number;
        if (k === 0) c &= 0xff >>> (start & 7);
        else if (k === bytes) c &= ~(0xff >>> (start & 7)) & 0xff;
        if (c !== 0) return j * 8 + Math.clz32(c) - 24;
      }
      return -1;
    }
    const avail = this.availability;
    const r = this.#rarest;
    r.best = -1;
    r.avail = Number.POSITIVE_INFINITY;
    r.ties = 0;
    for (let j = 0; j < bytes; j++) {
      let c =
        (theirs[at + j] as number) & ~(mine[j] as number) & ~(act[j] as number) & ~(skip[j] as number) & 0xff;
      if (mask !== null) c &= mask[j] as number;
      while (c !== 0) {
        const bit = Math.clz32(c) - 24;
        c &= ~(0x80 >>> bit);
        const i = j * 8 + bit;
        considerRarest(r, i, avail[i] as number, rng);
      }
    }
    return r.best;
  }

  #candidate(i: number, peer: PieceSet): boolean {
    const m = this.#mask;
    return (
      peer.has(i) &&
      !this.have.has(i) &&
      !this.active.has(i) &&
      !this.#skips(i) &&
      (m === null || ((m[i >>> 3] as number) & (0x80 >>> (i & 7))) !== 0)
    );
  }

  // ---- outcomes ---------------------------------------------------------------------

  /**
   * A block arrived. Returns 'new' with the other links it was also requested from (to cancel),
   * 'duplicate' when it was already in, or 'unexpected' when the piece isn't in flight.
   */
  received(
    index: number,
    begin: number,
    link: number,
  ): { status: 'new' | 'duplicate' | 'unexpected'; cancel: number[]; pieceDone: boolean } {
    const a = this.active.get(index);
    const b = begin / this.blockLength;
    if (a === undefined || !Number.isInteger(b) || b >= a.blocks.length)
      return { status: 'unexpected', cancel: [], pieceDone: false };
    if (a.blocks[b] === RECEIVED) return { status: 'duplicate', cancel: [], pieceDone: false };
    if (a.blocks[b] === 0) a.unrequested--;
    const owners = a.owners[b];
    const cancel =
      owners === undefined || typeof owners === 'number'
        ? owners === undefined || owners === link
          ? NO_LINKS
          : [owners]
        : [...owners].filter((l) => l !== link);
    a.blocks[b] = RECEIVED;
    a.owners[b] = undefined;
    a.received++;
    return { status: 'new', cancel, pieceDone: a.received === a.blocks.length };
  }

  /** A link will not deliver a block it was asked for (choked, timed out, gone). */
  release(index: number, begin: number, link: number): void {
    const a = this.active.get(index);
    if (a === undefined) return;
    const b = begin / this.blockLength;
    const state = a.blocks[b];
    if (state === undefined || state <= 0) return;
    const owners = a.owners[b];
    if (owners === undefined) return;
    if (typeof owners === 'number') {
      if (owners !== link) return;
      a.owners[b] = undefined;
    } else if (!owners.delete(link)) return;
    a.blocks[b] = state - 1;
    if (state - 1 === 0) a.unrequested++;
    if (a.received === 0 && a.unrequested === a.blocks.length) this.#deactivate(index);
  }

  /** The piece hashed right: COMPLETED. */
  verified(index: number): void {
    this.#deactivate(index);
    this.have.set(index);
    if (this.#urgent.length > 0 && this.#urgent.includes(index))
      this.#urgent = this.#urgent.filter((i) => i !== index);
  }

  /** The piece hashed wrong: back to QUEUED, every block to be fetched again. */
  failed(index: number): void {
    this.#deactivate(index);
  }
}
