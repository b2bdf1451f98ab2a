import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTorrent } from '../../src/node/create-torrent.js';
import { FsStore } from '../../src/storage/fs-store.js';

describe('nothing is read or written outside the chosen folder', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-paths-'));
    await mkdir(join(dir, 'src', 'album', 'sub'), { recursive: true });
    await writeFile(join(dir, 'src', 'album', 'a.bin'), Buffer.alloc(40_000, 1));
    await writeFile(join(dir, 'src', 'album', 'sub', 'b.bin'), Buffer.alloc(30_000, 2));
    await writeFile(join(dir, 'src', 'one.bin'), Buffer.alloc(50_000, 3));
    await mkdir(join(dir, 'outside'));
    await writeFile(join(dir, 'outside', 'precious.txt'), 'do not touch');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('a symlink in the download folder under the partial name is not followed', async () => {
    const { meta } = await createTorrent(join(dir, 'src', 'one.bin'), { pieceLength: 16384 });
    const out = join(dir, 'dl1');
    await mkdir(out);
    await symlink(join(dir, 'outside', 'precious.txt'), join(out, 'one.bin.part'));
    const store = await FsStore.open(meta, out, 'download');
    await expect(store.write(0, Buffer.alloc(16384, 9))).rejects.toMatchObject({ code: 'ERR_UNSAFE_PATH' });
    await expect(store.verifyExisting(async () => true)).rejects.toMatchObject({ code: 'ERR_UNSAFE_PATH' });
    await store.close();
    expect(await readFile(join(dir, 'outside', 'precious.txt'), 'utf8')).toBe('do not touch');
  });

  it('a symlinked folder inside a multi-file download that leads outside is refused', async () => {
    const { meta } = await createTorrent(join(dir, 'src', 'album'), { pieceLength: 16384 });
    const out = join(dir, 'dl2');
    await mkdir(join(out, 'album.part'), { recursive: true });
    await symlink(join(dir, 'outside'), join(out, 'album.part', 'sub'));
    const store = await FsStore.open(meta, out, 'download');
    // Piece 2 holds the first bytes of sub/b.bin (a.bin is 40,000 bytes).
    const last = meta.pieceCount - 1;
    await expect(store.write(last, Buffer.alloc(meta.length - last * 16384, 7))).rejects.toMatchObject({
      code: 'ERR_UNSAFE_PATH',
    });
    await store.close();
    expect(await readFile(join(dir, 'outside', 'precious.txt'), 'utf8')).toBe('do not touch');
  });

  it('a shared folder holding a symlink to a file outside does not share that file', async () => {
    await symlink(join(dir, 'outside', 'precious.txt'), join(dir, 'src', 'album', 'link.txt'));
    const { meta } = await createTorrent(join(dir, 'src', 'album'), { pieceLength: 16384 });
    expect(meta.files.map((f) => f.path.join('/'))).toEqual(['a.bin', 'sub/b.bin']);
  });

  it('a seed opens its files read-only: it cannot write them', async () => {
    const { meta } = await createTorrent(join(dir, 'src', 'one.bin'), { pieceLength: 16384 });
    const store = await FsStore.open(meta, join(dir, 'src'), 'seed');
    await expect(store.write(0, Buffer.alloc(16384))).rejects.toMatchObject({ code: 'ERR_STORAGE' });
    expect((await store.read(0, 0, 4)).every((b) => b === 3)).toBe(true);
    await store.close();
  });
});
