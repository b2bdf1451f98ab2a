/**
 * Pieces being put together from blocks, and who sent what: the piece buffers (recycled), each
 * piece's contributors and the sender of each block, and the bad copies of failed pieces kept to
 * find the liar once the piece verifies. Pure: the core feeds it blocks and verdicts and acts on
 * the peers it names. Invariants: STATE.md beside this file.
 */

/** Failed pieces kept to find which contributor lied (each holds one bad copy of a piece). */
export const MAX_SUSPECTS = 8;
/** Piece buffers kept for reuse: enough for the pieces usually in flight at once. */
export const MAX_FREE_BUFFERS = 16;

const NO_DATA = new Uint8Array(0);

export interface PieceInAssembly {
  data: Uint8Array;
  contributors: Set<string>;
  /** Who sent each block (by block number). */
  owners: (string | undefined)[];
}

export class Assembly {
  readonly #pieceLength: number;
  readonly #blockLength: number;
  /** False: blocks carry no bytes (a simulator); only contributors are kept. */
  readonly #bytes: boolean;
  readonly #pieces = new Map<number, PieceInAssembly>();
  readonly #free: Uint8Array[] = [];
  /** Failed pieces with several contributors: the bad copy and who sent each block. */
  readonly #suspects = new Map<number, { data: Uint8Array; owners: (string | undefined)[] }>();

  constructor(pieceLength: number, blockLength: number, bytes: boolean) {
    this.#pieceLength = pieceLength;
    this.#blockLength = blockLength;
    this.#bytes = bytes;
  }

  /** A new block of piece `index` (of `size` bytes) from `peerId`: returns the piece so far. */
  add(index: number, size: number, begin: number, block: Uint8Array, peerId: string): PieceInAssembly {
    let a = this.#pieces.get(index);
    if (a === undefined) {
      const data = this.#bytes ? this.#pieceBuffer(size) : NO_DATA;
      a = { data, contributors: new Set(), owners: [] };
      this.#pieces.set(index, a);
    }
    a.contributors.add(peerId);
    if (this.#bytes) {
      a.data.set(block, begin);
      // Who sent which block: only needed to blame a liar by comparing bytes.
      a.owners[begin / this.#blockLength] = peerId;
    }
    return a;
  }

  /** A piece buffer: a recycled one when the size fits (no zeroing, no garbage per piece). */
  #pieceBuffer(size: number): Uint8Array {
    if (size === this.#pieceLength) {
      const b = this.#free.pop();
      if (b !== undefined) return b;
    }
    return new Uint8Array(size);
  }

  /**
   * The piece's verdict is in: it leaves assembly and its buffer is recycled (the driver no longer
   * holds it). Returns what was assembled, if anything.
   */
  finish(index: number): PieceInAssembly | undefined {
    const a = this.#pieces.get(index);
    this.#pieces.delete(index);
    if (a !== undefined && a.data.length === this.#pieceLength && this.#free.length < MAX_FREE_BUFFERS) {
      this.#free.push(a.data);
    }
    return a;
  }

  /**
   * A piece failed its hash. One contributor: it is the liar (returned). Several: the bad copy is
   * kept (bounded) so the blocks that differ from the good copy name the liars later; honest
   * co-contributors are never blamed.
   */
  failed(index: number, a: PieceInAssembly | undefined): string | null {
    const contributors = a === undefined ? [] : [...a.contributors];
    if (contributors.length === 1) return contributors[0] as string;
    if (a !== undefined && this.#bytes && this.#suspects.size < MAX_SUSPECTS)
      this.#suspects.set(index, { data: a.data.slice(), owners: a.owners.slice() });
    return null;
  }

  /** A piece that failed with several contributors now verified: whoever sent a differing block, in block order. */
  convict(index: number, good: Uint8Array): string[] {
    const suspect = this.#suspects.get(index);
    if (suspect === undefined) return [];
    this.#suspects.delete(index);
    const liars: string[] = [];
    for (let b = 0; b < suspect.owners.length; b++) {
      const owner = suspect.owners[b];
      if (owner === undefined) continue;
      const begin = b * this.#blockLength;
      const end = Math.min(good.length, begin + this.#blockLength);
      for (let i = begin; i < end; i++) {
        if (suspect.data[i] !== good[i]) {
          liars.push(owner);
          break;
        }
      }
    }
    return liars;
  }
}
