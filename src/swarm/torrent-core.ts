import { Bitfield } from '../core/bitfield.js';
import type { Handshake, Message } from '../wire/messages.js';
import { BLOCK_LENGTH, MAX_REQUEST_LENGTH } from '../wire/messages.js';
import { CHOKE_ROUND_MS, chooseUnchoked, OPTIMISTIC_ROUNDS } from './choker.js';
import {
  AM_INTERESTED,
  COUNT,
  EXCHANGE,
  FLAGS,
  HANDSHAKEN,
  ID,
  INTERESTING,
  LAST_RECEIVED,
  LAST_SENT,
  LinkPieces,
  LinkTable,
  META,
  PEER_CHOKING,
  PEER_INTERESTED,
  REQUESTED_AT,
  SEEN_MESSAGE,
  WAS_INTERESTED,
} from './link-table.js';
import { type BlockRequest, PiecePicker, type PieceSet, type Strategy } from './picker.js';

/**
 * One torrent's peer-wire logic: every link's state, the picker, the choker, piece assembly.
 * Events in (a link opened, a message, a block read from storage, a piece verified, a clock tick),
 * commands out (send, close, read, verify). No sockets, no clock, no randomness of its own: the
 * same code runs over TCP and in a simulated network. Invariants: STATE.md beside this file.
 */

export type LinkId = number;

export type Command =
  | { type: 'handshake'; link: LinkId }
  | { type: 'send'; link: LinkId; msg: Message }
  | { type: 'close'; link: LinkId; code: CloseCode; reason: string; ban: boolean }
  | { type: 'read'; link: LinkId; index: number; begin: number; length: number }
  | { type: 'verify'; index: number; data: Uint8Array }
  /** A link opened for a set of pieces (an exchange) has nothing more to give: the driver closes it. */
  | { type: 'exchangeDone'; link: LinkId }
  | { type: 'complete' };

export type CloseCode =
  | 'ERR_WRONG_INFO_HASH'
  | 'ERR_SELF_CONNECTION'
  | 'ERR_DUPLICATE_PEER'
  | 'ERR_PROTOCOL'
  | 'ERR_BAD_BITFIELD'
  | 'ERR_BAD_HAVE'
  | 'ERR_BAD_REQUEST'
  | 'ERR_REQUEST_FLOOD'
  | 'ERR_BAD_PIECE'
  | 'ERR_HASH_MISMATCH'
  | 'ERR_TIMEOUT'
  | 'ERR_NOT_NEEDED';

/**
 * Requests we keep outstanding per peer: 128 x 16 KiB = 2 MiB in flight, for a fast link (on
 * loopback 64 was ~7% slower, 16 ~28%). A rate-capped swarm wants far fewer (opts.pipeline):
 * the cap makes requests queue at the sender, and a deep queue only delays every piece.
 */
export const DEFAULT_PIPELINE = 128;
/** Their requests we queue at most; more is a flood and closes the link (clients send ~250 at most). */
export const MAX_PEER_REQUESTS = 512;
/** Regular unchoke slots (plus one optimistic). */
export const DEFAULT_UPLOAD_SLOTS = 4;
/** A request unanswered this long is given to another peer. */
export const REQUEST_TIMEOUT_MS = 30_000;
/** A link that completes no handshake in this time is closed. */
export const HANDSHAKE_TIMEOUT_MS = 20_000;
/** A link silent this long is closed (BEP 3 peers send a keep-alive every ~2 minutes). */
export const IDLE_TIMEOUT_MS = 180_000;
/** We send a keep-alive after this much silence of our own. */
export const KEEPALIVE_MS = 90_000;
/** Pieces a super-seed offers each peer at once. */
export const SUPER_SEED_OFFERS = 2;
/** Failed pieces kept to find which contributor lied (each holds one bad copy of a piece). */
export const MAX_SUSPECTS = 8;
/** Piece buffers kept for reuse: enough for the pieces usually in flight at once. */
export const MAX_FREE_BUFFERS = 16;
/** Blocks nobody asked for that a peer may send before it is dropped. */
export const MAX_UNEXPECTED_BLOCKS = 64;

export interface CoreOpts {
  infoHash: Uint8Array;
  peerId: Uint8Array;
  pieceCount: number;
  pieceLength: number;
  length: number;
  strategy?: Strategy;
  pipeline?: number;
  uploadSlots?: number;
  /**
   * Super-seeding (BEP 16) while we are a seed: instead of our bitfield, each peer is offered a
   * couple of pieces at a time (`have`), those offered least so far, and a new one each time it
   * reports one done; peers then fetch different pieces from us and trade the rest among
   * themselves, so the seed sends each piece about once.
   */
  superSeed?: boolean;
  /**
   * Assemble block bytes into pieces (default). A simulator that moves no real bytes turns it off:
   * `verify` then carries no data, and the driver says whether the piece is good.
   */
  assemble?: boolean;
  /** Verified pieces we start with (a seed: all; a resumed download: some). */
  have?: Bitfield;
  /**
   * Bytes per request: 16 KiB (the default) on the wire. The simulator may move a whole piece as
   * one block; requests up to this length are then accepted too.
   */
  blockLength?: number;
  /**
   * Links the link table has room for at first (default 32; it doubles past that). A driver that
   * caps its connections (the simulator) passes the cap, so a large swarm of small tables wastes
   * no slots.
   */
  linkSlots?: number;
}

