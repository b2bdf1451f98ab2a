import { Assembly } from './assembly.js';
import type { Command, CoreEvents } from './commands.js';
import {
  blockKey,
  type Link,
  type LinkId,
  NO_REQUESTS,
  NO_SUGGESTIONS,
  type OutstandingRequest,
  send,
} from './link.js';
import { type LinkTable, META, REQUESTED_AT } from './link-table.js';
import type { PiecePicker, PieceSet } from './picker.js';
import { RARE_COPIES } from './send-queue.js';
import { WEB_SEED_PIPELINE, WEB_SEED_SHARED_BYTES, WebSeedPolicy } from './web-seeds.js';

/**
 * The downloading side of a torrent: our interest in each link, the requests we keep outstanding
 * (picked by the picker, pipelined, timed out, cancelled in endgame, released on a choke or when a
 * link goes), and the blocks that arrive, assembled into pieces. The core dispatches to it.
 * Invariants: STATE.md.
 */

/** A request unanswered this long is given to another peer. */
export const REQUEST_TIMEOUT_MS = 30_000;
/** Blocks nobody asked for that a peer may send before it is dropped. */
export const MAX_UNEXPECTED_BLOCKS = 64;
/**
 * Bytes of whole pieces handed to the driver (hashing, writing) whose verdict is not in yet, above
 * which we ask for nothing more: when the disk falls behind the network, downloading waits for it
 * instead of piling piece buffers up in memory (a 1 GiB download had 22 MiB waiting for writes).
 */
export const MAX_VERIFYING_BYTES = 8 * 1024 * 1024;
/**
 * When a reader's urgent pieces wait, a link that could serve them keeps this many of its oldest
 * requests for other pieces (they are likely on the wire already) and cancels the rest, so the
 * urgent requests queue behind a few blocks at the sender instead of a whole pipeline (128 blocks
 * at 8 MiB/s are a quarter of a second).
 */
export const PREEMPT_KEEP = 4;
/** A peer's suggestions we keep at most (the newest). */
export const MAX_SUGGESTED = 4;

export class Downloads {
  readonly assembly: Assembly;
  /**
   * Requests went back to the picker (a choke, a link gone) since links were last refilled: the
   * next verified piece refills every link. Otherwise a verified piece gives no link anything new
   * to ask for (it leaves the in-flight set for our own), and only its own link is refilled.
   */
  released = false;
  /** We hold every piece (the core sets it as pieces verify). */
  complete = false;
  /** Which links are web seeds, and what they may be asked for (web-seeds.ts). */
  readonly webSeeds = new WebSeedPolicy();
  readonly #picker: PiecePicker;
  readonly #table: LinkTable;
  readonly #links: ReadonlyMap<LinkId, Link>;
  readonly #pipeline: number;
  readonly #blockLength: number;
  readonly #events: CoreEvents;
  /** Pieces handed to the driver for a verdict, and how many may be at once (MAX_VERIFYING_BYTES). */
  #verifying = 0;
  readonly #maxVerifying: number;

  constructor(
    picker: PiecePicker,
    table: LinkTable,
    links: ReadonlyMap<LinkId, Link>,
    opts: { pipeline: number; pieceLength: number; blockLength: number; assemble: boolean },
    events: CoreEvents,
  ) {
    this.#picker = picker;
    this.#table = table;
    this.#links = links;
    this.#pipeline = opts.pipeline;
    this.#blockLength = opts.blockLength;
    this.#events = events;
    this.assembly = new Assembly(opts.pieceLength, opts.blockLength, opts.assemble);
    this.#maxVerifying = Math.max(2, Math.floor(MAX_VERIFYING_BYTES / opts.pieceLength));
  }

