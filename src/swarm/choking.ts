import { CHOKE_ROUND_MS, chooseUnchoked, OPTIMISTIC_ROUNDS, STALE_ROUND_MS } from './choker.js';
import type { Link, LinkId } from './link.js';

/**
 * Whom we upload to: the choking rounds over a torrent's links (every CHOKE_ROUND_MS: the fastest
 * by their last round's rate, plus an optimistic unchoke rotated every few rounds; choker.ts
 * decides) and the count of links we do not choke. The core carries the decisions out (it sends
 * choke/unchoke and keeps the super-seed's offers in step).
 */
export class Choking {
  #lastRound = Number.NEGATIVE_INFINITY;
  #round = 0;
  #optimistic: LinkId | null = null;
  /** Links we do not choke. */
  unchoked = 0;
  /** A peer we unchoke lost interest: its slot is wasted until a round gives it to another. */
  stale = false;
  readonly #slots: number;
  readonly #rng: () => number;

  constructor(uploadSlots: number, rng: () => number) {
    this.#slots = uploadSlots;
    this.#rng = rng;
  }

  /** Whether a link may be unchoked at once (an interested newcomer, a super-seed's new peer). */
  get slotFree(): boolean {
    return this.unchoked < this.#slots + 1;
  }

  /** A round is due every CHOKE_ROUND_MS, and sooner (after STALE_ROUND_MS) when a slot went stale. */
  due(now: number): boolean {
    const since = now - this.#lastRound;
    return since >= CHOKE_ROUND_MS || (this.stale && since >= STALE_ROUND_MS);
  }

  /** `link` is gone. */
  forget(link: LinkId): void {
    if (this.#optimistic === link) this.#optimistic = null;
  }

  /**
   * A round: each handshaken link's rate over the round (what it gave us, or, as a seed, what we
   * gave it), then the links to unchoke; `act` sends the unchokes and chokes that follow (a link
   * changes state before its `choke`; `unchoke` changes it). `wants(l)`: whether the link wants
   * to download from us.
   */
  round(
    links: ReadonlyMap<LinkId, Link>,
    now: number,
    seeding: boolean,
    wants: (l: Link) => boolean,
    act: { unchoke(l: Link): void; choke(l: Link): void },
  ): void {
    const seconds = Math.max(1, (now - this.#lastRound) / 1000);
    this.#lastRound = now;
    this.stale = false;
    const candidates = [];
    for (const l of links.values()) {
      l.rate = (seeding ? l.roundUp : l.roundDown) / (Number.isFinite(seconds) ? seconds : 1);
      l.roundUp = 0;
      l.roundDown = 0;
      if (l.handshaken) candidates.push({ id: l.id, interested: wants(l), rate: l.rate });
    }
    const rotate = this.#round % OPTIMISTIC_ROUNDS === 0;
    this.#round++;
    const d = chooseUnchoked(candidates, this.#slots, this.#optimistic, rotate, this.#rng);
    this.#optimistic = d.optimistic;
    for (const l of links.values()) {
      if (!l.handshaken) continue;
      const on = d.unchoke.has(l.id);
      if (on && l.amChoking) act.unchoke(l);
      else if (!on && !l.amChoking) {
        l.amChoking = true;
        this.unchoked--;
        act.choke(l);
      }
    }
  }
}