export interface CoreEvents {
  onPieceVerified?(index: number): void;
  onPieceFailed?(index: number, contributors: string[]): void;
  onBlock?(link: LinkId, bytes: number): void;
  onUpload?(link: LinkId, bytes: number): void;
  onRequestBlocks?(link: LinkId, requests: BlockRequest[]): void;
}

const NO_DATA = new Uint8Array(0);

/**
 * Shared empty stand-ins for a link's request map and sets until it first needs one: most links
 * of a large swarm never serve, or never super-seed, and three empty hash tables per link were a
 * third of a simulated peer's memory. Writing to one is a bug, and throws.
 */
class EmptySet extends Set<number> {
  override add(): this {
    throw new Error('shared empty set written to');
  }
}
class EmptyMap<V> extends Map<number, V> {
  override set(): this {
    throw new Error('shared empty map written to');
  }
}
/** What a message that needs no answer returns (shared: callers only read it). */
const NO_COMMANDS: Command[] = Object.freeze([]) as unknown as Command[];
const NO_READS: Set<number> = new EmptySet();
const NO_OFFERS: Set<number> = new EmptySet();
const NO_REQUESTS: Map<number, { index: number; begin: number; length: number; at: number }> = new EmptyMap();

/**
 * One link's state. What a `have` touches (its pieces, interest count, flags, last message
 * times) lives in the torrent's LinkTable, by slot; the rest here.
 */
class Link {
  readonly id: LinkId;
  readonly slot: number;
  readonly #t: LinkTable;
  /** The peer's pieces (kept in the table). */
  readonly have: LinkPieces;
  outgoing: boolean;
  peerId: string | null = null;
  amChoking = true;
  outstanding: Map<number, { index: number; begin: number; length: number; at: number }> = NO_REQUESTS;
  pendingReads: Set<number> = NO_READS;
  downloaded = 0;
  uploaded = 0;
  roundDown = 0;
  roundUp = 0;
  rate = 0;
  openedAt: number;
  unexpected = 0;
  /** For an exchange: the only pieces to fetch over this link (null: any). */
  wanted: Bitfield | null;
  /** What to fetch over this link: its pieces (`have` itself), narrowed to `wanted` for an exchange. */
  offer: PieceSet;
  exchangeDone = false;
  /** Super-seeding: pieces offered to this peer and not yet reported done. */
  offered: Set<number> = NO_OFFERS;

  constructor(t: LinkTable, id: LinkId, outgoing: boolean, now: number, wanted: Bitfield | null) {
    this.#t = t;
    this.id = id;
    this.slot = t.allocate(id, now);
    this.have = new LinkPieces(t, this.slot);
    this.offer = this.have;
    this.outgoing = outgoing;
    this.openedAt = now;
    this.wanted = wanted;
  }

  #flag(bit: number): boolean {
    return ((this.#t.meta[this.slot * META + FLAGS] as number) & bit) !== 0;
  }

  setFlag(bit: number, on: boolean): void {
    const f = this.#t.meta[this.slot * META + FLAGS] as number;
    this.#t.meta[this.slot * META + FLAGS] = on ? f | bit : f & ~bit;
  }

  get handshaken(): boolean {
    return this.#flag(HANDSHAKEN);
  }
  set handshaken(v: boolean) {
    this.setFlag(HANDSHAKEN, v);
  }
  get amInterested(): boolean {
    return this.#flag(AM_INTERESTED);
  }
  set amInterested(v: boolean) {
    this.setFlag(AM_INTERESTED, v);
  }
  get peerChoking(): boolean {
    return this.#flag(PEER_CHOKING);
  }
  set peerChoking(v: boolean) {
    this.setFlag(PEER_CHOKING, v);
  }
  get peerInterested(): boolean {
    return this.#flag(PEER_INTERESTED);
  }
  set peerInterested(v: boolean) {
    this.setFlag(PEER_INTERESTED, v);
  }
  /** How many pieces in `offer` we lack: we are interested while it is above zero. */
  get interesting(): number {
    return this.#t.meta[this.slot * META + INTERESTING] as number;
  }
  set interesting(v: number) {
    this.#t.meta[this.slot * META + INTERESTING] = v;
  }
  get lastReceived(): number {
    return this.#t.meta[this.slot * META + LAST_RECEIVED] as number;
  }
  set lastReceived(v: number) {
    this.#t.meta[this.slot * META + LAST_RECEIVED] = v;
  }
  get lastSent(): number {
    return this.#t.meta[this.slot * META + LAST_SENT] as number;
  }
  set lastSent(v: number) {
    this.#t.meta[this.slot * META + LAST_SENT] = v;
  }
}

interface Assembly {
  data: Uint8Array;
  contributors: Set<string>;
  /** Who sent each block (by block number). */
  owners: (string | undefined)[];
}

/** Link ids below this find their slot in an array (drivers number links from 1 and reuse ids). */
const MAX_DIRECT_ID = 65_536;

/** One number for (index, begin): begin is a multiple of 16 KiB below 64 MiB, so 2^12 blocks per piece. */
const blockKey = (index: number, begin: number) => index * 4096 + begin / 16384;

export class TorrentCore {
  readonly opts: Required<Omit<CoreOpts, 'have' | 'linkSlots'>>;
  readonly #maxRequest: number;
  readonly picker: PiecePicker;
  readonly links = new Map<LinkId, Link>();
  readonly events: CoreEvents;
  readonly #rng: () => number;
  readonly #assembly = new Map<number, Assembly>();
  readonly #free: Uint8Array[] = [];
  /** Super-seeding: per piece, offers peers reported done (copies given out)... */
  readonly #given: Uint16Array;
  /** ...and offers outstanding at peers we unchoke (an offer to a choked peer is not on its way). */
  readonly #liveOffers: Uint16Array;
  readonly #verifying = new Set<number>();
  /** Failed pieces with several contributors: the bad copy and who sent each block. */
  readonly #suspects = new Map<number, { data: Uint8Array; owners: (string | undefined)[] }>();
  readonly banned = new Set<string>();
  #lastRound = Number.NEGATIVE_INFINITY;
  #round = 0;
  #optimistic: LinkId | null = null;
  #completeSent = false;
  #infoHashKey: string;
  #selfKey: string;
  /** The links' hot state by slot, and each link id's slot (a `have` needs nothing else). */
  readonly #table: LinkTable;
  /** Slot + 1 by link id for small ids (0: none), the usual case; larger ids in #slots. */
  #direct = new Int32Array(16);
  readonly #slots = new Map<LinkId, number>();
  /** Each slot's link. */
  readonly #bySlot: (Link | undefined)[] = [];
  /** Our pieces' bitfield bytes and the availability counts (the picker's, held here for a `have`). */
  readonly #mine: Uint8Array;
  readonly #avail: Uint16Array;
  /**
   * Requests went back to the picker (a choke, a link gone) since links were last refilled: the
   * next verified piece refills every link. Otherwise a verified piece gives no link anything new
   * to ask for (it leaves the in-flight set for our own), and only its own link is refilled.
   */
  #released = false;
  /** Links we do not choke. */
  #unchoked = 0;
  /** The picker holds every piece (kept here: a `have` asks, and the picker is another object). */
  #complete: boolean;
  readonly #superSeed: boolean;

