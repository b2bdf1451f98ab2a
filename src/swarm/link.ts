import type { Bitfield } from '../core/bitfield.js';
import type { CloseCode } from '../core/errors.js';
import type { PeerAddress } from '../core/ip.js';
import type { Handshake, Message } from '../wire/messages.js';
import type { Command, LinkId } from './commands.js';
import { HANDSHAKE_TIMEOUT_MS, IDLE_TIMEOUT_MS } from './core-opts.js';
import type { PeerExtensions } from './extensions.js';
import {
  AM_INTERESTED,
  EXCHANGE,
  FLAGS,
  HANDSHAKEN,
  INTERESTING,
  LAST_RECEIVED,
  LAST_SENT,
  LinkPieces,
  type LinkTable,
  META,
  PEER_CHOKING,
  PEER_INTERESTED,
} from './link-table.js';
import type { PexLink } from './pex.js';
import type { PieceSet } from './picker.js';

/**
 * One peer link's state. What a `have` touches (its pieces, interest count, flags, last message
 * times) lives in the torrent's LinkTable, by slot; the rest here. Lifecycle and invariants:
 * STATE.md beside this file.
 */

export type { LinkId } from './commands.js';

/** A request we made and have not had answered. */
export interface OutstandingRequest {
  index: number;
  begin: number;
  length: number;
  /** When it was sent. */
  at: number;
}

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
export const NO_READS: Map<number, number> = new EmptyMap<number>();
export const NO_OFFERS: Set<number> = new EmptySet();
/** No suggestions (shared, never changed). */
export const NO_SUGGESTIONS: number[] = Object.freeze([]) as unknown as number[];
export const NO_REQUESTS: Map<number, OutstandingRequest> = new EmptyMap();

/** One number for (index, begin): begin is a multiple of 16 KiB below 64 MiB, so 2^12 blocks per piece. */
export const blockKey = (index: number, begin: number) => index * 4096 + begin / 16384;
/** A block key's piece index and byte offset. */
export const keyIndex = (key: number) => Math.floor(key / 4096);
export const keyBegin = (key: number) => (key % 4096) * 16384;

export class Link {
  readonly id: LinkId;
  readonly slot: number;
  readonly #t: LinkTable;
  /** The peer's pieces (kept in the table). */
  readonly have: LinkPieces;
  outgoing: boolean;
  peerId: string | null = null;
  /** The peer speaks the extension protocol (BEP 10): what it told us (null: it does not, or not yet). */
  ext: PeerExtensions | null = null;
  /** The peer's IP as the driver sees it (null: the driver did not say, as in the simulator). */
  ip: string | null = null;
  /** Where the peer listens: the address we dialled, or its IP and the port its extension handshake names. */
  listen: PeerAddress | null = null;
  /** The connection is encrypted (MSE/PE, below the core): PEX tells others the peer takes encryption. */
  encrypted = false;
  /** Peer exchange on this link (BEP 11), once both sides offered it. */
  pex: PexLink | null = null;
  /** Both sides speak the fast extension (BEP 6). */
  fast = false;
  /** Fast: pieces the peer lets us fetch while it chokes us (its allowed-fast messages). */
  allowedIn: Set<number> | null = null;
  /** Fast: pieces we let the peer fetch while we choke it (our allowed-fast set for its address). */
  allowedOut: ReadonlySet<number> | null = null;
  amChoking = true;
  outstanding: Map<number, OutstandingRequest> = NO_REQUESTS;
  /** Requests we accepted and have not answered: block key -> length. */
  pendingReads: Map<number, number> = NO_READS;
  downloaded = 0;
  uploaded = 0;
  roundDown = 0;
  roundUp = 0;
  rate = 0;
  openedAt: number;
  /** When the peer last said it is not interested in us (openedAt until then). */
  lostInterestAt: number;
  unexpected = 0;
  /** Requests we cancelled (endgame, urgent pieces) whose piece or reject may still come: not held against the peer. */
  cancelled = 0;
  /** For an exchange: the only pieces to fetch over this link (null: any). */
  wanted: Bitfield | null;
  /** What to fetch over this link: its pieces (`have` itself), narrowed to `wanted` for an exchange. */
  offer: PieceSet;
  exchangeDone = false;
  /** Super-seeding: pieces offered to this peer and not yet reported done. */
  offered: Set<number> = NO_OFFERS;
  /** Pieces this peer suggested we fetch from it (BEP 6), oldest first; taken before rarest-first. */
  suggested: number[] = NO_SUGGESTIONS;

