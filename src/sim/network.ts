import { runCommands } from '../swarm/interpreter.js';
import type { LinkId } from '../swarm/link.js';
import type { TorrentCore } from '../swarm/torrent-core.js';
import type { Message } from '../wire/messages.js';
import { EventQueue } from './event-queue.js';
import type { SimLinks, SimPeer } from './sim-peer.js';

/**
 * The simulated network: links between simulated peers, and the messages on their way under a
 * virtual clock. Capacities (each peer's upload and download, pieces queue behind each other),
 * one-way latency, packet loss (TCP's retransmissions; no congestion control), in-order delivery
 * per link. See docs/simulator.md for the model and its simplifications.
 */

/** Bytes a control message occupies on the wire (length prefix + id + a few fields). */
const CONTROL_BYTES = 17;
/** Bytes of data per TCP packet (for loss). */
const MSS = 1460;
/** TCP's smallest retransmission timeout, ms. */
const MIN_RTO_MS = 200;
/**
 * The frequent events are integer codes, record or peer index x EVENT_KINDS + kind: a batch of
 * control messages, a piece (the network's), a peer's once-a-second tick, its announce (the
 * swarm's).
 */
export const EVENT_KINDS = 5;
export const CONTROL_EVENT = 0;
export const PIECE_EVENT = 1;
export const TICK_EVENT = 2;
export const ANNOUNCE_EVENT = 3;
/** A piece left its sender's uplink (or was dropped): the sender's core reads the next (sendAhead). */
export const SENT_EVENT = 4;

export interface NetworkModel {
  /** One-way latency between any two peers, ms. */
  latencyMs: number;
  /** Packet loss, 0..1. */
  loss: number;
  /** Connections per peer at most. */
  maxConnections: number;
}

/** Handshake reserved bytes of a peer that speaks the fast extension (BEP 6) and nothing else. */
const FAST_RESERVED = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 0x04]);

export class SimNetwork implements SimLinks {
  readonly queue = new EventQueue();
  /** Virtual time, ms. */
  time = 0;
  readonly #latency: number;
  readonly #loss: number;
  /** Retransmission timeout: twice the round trip, at least TCP's 200 ms. */
  readonly #rto: number;
  readonly #maxConnections: number;
  readonly #rng: () => number;
  /** The reserved bytes of every handshake: zero, or the fast extension's bit (scenario.fast). */
  readonly #reserved: Uint8Array;
  readonly #fast: boolean;
  readonly #infoHash: Uint8Array;
  /** Bytes each peer sent each other since last asked (replay only; null: not counted). */
  readonly pairBytes: Map<number, number> | null;
  readonly #pairKey: number;
  #serials = 0;
  // Messages on their way, one record each in a pool of parallel arrays (no object or closure
  // per message but the message itself): the receiver, its core and link id, the sender, the
  // message ('handshake' for one: made on arrival) and the next record of the same batch.
  #recLink = new Int32Array(1024);
  #recNext = new Int32Array(1024);
  readonly #recPeer: SimPeer[] = [];
  readonly #recCore: TorrentCore[] = [];
  readonly #recFrom: SimPeer[] = [];
  readonly #recMsg: (Message | 'handshake' | undefined)[] = [];
  #recFree = -1;
  #recUsed = 0;

  constructor(
    model: NetworkModel,
    rng: () => number,
    zero: Uint8Array,
    infoHash: Uint8Array,
    traffic: { pairKey: number } | null,
    fast = false,
  ) {
    this.#fast = fast;
    this.#reserved = fast ? FAST_RESERVED : zero.subarray(0, 8);
    this.#latency = model.latencyMs;
    this.#loss = model.loss;
    this.#rto = Math.max(MIN_RTO_MS, 4 * model.latencyMs);
    this.#maxConnections = model.maxConnections;
    this.#rng = rng;
    this.#infoHash = infoHash;
    this.pairBytes = traffic === null ? null : new Map();
    this.#pairKey = traffic?.pairKey ?? 0;
  }

  now(): number {
    return this.time;
  }

