/**
 * The collaborators a driver is given rather than reaching for: time, timers, randomness and
 * hashing. The real ones are made in one place (net/system.ts); the simulator and the tests hand
 * in their own (a virtual clock, a seeded RNG).
 */

/** Time as the driver sees it (real, simulated or a test's hand-driven clock), ms. */
export interface Clock {
  now(): number;
}

/** Stops a timer; calling it again does nothing. */
export type Cancel = () => void;

export interface Timers {
  /** Calls `fn` once after `ms`. */
  after(ms: number, fn: () => void): Cancel;
  /** Calls `fn` every `ms`. */
  every(ms: number, fn: () => void): Cancel;
}

/** Uniform in [0, 1). */
export type Rng = () => number;

export interface Hasher {
  /** SHA-1 of `data` (20 bytes). */
  sha1(data: Uint8Array): Uint8Array;
  /** An incremental SHA-1, for data that arrives in parts (a piece that spans reads). */
  sha1Stream(): { update(data: Uint8Array): void; digest(): Uint8Array };
}

/** Whether `a` and `b` hold the same bytes. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
