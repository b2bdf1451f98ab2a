import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTorrent } from '../../src/node/create-torrent.js';
import { FsStore } from '../../src/storage/fs-store.js';

describe('reads racing the final rename', () => {
  let dir = '';
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('a piece read while the download is renamed to its final name is still served', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-finish-'));
    const data = Buffer.alloc(20 * 16384);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    await writeFile(join(dir, 'file.bin'), data);
    const { meta } = await createTorrent(join(dir, 'file.bin'), { pieceLength: 16384 });
    const out = join(dir, 'out');
    await mkdir(out);
    const store = await FsStore.open(meta, out, 'download');
    for (let i = 0; i < meta.pieceCount; i++) await store.write(i, data.subarray(i * 16384, (i + 1) * 16384));
    // Peers keep asking for pieces while the last one is stored and the file renamed: reads issued
    // at every turn of the event loop until the rename is done (bounded).
    let finished = false;
    const finishing = store.finish().then(() => {
      finished = true;
    });
    const reads: Promise<{ i: number; bytes: Uint8Array }>[] = [];
    for (let k = 0; k < 2000 && !finished; k++) {
      const i = k % meta.pieceCount;
      reads.push(store.read(i, 0, 16384).then((bytes) => ({ i, bytes })));
      await new Promise((r) => setImmediate(r));
    }
    await finishing;
    const results = await Promise.allSettled(reads);
    const failed = results.filter((r) => r.status === 'rejected');
    expect(failed.map((r) => String((r as PromiseRejectedResult).reason))).toEqual([]);
    for (const r of results) {
      const { i, bytes } = (r as PromiseFulfilledResult<{ i: number; bytes: Uint8Array }>).value;
      expect(Buffer.from(bytes).equals(data.subarray(i * 16384, (i + 1) * 16384))).toBe(true);
    }
    expect(reads.length).toBeGreaterThan(1);
    expect((await readFile(join(out, 'file.bin'))).equals(data)).toBe(true);
    await store.close();
  });

  it('a read that opens the file while it is being renamed waits for the rename and reads the final file', async () => {
    const data = Buffer.alloc(4 * 16384, 5);
    const src = join(dir, 'second.bin');
    await writeFile(src, data);
    const { meta } = await createTorrent(src, { pieceLength: 16384 });
    const out = join(dir, 'out2');
    await mkdir(out);
    const store = await FsStore.open(meta, out, 'download');
    for (let i = 0; i < meta.pieceCount; i++) await store.write(i, data.subarray(i * 16384, (i + 1) * 16384));
    // No handle open: the read must open the file, by its partial name, while finish renames it.
    await store.close();
    const rounds = await Promise.allSettled([
      store.finish(),
      store.read(1, 0, 16384),
      store.read(3, 0, 16384),
    ]);
    expect(rounds.map((r) => (r.status === 'rejected' ? String(r.reason) : 'ok'))).toEqual([
      'ok',
      'ok',
      'ok',
    ]);
    expect((await readFile(join(out, 'second.bin'))).equals(data)).toBe(true);
    await store.close();
  });
});
