import { Bitfield } from '../core/bitfield.js';
import { bans, type CloseCode } from '../core/errors.js';
import { type Handshake, type Message, speaksExtensions, speaksFast } from '../wire/messages.js';
import { Choking } from './choking.js';
import { type Command, type CoreEvents, NO_COMMANDS } from './commands.js';
import { type CoreOpts, type ResolvedCoreOpts, resolveCoreOpts } from './core-opts.js';
import { Downloads } from './downloads.js';
import { type ExtendedContext, onExtended, ourExtensionHandshake, pexRound } from './extended.js';
import {
  allOrNone,
  dropPendingReads,
  type FastContext,
  fastMessage,
  haveMessage,
  offerAllowedFast,
} from './fast.js';
import { blockKey, handshakeRefusal, Link, type LinkId, Links, NO_SUGGESTIONS, send } from './link.js';
import {
  AM_INTERESTED,
  COUNT,
  EXCHANGE,
  FLAGS,
  HANDSHAKEN,
  INTERESTING,
  LAST_RECEIVED,
  LinkTable,
  META,
  PEER_CHOKING,
  PEER_INTERESTED,
  SEEN_MESSAGE,
  WAS_INTERESTED,
} from './link-table.js';
import { PiecePicker } from './picker.js';
import { SeedOffers } from './seed-offers.js';
import { RARE_COPIES, SendQueue } from './send-queue.js';
import { MAX_PEER_REQUESTS, requestLimits } from './serving.js';
import { linkTimers, tellLinks } from './table-loops.js';

export type { Command, CoreEvents } from './commands.js';
export * from './core-opts.js';
export { MAX_UNEXPECTED_BLOCKS, REQUEST_TIMEOUT_MS } from './downloads.js';
export type { LinkId } from './link.js';
export { MAX_PEER_REQUESTS } from './serving.js';

/**
 * One torrent's peer-wire logic, the orchestrator of its parts: the links (link.ts, their hot
 * state in the LinkTable), the picker, the choker, piece assembly and blame (assembly.ts) and
 * super-seeding (super-seed.ts). Events in (a link opened, a message, a block read from storage, a
 * piece verified, a clock tick), commands out (send, close, read, verify). No sockets, no clock,
 * no randomness of its own: the same code runs over TCP and in a simulated network. Invariants:
 * STATE.md beside this file.
 */

const WANTS_EITHER = AM_INTERESTED | PEER_INTERESTED;

export class TorrentCore {
  readonly opts: ResolvedCoreOpts;
  readonly picker: PiecePicker;
  readonly #links = new Links();
  /** The links by id, in the order they opened. */
  readonly links: ReadonlyMap<LinkId, Link> = this.#links.byId;
  readonly events: CoreEvents;
  readonly #downloads: Downloads;
  /** Web seeds: a driver adds a link's id once it is one (it has every piece, BEP 19). */
  readonly webSeeds: Downloads['webSeeds'];
  /** What we offer each peer as a seed (seed-offers.ts). */
  readonly #offers: SeedOffers;
  /** The requests we accepted, read as the uplink takes them (send-queue.ts). */
  readonly #sendQueue: SendQueue;
  readonly banned = new Set<string>();
  /** What the extension protocol needs (BEP 10: metadata to serve, PEX, our port). */
  readonly #ext: ExtendedContext;
  /** A link has spoken the extension protocol (until then a tick has no PEX round to run). */
  #extLinks = false;
  /** What the fast extension needs (BEP 6: the allowed-fast sets). */
  readonly #fast: FastContext;
  readonly #choking: Choking;
  #completeSent = false;
  /** Our torrent and ourselves, as a handshake names them; the peers we banned. */
  readonly #who: { infoHashHex: string; self: string; banned: Set<string> };
  /** The links' hot state by slot, and each link id's slot (a `have` needs nothing else). */
  readonly #table: LinkTable;
  /** Each slot's link. */
  readonly #bySlot: (Link | undefined)[] = this.#links.bySlot;
  /** Our pieces' bitfield bytes and the availability counts (the picker's, held here for a `have`). */
  readonly #mine: Uint8Array;
  readonly #avail: Uint16Array;
  /** The picker holds every piece (kept here: a `have` asks, and the picker is another object). */
  #complete: boolean;
  /** Since when we seed (the first tick that found us complete), or null. */
  #seedSince: number | null = null;

