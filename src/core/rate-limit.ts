import { TokenBucket } from './token-bucket.js';

/**
 * Requests per second per client address, with a burst: one token bucket per address. Pure (time
 * comes in); buckets idle for IDLE_MS are forgotten on `sweep`, and at most MAX_ADDRESSES are kept
 * (past that the oldest are dropped), so spoofed or many addresses cannot grow memory without bound.
 */
export const IDLE_MS = 60_000;
export const MAX_ADDRESSES = 100_000;

export class RateLimiter {
  readonly perSecond: number;
  readonly burst: number;
  readonly #buckets = new Map<string, { bucket: TokenBucket; last: number }>();

  constructor(perSecond: number, burst = perSecond * 2) {
    this.perSecond = perSecond;
    this.burst = burst;
  }

  /** True when a request from `ip` at `now` is within its rate (and counts it). */
  allow(ip: string, now: number): boolean {
    let e = this.#buckets.get(ip);
    if (e === undefined) {
      if (this.#buckets.size >= MAX_ADDRESSES) {
        const oldest = this.#buckets.keys().next().value as string;
        this.#buckets.delete(oldest);
      }
      e = { bucket: new TokenBucket(this.perSecond, this.burst, now), last: now };
      this.#buckets.set(ip, e);
    }
    e.last = now;
    const wait = e.bucket.reserve(1, now);
    if (wait > 0) {
      e.bucket.reserve(-1, now); // refused requests don't dig the hole deeper
      return false;
    }
    return true;
  }

  sweep(now: number): void {
    for (const [ip, e] of this.#buckets) if (now - e.last > IDLE_MS) this.#buckets.delete(ip);
  }

  get size(): number {
    return this.#buckets.size;
  }
}