  constructor(opts: CoreOpts, rng: () => number, events: CoreEvents = {}) {
    this.opts = {
      infoHash: opts.infoHash,
      peerId: opts.peerId,
      pieceCount: opts.pieceCount,
      pieceLength: opts.pieceLength,
      length: opts.length,
      strategy: opts.strategy ?? 'rarest-first',
      pipeline: opts.pipeline ?? DEFAULT_PIPELINE,
      assemble: opts.assemble ?? true,
      uploadSlots: opts.uploadSlots ?? DEFAULT_UPLOAD_SLOTS,
      superSeed: opts.superSeed ?? false,
      blockLength: opts.blockLength ?? BLOCK_LENGTH,
    };
    this.#maxRequest = Math.max(MAX_REQUEST_LENGTH, this.opts.blockLength);
    this.#rng = rng;
    this.events = events;
    // Only a super-seed counts offers (a large simulated swarm has one among thousands of peers).
    this.#given = new Uint16Array(opts.superSeed ? opts.pieceCount : 0);
    this.#liveOffers = new Uint16Array(opts.superSeed ? opts.pieceCount : 0);
    this.picker = new PiecePicker(
      {
        pieceCount: opts.pieceCount,
        pieceLength: opts.pieceLength,
        length: opts.length,
        strategy: this.opts.strategy,
        rng,
        blockLength: this.opts.blockLength,
      },
      opts.have,
    );
    this.#table = new LinkTable(opts.pieceCount, opts.linkSlots);
    this.#mine = this.picker.have.bytes;
    this.#avail = this.picker.availability;
    this.#infoHashKey = Buffer.from(opts.infoHash).toString('hex');
    this.#selfKey = Buffer.from(opts.peerId).toString('latin1');
    this.#completeSent = this.picker.complete;
    this.#complete = this.picker.complete;
    this.#superSeed = this.opts.superSeed;
  }

  get complete(): boolean {
    return this.#complete;
  }

  get have(): Bitfield {
    return this.picker.have;
  }

  // ---- links ------------------------------------------------------------------------

  /**
   * A connection opened (either way): we send our handshake at once. `wanted` makes it an
   * exchange (the original design's way): only those pieces are fetched over it, and when it can
   * give no more of them an `exchangeDone` command follows.
   */
  addLink(link: LinkId, outgoing: boolean, now: number, wanted?: readonly number[]): Command[] {
    // A driver reusing a link id means the old link is gone.
    if (this.links.has(link)) this.removeLink(link);
    const l = new Link(
      this.#table,
      link,
      outgoing,
      now,
      wanted === undefined ? null : Bitfield.fromIndices(this.opts.pieceCount, wanted),
    );
    this.#setOffer(l);
    this.links.set(link, l);
    this.#bySlot[l.slot] = l;
    this.#setSlot(link, l.slot + 1);
    return [{ type: 'handshake', link }];
  }

