import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bencode from 'bencode';
import { afterAll, describe, expect, it } from 'vitest';
import { checkPathComponent, magnetUri, parseTorrent } from '../../src/core/metainfo.js';
import { nodeHasher } from '../../src/net/system.js';
import { createTorrent, parseSize } from '../../src/node/create-torrent.js';

const sha1 = nodeHasher.sha1;

const hashes = (n: number) => Buffer.alloc(20 * n, 7);

function torrent(info: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return Buffer.from(bencode.encode({ announce: 'http://t/announce', ...extra, info }));
}

describe('parseTorrent', () => {
  it('reads a single-file torrent and hashes the info bytes as written', () => {
    const info = { length: 40000, name: 'a.bin', 'piece length': 16384, pieces: hashes(3) };
    const bytes = torrent(info);
    const m = parseTorrent(bytes, sha1);
    expect(m).toMatchObject({
      name: 'a.bin',
      length: 40000,
      pieceCount: 3,
      multiFile: false,
      trackers: ['http://t/announce'],
    });
    expect(m.files).toEqual([{ path: ['a.bin'], length: 40000, offset: 0 }]);
    expect(m.infoHashHex).toBe(createHash('sha1').update(bencode.encode(info)).digest('hex'));
  });

  it('hashes a non-canonical info dictionary from its original bytes', () => {
    // Keys out of order: a re-encoding would sort them and give another hash.
    const raw = Buffer.concat([
      Buffer.from('d4:infod4:name1:x6:lengthi5e12:piece lengthi16384e6:pieces20:'),
      Buffer.alloc(20, 1),
      Buffer.from('ee'),
    ]);
    const m = parseTorrent(raw, sha1);
    const start = raw.indexOf('d4:name');
    expect(m.infoHashHex).toBe(
      createHash('sha1')
        .update(raw.subarray(start, raw.length - 1))
        .digest('hex'),
    );
  });

  it('reads a multi-file torrent with offsets and announce-list', () => {
    const info = {
      files: [
        { length: 10, path: ['a', 'one.txt'] },
        { length: 20000, path: ['two.bin'] },
      ],
      name: 'folder',
      'piece length': 16384,
      pieces: hashes(2),
    };
    const m = parseTorrent(
      torrent(info, { 'announce-list': [['http://t/announce'], ['http://u/announce']] }),
      sha1,
    );
    expect(m.multiFile).toBe(true);
    expect(m.files).toEqual([
      { path: ['a', 'one.txt'], length: 10, offset: 0 },
      { path: ['two.bin'], length: 20000, offset: 10 },
    ]);
    expect(m.trackers).toEqual(['http://t/announce', 'http://u/announce']);
  });

  const bad: [string, Buffer, RegExp][] = [
    ['garbage', Buffer.from('hello'), /not a torrent/],
    ['no info', Buffer.from(bencode.encode({ announce: 'x' })), /no info/],
    [
      'pieces not a multiple of 20',
      torrent({ length: 1, name: 'a', 'piece length': 16384, pieces: Buffer.alloc(19) }),
      /20-byte/,
    ],
    [
      'wrong piece count',
      torrent({ length: 40000, name: 'a', 'piece length': 16384, pieces: hashes(2) }),
      /need 3/,
    ],
    [
      'negative length',
      torrent({ length: -1, name: 'a', 'piece length': 16384, pieces: hashes(0) }),
      /length/,
    ],
    [
      'zero piece length',
      torrent({ length: 1, name: 'a', 'piece length': 0, pieces: hashes(1) }),
      /piece length/,
    ],
    [
      'a name with ..',
      torrent({ length: 1, name: '..', 'piece length': 16384, pieces: hashes(1) }),
      /unsafe/,
    ],
    [
      'a name with a slash',
      torrent({ length: 1, name: 'a/b', 'piece length': 16384, pieces: hashes(1) }),
      /unsafe/,
    ],
    [
      'a path with ..',
      torrent({
        files: [{ length: 1, path: ['..', 'etc', 'passwd'] }],
        name: 'd',
        'piece length': 16384,
        pieces: hashes(1),
      }),
      /unsafe/,
    ],
    [
      'an absolute path',
      torrent({
        files: [{ length: 1, path: ['/etc/passwd'] }],
        name: 'd',
        'piece length': 16384,
        pieces: hashes(1),
      }),
      /unsafe/,
    ],
    [
      'a drive letter',
      torrent({
        files: [{ length: 1, path: ['C:', 'x'] }],
        name: 'd',
        'piece length': 16384,
        pieces: hashes(1),
      }),
      /unsafe/,
    ],
    [
      'a backslash path',
      torrent({
        files: [{ length: 1, path: ['..\\..\\x'] }],
        name: 'd',
        'piece length': 16384,
        pieces: hashes(1),
      }),
      /unsafe/,
    ],
    [
      'an empty component',
      torrent({ files: [{ length: 1, path: [''] }], name: 'd', 'piece length': 16384, pieces: hashes(1) }),
      /empty/,
    ],
    [
      'a file listed twice',
      torrent({
        files: [
          { length: 1, path: ['x'] },
          { length: 1, path: ['x'] },
        ],
        name: 'd',
        'piece length': 16384,
        pieces: hashes(1),
      }),
      /twice/,
    ],
    [
      'a file that is also a folder',
      torrent({
        files: [
          { length: 1, path: ['x'] },
          { length: 1, path: ['x', 'y'] },
        ],
        name: 'd',
        'piece length': 16384,
        pieces: hashes(1),
      }),
      /both a file and a folder/,
    ],
    [
      'both length and files',
      torrent({
        length: 1,
        files: [{ length: 1, path: ['x'] }],
        name: 'd',
        'piece length': 16384,
        pieces: hashes(1),
      }),
      /both/,
    ],
    [
      'truncated bencode',
      torrent({ length: 1, name: 'a', 'piece length': 16384, pieces: hashes(1) }).subarray(0, 30),
      /not a torrent/,
    ],
  ];
  for (const [what, bytes, msg] of bad) {
    it(`rejects ${what} with a clear message`, () => {
      expect(() => parseTorrent(bytes, sha1)).toThrow(msg);
      try {
        parseTorrent(bytes, sha1);
      } catch (e) {
        expect((e as { code: string }).code).toBe('ERR_BAD_TORRENT');
      }
    });
  }

  it('checkPathComponent accepts ordinary names', () => {
    for (const ok of ['file.txt', 'a b', 'ünïcødé', '.hidden', '...'])
      expect(checkPathComponent(ok)).toBe(ok);
  });
});