  constructor(opts: CoreOpts, rng: () => number, events: CoreEvents = {}) {
    this.opts = resolveCoreOpts(opts);
    this.#ext = {
      metadata: opts.metadata ?? null,
      pex: !this.opts.private,
      listenPort: opts.listenPort ?? null,
      reqq: MAX_PEER_REQUESTS,
    };
    this.#choking = new Choking(this.opts.uploadSlots, rng);
    this.events = events;
    this.picker = new PiecePicker({ ...this.opts, rng }, opts.have, opts.wanted);
    this.#table = new LinkTable(opts.pieceCount, opts.linkSlots);
    this.#mine = this.picker.have.bytes;
    this.#fast = { ...this.opts, have: this.picker.have, sha1: opts.sha1 ?? null };
    this.#avail = this.picker.availability;
    this.#downloads = new Downloads(this.picker, this.#table, this.links, this.opts, events);
    this.webSeeds = this.#downloads.webSeeds;
    this.#offers = new SeedOffers(this.opts.superSeed, opts.pieceCount, this.#avail, rng);
    const limits = requestLimits(this.picker, this.opts.blockLength);
    this.#sendQueue = new SendQueue(this.opts.sendAhead, this.links, limits, this.#avail, events, (i, b) => {
      if (this.#complete) this.#offers.dropped(i, b);
    });
    const infoHashHex = Buffer.from(opts.infoHash).toString('hex');
    this.#who = { infoHashHex, self: Buffer.from(opts.peerId).toString('latin1'), banned: this.banned };
    this.#completeSent = this.picker.complete;
    this.#complete = this.picker.complete;
    this.#downloads.complete = this.#complete;
  }

  get complete(): boolean {
    return this.#complete;
  }

  get have(): Bitfield {
    return this.picker.have;
  }

  /** Pieces with a deadline, most urgent first (readers streaming a file): asked for before any other. */
  setUrgent(pieces: readonly number[], now: number): Command[] {
    const out: Command[] = [];
    this.picker.setUrgent(pieces);
    this.#downloads.urgentChanged(now, out);
    return out;
  }

  // ---- links ------------------------------------------------------------------------

  /** The port we listen on, told to peers (`p`) from now on. */
  set listenPort(port: number) {
    this.#ext.listenPort = port;
  }

  /**
   * A connection opened (either way): we send our handshake at once. `wanted` makes it an
   * exchange (the original design's way): only those pieces are fetched over it, and when it can
   * give no more of them an `exchangeDone` command follows. `peer`: its IP and, when we dialled
   * it, the port it listens on (for PEX); `encrypted`: it began with an MSE/PE handshake.
   */
  addLink(
    link: LinkId,
    outgoing: boolean,
    now: number,
    wanted?: readonly number[],
    peer?: { ip: string; listenPort?: number; encrypted?: boolean },
  ): Command[] {
    // A driver reusing a link id means the old link is gone.
    if (this.links.has(link)) this.removeLink(link);
    const exchange = wanted === undefined ? null : Bitfield.fromIndices(this.opts.pieceCount, wanted);
    const l = new Link(this.#table, link, outgoing, now, exchange);
    l.setOffer(this.picker.have, this.opts.pieceCount);
    if (peer !== undefined) {
      l.ip = peer.ip;
      l.encrypted = peer.encrypted === true;
      if (peer.listenPort !== undefined) l.listen = { ip: peer.ip, port: peer.listenPort };
    }
    this.#links.add(l);
    return [{ type: 'handshake', link }];
  }

  /** The connection is gone: its requests go back to the picker. */
  removeLink(link: LinkId): void {
    const l = this.links.get(link);
    if (l === undefined) return;
    this.#downloads.releaseAll(l);
    if (l.handshaken) this.picker.removeAvailability(l.have);
    if (!l.amChoking) {
      this.#offers.choked(l);
      this.#choking.unchoked--;
    }
    this.#links.delete(l);
    this.#table.release(l.slot);
    this.#choking.forget(link);
  }

  peerIdOf(link: LinkId): string | null {
    return this.links.get(link)?.peerId ?? null;
  }

  /** Whether either side of the link wants something of the other (no allocation: a driver may ask often). */
  linkWanted(link: LinkId): boolean {
    const slot = this.#table.slotOf(link);
    return slot >= 0 && ((this.#table.meta[slot * META + FLAGS] as number) & WANTS_EITHER) !== 0;
  }

  linkStats(link: LinkId) {
    return this.links.get(link)?.stats();
  }

  #close(l: Link, code: CloseCode, reason: string): Command[] {
    this.removeLink(l.id);
    if (bans(code) && l.peerId !== null) this.banned.add(l.peerId);
    return [{ type: 'close', link: l.id, code, reason }];
  }

  // ---- messages ----------------------------------------------------------------------

  message(link: LinkId, m: Message | Handshake, now: number): Command[] {
    const t = this.#table;
    const slot = t.slotOf(link);
    if (!(slot >= 0)) return NO_COMMANDS;
    const meta = t.meta;
    const flags = meta[slot * META + FLAGS] as number;
    if (m.type === 'have' && (flags & HANDSHAKEN) !== 0) return this.#onHave(slot, m.index, now);
    const l = this.#bySlot[slot] as Link;
    meta[slot * META + LAST_RECEIVED] = now;
    if (m.type === 'handshake') return this.#onHandshake(l, m, now);
    if ((flags & HANDSHAKEN) === 0) return this.#close(l, 'ERR_PROTOCOL', 'message before handshake');
    meta[slot * META + FLAGS] = flags | SEEN_MESSAGE;
    const out: Command[] = [];
    switch (m.type) {
      case 'keepAlive':
      case 'port':
      case 'unknown':
      case 'have': // a handshaken link's have is #onHave's; before the handshake, closed above
        break;
      case 'extended': {
        const bad = onExtended(l, m.ext, m.payload, this.#ext, now, out);
        if (bad !== null) return this.#close(l, bad.code, bad.reason);
        break;
      }
      case 'haveAll':
      case 'haveNone':
      case 'bitfield': {
        if (m.type !== 'bitfield' && !l.fast)
          return this.#close(l, 'ERR_PROTOCOL', `${m.type} without the fast extension`);
        const bits =
          m.type === 'bitfield' ? m.bitfield : allOrNone(this.opts.pieceCount, m.type === 'haveAll');
        const bad = Bitfield.problem(bits, this.opts.pieceCount);
        if (bad !== null) return this.#close(l, 'ERR_BAD_BITFIELD', bad);
        // BEP 3 puts the bitfield first, but a peer with nothing at first may send it later
        // (aria2c does, on its first piece): take it as the peer's whole set then.
        if ((flags & SEEN_MESSAGE) !== 0) this.picker.removeAvailability(l.have);
        l.have.assign(bits);
        l.setOffer(this.picker.have, this.opts.pieceCount);
        this.picker.addAvailability(l.have);
        if (this.complete && l.have.complete) return this.#close(l, 'ERR_NOT_NEEDED', 'both peers are seeds');
        offerAllowedFast(l, this.#fast, now, out);
        this.#downloads.updateInterest(l, now, out);
        break;
      }
      case 'suggest':
      case 'allowedFast':
      case 'reject': {
        const bad = fastMessage(l, m, this.#downloads, this.opts.pieceCount, now, out);
        if (bad !== null) return this.#close(l, 'ERR_PROTOCOL', bad);
        break;
      }
      case 'choke':
        l.peerChoking = true;
        l.suggested = NO_SUGGESTIONS; // a seed's suggestions lapse with its unchoke
        // BEP 3: a choke discards every request we had outstanding there. A fast peer (BEP 6)
        // rejects those it will not serve instead, and may still serve allowed-fast pieces.
        if (!l.fast) {
          this.#downloads.releaseAll(l);
          l.outstanding.clear();
        }
        break;
      case 'unchoke':
        l.peerChoking = false;
        this.#downloads.fill(l, now, out);
        break;
      case 'interested':
        l.peerInterested = true;
        l.setFlag(WAS_INTERESTED, true);
        if (l.amChoking && this.#choking.slotFree) this.#unchoke(l, now, out);
        break;
      case 'notInterested':
        l.peerInterested = false;
        l.lostInterestAt = now;
        if (!l.amChoking) this.#choking.stale = true;
        break;
      case 'request':
        return this.#onRequest(l, m, now);
      case 'cancel':
        // BEP 6: a fast peer hears the piece or, if it was not sent yet, a reject.
        if (l.pendingReads.delete(blockKey(m.index, m.begin)) && l.fast)
          send(l, { ...m, type: 'reject' }, now, out);
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
        if ((flags & AM_INTERESTED) === 0) this.#downloads.updateInterest(l, now, out);
        else this.#downloads.fill(l, now, out, (this.#avail[index] as number) <= RARE_COPIES ? index : -1);
      }
      // A seed's offer (seed-offers.ts) the peer now holds: the next one.
      if (complete) {
        l ??= this.#bySlot[slot] as Link;
        if (l.offered.has(index)) {
          if (out === NO_COMMANDS) out = [];
          this.#offers.reported(l, index, now, out);
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
    const peerId = Buffer.from(h.peerId).toString('latin1');
    const bad = handshakeRefusal(l, h, peerId, this.#who, this.links.values());
    if (bad !== null) return this.#close(l, bad.code, bad.reason);
    l.handshaken = true;
    l.peerId = peerId;
    l.fast = this.opts.fast && speaksFast(h.reserved);
    const out: Command[] = [];
    // A fast peer hears what we hold in every case (BEP 6); a super-seed pretends it holds nothing.
    if (l.fast) send(l, haveMessage(this.picker.have, this.#superSeeding), now, out);
    if (this.#superSeeding) {
      // Offers go to peers we unchoke (here when a slot is free, else at a choking round): an offer
      // to a peer that cannot fetch it would hold the piece back from the swarm.
      if (this.#choking.slotFree) this.#unchoke(l, now, out);
    } else if (!l.fast && this.picker.have.count > 0) {
      send(l, { type: 'bitfield', bitfield: this.picker.have.bytes.slice() }, now, out);
    }
    // BEP 10, after the bitfield (BEP 3 wants the bitfield first).
    if (speaksExtensions(h.reserved)) {
      this.#extLinks = true;
      send(l, ourExtensionHandshake(l, this.#ext), now, out);
    }
    return out;
  }

  #onRequest(l: Link, m: { index: number; begin: number; length: number }, now: number): Command[] {
    const out: Command[] = [];
    const bad = this.#sendQueue.request(l, m, this.#complete ? this.#offers : null, now, out);
    return bad === null ? out : this.#close(l, bad.code, bad.reason);
  }

  /** Storage read a block we were asked for: send it unless cancelled or choked since. */
  readDone(link: LinkId, index: number, begin: number, block: Uint8Array, now: number): Command[] {
    return this.#sendQueue.readDone(link, index, begin, block, now);
  }

  /** A paced driver (opts.sendAhead) sent, or dropped, a piece message: the next requests are read. */
  blockSent(now: number): Command[] {
    return this.#sendQueue.blockSent(now);
  }

  #onPiece(l: Link, m: { index: number; begin: number; block: Uint8Array }, now: number): Command[] {
    const out: Command[] = [];
    const bad = this.#downloads.block(l, m, now, out);
    return bad === null ? out : this.#close(l, 'ERR_BAD_PIECE', bad);
  }

  /**
   * The driver hashed (and, when right, stored) a piece; it no longer holds the piece's buffer,
   * which is recycled.
   */
  verifyDone(index: number, ok: boolean, now: number): Command[] {
    const out: Command[] = [];
    const assembly = this.#downloads.assembly;
    this.#downloads.verdict();
    const a = assembly.finish(index);
    if (ok && this.picker.have.has(index)) {
      // A copy we had already; links held back while it was being checked ask again.
      if (this.#downloads.released) {
        this.#downloads.released = false;
        this.#downloads.fillAll(now, out);
      }
      return out;
    }
    if (ok) {
      this.picker.verified(index);
      this.#complete = this.picker.complete;
      this.#downloads.complete = this.#complete;
      if (a !== undefined) for (const liar of assembly.convict(index, a.data)) this.#ban(liar, index, out);
      this.events.onPieceVerified?.(index);
      const refill = this.#downloads.released;
      this.#downloads.released = false;
      const closing = tellLinks(this.#table, this.#bySlot, this.#downloads, index, refill, now, out);
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
    const liar = assembly.failed(index, a);
    if (liar !== null) this.#ban(liar, index, out);
    this.#downloads.fillAll(now, out);
    return out;
  }

  get #superSeeding(): boolean {
    return this.opts.superSeed && this.#complete;
  }

  #ban(peerId: string, index: number, out: Command[]): void {
    this.banned.add(peerId);
    const l = [...this.links.values()].find((x) => x.peerId === peerId);
    if (l !== undefined)
      out.push(...this.#close(l, 'ERR_HASH_MISMATCH', `sent data for piece ${index} that failed its hash`));
  }

  // ---- time ---------------------------------------------------------------------------

  /** Call every second or so: choking rounds, request and idle timeouts, keep-alives. */
  tick(now: number): Command[] {
    const out: Command[] = [];
    this.#seedSince = this.#complete ? (this.#seedSince ?? now) : null;
    linkTimers(this.#table, this.#bySlot, this.#downloads, now, out, this.#seedSince, (l, code, why) =>
      out.push(...this.#close(l, code, why)),
    );
    if (this.#choking.due(now)) this.#chokeRound(now, out);
    this.#downloads.tickWebSeeds(now, out);
    if (this.#extLinks && this.#ext.pex) pexRound(this.links, now, this.opts.pexIntervalMs, out);
    return out;
  }

  #chokeRound(now: number, out: Command[]): void {
    // A super-seed also unchokes peers it has offered nothing yet: the offer comes with the unchoke.
    const superSeeding = this.#superSeeding;
    const wants = (l: Link) => l.peerInterested || (superSeeding && !l.have.complete);
    this.#choking.round(this.links, now, this.complete, wants, {
      unchoke: (l) => this.#unchoke(l, now, out),
      choke: (l) => {
        this.#offers.choked(l);
        send(l, { type: 'choke' }, now, out);
        dropPendingReads(l, now, out);
      },
    });
  }

  #unchoke(l: Link, now: number, out: Command[]): void {
    l.amChoking = false;
    this.#choking.unchoked++;
    this.#offers.unchoking(l, this.#complete, now, out);
    send(l, { type: 'unchoke' }, now, out);
    this.#offers.unchoked(l, this.#complete, now, out);
  }
}
