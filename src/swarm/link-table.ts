import { Bitfield } from '../core/bitfield.js';
import type { PieceSet } from './picker.js';

/**
 * The per-link state a `have` touches, for every link of one torrent, in flat arrays indexed by
 * the link's slot: each link's pieces as bitfield bytes side by side, their counts, how many of
 * them we lack, the link's flags and its last message times.
 *
 * Why: most messages of a large swarm are `have`s, each landing on a peer whose state is cold in
 * memory. A have that walks link object -> Bitfield -> Uint8Array -> bytes pays a cache miss at
 * each hop; here it reads the table's arrays (one object) and the bytes themselves
 * (docs/simulator.md, "Scale"). Slots are reused after a link goes; the arrays grow by doubling.
 */

/** Flag bits per slot. */
export const HANDSHAKEN = 1;
export const AM_INTERESTED = 2;
export const PEER_CHOKING = 4;
export const PEER_INTERESTED = 8;
/** Some message arrived after the handshake (a bitfield is allowed only as the first). */
export const SEEN_MESSAGE = 16;
/** The link is an exchange (only some pieces wanted): its offer is narrower than its pieces. */
export const EXCHANGE = 32;

/** Slots allocated at first; doubled when a torrent has more links. */
const INITIAL_SLOTS = 8;

export class LinkTable {
  /** Bytes per link bitfield. */
  readonly stride: number;
  readonly pieceCount: number;
  bits: Uint8Array;
  counts: Uint32Array;
  /** Pieces the link offers that we lack: we are interested while it is above zero. */
  interesting: Int32Array;
  flags: Uint8Array;
  lastReceived: Float64Array;
  lastSent: Float64Array;
  /**
   * No request outstanding on the link is older than this (Infinity: none): a tick looks at a
   * link's requests only when this says one may have timed out.
   */
  requestedAt: Float64Array;
  /** The link id in each slot. */
  ids: Float64Array;
  #free: number[] = [];
  #used = 0;

  constructor(pieceCount: number) {
    this.pieceCount = pieceCount;
    this.stride = Bitfield.byteLength(pieceCount);
    this.bits = new Uint8Array(INITIAL_SLOTS * this.stride);
    this.counts = new Uint32Array(INITIAL_SLOTS);
    this.interesting = new Int32Array(INITIAL_SLOTS);
    this.flags = new Uint8Array(INITIAL_SLOTS);
    this.lastReceived = new Float64Array(INITIAL_SLOTS);
    this.lastSent = new Float64Array(INITIAL_SLOTS);
    this.requestedAt = new Float64Array(INITIAL_SLOTS);
    this.ids = new Float64Array(INITIAL_SLOTS);
  }

  get capacity(): number {
    return this.counts.length;
  }

  /** Slots ever used: every link's slot is below this (a free slot's flags are 0). */
  get used(): number {
    return this.#used;
  }

  /** A cleared slot for a new link. */
  allocate(id: number, now: number): number {
    const slot = this.#free.pop() ?? this.#used++;
    if (slot >= this.capacity) this.#grow();
    this.bits.fill(0, slot * this.stride, (slot + 1) * this.stride);
    this.counts[slot] = 0;
    this.interesting[slot] = 0;
    this.flags[slot] = PEER_CHOKING;
    this.lastReceived[slot] = now;
    this.lastSent[slot] = now;
    this.requestedAt[slot] = Number.POSITIVE_INFINITY;
    this.ids[slot] = id;
    return slot;
  }

  release(slot: number): void {
    this.flags[slot] = 0;
    this.#free.push(slot);
  }

  #grow(): void {
    const cap = this.capacity * 2;
    const grow = <T extends Uint8Array | Uint32Array | Int32Array | Float64Array>(
      a: T,
      make: (n: number) => T,
      n: number,
    ) => {
      const b = make(n);
      b.set(a);
      return b;
    };
    this.bits = grow(this.bits, (n) => new Uint8Array(n), cap * this.stride);
    this.counts = grow(this.counts, (n) => new Uint32Array(n), cap);
    this.interesting = grow(this.interesting, (n) => new Int32Array(n), cap);
    this.flags = grow(this.flags, (n) => new Uint8Array(n), cap);
    this.lastReceived = grow(this.lastReceived, (n) => new Float64Array(n), cap);
    this.lastSent = grow(this.lastSent, (n) => new Float64Array(n), cap);
    this.requestedAt = grow(this.requestedAt, (n) => new Float64Array(n), cap);
    this.ids = grow(this.ids, (n) => new Float64Array(n), cap);
  }
}

/**
 * One link's pieces, stored in its table slot: the Bitfield operations the core and the picker
 * use. `bytes` and `offset` give the picker its byte-at-a-time scan.
 */
export class LinkPieces implements PieceSet {
  readonly #t: LinkTable;
  readonly #slot: number;

  constructor(t: LinkTable, slot: number) {
    this.#t = t;
    this.#slot = slot;
  }

  get length(): number {
    return this.#t.pieceCount;
  }

  get bytes(): Uint8Array {
    return this.#t.bits;
  }

  get offset(): number {
    return this.#slot * this.#t.stride;
  }

  get count(): number {
    return this.#t.counts[this.#slot] as number;
  }

  get complete(): boolean {
    return this.#t.counts[this.#slot] === this.#t.pieceCount;
  }

  has(index: number): boolean {
    if (index < 0 || index >= this.#t.pieceCount) return false;
    return ((this.#t.bits[this.offset + (index >>> 3)] as number) & (0x80 >>> (index & 7))) !== 0;
  }

  /** The peer's whole set from a bitfield message (already checked for length and spare bits). */
  assign(bitfield: Uint8Array): void {
    this.#t.bits.set(bitfield, this.offset);
    this.#t.counts[this.#slot] = new Bitfield(this.#t.pieceCount, bitfield).count;
  }
}
