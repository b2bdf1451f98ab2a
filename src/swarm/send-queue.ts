import type { CloseCode } from '../core/errors.js';
import type { Command, CoreEvents } from './commands.js';
import { blockKey, type Link, type LinkId, send } from './link.js';
import type { SeedOffers } from './seed-offers.js';
import { type RequestLimits, takeRequest } from './serving.js';

/**
 * The requests we accepted, read and sent in the order they came as the uplink takes them. At
 * most `ahead` blocks are handed to the driver (read, or sent and not yet on the wire) at once;
 * the rest wait here, where a `cancel` (or our choke) still takes them back. A driver that paces
 * its uplink (a rate cap, the simulator's link capacities) says when each block has gone
 * (`blockSent`); without pacing `ahead` is unbounded and every request is read at once.
 *
 * Why: when blocks are committed to the uplink as soon as they are asked for, nothing asked can
 * be taken back, so endgame's duplicate requests all go out. In the simulator (1,000 peers, two
 * upload classes) that wasted a third of the slow peers' uploads; with requests held here the
 * same swarm finished at 1.34x the lower bound instead of 2.00x (docs/simulator.md).
 */
export class SendQueue {
  readonly #ahead: number;
  readonly #links: ReadonlyMap<LinkId, Link>;
  readonly #limits: RequestLimits;
  readonly #events: CoreEvents;
  readonly #dropped: (index: number, begin: number) => void;
  /** Blocks handed to the driver and not yet gone. */
  #out = 0;
  /** Queued requests in order: link ids and block keys, consumed from `#head`. */
  #ids: LinkId[] = [];
  #keys: number[] = [];
  #head = 0;

  /**
   * `links`: the torrent's links by id (the core's map); `dropped`: a request we accepted goes
   * unsent after all (cancelled, choked, its link gone).
   */
  constructor(
    ahead: number,
    links: ReadonlyMap<LinkId, Link>,
    limits: RequestLimits,
    events: CoreEvents,
    dropped: (index: number, begin: number) => void,
  ) {
    this.#ahead = ahead;
    this.#links = links;
    this.#limits = limits;
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
    this.#pump(out);
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
    return this.blockSent(out);
  }

  /** A block we handed out is gone (sent, or dropped: its link closed, the read failed): the next requests are read. */
  blockSent(out: Command[] = []): Command[] {
    if (this.#out > 0) this.#out--;
    this.#pump(out);
    return out;
  }

  /**
   * Reads for the queued requests while fewer than `ahead` blocks are out; a request no longer in
   * its link's `pendingReads` (cancelled, choked, the link gone) is skipped.
   */
  #pump(out: Command[]): void {
    const keys = this.#keys;
    while (this.#out < this.#ahead && this.#head < keys.length) {
      const link = this.#ids[this.#head] as LinkId;
      const key = keys[this.#head] as number;
      this.#head++;
      const index = Math.floor(key / 4096);
      const begin = (key % 4096) * 16384;
      const length = this.#links.get(link)?.pendingReads.get(key);
      if (length === undefined) this.#dropped(index, begin);
      else {
        this.#out++;
        out.push({ type: 'read', link, index, begin, length });
      }
    }
    if (this.#head === keys.length) {
      this.#head = 0;
      this.#ids = [];
      this.#keys = [];
    } else if (this.#head > 1024 && this.#head * 2 > keys.length) {
      this.#ids = this.#ids.slice(this.#head);
      this.#keys = keys.slice(this.#head);
      this.#head = 0;
    }
  }
}
