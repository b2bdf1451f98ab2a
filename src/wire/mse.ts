import type { Rc4Factory, StreamCipher } from './rc4.js';

/**
 * Message stream encryption (MSE/PE), the handshake both ways, sans I/O: bytes in through `push`,
 * bytes to send out, and at the end the ciphers for the rest of the connection. Hashing,
 * randomness and RC4 are handed in.
 *
 *   A -> B: Ya, PadA
 *   B -> A: Yb, PadB
 *   A -> B: HASH('req1', S), HASH('req2', SKEY) xor HASH('req3', S),
 *           ENCRYPT(VC, crypto_provide, len(PadC), PadC, len(IA)), ENCRYPT(IA)
 *   B -> A: ENCRYPT(VC, crypto_select, len(PadD), PadD), ENCRYPT2(payload)
 *
 * Diffie-Hellman over the 768-bit prime P with generator 2; S the shared secret (96 bytes);
 * SKEY the torrent's info hash (the responder finds it among the torrents it serves); ENCRYPT is
 * RC4 keyed HASH('keyA', S, SKEY) from A and HASH('keyB', S, SKEY) from B, the first 1,024 bytes
 * of keystream discarded; VC eight zero bytes; ENCRYPT2 the method selected: RC4 (the same streams
 * going on) or plaintext. Every search is bounded by the spec's padding limit (512 bytes).
 */

export const MSE_PRIME = BigInt(
  '0xFFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DDEF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A63A36210000000000090563',
);
export const CRYPTO_PLAINTEXT = 0x01;
export const CRYPTO_RC4 = 0x02;
/** Length of a public key (and of S): 768 bits. */
export const KEY_BYTES = 96;
/** Padding at most, in each of the four places it may be. */
export const MAX_PAD = 512;
/** Bytes buffered before the handshake ends, at most (IA is at most 65,535). */
export const MAX_BUFFERED = 128 * 1024;
const VC = new Uint8Array(8);

export interface MseDeps {
  sha1(data: Uint8Array): Uint8Array;
  randomBytes(n: number): Uint8Array;
  rc4: Rc4Factory;
}

/** What the handshake leaves: the torrent, the method, its ciphers, and payload already received. */
export interface MseResult {
  infoHash: Uint8Array;
  method: typeof CRYPTO_PLAINTEXT | typeof CRYPTO_RC4;
  /** RC4 both ways, or null (plaintext after the handshake). */
  ciphers: { decrypt: StreamCipher; encrypt: StreamCipher } | null;
  /** Payload bytes that came with the handshake (the initial payload and what followed), decrypted. */
  rest: Uint8Array;
}

export type MseErrorCode = 'ERR_MSE_HANDSHAKE' | 'ERR_WRONG_INFO_HASH' | 'ERR_ENCRYPTION_REQUIRED';

export interface MseStep {
  send: Uint8Array[];
  done?: MseResult;
  error?: { code: MseErrorCode; message: string };
}

const ascii = (s: string) => new TextEncoder().encode(s);
const REQ1 = ascii('req1');
const REQ2 = ascii('req2');
const REQ3 = ascii('req3');
const KEY_A = ascii('keyA');
const KEY_B = ascii('keyB');

function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function toBig(b: Uint8Array): bigint {
  let hex = '';
  for (const x of b) hex += x.toString(16).padStart(2, '0');
  return BigInt(`0x${hex || '0'}`);
}

function toBytes(n: bigint, len: number): Uint8Array {
  const hex = n.toString(16).padStart(len * 2, '0');
  const out = new Uint8Array(len);
  for (let i = 0; i < len; i++) out[i] = Number.parseInt(hex.slice(i * 2, i * 2 + 2), 16);
  return out;
}

export function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let r = 1n;
  let b = base % mod;
  let e = exp;
  while (e > 0n) {
    if (e & 1n) r = (r * b) % mod;
    b = (b * b) % mod;
    e >>= 1n;
  }
  return r;
}

const PSTR = ascii('\x13BitTorrent protocol');

/** Whether `b` (20 bytes at least) opens a plain BitTorrent handshake. */
export function startsPlain(b: Uint8Array): boolean {
  if (b.length < PSTR.length) return false;
  for (let i = 0; i < PSTR.length; i++) if (b[i] !== PSTR[i]) return false;
  return true;
}

/** Index of `needle` in `hay`, or -1. */
function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

