import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../src/core/bitfield.js';
import { BufferPool } from '../../src/core/buffer-pool.js';
import { nodeHasher } from '../../src/net/system.js';
import { HashedBlockStore, MAX_WINDOWS, READ_AHEAD } from '../../src/node/fs-block-store.js';
import type { PieceStore } from '../../src/storage/piece-store.js';

/** Serving reads ahead within a piece: one storage read for a run of block requests, the right bytes. */

const PL = 1024 * 1024;
const BLOCK = 16 * 1024;

function setup(pieces: number, lastPiece = PL, pool: BufferPool | null = null) {
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
    async read(index, begin, len, into) {
      reads.push([index, begin, len]);
      const at = index * PL + begin;
      if (at + len > length) throw new Error('read past the end');
      // A turn of the event loop, as a file read takes.
      await new Promise((r) => setImmediate(r));
      if (into === undefined) return Buffer.from(data.subarray(at, at + len));
      into.set(data.subarray(at, at + len));
      return into.subarray(0, len);
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
    pool,
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

describe('BufferPool', () => {
  it('gives a buffer back only when its last lease ends; foreign buffers are left alone', () => {
    const pool = new BufferPool(1024, 2);
    const a = pool.take();
    pool.retain(a.subarray(0, 10));
    pool.retain(a.subarray(10, 20));
    pool.release(a);
    pool.release(a.subarray(0, 10));
    expect(pool.free).toBe(0);
    expect(pool.take().buffer).not.toBe(a.buffer);
    pool.release(a.subarray(10, 20));
    expect(pool.free).toBe(1);
    expect(pool.take().buffer).toBe(a.buffer);
    // Not from the pool, or released once too often: nothing happens.
    const foreign = new Uint8Array(1024);
    pool.retain(foreign);
    pool.release(foreign);
    pool.release(a);
    pool.release(a);
    expect(pool.free).toBe(1);
    expect(pool.made).toBe(2);
  });

  it('keeps at most maxFree buffers free', () => {
    const pool = new BufferPool(64, 2);
    const taken = [pool.take(), pool.take(), pool.take(), pool.take()];
    for (const b of taken) pool.release(b);
    expect(pool.free).toBe(2);
  });
});

describe('HashedBlockStore read-ahead into pooled buffers', () => {
  it('reuses window buffers once their blocks are released, never one whose block is still held', async () => {
    const pieces = 3 * MAX_WINDOWS;
    const pool = new BufferPool(READ_AHEAD, MAX_WINDOWS);
    const { blocks, data } = setup(pieces, PL, pool);
    const expected = (i: number, begin: number) => data.subarray(i * PL + begin, i * PL + begin + BLOCK);
    // Every window's first block is kept unsent (held); the others are "sent" (released) at once.
    const held: [number, Uint8Array][] = [];
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < pieces; i++) {
        const begin = round * READ_AHEAD;
        const first = await blocks.read(i, begin, BLOCK);
        if (i % 4 === 0) held.push([i * PL + begin, first]);
        else pool.release(first);
        for (let b = begin + BLOCK; b < begin + READ_AHEAD; b += BLOCK) {
          const x = await blocks.read(i, b, BLOCK);
          expect(Buffer.from(x).equals(expected(i, b))).toBe(true);
          pool.release(x);
        }
      }
    }
    // Windows whose blocks were all released were reused: far fewer buffers than windows read.
    expect(pool.made).toBeLessThan(3 * pieces);
    expect(pool.made).toBeGreaterThanOrEqual(held.length);
    // The held blocks still hold their own bytes: their buffers were never read into again.
    for (const [at, b] of held) expect(Buffer.from(b).equals(data.subarray(at, at + BLOCK))).toBe(true);
  });

  it('a window evicted while its read is still running is not reused before the read ends', async () => {
    const pool = new BufferPool(READ_AHEAD, MAX_WINDOWS);
    const { blocks, data } = setup(MAX_WINDOWS + 2, PL, pool);
    // Start reads of more windows than are kept, without waiting: the first is evicted mid-read.
    const all = Array.from({ length: MAX_WINDOWS + 2 }, (_, i) => blocks.read(i, 0, BLOCK));
    const got = await Promise.all(all);
    got.forEach((b, i) => {
      expect(Buffer.from(b).equals(data.subarray(i * PL, i * PL + BLOCK))).toBe(true);
    });
    expect(pool.made).toBe(MAX_WINDOWS + 2);
  });
});
