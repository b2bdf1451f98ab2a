import type { Hasher } from '../core/deps.js';
import { sameBytes } from '../core/deps.js';
import type { PieceStore } from '../storage/piece-store.js';
import type { BlockStore } from '../swarm/interpreter.js';

/**
 * The core's view of a torrent's storage: blocks read from the piece store, pieces checked
 * against the torrent's SHA-1s and written before they count as verified (so a piece is announced
 * and served only once it is on storage).
 */
export class HashedBlockStore implements BlockStore {
  readonly #store: PieceStore;
  readonly #hashes: Uint8Array;
  readonly #hasher: Hasher;

  constructor(store: PieceStore, pieceHashes: Uint8Array, hasher: Hasher) {
    this.#store = store;
    this.#hashes = pieceHashes;
    this.#hasher = hasher;
  }

  /** Whether `data` is piece `index` by the torrent's hashes. */
  matches(index: number, data: Uint8Array): boolean {
    return sameBytes(this.#hasher.sha1(data), this.#hashes.subarray(index * 20, index * 20 + 20));
  }

  read(index: number, begin: number, length: number): Promise<Uint8Array> {
    return this.#store.read(index, begin, length);
  }

  verify(index: number, data: Uint8Array): boolean | Promise<boolean> {
    if (!this.matches(index, data)) return false;
    return this.#store.write(index, data).then(() => true);
  }
}