  constructor(t: LinkTable, id: LinkId, outgoing: boolean, now: number, wanted: Bitfield | null) {
    this.#t = t;
    this.id = id;
    this.slot = t.allocate(id, now);
    this.have = new LinkPieces(t, this.slot);
    this.offer = this.have;
    this.outgoing = outgoing;
    this.openedAt = now;
    this.lostInterestAt = now;
    this.wanted = wanted;
  }

  #flag(bit: number): boolean {
    return ((this.#t.meta[this.slot * META + FLAGS] as number) & bit) !== 0;
  }

  setFlag(bit: number, on: boolean): void {
    const f = this.#t.meta[this.slot * META + FLAGS] as number;
    this.#t.meta[this.slot * META + FLAGS] = on ? f | bit : f & ~bit;
  }

  /** The link's flags word (HANDSHAKEN, AM_INTERESTED, ...). */
  get flags(): number {
    return this.#t.meta[this.slot * META + FLAGS] as number;
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

  /** What a driver may read of the link. */
  stats() {
    return {
      downloaded: this.downloaded,
      uploaded: this.uploaded,
      amChoking: this.amChoking,
      amInterested: this.amInterested,
      peerChoking: this.peerChoking,
      peerInterested: this.peerInterested,
      pieces: this.have.count,
      outstanding: this.outstanding.size,
      handshaken: this.handshaken,
      openedAt: this.openedAt,
    };
  }

  /**
   * `have` changed wholesale (a bitfield) or the link opened: the offer and the count of
   * interesting pieces (those in the offer that `mine` lacks) follow.
   */
  setOffer(mine: Bitfield, pieceCount: number): void {
    const wanted = this.wanted;
    const have = this.have;
    this.offer = wanted === null ? have : { has: (i) => have.has(i) && wanted.has(i) };
    this.setFlag(EXCHANGE, wanted !== null);
    let n = 0;
    if (have.count > 0) for (let i = 0; i < pieceCount; i++) if (this.offer.has(i) && !mine.has(i)) n++;
    this.interesting = n;
  }
}

/** `msg` goes out on `l` (its last-sent time stamped for keep-alives). */
export function send(l: Link, msg: Message, now: number, out: Command[]): void {
  l.lastSent = now;
  out.push({ type: 'send', link: l.id, msg });
}

/** The torrent's links: by id (a Map, in the order they opened) and by their table slot. */
export class Links {
  readonly byId = new Map<LinkId, Link>();
  /** Each slot's link. */
  readonly bySlot: (Link | undefined)[] = [];

  add(l: Link): void {
    this.byId.set(l.id, l);
    this.bySlot[l.slot] = l;
  }

  delete(l: Link): void {
    this.byId.delete(l.id);
    this.bySlot[l.slot] = undefined;
  }
}

/**
 * Why `l` must close on this handshake (naming peer `peerId`, latin1), or null: a second one, one
 * for another torrent, ourselves, a peer we banned, a peer we are already linked to.
 */
export function handshakeRefusal(
  l: Link,
  h: Handshake,
  peerId: string,
  us: { infoHashHex: string; self: string; banned: ReadonlySet<string> },
  links: Iterable<Link>,
): { code: CloseCode; reason: string } | null {
  if (l.handshaken) return { code: 'ERR_PROTOCOL', reason: 'second handshake' };
  if (Buffer.from(h.infoHash).toString('hex') !== us.infoHashHex)
    return { code: 'ERR_WRONG_INFO_HASH', reason: 'handshake for another torrent' };
  if (peerId === us.self) return { code: 'ERR_SELF_CONNECTION', reason: 'connected to ourselves' };
  if (us.banned.has(peerId)) return { code: 'ERR_BANNED', reason: 'a banned peer came back' };
  for (const other of links)
    if (other !== l && other.peerId === peerId)
      return { code: 'ERR_DUPLICATE_PEER', reason: 'already connected to this peer' };
  return null;
}

/** Why `l` has timed out at `now` (no handshake in time, or silent too long), or null. */
export function timedOut(l: Link, handshaken: boolean, lastReceived: number, now: number): string | null {
  if (!handshaken && now - l.openedAt > HANDSHAKE_TIMEOUT_MS) return 'no handshake in time';
  if (now - lastReceived > IDLE_TIMEOUT_MS) return 'peer silent too long';
  return null;
}
