import { createCipheriv, createHash, hash, randomBytes } from 'node:crypto';
import type { Clock, Hasher, Rng, Timers } from '../core/deps.js';
import type { MseDeps } from '../wire/mse.js';
import { type Rc4Factory, type StreamCipher, tsRc4 } from '../wire/rc4.js';

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

/**
 * RC4 from Node's crypto when the runtime has it (OpenSSL 3 keeps RC4 in its legacy provider: Node
 * started with --openssl-legacy-provider), else ours (wire/rc4.ts). The first 1,024 bytes of
 * keystream are discarded, as MSE/PE says.
 */
function opensslRc4(key: Uint8Array): StreamCipher {
  const c = createCipheriv('rc4', key, null);
  c.update(Buffer.alloc(1024));
  return {
    update: (data) => c.update(data),
    updateInPlace: (data) => {
      const out = c.update(data);
      data.set(out);
      return data;
    },
  };
}

function pickRc4(): { name: 'openssl' | 'typescript'; make: Rc4Factory } {
  try {
    opensslRc4(new Uint8Array(20));
    return { name: 'openssl', make: opensslRc4 };
  } catch {
    return { name: 'typescript', make: tsRc4 };
  }
}

/** The RC4 this process uses, and its name (for benchmarks and the log). */
export const systemRc4 = pickRc4();

/** What the MSE/PE handshake is given: SHA-1, secure randomness, RC4. */
export const mseDeps: MseDeps = {
  sha1: nodeHasher.sha1,
  randomBytes: secureRandomBytes,
  rc4: systemRc4.make,
};
