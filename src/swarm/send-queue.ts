import type { CloseCode } from '../core/errors.js';
import type { Command, CoreEvents } from './commands.js';
import { blockKey, keyBegin, keyIndex, type Link, type LinkId, send } from './link.js';
import type { SeedOffers } from './seed-offers.js';
import { type RequestLimits, takeRequest } from './serving.js';

/**
 * A piece that at most this many of our peers hold is rare: a request for it is read before the
 * others (the fewest copies first), and a peer that announces one while our pipeline to it is full
 * is asked for it at once, beyond the pipeline (downloads.ts). Requests for other pieces keep the
 * order they came in. Simulator, RNG seeds 1, 2, 3, 7 (docs/simulator.md): 1,000 x 100 1.351 ->
 * 1.275x the bound, two upload classes 1.317 -> 1.284. Every request by rarity instead: two
 * classes 1.333 (seed 7), the last peers' requests for common pieces waiting behind rare ones.
 */
export const RARE_COPIES = 2;
const COMMON = RARE_COPIES + 1;

/**
 * A queued request older than this is read next, however common its piece: the requester gives a
 * request up after 30 s (REQUEST_TIMEOUT_MS), so none waits that long behind rarer ones.
 */
export const SERVE_WITHIN_MS = 10_000;
/** A queue entry already read or dropped. */
const TAKEN = -1;

/**
 * The requests we accepted, read and sent as the uplink takes them: rare pieces first (RARE_COPIES),
 * the rest in the order they came, and any request that has waited SERVE_WITHIN_MS next.
 * At most `ahead` blocks are handed to the driver (read, or sent and not yet on the wire) at once;
 * the rest wait here, where a `cancel` (or our choke) still takes them back. A driver that paces
 * its uplink (a rate cap, the simulator's link capacities) says when each block has gone
 * (`blockSent`); without pacing `ahead` is unbounded and every request is read at once.
 *
 * Why wait here: when blocks are committed to the uplink as soon as they are asked for, nothing
 * asked can be taken back, so endgame's duplicate requests all go out. In the simulator (1,000
 * peers, two upload classes) that wasted a third of the slow peers' uploads; with requests held
 * here the same swarm finished at 1.34x the lower bound instead of 2.00x (docs/simulator.md).
 *
 * Why rare pieces first: a piece new to the swarm spreads only as fast as each holder passes it on,
 * and in the order requests came it waited behind requests for pieces every neighbour has.
 */
export class SendQueue {
  readonly #ahead: number;
  readonly #links: ReadonlyMap<LinkId, Link>;
  readonly #limits: RequestLimits;
  readonly #avail: Uint16Array;
  readonly #events: CoreEvents;
  readonly #dropped: (index: number, begin: number) => void;
  /** Blocks handed to the driver and not yet gone. */
  #out = 0;
  /** Queued requests in the order they came: link ids, block keys (TAKEN once read), arrival times. */
  #ids: LinkId[] = [];
  #keys: number[] = [];
  #at: number[] = [];
  /** The first entry not yet taken. */
  #head = 0;
  /** Entries past `#head` taken out of order. */
  #holes = 0;

  /**
   * `links`: the torrent's links by id (the core's map); `avail`: each piece's copies among our
   * peers (the picker's); `dropped`: a request we accepted goes unsent after all (cancelled,
   * choked, its link gone).
   */
  constructor(
    ahead: number,
    links: ReadonlyMap<LinkId, Link>,
    limits: RequestLimits,
    avail: Uint16Array,
    events: CoreEvents,
    dropped: (index: number, begin: number) => void,
  ) {
    this.#ahead = ahead;
    this.#links = links;
    this.#limits = limits;
    this.#avail = avail;
    this.#events = events;
    this.#dropped = dropped;
  }