const u16 = (b: Uint8Array, at: number) => ((b[at] as number) << 8) | (b[at + 1] as number);
const u32 = (b: Uint8Array, at: number) =>
  (((b[at] as number) << 24) |
    ((b[at + 1] as number) << 16) |
    ((b[at + 2] as number) << 8) |
    (b[at + 3] as number)) >>>
  0;
const be16 = (n: number) => Uint8Array.of(n >> 8, n & 255);
const be32 = (n: number) => Uint8Array.of(n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255);

/** One side's Diffie-Hellman keys: a 160-bit private key, its public key, and the shared secret. */
class KeyPair {
  readonly #x: bigint;
  readonly publicKey: Uint8Array;
  constructor(randomBytes: (n: number) => Uint8Array) {
    this.#x = toBig(randomBytes(20)) | 1n;
    this.publicKey = toBytes(modPow(2n, this.#x, MSE_PRIME), KEY_BYTES);
  }
  /** S from the other side's public key; null for a key that is no key (0, 1, P-1 or beyond P). */
  secret(other: Uint8Array): Uint8Array | null {
    const y = toBig(other);
    if (y <= 1n || y >= MSE_PRIME - 1n) return null;
    return toBytes(modPow(y, this.#x, MSE_PRIME), KEY_BYTES);
  }
}

/** Random padding of 0..max bytes. */
function padding(deps: MseDeps, max: number): Uint8Array {
  const r = deps.randomBytes(2);
  const n = (((r[0] as number) << 8) | (r[1] as number)) % (max + 1);
  return deps.randomBytes(n);
}

/** Bytes in, consumed from the front: the handshake's input buffer, bounded. */
abstract class Machine {
  protected buf: Uint8Array = new Uint8Array(0);
  protected finished = false;
  protected readonly deps: MseDeps;
  constructor(deps: MseDeps) {
    this.deps = deps;
  }

  push(data: Uint8Array): MseStep {
    if (this.finished) return { send: [] };
    this.buf = this.buf.length === 0 ? Uint8Array.from(data) : concat(this.buf, data);
    if (this.buf.length > MAX_BUFFERED)
      return this.fail('ERR_MSE_HANDSHAKE', 'too many bytes before the handshake ended');
    const send: Uint8Array[] = [];
    for (;;) {
      const step = this.step();
      if (step === null) return { send };
      send.push(...step.send);
      if (step.done !== undefined || step.error !== undefined) {
        this.finished = true;
        return { ...step, send };
      }
    }
  }

  protected take(n: number): Uint8Array {
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  protected fail(code: MseErrorCode, message: string): MseStep {
    this.finished = true;
    return { send: [], error: { code, message } };
  }

  /** One step when the buffer holds enough for it; null: wait for more. */
  protected abstract step(): MseStep | null;
}

/** The dialling side (A). `provide`: CRYPTO_PLAINTEXT | CRYPTO_RC4 bits offered. */
export class MseInitiator extends Machine {
  readonly #keys: KeyPair;
  readonly #infoHash: Uint8Array;
  readonly #provide: number;
  #phase: 'yb' | 'sync' | 'select' | 'padD' = 'yb';
  #encrypt: StreamCipher | null = null;
  #decrypt: StreamCipher | null = null;
  #vcPattern: Uint8Array = new Uint8Array(0);
  #method = 0;
  #padD = 0;

  constructor(infoHash: Uint8Array, provide: number, deps: MseDeps) {
    super(deps);
    this.#keys = new KeyPair(deps.randomBytes);
    this.#infoHash = infoHash;
    this.#provide = provide;
  }

  /** What A sends first: Ya and PadA. */
  start(): Uint8Array {
    return concat(this.#keys.publicKey, padding(this.deps, MAX_PAD));
  }

  protected step(): MseStep | null {
    const d = this.deps;
    switch (this.#phase) {
      case 'yb': {
        // A peer that speaks only plain answers our key with its own plain handshake (or closes).
        if (startsPlain(this.buf)) return this.fail('ERR_MSE_HANDSHAKE', 'the peer answered in plain');
        if (this.buf.length < KEY_BYTES) return null;
        const s = this.#keys.secret(this.take(KEY_BYTES));
        if (s === null) return this.fail('ERR_MSE_HANDSHAKE', 'the peer sent an invalid public key');
        const skey = this.#infoHash;
        this.#encrypt = d.rc4(d.sha1(concat(KEY_A, s, skey)));
        this.#decrypt = d.rc4(d.sha1(concat(KEY_B, s, skey)));
        this.#vcPattern = d.rc4(d.sha1(concat(KEY_B, s, skey))).update(VC);
        const req2 = d.sha1(concat(REQ2, skey));
        const req3 = d.sha1(concat(REQ3, s));
        const x = req2.map((b, i) => b ^ (req3[i] as number));
        // No PadC and no initial payload: our handshake follows once the method is known.
        const tail = this.#encrypt.updateInPlace(concat(VC, be32(this.#provide), be16(0), be16(0)));
        this.#phase = 'sync';
        return { send: [concat(d.sha1(concat(REQ1, s)), x, tail)] };
      }
      case 'sync': {
        const at = indexOf(this.buf, this.#vcPattern);
        if (at < 0) {
          if (this.buf.length >= MAX_PAD + VC.length)
            return this.fail(
              'ERR_MSE_HANDSHAKE',
              `no verification constant within ${MAX_PAD} bytes of padding`,
            );
          return null;
        }
        this.take(at);
        (this.#decrypt as StreamCipher).update(this.take(VC.length));
        this.#phase = 'select';
        return { send: [] };
      }
      case 'select': {
        if (this.buf.length < 6) return null;
        const b = (this.#decrypt as StreamCipher).update(this.take(6));
        const select = u32(b, 0);
        this.#padD = u16(b, 4);
        if ((select !== CRYPTO_PLAINTEXT && select !== CRYPTO_RC4) || (select & this.#provide) === 0)
          return this.fail(
            'ERR_ENCRYPTION_REQUIRED',
            `the peer selected method ${select}, not one we offered`,
          );
        if (this.#padD > MAX_PAD) return this.fail('ERR_MSE_HANDSHAKE', `padding of ${this.#padD} bytes`);
        this.#method = select;
        this.#phase = 'padD';
        return { send: [] };
      }
      case 'padD': {
        if (this.buf.length < this.#padD) return null;
        (this.#decrypt as StreamCipher).update(this.take(this.#padD));
        return { send: [], done: this.#finish() };
      }
    }
  }

  #finish(): MseResult {
    const rest = Uint8Array.from(this.take(this.buf.length));
    const rc4 = this.#method === CRYPTO_RC4;
    const ciphers = { decrypt: this.#decrypt as StreamCipher, encrypt: this.#encrypt as StreamCipher };
    return {
      infoHash: this.#infoHash,
      method: rc4 ? CRYPTO_RC4 : CRYPTO_PLAINTEXT,
      ciphers: rc4 ? ciphers : null,
      rest: rc4 ? ciphers.decrypt.updateInPlace(rest) : rest,
    };
  }
}

/**
 * The answering side (B). `torrentFor(h)` finds the info hash whose HASH('req2', info hash) is h
 * (null: not one we serve); `select(provide)` picks the method from what A offers (0: none will do).
 */
export class MseResponder extends Machine {
  readonly #keys: KeyPair;
  readonly #torrentFor: (req2: Uint8Array) => Uint8Array | null;
  readonly #select: (provide: number) => number;
  #phase: 'ya' | 'sync' | 'skey' | 'provide' | 'padC' | 'ia' = 'ya';
  #s: Uint8Array = new Uint8Array(0);
  #req1: Uint8Array = new Uint8Array(0);
  #infoHash: Uint8Array = new Uint8Array(0);
  #encrypt: StreamCipher | null = null;
  #decrypt: StreamCipher | null = null;
  #provide = 0;
  #padC = 0;
  #ia = 0;

  constructor(
    torrentFor: (req2: Uint8Array) => Uint8Array | null,
    select: (provide: number) => number,
    deps: MseDeps,
  ) {
    super(deps);
    this.#keys = new KeyPair(deps.randomBytes);
    this.#torrentFor = torrentFor;
    this.#select = select;
  }

  protected step(): MseStep | null {
    const d = this.deps;
    switch (this.#phase) {
      case 'ya': {
        if (this.buf.length < KEY_BYTES) return null;
        const s = this.#keys.secret(this.take(KEY_BYTES));
        if (s === null) return this.fail('ERR_MSE_HANDSHAKE', 'the peer sent an invalid public key');
        this.#s = s;
        this.#req1 = d.sha1(concat(REQ1, s));
        this.#phase = 'sync';
        return { send: [concat(this.#keys.publicKey, padding(d, MAX_PAD))] };
      }
      case 'sync': {
        const at = indexOf(this.buf, this.#req1);
        if (at < 0) {
          if (this.buf.length >= MAX_PAD + this.#req1.length)
            return this.fail(
              'ERR_MSE_HANDSHAKE',
              `no synchronisation hash within ${MAX_PAD} bytes of padding`,
            );
          return null;
        }
        this.take(at + this.#req1.length);
        this.#phase = 'skey';
        return { send: [] };
      }
      case 'skey': {
        if (this.buf.length < 20) return null;
        const req3 = d.sha1(concat(REQ3, this.#s));
        const req2 = this.take(20).map((b, i) => b ^ (req3[i] as number));
        const infoHash = this.#torrentFor(req2);
        if (infoHash === null)
          return this.fail('ERR_WRONG_INFO_HASH', 'an encrypted handshake for a torrent we do not serve');
        this.#infoHash = infoHash;
        this.#decrypt = d.rc4(d.sha1(concat(KEY_A, this.#s, infoHash)));
        this.#encrypt = d.rc4(d.sha1(concat(KEY_B, this.#s, infoHash)));
        this.#phase = 'provide';
        return { send: [] };
      }
      case 'provide': {
        if (this.buf.length < 14) return null;
        const b = (this.#decrypt as StreamCipher).update(this.take(14));
        for (let i = 0; i < 8; i++)
          if (b[i] !== 0) return this.fail('ERR_MSE_HANDSHAKE', 'wrong verification constant');
        this.#provide = u32(b, 8);
        this.#padC = u16(b, 12);
        if (this.#padC > MAX_PAD) return this.fail('ERR_MSE_HANDSHAKE', `padding of ${this.#padC} bytes`);
        this.#phase = 'padC';
        return { send: [] };
      }
      case 'padC': {
        if (this.buf.length < this.#padC + 2) return null;
        const b = (this.#decrypt as StreamCipher).update(this.take(this.#padC + 2));
        this.#ia = u16(b, this.#padC);
        this.#phase = 'ia';
        return { send: [] };
      }
      case 'ia': {
        if (this.buf.length < this.#ia) return null;
        const ia = (this.#decrypt as StreamCipher).update(this.take(this.#ia));
        const method = this.#select(this.#provide);
        if (method !== CRYPTO_PLAINTEXT && method !== CRYPTO_RC4)
          return this.fail(
            'ERR_ENCRYPTION_REQUIRED',
            `no method in common (the peer offers ${this.#provide})`,
          );
        const encrypt = this.#encrypt as StreamCipher;
        const decrypt = this.#decrypt as StreamCipher;
        const reply = encrypt.updateInPlace(concat(VC, be32(method), be16(0)));
        const after = Uint8Array.from(this.take(this.buf.length));
        const rc4 = method === CRYPTO_RC4;
        return {
          send: [reply],
          done: {
            infoHash: this.#infoHash,
            method: rc4 ? CRYPTO_RC4 : CRYPTO_PLAINTEXT,
            ciphers: rc4 ? { decrypt, encrypt } : null,
            rest: concat(ia, rc4 ? decrypt.updateInPlace(after) : after),
          },
        };
      }
    }
  }
}

/** How a peer treats encryption (`--encryption`). */
export type EncryptionMode = 'prefer' | 'require' | 'disable';

/** What we offer when we dial: plaintext or RC4 when preferring, RC4 only when requiring. */
export function offered(mode: EncryptionMode): number {
  return mode === 'require' ? CRYPTO_RC4 : CRYPTO_PLAINTEXT | CRYPTO_RC4;
}

/**
 * What we pick from a dialler's offer. Preferring: plaintext after an obfuscated handshake when
 * offered (as libtorrent does by default: the handshake hides the protocol, the payload costs no
 * CPU), else RC4. Requiring: RC4 only. 0: nothing will do.
 */
export function selectMethod(mode: EncryptionMode, provide: number): number {
  if (mode === 'require') return provide & CRYPTO_RC4 ? CRYPTO_RC4 : 0;
  if (provide & CRYPTO_PLAINTEXT) return CRYPTO_PLAINTEXT;
  return provide & CRYPTO_RC4 ? CRYPTO_RC4 : 0;
}
