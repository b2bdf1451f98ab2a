import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTorrent } from '../../src/node/create-torrent.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { patchFileHandle } from '../support/file-handle.js';

/** Pieces handed to the store at once reach the file one write at a time, each in full. */
describe('piece writes', () => {
  let dir = '';
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('run one at a time, in the order asked, and a failed one does not hold the rest up', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-writes-'));
    const piece = 16384;
    const data = Buffer.alloc(48 * piece);
    for (let i = 0; i < data.length; i++) data[i] = (i * 13 + (i >> 14)) & 0xff;
    await writeFile(join(dir, 'file.bin'), data);
    const { meta } = await createTorrent(join(dir, 'file.bin'), { pieceLength: piece });
    const out = join(dir, 'out');
    await mkdir(out);
    const store = await FsStore.open(meta, out, 'download');

    // Watch the file handle's writes (the real ones run): how many are in flight at once, and
    // which offsets, in order.
    let inFlight = 0;
    let most = 0;
    const offsets: number[] = [];
    const unpatch = await patchFileHandle(
      'write',
      (real) =>
        async function (this: unknown, ...a: unknown[]) {
          inFlight++;
          most = Math.max(most, inFlight);
          offsets.push(a[3] as number);
          try {
            return await real.apply(this, a);
          } finally {
            inFlight--;
          }
        },
    );

    const order = [5, 0, 47, 12, 13, 1, 30, 2, 3, 4];
    for (let i = 6; i < 47; i++) if (!order.includes(i) && i !== 12 && i !== 13 && i !== 30) order.push(i);
    // One write given a wrong-sized piece fails; those after it still run.
    const writes = order.map((i) =>
      store.write(i, i === 3 ? Buffer.alloc(piece * 2) : data.subarray(i * piece, (i + 1) * piece)),
    );
    const results = await Promise.allSettled(writes);
    unpatch();

    expect(most).toBe(1);
    expect(offsets.filter((o) => o !== undefined)).toEqual(
      order.filter((i) => i !== 3).map((i) => i * piece),
    );
    expect(results.map((r) => r.status)).toEqual(order.map((i) => (i === 3 ? 'rejected' : 'fulfilled')));
    await store.write(3, data.subarray(3 * piece, 4 * piece));
    await store.finish();
    expect((await readFile(join(out, 'file.bin'))).equals(data)).toBe(true);
  });
});
