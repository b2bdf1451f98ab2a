/**
 * A token bucket on an injected clock: `rate` bytes per second, at most `burst` saved up.
 * `reserve(n, now)` books n bytes and says how long to wait before sending them; reservations
 * queue behind each other, so a sender that honours the waits never exceeds the rate.
 */
/** What paces a sender: books `n` bytes at `now`, returns the milliseconds to wait first. */
export interface Pacer {
  reserve(n: number, now: number): number;
}

export class TokenBucket implements Pacer {
  rate: number;
  burst: number;
  #tokens: number;
  #last: number;

  constructor(rate: number, burst: number, now: number) {
    if (!(rate > 0)) throw new RangeError('rate must be positive');
    this.rate = rate;
    this.burst = burst;
    this.#tokens = burst;
    this.#last = now;
  }

  /** Books `n` bytes at `now`; returns the milliseconds to wait before they may go (0: at once). */
  reserve(n: number, now: number): number {
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#last) * this.rate) / 1000);
    this.#last = now;
    this.#tokens -= n;
    return this.#tokens >= 0 ? 0 : (-this.#tokens * 1000) / this.rate;
  }

  /** Changes the rate (and burst) from now on; what was saved up is kept, up to the new burst. */
  setRate(rate: number, burst: number, now: number): void {
    if (!(rate > 0)) throw new RangeError('rate must be positive');
    this.reserve(0, now);
    this.rate = rate;
    this.burst = burst;
    this.#tokens = Math.min(this.#tokens, burst);
  }
}

/** A burst of a quarter second's worth (at least one 16 KiB block) keeps the pace smooth. */
export function burstFor(rate: number): number {
  return Math.max(16384, rate / 4);
}

/** Both limits at once: a byte waits for the slower of the two (a torrent's cap under a global one). */
export function bothPacers(a: Pacer, b: Pacer): Pacer {
  return { reserve: (n, now) => Math.max(a.reserve(n, now), b.reserve(n, now)) };
}

/** A limit that can change while senders use it: none (null), or a rate in bytes/s. */
export class AdjustablePacer implements Pacer {
  #bucket: TokenBucket | null = null;

  constructor(limit: number | null, now: number) {
    this.set(limit, now);
  }

  get limit(): number | null {
    return this.#bucket?.rate ?? null;
  }

  set(limit: number | null, now: number): void {
    if (limit === null || !(limit > 0)) this.#bucket = null;
    else if (this.#bucket === null) this.#bucket = new TokenBucket(limit, burstFor(limit), now);
    else this.#bucket.setRate(limit, burstFor(limit), now);
  }

  reserve(n: number, now: number): number {
    return this.#bucket === null ? 0 : this.#bucket.reserve(n, now);
  }
}
