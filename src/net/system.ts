import { createHash, hash, randomBytes } from 'node:crypto';
import type { Clock, Hasher, Rng, Timers } from '../core/deps.js';

/**
 * The real collaborators, made here and nowhere else: the system clock, Node's timers,
 * Math.random, SHA-1 from node:crypto and random bytes. Everything below takes them as `deps`.
 */

export const systemClock: Clock = { now: () => Date.now() };

export const systemTimers: Timers = {
  after(ms, fn) {
    const t = setTimeout(fn, ms);
    return () => clearTimeout(t);
  },
  every(ms, fn) {
    const t = setInterval(fn, ms);
    return () => clearInterval(t);
  },
};

export const systemRng: Rng = Math.random;

export const nodeHasher: Hasher = {
  sha1: (data) => createHash('sha1').update(data).digest(),
  sha1Stream: () => createHash('sha1'),
};

/** SHA-256 in one call (no object per call: the UDP tracker's connection ids, per packet). */
export function sha256(data: Uint8Array): Uint8Array {
  return hash('sha256', data, 'buffer');
}

/** `n` cryptographically random bytes (peer ids, tracker keys). */
export function secureRandomBytes(n: number): Uint8Array {
  return randomBytes(n);
}