  /**
   * A request from `l`: queued and read in turn, dropped, or refused (a fast peer hears a
   * reject); `offers` (while we seed) hears what we serve. Returns why the link closes, or null.
   */
  request(
    l: Link,
    m: { index: number; begin: number; length: number },
    offers: SeedOffers | null,
    now: number,
    out: Command[],
  ): { code: CloseCode; reason: string } | null {
    const r = takeRequest(l, m, this.#limits);
    if (r === 'reject')
      send(l, { type: 'reject', index: m.index, begin: m.begin, length: m.length }, now, out);
    if (r !== 'read') return r === 'drop' || r === 'reject' ? null : r;
    offers?.requested(l, m.index, m.begin, now, out);
    this.#ids.push(l.id);
    this.#keys.push(blockKey(m.index, m.begin));
    this.#at.push(now);
    this.#pump(now, out);
    return null;
  }

  /** Storage read a block we were asked for: sent unless cancelled or choked since; then the next. */
  readDone(link: LinkId, index: number, begin: number, block: Uint8Array, now: number): Command[] {
    const l = this.#links.get(link);
    const out: Command[] = [];
    if (
      l?.pendingReads.delete(blockKey(index, begin)) &&
      (!l.amChoking || l.allowedOut?.has(index) === true)
    ) {
      send(l, { type: 'piece', index, begin, block }, now, out);
      l.uploaded += block.length;
      l.roundUp += block.length;
      this.#events.onUpload?.(link, block.length);
      // A paced driver says when the block has left (blockSent).
      if (Number.isFinite(this.#ahead)) return out;
    } else this.#dropped(index, begin);
    return this.blockSent(now, out);
  }

  /** A block we handed out is gone (sent, or dropped: its link closed, the read failed): the next requests are read. */
  blockSent(now: number, out: Command[] = []): Command[] {
    if (this.#out > 0) this.#out--;
    this.#pump(now, out);
    return out;
  }

  /** Reads for the queued requests, the rarest first, while fewer than `ahead` blocks are out. */
  #pump(now: number, out: Command[]): void {
    const keys = this.#keys;
    while (this.#out < this.#ahead) {
      const k = this.#next(now);
      if (k < 0) break;
      const key = keys[k] as number;
      this.#take(k);
      this.#out++;
      const link = this.#ids[k] as LinkId;
      const length = this.#links.get(link)?.pendingReads.get(key) as number;
      out.push({ type: 'read', link, index: keyIndex(key), begin: keyBegin(key), length });
    }
    this.#compact();
  }

  /**
   * The entry to read next (-1: none): the oldest if it has waited SERVE_WITHIN_MS, else the
   * rarest piece's if it is rare, else the oldest. One that is no longer in its link's
   * `pendingReads` (cancelled, choked, the link gone) is dropped, and the choice made again.
   */
  #next(now: number): number {
    for (;;) {
      const k = this.#choose(now);
      if (k < 0) return -1;
      const key = this.#keys[k] as number;
      if (this.#links.get(this.#ids[k] as LinkId)?.pendingReads.has(key) === true) return k;
      this.#take(k);
      this.#dropped(keyIndex(key), keyBegin(key));
    }
  }

  /** The choice, on the queue's arrays alone (a real peer's queue holds thousands of blocks). */
  #choose(now: number): number {
    const keys = this.#keys;
    let best = -1;
    let bestCopies = COMMON;
    let first = -1;
    for (let k = this.#head; k < keys.length; k++) {
      const key = keys[k] as number;
      if (key === TAKEN) continue;
      if (first < 0) {
        if (now - (this.#at[k] as number) >= SERVE_WITHIN_MS) return k;
        first = k;
      }
      const copies = this.#avail[keyIndex(key)] as number;
      if (copies < bestCopies) {
        if (copies === 0) return k;
        best = k;
        bestCopies = copies;
      }
    }
    return best >= 0 ? best : first;
  }

  /** Marks entry `k` read or dropped. */
  #take(k: number): void {
    this.#keys[k] = TAKEN;
    if (k === this.#head) this.#head++;
    else this.#holes++;
  }

  /** Taken entries leave the arrays: all at once when the queue empties, else when they are most of it. */
  #compact(): void {
    const keys = this.#keys;
    while (this.#head < keys.length && keys[this.#head] === TAKEN) {
      this.#head++;
      this.#holes--;
    }
    if (this.#head === keys.length) {
      this.#head = 0;
      this.#holes = 0;
      this.#ids = [];
      this.#keys = [];
      this.#at = [];
    } else if (this.#head + this.#holes > 256 && (this.#head + this.#holes) * 2 > keys.length) {
      const ids: LinkId[] = [];
      const live: number[] = [];
      const at: number[] = [];
      for (let k = this.#head; k < keys.length; k++) {
        if (keys[k] === TAKEN) continue;
        ids.push(this.#ids[k] as LinkId);
        live.push(keys[k] as number);
        at.push(this.#at[k] as number);
      }
      this.#ids = ids;
      this.#keys = live;
      this.#at = at;
      this.#head = 0;
      this.#holes = 0;
    }
  }
}
