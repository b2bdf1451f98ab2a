import type { Command } from './commands.js';
import { type Link, NO_OFFERS, send } from './link.js';
import { SUPER_SEED_OFFERS, SuperSeed } from './super-seed.js';

/** Suggestions a seed keeps open per peer it unchokes. */
export const SEED_SUGGESTIONS = 2;

/**
 * What a seed offers each peer it unchokes, so that it sends each piece about once before any
 * twice. Two ways (docs/peer.md):
 * - super-seeding (BEP 16, when asked): the seed hides its bitfield and announces a piece or two
 *   to each peer with `have`, the next when the peer reports one done;
 * - suggestions (BEP 6, every seed by default, to peers that speak the fast extension): the seed
 *   shows its bitfield and suggests the pieces it has sent least, the next as soon as the peer
 *   asks for one. Peers see every piece at once (no stall waiting for an offer), and ours take a
 *   suggestion before their own rarest-first choice.
 * Both count the copies given out per piece in SuperSeed (the least given out is offered next).
 */
export class SeedOffers {
  readonly #counts: SuperSeed;
  /** Super-seeding (offers as haves) rather than suggesting. */
  readonly superSeed: boolean;

  constructor(superSeed: boolean, pieceCount: number, availability: Uint16Array, rng: () => number) {
    this.superSeed = superSeed;
    this.#counts = new SuperSeed(pieceCount, availability, rng);
  }

  /**
   * We unchoke `l`, before its `unchoke` goes out (so that our suggestions come first); offers
   * are made while `seeding` (its open offers count as on their way in any case).
   */
  unchoking(l: Link, seeding: boolean, now: number, out: Command[]): void {
    this.#counts.count(l, 1);
    if (seeding && !this.superSeed) this.#topUp(l, now, out);
  }

  /** `l` was unchoked: a super-seed's offers follow the unchoke. */
  unchoked(l: Link, seeding: boolean, now: number, out: Command[]): void {
    if (seeding && this.superSeed) this.#topUp(l, now, out);
  }

  /**
   * We choke `l`, or it is gone: its offers are no longer on their way. Suggestions lapse (the
   * peer drops them when choked; the next unchoke brings new ones); a super-seed's offers stand
   * (the peer believes we hold those pieces).
   */
  choked(l: Link): void {
    this.#counts.count(l, -1);
    if (!this.superSeed) l.offered = NO_OFFERS;
  }

  /** `l` has `index` now: a super-seed's offer was given out; a suggestion is withdrawn. Either way, a new offer. */
  reported(l: Link, index: number, now: number, out: Command[]): void {
    const c = this.#counts;
    if (this.superSeed ? c.reported(l, index) : c.withdrawn(l, index)) this.#offer(l, now, out);
  }

  /**
   * `l` asks us for a block of `index` (`begin` 0: a copy of the piece given out, counted at once
   * so that the next suggestion is another piece); a suggestion taken is replaced. Suggesting
   * seeds only.
   */
  requested(l: Link, index: number, begin: number, now: number, out: Command[]): void {
    if (this.superSeed) return;
    if (begin === 0) this.#counts.gave(index, 1);
    this.#counts.withdrawn(l, index);
    this.#topUp(l, now, out);
  }

  /** A request we counted was dropped unsent (cancelled, choked, its link gone): not a copy after all. */
  dropped(index: number, begin: number): void {
    if (!this.superSeed && begin === 0) this.#counts.gave(index, -1);
  }

  #topUp(l: Link, now: number, out: Command[]): void {
    if (!this.superSeed && !l.fast) return;
    while (
      l.offered.size < (this.superSeed ? SUPER_SEED_OFFERS : SEED_SUGGESTIONS) &&
      this.#offer(l, now, out)
    );
  }

  #offer(l: Link, now: number, out: Command[]): boolean {
    const i = this.#counts.next(l);
    if (i === -1) return false;
    send(l, this.superSeed ? { type: 'have', index: i } : { type: 'suggest', index: i }, now, out);
    return true;
  }
}
