import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createTorrent } from '../../src/node/create-torrent.js';
import { FLUSH_EVERY, FsStore } from '../../src/storage/fs-store.js';
import { patchFileHandle } from '../support/file-handle.js';

/**
 * A download's data is flushed to disk in the background as it is written (so the final fsync has
 * little left), and a flush that fails is not forgotten.
 */
describe('background flushes', () => {
  let dir = '';
  afterAll(() => rm(dir, { recursive: true, force: true }));

  async function setup(name: string) {
    const piece = 1024 * 1024;
    const pieces = FLUSH_EVERY / piece + 8;
    const data = Buffer.alloc(pieces * piece);
    for (let i = 0; i < pieces; i++) data.fill(i & 0xff, i * piece, (i + 1) * piece);
    await writeFile(join(dir, name), data);
    const { meta } = await createTorrent(join(dir, name), { pieceLength: piece });
    const out = join(dir, `${name}-out`);
    await mkdir(out);
    return { data, meta, out, piece, pieces, store: await FsStore.open(meta, out, 'download') };
  }

  it('flushes once FLUSH_EVERY bytes are written, before the end, and the whole is there after', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-flush-'));
    const calls: string[] = [];
    for (const m of ['datasync', 'sync', 'write'])
      await patchFileHandle(
        m,
        (real) =>
          function (this: unknown, ...a: unknown[]) {
            calls.push(m);
            return real.apply(this, a);
          },
      );
    const { data, out, piece, pieces, store } = await setup('a.bin');
    for (let i = 0; i < pieces; i++) await store.write(i, data.subarray(i * piece, (i + 1) * piece));
    const firstFlush = calls.indexOf('datasync');
    // The first flush comes right after the write that reached FLUSH_EVERY bytes, not at the end.
    expect(calls.slice(0, firstFlush).filter((c) => c === 'write').length).toBe(FLUSH_EVERY / piece);
    await store.finish();
    expect(calls.at(-1)).toBe('sync');
    expect((await readFile(join(out, 'a.bin'))).equals(data)).toBe(true);
  });

  it('a background flush that fails makes finish fail, and the download keeps its partial name', async () => {
    await patchFileHandle('datasync', () => async () => {
      throw new Error('EIO: i/o error, fdatasync');
    });
    const { data, out, piece, pieces, store } = await setup('b.bin');
    for (let i = 0; i < pieces; i++) await store.write(i, data.subarray(i * piece, (i + 1) * piece));
    await expect(store.finish()).rejects.toMatchObject({ code: 'ERR_STORAGE', message: /EIO/ });
    await expect(readFile(join(out, 'b.bin'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await readFile(join(out, 'b.bin.part'))).length).toBe(data.length);
  });
});
