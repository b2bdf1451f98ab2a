import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { createTorrent } from '../../src/node/create-torrent.js';
import { FsStore } from '../../src/storage/fs-store.js';

// The real node:fs/promises, with its `open` counted (every call goes through to the real one).
const opened = vi.hoisted(() => ({ paths: [] as string[] }));
vi.mock('node:fs/promises', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...real,
    open: (...a: Parameters<typeof real.open>) => {
      opened.paths.push(String(a[0]));
      return real.open(...a);
    },
  };
});

/** The resume check of a download that has not started yet: nothing to read, so (almost) nothing read. */
describe('resume check', () => {
  let dir = '';
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('tries each missing file once, not once per piece, and still finds the pieces of files that are there', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-resume-'));
    const piece = 16384;
    const src = join(dir, 'album');
    await mkdir(src);
    const a = Buffer.alloc(200 * piece + 5, 1);
    const b = Buffer.alloc(100 * piece, 2);
    await writeFile(join(src, 'a.bin'), a);
    await writeFile(join(src, 'b.bin'), b);
    const { meta } = await createTorrent(src, { pieceLength: piece });
    const out = join(dir, 'out');
    // Only a.bin is there (under the partial name, as a download interrupted after a.bin).
    await mkdir(join(out, 'album.part'), { recursive: true });
    await writeFile(join(out, 'album.part', 'a.bin'), a);

    opened.paths.length = 0;
    const store = await FsStore.open(meta, out, 'download');
    const have = await store.verifyExisting(async () => true);
    await store.close();
    // Pieces 0-199 lie wholly in a.bin; piece 200 spans both files; the rest are in b.bin alone.
    expect(have.count).toBe(200);
    for (let i = 0; i < 200; i++) expect(have.has(i)).toBe(true);
    expect(opened.paths.filter((p) => p.endsWith('b.bin')).length).toBe(1);
    expect(opened.paths.filter((p) => p.endsWith('a.bin')).length).toBe(1);
  });
});
