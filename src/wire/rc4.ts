/**
 * RC4, as message stream encryption (MSE/PE) uses it: a key of 20 bytes, the first 1,024 bytes of
 * keystream discarded. Used when the runtime's crypto has no RC4 (OpenSSL 3 keeps it in its legacy
 * provider, which Node does not load unless started with --openssl-legacy-provider).
 */

/** A stream cipher: `update` returns `data` XORed with the next keystream bytes. */
export interface StreamCipher {
  /** A new buffer (data untouched). */
  update(data: Uint8Array): Uint8Array;
  /** In place: `data` itself, XORed (for buffers we own). */
  updateInPlace(data: Uint8Array): Uint8Array;
}

/** Makes the cipher for an RC4 key, its first 1,024 bytes of keystream already discarded. */
export type Rc4Factory = (key: Uint8Array) => StreamCipher;

export class Rc4 implements StreamCipher {
  readonly #s = new Uint8Array(256);
  #i = 0;
  #j = 0;

  constructor(key: Uint8Array, discard = 1024) {
    const s = this.#s;
    for (let i = 0; i < 256; i++) s[i] = i;
    let j = 0;
    for (let i = 0; i < 256; i++) {
      const si = s[i] as number;
      j = (j + si + (key[i % key.length] as number)) & 255;
      s[i] = s[j] as number;
      s[j] = si;
    }
    if (discard > 0) this.updateInPlace(new Uint8Array(discard));
  }

  update(data: Uint8Array): Uint8Array {
    return this.updateInPlace(Uint8Array.from(data));
  }

  updateInPlace(data: Uint8Array): Uint8Array {
    const s = this.#s;
    let i = this.#i;
    let j = this.#j;
    for (let k = 0; k < data.length; k++) {
      i = (i + 1) & 255;
      const si = s[i] as number;
      j = (j + si) & 255;
      const sj = s[j] as number;
      s[i] = sj;
      s[j] = si;
      data[k] = (data[k] as number) ^ (s[(si + sj) & 255] as number);
    }
    this.#i = i;
    this.#j = j;
    return data;
  }
}

export const tsRc4: Rc4Factory = (key) => new Rc4(key);
