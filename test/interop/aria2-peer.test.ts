import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTorrent } from '../../src/core/metainfo.js';
import { nodeHasher } from '../../src/net/system.js';
import { type RunningTracker, startTracker } from '../../src/tracker-server/server.js';
import { aria2Flags, freePort, randomFile, sha256File, start, stopAll, waitFor } from '../support/proc.js';

const CLI = 'dist/cli/main.js';
const within = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms))]);

describe('swarmshare peers and aria2c trade both ways (loopback)', () => {
  let tracker: RunningTracker;
  let dir = '';

  /** A random file in `folder`, its torrent made by `swarmshare create` for our tracker, seeded by aria2c (announced). */
  async function aria2Seeds(folder: string, name: string, size: number, pieceSize: string) {
    const src = join(dir, folder);
    await mkdir(src);
    await randomFile(join(src, name), size);
    const torrent = join(dir, `${name}.torrent`);
    const create = start('node', [
      CLI,
      'create',
      join(src, name),
      '--tracker',
      `${tracker.url}/announce`,
      '--piece-size',
      pieceSize,
      '-o',
      torrent,
    ]);
    expect(await create.exited).toBe(0);
    const hex = /Info hash: ([0-9a-f]{40})/.exec(create.output())?.[1] as string;
    start('aria2c', [
      ...aria2Flags(src, await freePort()),
      '--seed-ratio=0.0',
      '--check-integrity=true',
      torrent,
    ]);
    await waitFor(
      'aria2c to announce as a seed',
      () => ((tracker.registry.swarmById(hex)?.seeds ?? 0) >= 1 ? true : undefined),
      30_000,
    );
    return { src, torrent, hex };
  }
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-aria2-peer-'));
    tracker = await startTracker({ port: 0 }, { interval: 5 });
  });
  afterAll(async () => {
    await stopAll();
    await tracker.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('aria2c downloads from `swarmshare share`', async () => {
    const src = join(dir, 'a-src');
    const out = join(dir, 'a-out');
    await mkdir(src);
    await mkdir(out);
    await randomFile(join(src, 'movie.bin'), 5 * 1024 * 1024 + 777);
    const torrent = join(dir, 'movie.torrent');
    const share = start('node', [
      CLI,
      'share',
      join(src, 'movie.bin'),
      '--tracker',
      `${tracker.url}/announce`,
      '-o',
      torrent,
      '--host',
      '127.0.0.1',
    ]);
    await waitFor(
      'the seeder to listen',
      () => (share.output().includes('Listening:') ? true : undefined),
      20_000,
    );
    expect(share.output()).toMatch(/Info hash: [0-9a-f]{40}/);
    expect(share.output()).toMatch(/Magnet:\s+magnet:\?xt=urn:btih:/);
    const leech = start('aria2c', [...aria2Flags(out, await freePort()), '--seed-time=0', torrent]);
    expect(await within(leech.exited, 60_000), leech.output()).toBe(0);
    expect(await sha256File(join(out, 'movie.bin'))).toBe(await sha256File(join(src, 'movie.bin')));
    share.child.kill('SIGINT');
    expect(await within(share.exited, 10_000)).toBe(0);
    expect(share.output()).toContain('Stopping (SIGINT)');
  }, 90_000);

  it('aria2c given only the magnet link fetches the metadata from `swarmshare share` (BEP 9), then the file', async () => {
    const src = join(dir, 'm-src');
    const out = join(dir, 'm-out');
    await mkdir(src);
    await mkdir(out);
    // Several metadata pieces (over 16 KiB of info dictionary: 1,000 pieces of 16 KiB).
    await randomFile(join(src, 'big.bin'), 16 * 1024 * 1000 - 99);
    const share = start('node', [
      CLI,
      'share',
      join(src, 'big.bin'),
      '--tracker',
      `${tracker.url}/announce`,
      '--piece-size',
      '16KiB',
      '-o',
      join(dir, 'big.torrent'),
    ]);
    const magnet = await waitFor(
      'the magnet link',
      () => /Magnet:\s+(magnet:\S+)/.exec(share.output())?.[1],
      20_000,
    );
    await waitFor('the seeder to listen', () => share.output().includes('Listening:') || undefined, 20_000);
    const leech = start('aria2c', [...aria2Flags(out, await freePort()), '--seed-time=0', magnet]);
    expect(await within(leech.exited, 60_000), leech.output()).toBe(0);
    expect(await sha256File(join(out, 'big.bin'))).toBe(await sha256File(join(src, 'big.bin')));
    share.child.kill('SIGINT');
    await within(share.exited, 10_000);
  }, 90_000);

  it('`swarmshare get` given only a magnet link with x.pe fetches the metadata from an aria2c seeder, then the file', async () => {
    const src = join(dir, 'c-src');
    const out = join(dir, 'c-out');
    await mkdir(src);
    // Over 16 KiB of info dictionary: the metadata comes in two pieces.
    await randomFile(join(src, 'many.bin'), 16 * 1024 * 1200 + 3);
    const torrent = join(dir, 'many.torrent');
    const create = start('node', [
      CLI,
      'create',
      join(src, 'many.bin'),
      '--piece-size',
      '16KiB',
      '-o',
      torrent,
    ]);
    expect(await create.exited).toBe(0);
    const hex = /Info hash: ([0-9a-f]{40})/.exec(create.output())?.[1] as string;
    const port = await freePort();
    // No wait for aria2c to listen: a dial that fails is tried again a second later.
    start('aria2c', [...aria2Flags(src, port), '--seed-ratio=0.0', '--check-integrity=true', torrent]);
    const magnet = `magnet:?xt=urn:btih:${hex}&x.pe=127.0.0.1:${port}`;
    const get = start('node', [CLI, 'get', magnet, '-o', out, '--timeout', '60', '--host', '127.0.0.6']);
    expect(await within(get.exited, 70_000), get.output()).toBe(0);
    expect(get.output()).toContain('Metadata:  many.bin, verified against the info hash');
    expect(await sha256File(join(out, 'many.bin'))).toBe(await sha256File(join(src, 'many.bin')));
  }, 90_000);

  it('`swarmshare get` given a magnet link with tr finds an aria2c seeder through the tracker, fetches the metadata, then the file', async () => {
    const out = join(dir, 'd-out');
    const { src, hex } = await aria2Seeds('d-src', 'tracked.bin', 3 * 1024 * 1024 + 4321, '64KiB');
    const announce = `${tracker.url}/announce`;
    // No x.pe, no --peer: the tracker is the only way to the seeder.
    const magnet = `magnet:?xt=urn:btih:${hex}&dn=tracked.bin&tr=${encodeURIComponent(announce)}`;
    const saved = join(dir, 'tracked-saved.torrent');
    const get = start('node', [
      CLI,
      'get',
      magnet,
      '-o',
      out,
      '--timeout',
      '60',
      '--host',
      '127.0.0.7',
      '--no-dht',
      '--save-torrent',
      saved,
    ]);
    expect(await within(get.exited, 70_000), get.output()).toBe(0);
    expect(get.output()).toContain('Metadata:  tracked.bin, verified against the info hash');
    expect(await sha256File(join(out, 'tracked.bin'))).toBe(await sha256File(join(src, 'tracked.bin')));
    // The .torrent written from the fetched metadata has the same info hash.
    const meta = parseTorrent(await readFile(saved), nodeHasher.sha1);
    expect(meta.infoHashHex).toBe(hex);
    expect(meta.name).toBe('tracked.bin');
  }, 120_000);

  it('`swarmshare get` downloads from an aria2c seeder, using a torrent made by `swarmshare create`', async () => {
    const out = join(dir, 'b-out');
    const { src, torrent } = await aria2Seeds('b-src', 'album.bin', 3 * 1024 * 1024 + 5, '128KiB');
    const get = start('node', [CLI, 'get', torrent, '-o', out, '--timeout', '60', '--host', '127.0.0.5']);
    expect(await within(get.exited, 70_000), get.output()).toBe(0);
    expect(get.output()).toContain('Done:');
    expect(await sha256File(join(out, 'album.bin'))).toBe(await sha256File(join(src, 'album.bin')));
  }, 90_000);
});