  /** A Poisson draw (Knuth's method; the means here are small). */
  #poisson(mean: number): number {
    const limit = Math.exp(-mean);
    let k = 0;
    let p = this.#rng();
    while (p > limit && k < 10_000) {
      k++;
      p *= this.#rng();
    }
    return k;
  }

  #record(from: SimPeer, link: LinkId, m: Message | 'handshake'): number {
    let r = this.#recFree;
    if (r !== -1) this.#recFree = this.#recNext[r] as number;
    else {
      r = this.#recUsed++;
      if (r === this.#recLink.length) {
        // Codes are 31-bit: record x EVENT_KINDS must fit.
        if (r * 2 * EVENT_KINDS > 2 ** 31) throw new RangeError('simulator: too many messages in flight');
        this.#recLink = grown(this.#recLink, r * 2);
        this.#recNext = grown(this.#recNext, r * 2);
      }
    }
    this.#recLink[r] = from.endRemote[link] as number;
    this.#recNext[r] = -1;
    this.#recPeer[r] = from.endPeer[link] as SimPeer;
    this.#recCore[r] = from.endCore[link] as TorrentCore;
    this.#recFrom[r] = from;
    this.#recMsg[r] = m;
    return r;
  }

  #release(r: number): void {
    this.#recMsg[r] = undefined;
    this.#recNext[r] = this.#recFree;
    this.#recFree = r;
  }

  deliver(from: SimPeer, link: LinkId, m: Message | 'handshake'): void {
    const to = from.endPeer[link];
    if (to === undefined) {
      if (m !== 'handshake' && m.type === 'piece') this.#sent(from, link, m, this.time);
      return;
    }
    const until = from.endDataUntil;
    const now = this.time;
    const loss = this.#loss;
    let at: number;
    if (m === 'handshake' || m.type !== 'piece') {
      // Control messages sent at one instant all arrive together: one event for the lot (the
      // haves a verified piece sends to every connection are most of a large swarm's messages).
      at = now + this.#latency + (CONTROL_BYTES * 1000) / from.upload;
      // A lost packet: resent after a retransmission timeout, and the link waits for it.
      if (loss > 0 && this.#rng() < loss) {
        at += this.#rto;
        until[link] = Math.max(until[link] as number, at);
      }
      // A connection delivers in order: a message sent behind a piece arrives after it.
      const behindData = (until[link] as number) > at;
      if (behindData) at = until[link] as number;
      const r = this.#record(from, link, m);
      if (!behindData) {
        // A batch arriving at `at` is still on its way (anything sent once it has arrived arrives
        // later), so its records are live.
        if (from.batchHead !== -1 && from.batchAt === at) {
          this.#recNext[from.batchTail] = r;
          from.batchTail = r;
          return;
        }
        from.batchHead = r;
        from.batchTail = r;
        from.batchAt = at;
      }
      this.queue.pushCode(at, r * EVENT_KINDS + CONTROL_EVENT);
      return;
    }
    const bytes = m.block.length + 13;
    // Lost packets (a Poisson draw for the piece's packets): each is sent again and costs the
    // receiver a round trip (a fast retransmit). Congestion control is not modelled.
    const lost = loss > 0 ? this.#poisson(Math.ceil(bytes / MSS) * loss) : 0;
    const depart = Math.max(now, from.upBusy) + ((bytes + lost * MSS) * 1000) / from.upload;
    from.upBusy = depart;
    this.#sent(from, link, m, depart);
    from.uploaded += m.block.length;
    const arrive = Math.max(depart + this.#latency + lost * 2 * this.#latency, until[link] as number);
    at = Number.isFinite(to.download) ? Math.max(arrive, to.downBusy) + (bytes * 1000) / to.download : arrive;
    if (Number.isFinite(to.download)) to.downBusy = at;
    until[link] = at;
    this.queue.pushCode(at, this.#record(from, link, m) * EVENT_KINDS + PIECE_EVENT);
  }

  /** The sender's core hears at `at` that the piece is gone (its uplink takes the next). */
  #sent(from: SimPeer, link: LinkId, m: Message, at: number): void {
    this.queue.pushCode(at, this.#record(from, link, m) * EVENT_KINDS + SENT_EVENT);
  }

  /**
   * A batch of control messages arrives: each goes to its receiver's core. A link closed meanwhile
   * is unknown to the core (its id is not reused yet): it drops the message.
   */
  arriveControl(head: number): void {
    const now = this.time;
    for (let r = head; r !== -1; ) {
      const next = this.#recNext[r] as number;
      const msg = this.#recMsg[r] as Message | 'handshake';
      const core = this.#recCore[r] as TorrentCore;
      const to = this.#recPeer[r] as SimPeer;
      const link = this.#recLink[r] as LinkId;
      const from = msg === 'handshake' ? (this.#recFrom[r] as SimPeer) : undefined;
      this.#release(r);
      const cmds = core.message(
        link,
        from !== undefined
          ? {
              type: 'handshake',
              reserved: this.#reserved,
              infoHash: this.#infoHash,
              peerId: from.peerId,
            }
          : (msg as Message),
        now,
      );
      if (cmds.length > 0) runCommands(to, cmds);
      r = next;
    }
  }

  arrivePiece(r: number): void {
    const from = this.#recFrom[r] as SimPeer;
    const to = this.#recPeer[r] as SimPeer;
    const remote = this.#recLink[r] as LinkId;
    const m = this.#recMsg[r] as Message & { type: 'piece' };
    this.#release(r);
    if (to.endPeer[remote] === undefined) return;
    to.downloaded += m.block.length;
    if (this.pairBytes !== null) {
      const key = from.idx * this.#pairKey + to.idx;
      this.pairBytes.set(key, (this.pairBytes.get(key) ?? 0) + m.block.length);
    }
    // A block from a malicious peer is garbage: its piece will fail.
    if (from.malicious) to.tainted.add(m.index);
    runCommands(to, to.core.message(remote, m, this.time));
  }

  /** Carries out a network event (a batch of control messages, a piece); false for other kinds. */
  dispatch(code: number): boolean {
    const x = Math.floor(code / EVENT_KINDS);
    switch (code % EVENT_KINDS) {
      case CONTROL_EVENT:
        this.arriveControl(x);
        return true;
      case PIECE_EVENT:
        this.arrivePiece(x);
        return true;
      case SENT_EVENT: {
        const from = this.#recFrom[x] as SimPeer;
        this.#release(x);
        if (!from.gone) runCommands(from, from.core.blockSent(this.time));
        return true;
      }
      default:
        return false;
    }
  }

  /**
   * Runs the queue's events until `done()` or it empties (at most `maxEvents`), for a network of
   * peers driven by nothing else (no ticks, no announces): tests of the transport.
   */
  runUntil(done: () => boolean, maxEvents: number): number {
    let n = 0;
    while (!done() && this.queue.size > 0 && n < maxEvents) {
      this.time = this.queue.peekTime();
      const code = this.queue.popCode();
      if (code < 0) this.queue.takeFn(code)();
      else if (!this.dispatch(code)) throw new Error(`event kind ${code % EVENT_KINDS} has no driver here`);
      n++;
    }
    return n;
  }

  #close(p: SimPeer, link: LinkId): void {
    const other = p.endPeer[link] as SimPeer;
    p.endPeer[link] = undefined;
    p.endCore[link] = undefined;
    p.freeIds.push(link);
    // What the other side sent arrives by its data or a retransmitted control message, whichever is later.
    const otherUntil = other.endDataUntil[p.endRemote[link] as number] as number;
    p.freeAt.push(Math.max(otherUntil, this.time + this.#latency + this.#rto) + 1);
    p.linkCount--;
    p.core.removeLink(link);
  }

  /** Both ends of `p`'s link go. */
  unlink(p: SimPeer, link: LinkId): void {
    const other = p.endPeer[link];
    if (other === undefined) return;
    const remote = p.endRemote[link] as number;
    this.#close(p, link);
    if (other.endPeer[remote] === p && other.endRemote[remote] === link) this.#close(other, remote);
  }

  /** A free id at `p`: the oldest closed link's once nothing can arrive on it, else the next (from 1). */
  #takeId(p: SimPeer): LinkId {
    if (p.freeIds.length > 0 && (p.freeAt[0] as number) <= this.time) {
      p.freeAt.shift();
      return p.freeIds.shift() as LinkId;
    }
    const id = p.nextId++;
    if (id >= p.endRemote.length) {
      const cap = p.endRemote.length * 2;
      p.endRemote = grown(p.endRemote, cap);
      p.endSerial = grown(p.endSerial, cap);
      p.endDataUntil = grown(p.endDataUntil, cap);
    }
    return id;
  }

  /** A new end at `p` toward `peer` (its remote id set once the other end exists). */
  #openEnd(p: SimPeer, peer: SimPeer): LinkId {
    const id = this.#takeId(p);
    p.endPeer[id] = peer;
    p.endCore[id] = peer.core;
    p.endRemote[id] = 0;
    p.endSerial[id] = this.#serials++;
    p.endDataUntil[id] = 0;
    p.linkCount++;
    return id;
  }

  /**
   * At the connection limit, a link over which neither side wants anything is dropped to make room:
   * without this, empty peers that only know each other fill their slots and wait forever.
   */
  #makeRoom(p: SimPeer): boolean {
    if (p.linkCount < this.#maxConnections) return true;
    let oldest = 0;
    for (let id = 1; id < p.nextId; id++) {
      if (
        p.endPeer[id] === undefined ||
        (oldest !== 0 && (p.endSerial[id] as number) > (p.endSerial[oldest] as number))
      )
        continue;
      if (!p.core.linkWanted(id)) oldest = id;
    }
    if (oldest === 0) return false;
    this.unlink(p, oldest);
    return true;
  }

  /** `a` dials `b` (nothing when linked already or neither can make room). */
  connect(a: SimPeer, b: SimPeer): void {
    if (a === b || a.gone || b.gone) return;
    for (let id = 1; id < a.nextId; id++) if (a.endPeer[id] === b) return;
    if (!this.#makeRoom(a) || !this.#makeRoom(b)) return;
    const ea = this.#openEnd(a, b);
    const eb = this.#openEnd(b, a);
    a.endRemote[ea] = eb;
    b.endRemote[eb] = ea;
    // With the fast extension each side knows the other's address (its allowed-fast set needs it).
    const fast = this.#fast;
    runCommands(a, a.core.addLink(ea, true, this.time, undefined, fast ? { ip: b.ip } : undefined));
    runCommands(b, b.core.addLink(eb, false, this.time, undefined, fast ? { ip: a.ip } : undefined));
  }

  /** Every link of `p` goes. */
  disconnect(p: SimPeer): void {
    for (let id = 1; id < p.nextId; id++) if (p.endPeer[id] !== undefined) this.unlink(p, id);
  }
}

/** A copy of `a` with room for `length` entries. */
function grown<T extends Int32Array | Float64Array>(a: T, length: number): T {
  const b = new (a.constructor as new (n: number) => T)(length);
  b.set(a);
  return b;
}