  /** The connection is gone: its requests go back to the picker. */
  removeLink(link: LinkId): void {
    const l = this.links.get(link);
    if (l === undefined) return;
    for (const r of l.outstanding.values()) this.picker.release(r.index, r.begin, link);
    if (l.outstanding.size > 0) this.#released = true;
    if (l.handshaken) this.picker.removeAvailability(l.have);
    if (!l.amChoking) {
      this.#countOffers(l, -1);
      this.#unchoked--;
    }
    this.links.delete(link);
    this.#setSlot(link, 0);
    this.#table.release(l.slot);
    this.#bySlot[l.slot] = undefined;
    if (this.#optimistic === link) this.#optimistic = null;
  }

  /** The link's slot (-1 or NaN: no such link). */
  #slotOf(link: LinkId): number {
    return link < this.#direct.length ? (this.#direct[link] as number) - 1 : (this.#slots.get(link) ?? -1);
  }

  #setSlot(link: LinkId, slotPlusOne: number): void {
    if (link >= 0 && link < MAX_DIRECT_ID && Number.isInteger(link)) {
      if (link >= this.#direct.length) {
        const d = new Int32Array(Math.min(MAX_DIRECT_ID, Math.max(link + 1, this.#direct.length * 2)));
        d.set(this.#direct);
        this.#direct = d;
      }
      this.#direct[link] = slotPlusOne;
    } else if (slotPlusOne === 0) this.#slots.delete(link);
    else this.#slots.set(link, slotPlusOne - 1);
  }

  /** `have` changed wholesale (a bitfield): the offer and the count of interesting pieces follow. */
  #setOffer(l: Link): void {
    const wanted = l.wanted;
    l.offer = wanted === null ? l.have : { has: (i) => l.have.has(i) && wanted.has(i) };
    l.setFlag(EXCHANGE, wanted !== null);
    const mine = this.picker.have;
    let n = 0;
    if (l.have.count > 0)
      for (let i = 0; i < this.opts.pieceCount; i++) if (l.offer.has(i) && !mine.has(i)) n++;
    l.interesting = n;
  }

  peerIdOf(link: LinkId): string | null {
    return this.links.get(link)?.peerId ?? null;
  }

  /** Whether either side of the link wants something of the other (no allocation: a driver may ask often). */
  linkWanted(link: LinkId): boolean {
    const slot = this.#slotOf(link);
    if (!(slot >= 0)) return false;
    return ((this.#table.meta[slot * META + FLAGS] as number) & (AM_INTERESTED | PEER_INTERESTED)) !== 0;
  }

  linkStats(link: LinkId) {
    const l = this.links.get(link);
    if (l === undefined) return undefined;
    return {
      downloaded: l.downloaded,
      uploaded: l.uploaded,
      amChoking: l.amChoking,
      amInterested: l.amInterested,
      peerChoking: l.peerChoking,
      peerInterested: l.peerInterested,
      pieces: l.have.count,
      outstanding: l.outstanding.size,
      handshaken: l.handshaken,
      openedAt: l.openedAt,
    };
  }

  #close(l: Link, code: CloseCode, reason: string, ban = false): Command[] {
    this.removeLink(l.id);
    if (ban && l.peerId !== null) this.banned.add(l.peerId);
    return [{ type: 'close', link: l.id, code, reason, ban }];
  }

  #send(l: Link, msg: Message, now: number, out: Command[]): void {
    l.lastSent = now;
    out.push({ type: 'send', link: l.id, msg });
  }

  // ---- messages ----------------------------------------------------------------------

  message(link: LinkId, m: Message | Handshake, now: number): Command[] {
    const slot = this.#slotOf(link);
    if (!(slot >= 0)) return NO_COMMANDS;
    if (m.type === 'have' && ((this.#table.meta[slot * META + FLAGS] as number) & HANDSHAKEN) !== 0)
      return this.#onHave(slot, m.index, now);
    const l = this.#bySlot[slot] as Link;
    l.lastReceived = now;
    const out: Command[] = [];
    if (m.type === 'handshake') return this.#onHandshake(l, m, now);
    if (!l.handshaken) return this.#close(l, 'ERR_PROTOCOL', 'message before handshake');
    const flags = this.#table.meta[l.slot * META + FLAGS] as number;
    l.setFlag(SEEN_MESSAGE, true);
    switch (m.type) {
      case 'keepAlive':
      case 'port':
      case 'unknown':
        break;
      case 'bitfield': {
        const n = this.opts.pieceCount;
        if (m.bitfield.length !== Bitfield.byteLength(n)) {
          return this.#close(
            l,
            'ERR_BAD_BITFIELD',
            `bitfield of ${m.bitfield.length} bytes; ${n} pieces need ${Bitfield.byteLength(n)}`,
          );
        }
        if (!Bitfield.spareBitsClear(m.bitfield, n))
          return this.#close(l, 'ERR_BAD_BITFIELD', 'bitfield has spare bits set');
        // BEP 3 puts the bitfield first, but a peer with nothing at first may send it later
        // (aria2c does, on its first piece): take it as the peer's whole set then.
        if ((flags & SEEN_MESSAGE) !== 0) this.picker.removeAvailability(l.have);
        l.have.assign(m.bitfield);
        this.#setOffer(l);
        this.picker.addAvailability(l.have);
        if (this.complete && l.have.complete) return this.#close(l, 'ERR_NOT_NEEDED', 'both peers are seeds');
        this.#updateInterest(l, now, out);
        break;
      }
      case 'have':
        // Only before the handshake (a handshaken link's have is #onHave's): the check above closes.
        break;
      case 'choke':
        l.peerChoking = true;
        if (l.outstanding.size > 0) this.#released = true;
        // BEP 3: a choke discards every request we had outstanding there.
        for (const r of l.outstanding.values()) this.picker.release(r.index, r.begin, l.id);
        l.outstanding.clear();
        break;
      case 'unchoke':
        l.peerChoking = false;
        this.#fillRequests(l, now, out);
        break;
      case 'interested':
        l.peerInterested = true;
        l.setFlag(WAS_INTERESTED, true);
        if (l.amChoking && this.#unchoked < this.opts.uploadSlots + 1) this.#unchoke(l, now, out);
        break;
      case 'notInterested':
        l.peerInterested = false;
        break;
      case 'request':
        return this.#onRequest(l, m, now);
      case 'cancel':
        l.pendingReads.delete(blockKey(m.index, m.begin));
        break;
      case 'piece':
        return this.#onPiece(l, m, now);
    }
    return out;
  }

  /**
   * A `have` on a handshaken link: the hot path of a large swarm (most of its messages), kept to
   * the link table and our own arrays; the link object only when there is something to do.
   */
  #onHave(slot: number, index: number, now: number): Command[] {
    const t = this.#table;
    const meta = t.meta;
    const m = slot * META;
    meta[m + LAST_RECEIVED] = now;
    const flags = meta[m + FLAGS] as number;
    meta[m + FLAGS] = flags | SEEN_MESSAGE;
    const n = t.pieceCount;
    if (!(index < n)) {
      return this.#close(this.#bySlot[slot] as Link, 'ERR_BAD_HAVE', `have ${index} out of range`);
    }
    const at = slot * t.stride + (index >>> 3);
    const mask = 0x80 >>> (index & 7);
    const bits = t.bits[at] as number;
    let out = NO_COMMANDS;
    if ((bits & mask) === 0) {
      t.bits[at] = bits | mask;
      meta[m + COUNT] = (meta[m + COUNT] as number) + 1;
      this.#avail[index] = (this.#avail[index] as number) + 1;
      const complete = this.#complete;
      let l: Link | undefined;
      if (((this.#mine[index >>> 3] as number) & mask) === 0) {
        if ((flags & EXCHANGE) !== 0) l = this.#bySlot[slot] as Link;
        if (l === undefined || l.offer.has(index))
          meta[m + INTERESTING] = (meta[m + INTERESTING] as number) + 1;
      }
      // Interest may start (or an exchange end); an interested, unchoked link may ask for it.
      const act =
        (flags & AM_INTERESTED) === 0
          ? (flags & EXCHANGE) !== 0 || (!complete && (meta[m + INTERESTING] as number) > 0)
          : (flags & PEER_CHOKING) === 0 && !complete;
      if (act) {
        l ??= this.#bySlot[slot] as Link;
        out = [];
        if ((flags & AM_INTERESTED) === 0) this.#updateInterest(l, now, out);
        else this.#fillRequests(l, now, out);
      }
      // Super-seeding: the peer got the piece we offered it; offer the next.
      if (this.#superSeeding) {
        l ??= this.#bySlot[slot] as Link;
        if (l.offered.delete(index)) {
          this.#given[index] = (this.#given[index] as number) + 1;
          if (!l.amChoking) this.#liveOffers[index] = (this.#liveOffers[index] as number) - 1;
          if (out === NO_COMMANDS) out = [];
          this.#offer(l, now, out);
        }
      }
    }
    if (meta[m + COUNT] === n && this.#complete) {
      const closed = this.#close(this.#bySlot[slot] as Link, 'ERR_NOT_NEEDED', 'both peers are seeds');
      return out === NO_COMMANDS ? closed : [...out, ...closed];
    }
    return out;
  }

  #onHandshake(l: Link, h: Handshake, now: number): Command[] {
    if (l.handshaken) return this.#close(l, 'ERR_PROTOCOL', 'second handshake');
    if (Buffer.from(h.infoHash).toString('hex') !== this.#infoHashKey) {
      return this.#close(l, 'ERR_WRONG_INFO_HASH', 'handshake for another torrent');
    }
    const peerId = Buffer.from(h.peerId).toString('latin1');
    if (peerId === this.#selfKey) return this.#close(l, 'ERR_SELF_CONNECTION', 'connected to ourselves');
    if (this.banned.has(peerId)) return this.#close(l, 'ERR_HASH_MISMATCH', 'banned peer', true);
    for (const other of this.links.values()) {
      if (other !== l && other.peerId === peerId)
        return this.#close(l, 'ERR_DUPLICATE_PEER', 'already connected to this peer');
    }
    l.handshaken = true;
    l.peerId = peerId;
    const out: Command[] = [];
    if (this.#superSeeding) {
      // Offers go to peers we unchoke (here when a slot is free, else at a choking round): an offer
      // to a peer that cannot fetch it would hold the piece back from the swarm.
      if (this.#unchoked < this.opts.uploadSlots + 1) this.#unchoke(l, now, out);
    } else if (this.picker.have.count > 0) {
      this.#send(l, { type: 'bitfield', bitfield: this.picker.have.bytes.slice() }, now, out);
    }
    return out;
  }

  #onRequest(l: Link, m: { index: number; begin: number; length: number }, _now: number): Command[] {
    const out: Command[] = [];
    if (m.index >= this.opts.pieceCount)
      return this.#close(l, 'ERR_BAD_REQUEST', `request for piece ${m.index} out of range`);
    const size = this.picker.pieceSize(m.index);
    if (m.length === 0 || m.length > this.#maxRequest || m.begin + m.length > size || m.begin % 1 !== 0) {
      return this.#close(l, 'ERR_BAD_REQUEST', `bad request ${m.index}:${m.begin}+${m.length}`);
    }
    // A request while choked (it may cross our choke in flight) or for a piece we don't have
    // (yet: it may cross our have) is dropped, not an offence.
    if (l.amChoking || !this.picker.have.has(m.index)) return out;
    if (m.begin % 16384 !== 0) return this.#close(l, 'ERR_BAD_REQUEST', 'request not on a 16 KiB boundary');
    if (l.pendingReads.size >= MAX_PEER_REQUESTS) {
      return this.#close(l, 'ERR_REQUEST_FLOOD', `more than ${MAX_PEER_REQUESTS} requests queued`);
    }
    const key = blockKey(m.index, m.begin);
    if (l.pendingReads.has(key)) return out;
    if (l.pendingReads === NO_READS) l.pendingReads = new Set();
    l.pendingReads.add(key);
    out.push({ type: 'read', link: l.id, index: m.index, begin: m.begin, length: m.length });
    return out;
  }

  /** Storage read a block we were asked for: send it unless cancelled or choked since. */
  readDone(link: LinkId, index: number, begin: number, block: Uint8Array, now: number): Command[] {
    const l = this.links.get(link);
    if (l === undefined) return [];
    const key = blockKey(index, begin);
    if (!l.pendingReads.delete(key) || l.amChoking) return [];
    const out: Command[] = [];
    this.#send(l, { type: 'piece', index, begin, block }, now, out);
    l.uploaded += block.length;
    l.roundUp += block.length;
    this.events.onUpload?.(link, block.length);
    return out;
  }

  #onPiece(l: Link, m: { index: number; begin: number; block: Uint8Array }, now: number): Command[] {
    const out: Command[] = [];
    const key = blockKey(m.index, m.begin);
    const req = l.outstanding.get(key);
    if (req === undefined || req.index !== m.index || req.begin !== m.begin) {
      // Not asked of this link (or cancelled in endgame): ignore, within reason.
      if (++l.unexpected > MAX_UNEXPECTED_BLOCKS)
        return this.#close(l, 'ERR_BAD_PIECE', 'too many blocks nobody asked for');
      return out;
    }
    if (m.block.length !== req.length) {
      return this.#close(
        l,
        'ERR_BAD_PIECE',
        `block ${m.index}:${m.begin} has ${m.block.length} bytes, asked ${req.length}`,
      );
    }
    l.outstanding.delete(key);
    l.downloaded += m.block.length;
    l.roundDown += m.block.length;
    this.events.onBlock?.(l.id, m.block.length);
    const r = this.picker.received(m.index, m.begin, l.id);
    if (r.status === 'new') {
      let a = this.#assembly.get(m.index);
      if (a === undefined) {
        const data = this.opts.assemble ? this.#pieceBuffer(this.picker.pieceSize(m.index)) : NO_DATA;
        a = { data, contributors: new Set(), owners: [] };
        this.#assembly.set(m.index, a);
      }
      a.contributors.add(l.peerId as string);
      if (this.opts.assemble) {
        a.data.set(m.block, m.begin);
        // Who sent which block: only needed to blame a liar by comparing bytes.
        a.owners[m.begin / this.opts.blockLength] = l.peerId as string;
      }
      for (const other of r.cancel) {
        const o = this.links.get(other);
        if (o === undefined) continue;
        if (o.outstanding.delete(key))
          this.#send(o, { type: 'cancel', index: m.index, begin: m.begin, length: req.length }, now, out);
        this.#fillRequests(o, now, out);
      }
      if (r.pieceDone) {
        this.#verifying.add(m.index);
        out.push({ type: 'verify', index: m.index, data: a.data });
      }
    }
    this.#fillRequests(l, now, out);
    return out;
  }

  /** A piece buffer: a recycled one when the size fits (no zeroing, no garbage per piece). */
  #pieceBuffer(size: number): Uint8Array {
    if (size === this.opts.pieceLength) {
      const b = this.#free.pop();
      if (b !== undefined) return b;
    }
    return new Uint8Array(size);
  }

  /**
   * The driver hashed (and, when right, stored) a piece; it no longer holds the piece's buffer,
   * which is recycled.
   */
  verifyDone(index: number, ok: boolean, now: number): Command[] {
    const out: Command[] = [];
    const a = this.#assembly.get(index);
    this.#assembly.delete(index);
    if (a !== undefined && a.data.length === this.opts.pieceLength && this.#free.length < MAX_FREE_BUFFERS) {
      this.#free.push(a.data);
    }
    this.#verifying.delete(index);
    if (ok && this.picker.have.has(index)) return out;
    if (ok) {
      this.picker.verified(index);
      this.#complete = this.picker.complete;
      if (a !== undefined) this.#convict(index, a.data, out);
      this.events.onPieceVerified?.(index);
      const have: Message = { type: 'have', index };
      const refill = this.#released;
      this.#released = false;
      const closing: Link[] = [];
      // Over the link table rather than the link objects: a peer's links in a few cache lines.
      const t = this.#table;
      const n = this.opts.pieceCount;
      const mask = 0x80 >>> (index & 7);
      const meta = t.meta;
      for (let slot = 0; slot < t.used; slot++) {
        const m = slot * META;
        const f = meta[m + FLAGS] as number;
        if ((f & HANDSHAKEN) === 0) continue;
        const theirs = ((t.bits[slot * t.stride + (index >>> 3)] as number) & mask) !== 0;
        const exchange = (f & EXCHANGE) !== 0;
        if (exchange ? (this.#bySlot[slot] as Link).offer.has(index) : theirs)
          meta[m + INTERESTING] = (meta[m + INTERESTING] as number) - 1;
        // Have suppression: a seed hears of nothing, nor does a peer that holds the piece and has
        // been interested in us (so it was downloading: not an initial seed, the only kind that
        // super-seeds and must hear what its offers became). Half the haves of a swarm go to
        // peers that hold the piece.
        const seed = meta[m + COUNT] === n;
        if (!seed && !(theirs && (f & WAS_INTERESTED) !== 0)) {
          meta[m + LAST_SENT] = now;
          out.push({ type: 'send', link: meta[m + ID] as number, msg: have });
        }
        // Interest can only end here (or an exchange finish); requests change only after a release.
        if (
          refill ||
          exchange ||
          ((f & AM_INTERESTED) !== 0 && (this.complete || (meta[m + INTERESTING] as number) <= 0))
        )
          this.#updateInterest(this.#bySlot[slot] as Link, now, out);
        if (this.complete && seed) closing.push(this.#bySlot[slot] as Link);
      }
      for (const l of closing) out.push(...this.#close(l, 'ERR_NOT_NEEDED', 'both peers are seeds'));
      if (this.complete && !this.#completeSent) {
        this.#completeSent = true;
        out.push({ type: 'complete' });
      }
      return out;
    }
    this.picker.failed(index);
    const contributors = a === undefined ? [] : [...a.contributors];
    this.events.onPieceFailed?.(index, contributors);
    if (contributors.length === 1) {
      // A piece that came from one peer alone condemns it.
      this.#ban(contributors[0] as string, index, out);
    } else if (a !== undefined && this.opts.assemble && this.#suspects.size < MAX_SUSPECTS) {
      // Several peers sent blocks: keep the bad copy; when the piece verifies later, the blocks
      // that differ name the liars. Honest co-contributors are never blamed.
      this.#suspects.set(index, { data: a.data.slice(), owners: a.owners.slice() });
    }
    for (const l of this.links.values()) this.#fillRequests(l, now, out);
    return out;
  }

  get #superSeeding(): boolean {
    return this.#superSeed && this.#complete;
  }

  /**
   * Super-seeding: offer `l` the piece given out least so far, counting offers on their way (to
   * peers we unchoke; then the rarest among our peers) that it lacks. Offers to choked peers do not
   * count, so a piece offered to a peer we then choke goes to someone else instead of waiting for
   * its turn. False when there is nothing to offer.
   */
  #offer(l: Link, now: number, out: Command[]): boolean {
    let best = -1;
    let bestKey = Number.POSITIVE_INFINITY;
    const n = this.opts.pieceCount;
    const start = Math.floor(this.#rng() * n);
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      if (l.have.has(i) || l.offered.has(i)) continue;
      const copies = (this.#given[i] as number) + (this.#liveOffers[i] as number);
      const key = copies * 65536 + (this.picker.availability[i] as number);
      if (key < bestKey) {
        bestKey = key;
        best = i;
      }
    }
    if (best === -1) return false;
    if (l.offered === NO_OFFERS) l.offered = new Set();
    l.offered.add(best);
    if (!l.amChoking) this.#liveOffers[best] = (this.#liveOffers[best] as number) + 1;
    this.#send(l, { type: 'have', index: best }, now, out);
    return true;
  }

  #ban(peerId: string, index: number, out: Command[]): void {
    this.banned.add(peerId);
    const l = [...this.links.values()].find((x) => x.peerId === peerId);
    if (l !== undefined)
      out.push(
        ...this.#close(l, 'ERR_HASH_MISMATCH', `sent data for piece ${index} that failed its hash`, true),
      );
  }

  /** A piece that failed with several contributors now verified: ban whoever sent a differing block. */
  #convict(index: number, good: Uint8Array, out: Command[]): void {
    const suspect = this.#suspects.get(index);
    if (suspect === undefined) return;
    this.#suspects.delete(index);
    for (let b = 0; b < suspect.owners.length; b++) {
      const owner = suspect.owners[b];
      if (owner === undefined) continue;
      const begin = b * this.opts.blockLength;
      const end = Math.min(good.length, begin + this.opts.blockLength);
      for (let i = begin; i < end; i++) {
        if (suspect.data[i] !== good[i]) {
          this.#ban(owner, index, out);
          break;
        }
      }
    }
  }

  #updateInterest(l: Link, now: number, out: Command[]): void {
    const want = !this.complete && l.interesting > 0;
    if (want !== l.amInterested) {
      l.amInterested = want;
      this.#send(l, { type: want ? 'interested' : 'notInterested' }, now, out);
    }
    if (!want && l.wanted !== null && l.outgoing && !l.exchangeDone) {
      l.exchangeDone = true;
      out.push({ type: 'exchangeDone', link: l.id });
    }
    this.#fillRequests(l, now, out);
  }

  #fillRequests(l: Link, now: number, out: Command[]): void {
    if (l.peerChoking || !l.amInterested || this.complete) return;
    const room = this.opts.pipeline - l.outstanding.size;
    if (room <= 0) return;
    const reqs = this.picker.pick(l.id, l.offer, room, (index, begin) =>
      l.outstanding.has(blockKey(index, begin)),
    );
    if (reqs.length === 0) return;
    for (const r of reqs) {
      if (l.outstanding === NO_REQUESTS) l.outstanding = new Map();
      if (l.outstanding.size === 0) this.#table.meta[l.slot * META + REQUESTED_AT] = now;
      l.outstanding.set(blockKey(r.index, r.begin), { ...r, at: now });
      this.#send(l, { type: 'request', index: r.index, begin: r.begin, length: r.length }, now, out);
    }
    this.events.onRequestBlocks?.(l.id, reqs);
  }

  // ---- time ---------------------------------------------------------------------------

  /** Call every second or so: choking rounds, request and idle timeouts, keep-alives. */
  tick(now: number): Command[] {
    const out: Command[] = [];
    // Over the link table: a link object is looked at only when something is due.
    const t = this.#table;
    for (let slot = 0; slot < t.used; slot++) {
      const l = this.#bySlot[slot];
      if (l === undefined) continue;
      const m = slot * META;
      const handshaken = ((t.meta[m + FLAGS] as number) & HANDSHAKEN) !== 0;
      if (!handshaken && now - l.openedAt > HANDSHAKE_TIMEOUT_MS) {
        out.push(...this.#close(l, 'ERR_TIMEOUT', 'no handshake in time'));
        continue;
      }
      if (now - (t.meta[m + LAST_RECEIVED] as number) > IDLE_TIMEOUT_MS) {
        out.push(...this.#close(l, 'ERR_TIMEOUT', 'peer silent too long'));
        continue;
      }
      if (now - (t.meta[m + REQUESTED_AT] as number) > REQUEST_TIMEOUT_MS) {
        let expired = false;
        let oldest = Number.POSITIVE_INFINITY;
        for (const [key, r] of l.outstanding) {
          if (now - r.at > REQUEST_TIMEOUT_MS) {
            l.outstanding.delete(key);
            this.picker.release(r.index, r.begin, l.id);
            expired = true;
          } else oldest = Math.min(oldest, r.at);
        }
        t.meta[m + REQUESTED_AT] = oldest;
        if (expired) {
          this.#released = true;
          for (const o of this.links.values()) if (o !== l) this.#fillRequests(o, now, out);
        }
      }
      if (handshaken && now - (t.meta[m + LAST_SENT] as number) > KEEPALIVE_MS)
        this.#send(l, { type: 'keepAlive' }, now, out);
    }
    if (now - this.#lastRound >= CHOKE_ROUND_MS) this.#chokeRound(now, out);
    return out;
  }

  #chokeRound(now: number, out: Command[]): void {
    const seconds = Math.max(1, (now - this.#lastRound) / 1000);
    this.#lastRound = now;
    const seeding = this.complete;
    const candidates = [];
    for (const l of this.links.values()) {
      l.rate = (seeding ? l.roundUp : l.roundDown) / (Number.isFinite(seconds) ? seconds : 1);
      l.roundUp = 0;
      l.roundDown = 0;
      // A super-seed also unchokes peers it has offered nothing yet: the offer comes with the unchoke.
      const wants = l.peerInterested || (this.#superSeeding && !l.have.complete);
      if (l.handshaken) candidates.push({ id: l.id, interested: wants, rate: l.rate });
    }
    const rotate = this.#round % OPTIMISTIC_ROUNDS === 0;
    this.#round++;
    const d = chooseUnchoked(candidates, this.opts.uploadSlots, this.#optimistic, rotate, this.#rng);
    this.#optimistic = d.optimistic;
    for (const l of this.links.values()) {
      if (!l.handshaken) continue;
      const unchoke = d.unchoke.has(l.id);
      if (unchoke && l.amChoking) this.#unchoke(l, now, out);
      else if (!unchoke && !l.amChoking) {
        l.amChoking = true;
        this.#unchoked--;
        l.pendingReads.clear();
        this.#countOffers(l, -1);
        this.#send(l, { type: 'choke' }, now, out);
      }
    }
  }

  #unchoke(l: Link, now: number, out: Command[]): void {
    l.amChoking = false;
    this.#unchoked++;
    this.#countOffers(l, 1);
    this.#send(l, { type: 'unchoke' }, now, out);
    if (this.#superSeeding) while (l.offered.size < SUPER_SEED_OFFERS && this.#offer(l, now, out));
  }

  /** `l`'s open offers start (+1) or stop (-1) counting as on their way: it was unchoked, or choked or gone. */
  #countOffers(l: Link, delta: 1 | -1): void {
    for (const i of l.offered) this.#liveOffers[i] = (this.#liveOffers[i] as number) + delta;
  }
}