  /** A piece's verdict is in (the core calls this before acting on it). */
  verdict(): void {
    if (this.#verifying > 0) this.#verifying--;
  }

  /** Interest follows what `l` offers that we lack; an exchange link that can give no more says so. */
  updateInterest(l: Link, now: number, out: Command[]): void {
    const want = !this.complete && l.interesting > 0;
    if (want !== l.amInterested) {
      l.amInterested = want;
      send(l, { type: want ? 'interested' : 'notInterested' }, now, out);
    }
    if (!want && l.wanted !== null && l.outgoing && !l.exchangeDone) {
      l.exchangeDone = true;
      out.push({ type: 'exchangeDone', link: l.id });
    }
    this.fill(l, now, out);
  }

  /**
   * `l` suggests we fetch `index` from it (BEP 6; a seed sends its least-sent pieces): taken
   * before rarest-first when we lack it and nobody is fetching it.
   */
  suggested(l: Link, index: number, now: number, out: Command[]): void {
    if (index >= this.#picker.availability.length || this.#picker.have.has(index) || !l.offer.has(index))
      return;
    if (l.suggested.includes(index)) return;
    if (l.suggested === NO_SUGGESTIONS) l.suggested = [];
    l.suggested.push(index);
    if (l.suggested.length > MAX_SUGGESTED) l.suggested.shift();
    if (!l.peerChoking) this.fill(l, now, out);
  }

  /**
   * Tops `l`'s pipeline up with what the picker gives it (while the peer chokes us: from the
   * pieces it allowed us, BEP 6). `rare`: a piece it just announced that few peers hold
   * (RARE_COPIES), asked for even when the pipeline is full, up to twice its depth.
   */
  fill(l: Link, now: number, out: Command[], rare = -1): void {
    if (!l.amInterested || this.complete) return;
    const webSeed = this.webSeeds.links.has(l.id);
    if (webSeed) this.webSeeds.own(this.#links, this.#picker.have.length);
    const offer = l.peerChoking
      ? chokedOffer(l)
      : webSeed
        ? this.webSeeds.offer(l, this.#picker.availability)
        : l.offer;
    if (offer === null) return;
    const alone = webSeed && this.webSeeds.alone(now, this.#links);
    let room = (webSeed ? this.#webSeedPipeline(alone) : this.#pipeline) - l.outstanding.size;
    let pickFrom = offer;
    if (room <= 0 && rare >= 0 && !l.peerChoking && this.#jumps(l, rare)) {
      room = Math.ceil(this.#picker.pieceSize(rare) / this.#blockLength);
      pickFrom = { has: (i) => i === rare && offer.has(i) };
    }
    if (room <= 0) return;
    if (this.#verifying >= this.#maxVerifying) {
      // The driver is behind: the next verdict refills every link.
      this.released = true;
      return;
    }
    // A web seed alone reads the file in order: long ranges, sequential writes.
    const reqs = this.#picker.pick(
      l.id,
      pickFrom,
      room,
      (index, begin) => l.outstanding.has(blockKey(index, begin)),
      alone,
      l.suggested,
    );
    if (l.suggested.length > 0) {
      const p = this.#picker;
      l.suggested = l.suggested.filter((i) => !p.have.has(i) && !p.active.has(i));
    }
    if (reqs.length === 0) return;
    for (const r of reqs) {
      if (l.outstanding === NO_REQUESTS) l.outstanding = new Map();
      if (l.outstanding.size === 0) this.#table.meta[l.slot * META + REQUESTED_AT] = now;
      // The picker's fresh request becomes the outstanding record (no copy per block).
      const o = r as OutstandingRequest;
      o.at = now;
      l.outstanding.set(blockKey(r.index, r.begin), o);
      send(l, { type: 'request', index: r.index, begin: r.begin, length: r.length }, now, out);
    }
    this.#events.onRequestBlocks?.(l.id, reqs);
  }

  /**
   * Whether `rare`, a piece few peers hold that `l` just announced, is asked of it beyond the
   * pipeline: nobody is fetching it yet, and no request we have there is for a piece only `l`
   * holds (a super-seed's offers are such: fetched both at once from it, two were sent twice).
   * Simulator, 1,000 x 100: 1.278x the bound without that condition, 1.287x with it, 1.304x if
   * every request there had to be for a common piece.
   */
  #jumps(l: Link, rare: number): boolean {
    if (l.outstanding.size >= 2 * this.#pipeline || this.#picker.active.has(rare)) return false;
    for (const r of l.outstanding.values())
      if ((this.#picker.availability[r.index] as number) <= 1) return false;
    return true;
  }

  /**
   * The urgent pieces changed (a reader's window): on each link that has an urgent piece nobody
   * was asked for yet, requests for pieces without a deadline beyond the PREEMPT_KEEP oldest are
   * cancelled (back to the picker); then every link is topped up, urgent pieces first.
   */
  urgentChanged(now: number, out: Command[]): void {
    const waiting = this.#picker.urgentWaiting();
    if (waiting.length > 0) {
      const urgent = new Set(this.#picker.urgent);
      for (const l of this.#links.values())
        if (waiting.some((i) => l.offer.has(i))) this.#preempt(l, urgent, now, out);
    }
    this.fillAll(now, out);
  }

  #preempt(l: Link, urgent: ReadonlySet<number>, now: number, out: Command[]): void {
    let kept = 0;
    // Oldest first (the map keeps the order requests were made).
    for (const [key, r] of l.outstanding) {
      if (urgent.has(r.index) || kept++ < PREEMPT_KEEP) continue;
      l.outstanding.delete(key);
      this.#picker.release(r.index, r.begin, l.id);
      l.cancelled++;
      send(l, { type: 'cancel', index: r.index, begin: r.begin, length: r.length }, now, out);
      this.released = true;
    }
  }

  /** A web seed's pipeline: deep when it is alone, about a piece when peers share the work. */
  #webSeedPipeline(alone: boolean): number {
    if (alone) return WEB_SEED_PIPELINE;
    return Math.max(16, Math.ceil(WEB_SEED_SHARED_BYTES / this.#blockLength));
  }

  /** A tick: whether peers keep the download going, and the web seeds topped up accordingly. */
  tickWebSeeds(now: number, out: Command[]): void {
    if (this.webSeeds.count === 0) return;
    this.webSeeds.tick(now, this.#links, this.#picker.have.length);
    for (const id of this.webSeeds.links) {
      const l = this.#links.get(id);
      if (l !== undefined) this.fill(l, now, out);
    }
  }

  /** Every link's pipeline topped up. */
  fillAll(now: number, out: Command[], except?: Link): void {
    for (const l of this.#links.values()) if (l !== except) this.fill(l, now, out);
  }

  /** `l`'s requests go back to the picker (BEP 3: a choke discards them; or the link is gone). */
  releaseAll(l: Link): void {
    if (l.outstanding.size > 0) this.released = true;
    for (const r of l.outstanding.values()) this.#picker.release(r.index, r.begin, l.id);
  }

  /**
   * A fast peer will not serve one of our requests (BEP 6): it goes back to the picker and the
   * other links may take it. Returns why the link closes (too many rejects for nothing we asked:
   * one may cross our cancel), or null.
   */
  rejected(
    l: Link,
    m: { index: number; begin: number; length: number },
    now: number,
    out: Command[],
  ): string | null {
    const key = blockKey(m.index, m.begin);
    const req = l.outstanding.get(key);
    if (req === undefined || req.index !== m.index || req.length !== m.length) {
      if (l.cancelled > 0) {
        l.cancelled--;
        return null;
      }
      return ++l.unexpected > MAX_UNEXPECTED_BLOCKS ? 'too many rejects of requests we did not make' : null;
    }
    l.outstanding.delete(key);
    this.#picker.release(m.index, m.begin, l.id);
    this.released = true;
    this.fillAll(now, out, l);
    return null;
  }

  /**
   * Our requests on `l` older than REQUEST_TIMEOUT_MS go back to the picker, and the other links
   * may take them. Returns the time of the oldest left (Infinity: none).
   */
  expire(l: Link, now: number, out: Command[]): number {
    let expired = false;
    let oldest = Number.POSITIVE_INFINITY;
    for (const [key, r] of l.outstanding) {
      if (now - r.at > REQUEST_TIMEOUT_MS) {
        l.outstanding.delete(key);
        this.#picker.release(r.index, r.begin, l.id);
        expired = true;
      } else oldest = Math.min(oldest, r.at);
    }
    if (expired) {
      this.released = true;
      this.fillAll(now, out, l);
    }
    return oldest;
  }

  /**
   * A block arrived on `l`. Unasked blocks are ignored within reason; returns why the link must
   * close (ERR_BAD_PIECE), or null. A piece whose last block this is goes to the driver (`verify`).
   */
  block(
    l: Link,
    m: { index: number; begin: number; block: Uint8Array },
    now: number,
    out: Command[],
  ): string | null {
    const key = blockKey(m.index, m.begin);
    const req = l.outstanding.get(key);
    if (req === undefined || req.index !== m.index || req.begin !== m.begin) {
      // Not asked of this link (or cancelled): ignore, within reason (what we cancelled for a
      // reader's urgent pieces is not held against the peer).
      if (l.cancelled > 0) {
        l.cancelled--;
        return null;
      }
      return ++l.unexpected > MAX_UNEXPECTED_BLOCKS ? 'too many blocks nobody asked for' : null;
    }
    if (m.block.length !== req.length)
      return `block ${m.index}:${m.begin} has ${m.block.length} bytes, asked ${req.length}`;
    l.outstanding.delete(key);
    l.downloaded += m.block.length;
    l.roundDown += m.block.length;
    this.#events.onBlock?.(l.id, m.block.length);
    const r = this.#picker.received(m.index, m.begin, l.id);
    if (r.status === 'new') {
      const size = this.#picker.pieceSize(m.index);
      const a = this.assembly.add(m.index, size, m.begin, m.block, l.peerId as string);
      for (const other of r.cancel) {
        const o = this.#links.get(other);
        if (o === undefined) continue;
        if (o.outstanding.delete(key)) {
          o.cancelled++; // its piece or reject may still come
          send(o, { type: 'cancel', index: m.index, begin: m.begin, length: req.length }, now, out);
        }
        this.fill(o, now, out);
      }
      if (r.pieceDone) {
        this.#verifying++;
        out.push({ type: 'verify', index: m.index, data: a.data });
      }
    }
    this.fill(l, now, out);
    return null;
  }
}

/** What we may fetch over `l` while its peer chokes us: its allowed-fast pieces it holds (null: nothing). */
export function chokedOffer(l: Link): PieceSet | null {
  const allowed = l.allowedIn;
  if (allowed === null || allowed.size === 0) return null;
  const offer = l.offer;
  return { has: (i) => allowed.has(i) && offer.has(i) };
}
