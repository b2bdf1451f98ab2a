import { Bitfield } from '../core/bitfield.js';
import type { CloseCode } from '../core/errors.js';
import { bans } from '../core/errors.js';
import type { Handshake, Message } from '../wire/messages.js';
import { BLOCK_LENGTH, MAX_REQUEST_LENGTH } from '../wire/messages.js';
import { Assembly } from './assembly.js';
import { CHOKE_ROUND_MS, chooseUnchoked, OPTIMISTIC_ROUNDS } from './choker.js';
import { type Command, type CoreEvents, NO_COMMANDS } from './commands.js';
import { blockKey, Link, type LinkId, Links, NO_READS, NO_REQUESTS } from './link.js';
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
  LinkTable,
  META,
  PEER_CHOKING,
  PEER_INTERESTED,
  REQUESTED_AT,
  SEEN_MESSAGE,
  WAS_INTERESTED,
} from './link-table.js';
import { PiecePicker, type Strategy } from './picker.js';
import { SUPER_SEED_OFFERS, SuperSeed } from './super-seed.js';

export type { Command, CoreEvents } from './commands.js';
export type { LinkId } from './link.js';

/**
 * One torrent's peer-wire logic, the orchestrator of its parts: the links (link.ts, their hot
 * state in the LinkTable), the picker, the choker, piece assembly and blame (assembly.ts) and
 * super-seeding (super-seed.ts). Events in (a link opened, a message, a block read from storage, a
 * piece verified, a clock tick), commands out (send, close, read, verify). No sockets, no clock,
 * no randomness of its own: the same code runs over TCP and in a simulated network. Invariants:
 * STATE.md beside this file.
 */

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
  /** Super-seeding (BEP 16) while we are a seed: super-seed.ts. */
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

export class TorrentCore {
  readonly opts: Required<Omit<CoreOpts, 'have' | 'linkSlots'>>;
  readonly #maxRequest: number;
  readonly picker: PiecePicker;
  readonly #links = new Links();
  /** The links by id, in the order they opened. */
  readonly links: ReadonlyMap<LinkId, Link> = this.#links.byId;
  readonly events: CoreEvents;
  readonly #rng: () => number;
  readonly #assembly: Assembly;
  /** The super-seeding policy (only a core made to super-seed has one). */
  readonly #superSeed: SuperSeed | null;
  readonly #verifying = new Set<number>();
  readonly banned = new Set<string>();
  #lastRound = Number.NEGATIVE_INFINITY;
  #round = 0;
  #optimistic: LinkId | null = null;
  #completeSent = false;
  #infoHashKey: string;
  #selfKey: string;
  /** The links' hot state by slot, and each link id's slot (a `have` needs nothing else). */
  readonly #table: LinkTable;
  /** Each slot's link. */
  readonly #bySlot: (Link | undefined)[] = this.#links.bySlot;
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
    this.#assembly = new Assembly(opts.pieceLength, this.opts.blockLength, this.opts.assemble);
    // Only a super-seed counts offers (a large simulated swarm has one among thousands of peers).
    this.#superSeed = this.opts.superSeed
      ? new SuperSeed(opts.pieceCount, this.picker.availability, rng)
      : null;
    this.#infoHashKey = Buffer.from(opts.infoHash).toString('hex');
    this.#selfKey = Buffer.from(opts.peerId).toString('latin1');
    this.#completeSent = this.picker.complete;
    this.#complete = this.picker.complete;
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
    l.setOffer(this.picker.have, this.opts.pieceCount);
    this.#links.add(l);
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
      this.#superSeed?.count(l, -1);
      this.#unchoked--;
    }
    this.#links.delete(l);
    this.#table.release(l.slot);
    if (this.#optimistic === link) this.#optimistic = null;
  }

  peerIdOf(link: LinkId): string | null {
    return this.links.get(link)?.peerId ?? null;
  }

  /** Whether either side of the link wants something of the other (no allocation: a driver may ask often). */
  linkWanted(link: LinkId): boolean {
    const slot = this.#links.slotOf(link);
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

  #close(l: Link, code: CloseCode, reason: string): Command[] {
    this.removeLink(l.id);
    if (bans(code) && l.peerId !== null) this.banned.add(l.peerId);
    return [{ type: 'close', link: l.id, code, reason }];
  }

  #send(l: Link, msg: Message, now: number, out: Command[]): void {
    l.lastSent = now;
    out.push({ type: 'send', link: l.id, msg });
  }

  // ---- messages ----------------------------------------------------------------------

  message(link: LinkId, m: Message | Handshake, now: number): Command[] {
    const slot = this.#links.slotOf(link);
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
        l.setOffer(this.picker.have, this.opts.pieceCount);
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
        if ((this.#superSeed as SuperSeed).reported(l, index)) {
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
    if (this.banned.has(peerId)) return this.#close(l, 'ERR_BANNED', 'a banned peer came back');
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
      const size = this.picker.pieceSize(m.index);
      const a = this.#assembly.add(m.index, size, m.begin, m.block, l.peerId as string);
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

  /**
   * The driver hashed (and, when right, stored) a piece; it no longer holds the piece's buffer,
   * which is recycled.
   */
  verifyDone(index: number, ok: boolean, now: number): Command[] {
    const out: Command[] = [];
    const a = this.#assembly.finish(index);
    this.#verifying.delete(index);
    if (ok && this.picker.have.has(index)) return out;
    if (ok) {
      this.picker.verified(index);
      this.#complete = this.picker.complete;
      if (a !== undefined)
        for (const liar of this.#assembly.convict(index, a.data)) this.#ban(liar, index, out);
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
    // A piece that came from one peer alone condemns it; with several, the assembly keeps the bad
    // copy, and the blocks that differ from the good one name the liars later.
    const liar = this.#assembly.failed(index, a);
    if (liar !== null) this.#ban(liar, index, out);
    for (const l of this.links.values()) this.#fillRequests(l, now, out);
    return out;
  }

  get #superSeeding(): boolean {
    return this.#superSeed !== null && this.#complete;
  }

  /** Super-seeding: offer `l` its next piece (super-seed.ts). False when there is nothing to offer. */
  #offer(l: Link, now: number, out: Command[]): boolean {
    const i = (this.#superSeed as SuperSeed).next(l);
    if (i === -1) return false;
    this.#send(l, { type: 'have', index: i }, now, out);
    return true;
  }

  #ban(peerId: string, index: number, out: Command[]): void {
    this.banned.add(peerId);
    const l = [...this.links.values()].find((x) => x.peerId === peerId);
    if (l !== undefined)
      out.push(...this.#close(l, 'ERR_HASH_MISMATCH', `sent data for piece ${index} that failed its hash`));
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
        this.#superSeed?.count(l, -1);
        this.#send(l, { type: 'choke' }, now, out);
      }
    }
  }

  #unchoke(l: Link, now: number, out: Command[]): void {
    l.amChoking = false;
    this.#unchoked++;
    this.#superSeed?.count(l, 1);
    this.#send(l, { type: 'unchoke' }, now, out);
    if (this.#superSeeding) while (l.offered.size < SUPER_SEED_OFFERS && this.#offer(l, now, out));
  }
}