describe('createTorrent', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('makes a single-file torrent whose hashes match the data', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ss-create-'));
    dirs.push(dir);
    const data = Buffer.alloc(100_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 255;
    await writeFile(join(dir, 'f.bin'), data);
    const { meta } = await createTorrent(join(dir, 'f.bin'), {
      pieceLength: 32768,
      trackers: ['http://x/announce'],
    });
    expect(meta.pieceCount).toBe(4);
    for (let i = 0; i < 4; i++) {
      const expected = createHash('sha1')
        .update(data.subarray(i * 32768, (i + 1) * 32768))
        .digest();
      expect(Buffer.from(meta.pieceHashes.subarray(i * 20, i * 20 + 20)).equals(expected)).toBe(true);
    }
    expect(magnetUri(meta)).toBe(
      `magnet:?xt=urn:btih:${meta.infoHashHex}&dn=f.bin&xl=100000&tr=http%3A%2F%2Fx%2Fannounce`,
    );
  });

  it('makes a folder torrent with pieces spanning files, in sorted order', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ss-create-'));
    dirs.push(dir);
    await mkdir(join(dir, 'd', 'sub'), { recursive: true });
    await writeFile(join(dir, 'd', 'b.txt'), Buffer.alloc(20000, 2));
    await writeFile(join(dir, 'd', 'a.txt'), Buffer.alloc(20000, 1));
    await writeFile(join(dir, 'd', 'sub', 'c.txt'), Buffer.alloc(5, 3));
    const { meta } = await createTorrent(join(dir, 'd'), { pieceLength: 16384 });
    expect(meta.files.map((f) => f.path.join('/'))).toEqual(['a.txt', 'b.txt', 'sub/c.txt']);
    const all = Buffer.concat([Buffer.alloc(20000, 1), Buffer.alloc(20000, 2), Buffer.alloc(5, 3)]);
    const second = createHash('sha1').update(all.subarray(16384, 32768)).digest();
    expect(Buffer.from(meta.pieceHashes.subarray(20, 40)).equals(second)).toBe(true);
  });

  it('refuses a piece size that is not a power of two of at least 16 KiB', async () => {
    await expect(createTorrent(__filename, { pieceLength: 1000 })).rejects.toThrow(/power of two/);
  });

  it('parses sizes', () => {
    expect(parseSize('256KiB')).toBe(262144);
    expect(parseSize('4MiB')).toBe(4194304);
    expect(parseSize('1.5k')).toBe(1536);
    expect(() => parseSize('lots')).toThrow(/not a size/);
  });
});

describe('announce-list tiers (BEP 12)', () => {
  const info = { length: 5, name: 'f', 'piece length': 16384, pieces: Buffer.alloc(20) };
  it('reads the tiers as given (announce-list wins over announce), dropping empties and repeats', () => {
    const raw = bencode.encode({
      announce: 'http://a/announce',
      'announce-list': [
        ['udp://b:1/announce', 'http://c/announce'],
        [],
        ['udp://b:1/announce', 'http://d/announce'],
      ],
      info,
    });
    const m = parseTorrent(raw, sha1);
    expect(m.tiers).toEqual([['udp://b:1/announce', 'http://c/announce'], ['http://d/announce']]);
    expect(m.trackers).toEqual([
      'http://a/announce',
      'udp://b:1/announce',
      'http://c/announce',
      'http://d/announce',
    ]);
    expect(parseTorrent(bencode.encode({ announce: 'http://a/announce', info }), sha1).tiers).toEqual([
      ['http://a/announce'],
    ]);
  });

  it('create writes tiers: announce is the first URL, announce-list the tiers', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ss-tiers-'));
    await writeFile(join(dir, 'f'), 'hello');
    const { bytes, meta } = await createTorrent(join(dir, 'f'), {
      tiers: [['udp://b:1/announce', 'http://c/announce']],
      trackers: ['http://d/announce'],
    });
    const root = bencode.decode(bytes) as Record<string, unknown>;
    expect(Buffer.from(root.announce as Uint8Array).toString()).toBe('udp://b:1/announce');
    expect(meta.tiers).toEqual([['udp://b:1/announce', 'http://c/announce'], ['http://d/announce']]);
    await rm(dir, { recursive: true, force: true });
  });
});
