/**
 * A token bucket on an injected clock: `rate` bytes per second, at most `burst` saved up.
 * `reserve(n, now)` books n bytes and says how long to wait before sending them; reservations
 * queue behind each other, so a sender that honours the waits never exceeds the rate.
 */
export class TokenBucket {
  readonly rate: number;
  readonly burst: number;
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
}
