/**
 * A set of piece (chunk) indices in BEP 3 bitfield layout: piece 0 is the high bit of byte 0.
 * Spare bits at the end of the last byte are always zero.
 */
export class Bitfield {
  readonly length: number;
  readonly bytes: Uint8Array;
  #count = 0;

  constructor(length: number, bytes?: Uint8Array) {
    this.length = length;
    const size = Bitfield.byteLength(length);
    if (bytes === undefined) {
      this.bytes = new Uint8Array(size);
      return;
    }
    if (bytes.length !== size) throw new RangeError(`bitfield of ${length} pieces needs ${size} bytes`);
    this.bytes = bytes;
    for (let i = 0; i < size; i++) this.#count += popcount8(bytes[i] as number);
  }

  static byteLength(pieces: number): number {
    return (pieces + 7) >>> 3;
  }

  /** True when the spare bits after `pieces` in the last byte are zero (BEP 3 requires it). */
  static spareBitsClear(bytes: Uint8Array, pieces: number): boolean {
    const spare = bytes.length * 8 - pieces;
    if (spare <= 0) return true;
    const last = bytes[bytes.length - 1] as number;
    return (last & ((1 << spare) - 1)) === 0;
  }

  /** Why `bytes` cannot be a bitfield of `pieces` pieces (wrong length, spare bits set), or null. */
  static problem(bytes: Uint8Array, pieces: number): string | null {
    const want = Bitfield.byteLength(pieces);
    if (bytes.length !== want) return `bitfield of ${bytes.length} bytes; ${pieces} pieces need ${want}`;
    if (!Bitfield.spareBitsClear(bytes, pieces)) return 'bitfield has spare bits set';
    return null;
  }

  static fromIndices(length: number, indices: Iterable<number>): Bitfield {
    const b = new Bitfield(length);
    for (const i of indices) b.set(i);
    return b;
  }

  get count(): number {
    return this.#count;
  }

  get complete(): boolean {
    return this.#count === this.length;
  }

  has(index: number): boolean {
    if (index < 0 || index >= this.length) return false;
    return ((this.bytes[index >>> 3] as number) & (0x80 >>> (index & 7))) !== 0;
  }

  set(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.length) {
      throw new RangeError(`piece index ${index} out of range 0..${this.length - 1}`);
    }
    const byte = index >>> 3;
    const mask = 0x80 >>> (index & 7);
    const old = this.bytes[byte] as number;
    if ((old & mask) === 0) {
      this.bytes[byte] = old | mask;
      this.#count++;
    }
  }

  clear(index: number): void {
    if (!this.has(index)) return;
    const byte = index >>> 3;
    this.bytes[byte] = (this.bytes[byte] as number) & ~(0x80 >>> (index & 7));
    this.#count--;
  }

  /** Piece indices held, ascending. */
  indices(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.length; i++) if (this.has(i)) out.push(i);
    return out;
  }

  /** A copy resized to `length` pieces (bits past the new length are dropped). */
  resized(length: number): Bitfield {
    const b = new Bitfield(length);
    const n = Math.min(length, this.length);
    for (let i = 0; i < n; i++) if (this.has(i)) b.set(i);
    return b;
  }
}

function popcount8(v: number): number {
  let x = v - ((v >>> 1) & 0x55);
  x = (x & 0x33) + ((x >>> 2) & 0x33);
  return (x + (x >>> 4)) & 0x0f;
}
