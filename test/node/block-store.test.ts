import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../src/core/bitfield.js';
import { nodeHasher } from '../../src/net/system.js';
import { HashedBlockStore, MAX_WINDOWS, READ_AHEAD } from '../../src/node/fs-block-store.js';
import type { PieceStore } from '../../src/storage/piece-store.js';

/** Serving reads ahead within a piece: one storage read for a run of block requests, the right bytes. */

const PL = 1024 * 1024;
const BLOCK = 16 * 1024;

function setup(pieces: number, lastPiece = PL) {
  const length = PL * (pieces - 1) + lastPiece;
  const data = Buffer.alloc(length);
  for (let i = 0; i < length; i++) data[i] = (i * 7 + (i >> 12)) & 0xff;
  const hashes = Buffer.concat(
    Array.from({ length: pieces }, (_, i) =>
      createHash('sha1')
        .update(data.subarray(i * PL, Math.min(length, (i + 1) * PL)))
        .digest(),
    ),
  );
  const reads: [number, number, number][] = [];
  const store: PieceStore = {
    async read(index, begin, len) {
      reads.push([index, begin, len]);
      const at = index * PL + begin;
      if (at + len > length) throw new Error('read past the end');
      return Buffer.from(data.subarray(at, at + len));
    },
    async write() {},
    async verifyExisting() {
      return new Bitfield(pieces);
    },
    async finish() {},
    async close() {},
  };
  const blocks = new HashedBlockStore(
    store,
    { pieceLength: PL, length, pieceCount: pieces, pieceHashes: hashes },
    nodeHasher,
  );
  return { blocks, reads, data };
}

describe('HashedBlockStore read-ahead', () => {
  it('serves a piece’s blocks asked in order with one read per READ_AHEAD bytes, byte for byte', async () => {
    const { blocks, reads, data } = setup(3);
    for (let begin = 0; begin < PL; begin += BLOCK) {
      const b = await blocks.read(1, begin, BLOCK);
      expect(Buffer.from(b).equals(data.subarray(PL + begin, PL + begin + BLOCK))).toBe(true);
    }
    expect(reads.length).toBe(PL / READ_AHEAD);
    expect(reads.every(([i, , len]) => i === 1 && len === READ_AHEAD)).toBe(true);
  });

  it('never reads past a short last piece; odd offsets and lengths still come out right', async () => {
    const { blocks, reads, data } = setup(2, 100_000);
    const b = await blocks.read(1, 90_000, 10_000);
    expect(Buffer.from(b).equals(data.subarray(PL + 90_000, PL + 100_000))).toBe(true);
    expect(reads).toEqual([[1, 90_000, 10_000]]);
    const c = await blocks.read(0, 5, 333);
    expect(Buffer.from(c).equals(data.subarray(5, 338))).toBe(true);
  });

  it('keeps at most MAX_WINDOWS windows; requests racing one read share it', async () => {
    const { blocks, reads } = setup(MAX_WINDOWS + 4);
    await Promise.all([
      blocks.read(0, 0, BLOCK),
      blocks.read(0, BLOCK, BLOCK),
      blocks.read(0, 2 * BLOCK, BLOCK),
    ]);
    expect(reads.length).toBe(1);
    for (let i = 1; i <= MAX_WINDOWS; i++) await blocks.read(i, 0, BLOCK);
    // Piece 0's window was the least recently used: it is gone, so asking again reads again.
    const before = reads.length;
    await blocks.read(0, 3 * BLOCK, BLOCK);
    expect(reads.length).toBe(before + 1);
  });
});
