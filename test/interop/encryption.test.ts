import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningTracker, startTracker } from '../../src/tracker-server/server.js';
import { aria2Flags, freePort, randomFile, sha256File, start, stopAll, waitFor } from '../support/proc.js';

/**
 * Encrypted connections (MSE/PE) with a real client that requires them: aria2c with
 * --bt-require-crypto and RC4 as its lowest level refuses every plain peer, so a transfer proves
 * the RC4 path both ways. Then our own peers: `disable` and `require` refuse each other with a
 * reason; `prefer` trades with both.
 */

const CLI = 'dist/cli/main.js';
const within = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms))]);
const ARIA2_CRYPTO = ['--bt-require-crypto=true', '--bt-min-crypto-level=arc4'];

describe('encrypted connections (MSE/PE), with aria2c requiring them', () => {
  let tracker: RunningTracker;
  let dir = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-mse-'));
    tracker = await startTracker({ port: 0 }, { interval: 2 });
  });
  afterAll(async () => {
    await stopAll();
    await tracker.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** A random file and its torrent (made by `swarmshare create`, announcing to our tracker). */
  async function made(name: string, size: number) {
    const src = join(dir, `src-${name}`);
    await mkdir(src);
    await randomFile(join(src, name), size);
    const torrent = join(dir, `${name}.torrent`);
    const c = start('node', [
      CLI,
      'create',
      join(src, name),
      '--tracker',
      `${tracker.url}/announce`,
      '-o',
      torrent,
    ]);
    expect(await c.exited).toBe(0);
    return { src, file: join(src, name), torrent };
  }

  it('`get --encryption require` downloads from an aria2c seed that requires encryption', async () => {
    const t = await made('a.bin', 3 * 1024 * 1024 + 17);
    const port = await freePort();
    start('aria2c', [
      ...aria2Flags(t.src, port),
      ...ARIA2_CRYPTO,
      '--seed-ratio=0.0',
      '--check-integrity=true',
      t.torrent,
    ]);
    const out = join(dir, 'a-out');
    const get = start('node', [
      CLI,
      'get',
      t.torrent,
      '-o',
      out,
      '--peer',
      `127.0.0.1:${port}`,
      '--encryption',
      'require',
      '--no-dht',
      '--min-announce-interval',
      '1',
      '--timeout',
      '60',
    ]);
    expect(await within(get.exited, 70_000)).toBe(0);
    expect(await sha256File(join(out, 'a.bin'))).toBe(await sha256File(t.file));
  }, 90_000);

  it('an aria2c leecher that requires encryption downloads from `share --encryption require`', async () => {
    const t = await made('b.bin', 2 * 1024 * 1024 + 5);
    const share = start('node', [
      CLI,
      'share',
      t.torrent,
      '--dir',
      t.src,
      '--encryption',
      'require',
      '--no-dht',
      '--min-announce-interval',
      '1',
    ]);
    await waitFor(
      'the seeder to listen',
      () => (share.output().includes('Listening:') ? true : undefined),
      20_000,
    );
    const out = join(dir, 'b-out');
    const leech = start('aria2c', [
      ...aria2Flags(out, await freePort()),
      ...ARIA2_CRYPTO,
      '--seed-time=0',
      t.torrent,
    ]);
    expect(await within(leech.exited, 60_000)).toBe(0);
    expect(await sha256File(join(out, 'b.bin'))).toBe(await sha256File(t.file));
    share.child.kill('SIGINT');
    expect(await within(share.exited, 10_000)).toBe(0);
  }, 90_000);

  it('a `disable` peer and a `require` peer refuse each other with a reason; `prefer` trades with both', async () => {
    const t = await made('c.bin', 1024 * 1024 + 3);
    const seedPort = await freePort();
    const share = start('node', [
      CLI,
      'share',
      t.torrent,
      '--dir',
      t.src,
      '--port',
      String(seedPort),
      '--encryption',
      'require',
      '--no-dht',
      '--tracker',
      'http://127.0.0.1:9/announce',
    ]);
    await waitFor(
      'the seeder to listen',
      () => (share.output().includes('Listening:') ? true : undefined),
      20_000,
    );
    const get = (mode: string, out: string, timeout: number) =>
      start('node', [
        CLI,
        'get',
        t.torrent,
        '-o',
        join(dir, out),
        '--peer',
        `127.0.0.1:${seedPort}`,
        '--encryption',
        mode,
        '--no-dht',
        '--tracker',
        'http://127.0.0.1:9/announce',
        '--timeout',
        String(timeout),
      ]);
    // Plain only against encryption required: never connects; gives up at its timeout (exit 3).
    const plain = get('disable', 'c-plain', 6);
    expect(await within(plain.exited, 20_000)).toBe(3);
    expect(share.output()).toMatch(/refused: it came plain and we require encryption/);
    const pref = get('prefer', 'c-prefer', 60);
    expect(await within(pref.exited, 70_000)).toBe(0);
    expect(await sha256File(join(dir, 'c-prefer', 'c.bin'))).toBe(await sha256File(t.file));
    share.child.kill('SIGINT');
    expect(await within(share.exited, 10_000)).toBe(0);
    // A `disable` seed, and a `require` leecher: refused; a `prefer` leecher: trades (plain).
    const plainSeed = start('node', [
      CLI,
      'share',
      t.torrent,
      '--dir',
      t.src,
      '--port',
      String(seedPort),
      '--encryption',
      'disable',
      '--no-dht',
      '--tracker',
      'http://127.0.0.1:9/announce',
    ]);
    await waitFor(
      'the seeder to listen',
      () => (plainSeed.output().includes('Listening:') ? true : undefined),
      20_000,
    );
    const req = get('require', 'c-require', 6);
    expect(await within(req.exited, 20_000)).toBe(3);
    expect(req.output()).toMatch(/0\/\d+ pieces/);
    expect(req.output()).toMatch(/encrypted handshake failed: .*no plain fallback/);
    expect(plainSeed.output()).toMatch(/refused: not a BitTorrent handshake/);
    const pref2 = get('prefer', 'c-prefer2', 60);
    expect(await within(pref2.exited, 70_000)).toBe(0);
    expect(await sha256File(join(dir, 'c-prefer2', 'c.bin'))).toBe(await sha256File(t.file));
    plainSeed.child.kill('SIGINT');
    expect(await within(plainSeed.exited, 10_000)).toBe(0);
  }, 180_000);
});
