import type { Bitfield } from '../core/bitfield.js';

/**
 * Where a torrent's bytes live. The peer engine reads blocks it serves and writes whole verified
 * pieces; implementations: the file system (fs-store.ts) and memory (tests, simulation).
 */
export interface PieceStore {
  /**
   * Reads `length` bytes of piece `index` from `begin`; into `into` (its first `length` bytes) when
   * given and the store can, else into a buffer of its own.
   */
  read(index: number, begin: number, length: number, into?: Uint8Array): Promise<Uint8Array>;
  /** Writes a whole verified piece at its offset. */
  write(index: number, data: Uint8Array): Promise<void>;
  /**
   * Pieces already on storage whose hash is right (resume, and a seed's check of its files).
   * `check` gets each piece in a buffer reused for the next: it must not keep it.
   */
  verifyExisting(check: (index: number, data: Uint8Array) => Promise<boolean>): Promise<Bitfield>;
  /** Everything is written and verified: make it appear under its final name. */
  finish(): Promise<void>;
  close(): Promise<void>;
}
