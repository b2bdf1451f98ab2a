import { describe, expect, it } from 'vitest';
import { TokenBucket } from '../../src/core/token-bucket.js';

describe('TokenBucket', () => {
  it('lets a burst through, then paces to the rate', () => {
    const b = new TokenBucket(1000, 500, 0);
    expect(b.reserve(500, 0)).toBe(0);
    expect(b.reserve(100, 0)).toBe(100);
    expect(b.reserve(100, 0)).toBe(200);
    // After 1 s the debt of 200 is paid and 800 are saved, capped at the burst of 500.
    expect(b.reserve(500, 1000)).toBe(0);
  });

  it('over a long run never exceeds the rate', () => {
    const b = new TokenBucket(16384 * 10, 16384, 0);
    let t = 0;
    let sent = 0;
    for (let i = 0; i < 1000; i++) {
      t += b.reserve(16384, t);
      sent += 16384;
    }
    // 1000 blocks at 10 blocks/s: ~99.9 s (the first block rides the burst).
    expect(t).toBeGreaterThanOrEqual(99_800);
    expect(sent / (t / 1000)).toBeLessThanOrEqual(16384 * 10 * 1.002);
  });

  it('refuses a non-positive rate', () => {
    expect(() => new TokenBucket(0, 1, 0)).toThrow(RangeError);
  });
});
