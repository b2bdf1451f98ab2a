import { Bitfield } from '../core/bitfield.js';
import type { PieceSet } from './picker.js';

/**
 * The per-link state a `have` touches, for every link of one torrent, in flat arrays indexed by
 * the link's slot: each link's pieces as bitfield bytes side by side, their counts, how many of
 * them we lack, the link's flags and its last message times.
 *
 * Why: most messages of a large swarm are `have`s, each landing on a peer whose state is cold in
 * memory. A have that walks link object -> Bitfield -> Uint8Array -> bytes pays a cache miss at
 * each hop; here it reads two arrays of the table: the link's line of numbers and its bytes
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
/**
 * The peer has been interested in us at some time: it was downloading then, so it is not an
 * initial seed, and only an initial seed super-seeds (BEP 16).
 */
export const WAS_INTERESTED = 64;

/**
 * Slots allocated at first (doubled when a torrent has more links): room for the 20-30 links a
 * peer usually keeps, so a swarm of new peers does not reallocate every table as links arrive.
 */
export const INITIAL_SLOTS = 32;

/** Link ids below this find their slot in an array; larger ones through a Map. */
const MAX_DIRECT_ID = 65_536;

/** A slot's numbers in `meta`: one cache line (8 doubles) per link. */
export const META = 8;
export const FLAGS = 0;
/** Pieces the link has. */
export const COUNT = 1;
/** Pieces the link offers that we lack: we are interested while it is above zero. */
export const INTERESTING = 2;
export const LAST_RECEIVED = 3;
export const LAST_SENT = 4;
/**
 * No request outstanding on the link is older than this (Infinity: none): a tick looks at a
 * link's requests only when this says one may have timed out.
 */
export const REQUESTED_AT = 5;
/** The link's id. */
export const ID = 6;

export class LinkTable {
  /** Bytes per link bitfield. */
  readonly stride: number;
  readonly pieceCount: number;
  /** Each slot's pieces, `stride` bytes apiece. */
  bits: Uint8Array;
  /** Each slot's numbers, META apiece (FLAGS, COUNT, ...). */
  meta: Float64Array;
  #free: number[] = [];
  #used = 0;
  /**
   * Each link id's slot: slot + 1 by id for small ids (0: none), the usual case (drivers number
   * links from 1 and reuse ids); larger ids in #far. Kept here, beside the rows it indexes: a
   * message's first reads are the table's, not another object's.
   */
  #direct = new Int32Array(16);
  readonly #far = new Map<number, number>();

  /** `slots`: room at first (at least 1; the table doubles when a link needs more). */
  constructor(pieceCount: number, slots = INITIAL_SLOTS) {
    this.pieceCount = pieceCount;
    this.stride = Bitfield.byteLength(pieceCount);
    const n = Math.max(1, Math.floor(slots));
    this.bits = new Uint8Array(n * this.stride);
    this.meta = new Float64Array(n * META);
  }

  get capacity(): number {
    return this.meta.length / META;
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
    const m = slot * META;
    this.meta.fill(0, m, m + META);
    this.meta[m + FLAGS] = PEER_CHOKING;
    this.meta[m + LAST_RECEIVED] = now;
    this.meta[m + LAST_SENT] = now;
    this.meta[m + REQUESTED_AT] = Number.POSITIVE_INFINITY;
    this.meta[m + ID] = id;
    this.#setSlot(id, slot + 1);
    return slot;
  }

  release(slot: number): void {
    this.#setSlot(this.meta[slot * META + ID] as number, 0);
    this.meta[slot * META + FLAGS] = 0;
    this.#free.push(slot);
  }

  /** The link's slot (-1 or NaN: no such link). */
  slotOf(id: number): number {
    return id < this.#direct.length ? (this.#direct[id] as number) - 1 : (this.#far.get(id) ?? -1);
  }

  #setSlot(id: number, slotPlusOne: number): void {
    if (id >= 0 && id < MAX_DIRECT_ID && Number.isInteger(id)) {
      if (id >= this.#direct.length) {
        const d = new Int32Array(Math.min(MAX_DIRECT_ID, Math.max(id + 1, this.#direct.length * 2)));
        d.set(this.#direct);
        this.#direct = d;
      }
      this.#direct[id] = slotPlusOne;
    } else if (slotPlusOne === 0) this.#far.delete(id);
    else this.#far.set(id, slotPlusOne - 1);
  }

  #grow(): void {
    const cap = this.capacity * 2;
    const bits = new Uint8Array(cap * this.stride);
    bits.set(this.bits);
    this.bits = bits;
    const meta = new Float64Array(cap * META);
    meta.set(this.meta);
    this.meta = meta;
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
    return this.#t.meta[this.#slot * META + COUNT] as number;
  }

  get complete(): boolean {
    return this.#t.meta[this.#slot * META + COUNT] === this.#t.pieceCount;
  }

  has(index: number): boolean {
    if (index < 0 || index >= this.#t.pieceCount) return false;
    return ((this.#t.bits[this.offset + (index >>> 3)] as number) & (0x80 >>> (index & 7))) !== 0;
  }

  /** The peer's whole set from a bitfield message (already checked for length and spare bits). */
  assign(bitfield: Uint8Array): void {
    this.#t.bits.set(bitfield, this.offset);
    this.#t.meta[this.#slot * META + COUNT] = new Bitfield(this.#t.pieceCount, bitfield).count;
  }
}
