import type { Link } from './link.js';
import { NO_OFFERS } from './link.js';

/**
 * Super-seeding (BEP 16) as a policy beside the core: while we are a seed, each peer is offered a
 * couple of pieces at a time (`have`) instead of our bitfield, those given out least so far, and a
 * new one each time it reports one done; peers then fetch different pieces from us and trade the
 * rest among themselves, so the seed sends each piece about once. Invariants: STATE.md.
 */

/** Pieces a super-seed offers each peer at once. */
export const SUPER_SEED_OFFERS = 2;

const EMPTY = new Uint16Array(0);

export class SuperSeed {
  readonly #pieceCount: number;
  /**
   * Per piece: offers peers reported done (copies given out)... (made on the first offer: every
   * core has a SuperSeed, few ever offer)
   */
  #given: Uint16Array = EMPTY;
  /** ...and offers outstanding at peers we unchoke (an offer to a choked peer is not on its way). */
  #live: Uint16Array = EMPTY;
  readonly #availability: Uint16Array;
  readonly #rng: () => number;

  constructor(pieceCount: number, availability: Uint16Array, rng: () => number) {
    this.#pieceCount = pieceCount;
    this.#availability = availability;
    this.#rng = rng;
  }

  /** The counts, made on first use. */
  #counts(): void {
    if (this.#given !== EMPTY) return;
    this.#given = new Uint16Array(this.#pieceCount);
    this.#live = new Uint16Array(this.#pieceCount);
  }

  /**
   * The piece to offer `l` next: the one given out least so far, counting offers on their way (to
   * peers we unchoke; then the rarest among our peers), that it lacks. Offers to choked peers do
   * not count, so a piece offered to a peer we then choke goes to someone else instead of waiting
   * for its turn. Records the offer; -1 when there is nothing to offer.
   */
  next(l: Link): number {
    this.#counts();
    let best = -1;
    let bestKey = Number.POSITIVE_INFINITY;
    const n = this.#pieceCount;
    const start = Math.floor(this.#rng() * n);
    for (let k = 0; k < n; k++) {
      const i = (start + k) % n;
      if (l.have.has(i) || l.offered.has(i)) continue;
      const copies = (this.#given[i] as number) + (this.#live[i] as number);
      const key = copies * 65536 + (this.#availability[i] as number);
      if (key < bestKey) {
        bestKey = key;
        best = i;
        if (key === 0) break; // none lower: sent by nobody, held by none of our peers
      }
    }
    if (best === -1) return -1;
    if (l.offered === NO_OFFERS) l.offered = new Set();
    l.offered.add(best);
    if (!l.amChoking) this.#live[best] = (this.#live[best] as number) + 1;
    return best;
  }

  /** `l` reported piece `index`: true when it was our offer (now given out; a new one is due). */
  reported(l: Link, index: number): boolean {
    if (!l.offered.delete(index)) return false;
    this.#given[index] = (this.#given[index] as number) + 1;
    if (!l.amChoking) this.#live[index] = (this.#live[index] as number) - 1;
    return true;
  }

  /** A copy of `index` goes out (suggestions: asked of us), or does not after all (`delta` -1). */
  gave(index: number, delta: 1 | -1): void {
    this.#counts();
    const g = this.#given[index] as number;
    if (delta > 0 || g > 0) this.#given[index] = g + delta;
  }

  /** Our offer of `index` to `l` ends without a copy from us (it has the piece from elsewhere): true when it was one. */
  withdrawn(l: Link, index: number): boolean {
    if (!l.offered.delete(index)) return false;
    if (!l.amChoking) this.#live[index] = (this.#live[index] as number) - 1;
    return true;
  }

  /** `l`'s open offers start (+1) or stop (-1) counting as on their way: it was unchoked, or choked or gone. */
  count(l: Link, delta: 1 | -1): void {
    for (const i of l.offered) this.#live[i] = (this.#live[i] as number) + delta;
  }
}
