import { createSocket } from 'node:dgram';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTorrent } from '../../src/core/metainfo.js';
import { nodeHasher } from '../../src/net/system.js';
import { startTracker } from '../../src/tracker-server/server.js';
import { start, stopAll, waitFor } from '../support/proc.js';

const CLI = 'dist/cli/main.js';

describe('swarmshare create/share/get: bad input gets a clear message and a non-zero exit', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-cli-'));
  });
  afterAll(async () => {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  });

  const run = async (args: string[]) => {
    const p = start('node', [CLI, ...args], { cwd: process.cwd() });
    const code = await p.exited;
    return { code, out: p.output() };
  };

  it('get: a file that is not a torrent', async () => {
    await writeFile(join(dir, 'bad.torrent'), 'hello');
    const r = await run(['get', join(dir, 'bad.torrent'), '-o', dir]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/bad\.torrent: not a torrent file/);
  });

  it('get: a missing torrent', async () => {
    const r = await run(['get', join(dir, 'nope.torrent')]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/cannot read .*nope\.torrent: ENOENT/);
  });

  it('get: a magnet link with no tracker and no peer, and a bad one, say what is wrong', async () => {
    const hex = 'c12fe1c06bba254a9dc9f519b335aa7c1367a88a';
    const r = await run(['get', `magnet:?xt=urn:btih:${hex}&dn=f.iso`, '--no-dht']);
    expect(r.code).toBe(1);
    expect(r.out).toContain('the magnet link names no tracker (tr) and no peer (x.pe)');
    expect(r.out).not.toContain('ENOENT');
    const bad = await run(['get', 'magnet:?xt=urn:btih:12']);
    expect(bad.code).toBe(2);
    expect(bad.out).toMatch(/'12' is not an info hash/);
    expect(bad.out).not.toMatch(/ENOENT|\n\s+at /);
    const noHash = await run(['get', 'magnet:?dn=x&tr=http%3A%2F%2F127.0.0.1%3A1%2Fannounce']);
    expect(noHash.code).toBe(2);
    expect(noHash.out).toContain('the magnet link has no BitTorrent info hash (xt=urn:btih:...)');
    const badPeer = await run(['get', `magnet:?xt=urn:btih:${hex}&x.pe=nowhere`]);
    expect(badPeer.code).toBe(2);
    expect(badPeer.out).toContain("x.pe 'nowhere' is not host:port");
  });

  it('get "magnet:...": the metadata from the seed (BEP 9), then the file; --save-torrent writes the .torrent', async () => {
    const src = join(dir, 'mag');
    await mkdir(src, { recursive: true });
    const data = Buffer.alloc(700_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 31) & 255;
    await writeFile(join(src, 'm.bin'), data);
    const t = await startTracker({ port: 0 }, { interval: 2 });
    try {
      const seed = start('node', [
        CLI,
        'share',
        join(src, 'm.bin'),
        '--tracker',
        `${t.url}/announce`,
        '--piece-size',
        '16KiB',
        '-o',
        join(dir, 'm.torrent'),
        '--host',
        '127.0.0.43',
      ]);
      const magnet = await waitFor(
        'the magnet link',
        () => /Magnet:\s+(magnet:\S+)/.exec(seed.output())?.[1],
        20_000,
      );
      await waitFor('the seed', () => seed.output().includes('Listening:') || undefined, 20_000);
      const saved = join(dir, 'saved.torrent');
      const r = await run([
        'get',
        magnet,
        '-o',
        join(dir, 'mag-out'),
        '--save-torrent',
        saved,
        '--timeout',
        '60',
        '--host',
        '127.0.0.44',
        '--min-announce-interval',
        '1',
      ]);
      expect(r.code, r.out).toBe(0);
      expect(r.out).toContain('Metadata:  m.bin, verified against the info hash');
      expect((await readFile(join(dir, 'mag-out', 'm.bin'))).equals(data)).toBe(true);
      const orig = parseTorrent(await readFile(join(dir, 'm.torrent')), nodeHasher.sha1);
      const again = parseTorrent(await readFile(saved), nodeHasher.sha1);
      expect(again.infoHashHex).toBe(orig.infoHashHex);
      expect(again.pieceCount).toBe(orig.pieceCount);
    } finally {
      await t.close();
    }
  }, 60_000);

  it("share x.torrent without --tracker announces to the torrent's own trackers; get finds it there", async () => {
    const src = join(dir, 'own');
    await mkdir(src, { recursive: true });
    const data = Buffer.alloc(300_000, 7);
    await writeFile(join(src, 'o.bin'), data);
    const t = await startTracker({ port: 0 }, { interval: 2 });
    try {
      const c = await run([
        'create',
        join(src, 'o.bin'),
        '--tracker',
        `${t.url}/announce`,
        '-o',
        join(dir, 'o.torrent'),
      ]);
      expect(c.code, c.out).toBe(0);
      const seed = start('node', [
        CLI,
        'share',
        join(dir, 'o.torrent'),
        '--dir',
        src,
        '--no-dht',
        '--host',
        '127.0.0.45',
      ]);
      await waitFor('the seed', () => seed.output().includes('Listening:') || undefined, 20_000);
      await waitFor('the seed at the tracker', () => (t.registry.peerCount > 0 ? true : undefined), 20_000);
      const r = await run([
        'get',
        join(dir, 'o.torrent'),
        '-o',
        join(dir, 'own-out'),
        '--no-dht',
        '--timeout',
        '60',
        '--host',
        '127.0.0.46',
        '--min-announce-interval',
        '1',
      ]);
      expect(r.code, r.out).toBe(0);
      expect((await readFile(join(dir, 'own-out', 'o.bin'))).equals(data)).toBe(true);
    } finally {
      await t.close();
    }
  }, 60_000);

  it('get --peer: a torrent with no tracker, fetched from a peer named on the command line', async () => {
    const src = join(dir, 'direct');
    await mkdir(src, { recursive: true });
    await writeFile(join(src, 'd.bin'), Buffer.alloc(200_000, 9));
    const made = await run(['create', join(src, 'd.bin'), '-o', join(dir, 'direct.torrent')]);
    expect(made.code).toBe(0);
    // The seed announces nowhere useful: only --peer brings the two together.
    const seed = start('node', [
      CLI,
      'share',
      join(dir, 'direct.torrent'),
      '--dir',
      src,
      '--tracker',
      'http://127.0.0.1:9/announce',
      '--host',
      '127.0.0.41',
    ]);
    const listening = await waitFor(
      'the seed',
      () => /Listening: (127\.0\.0\.41:\d+)/.exec(seed.output())?.[1],
      20_000,
    );
    const r = await run([
      'get',
      join(dir, 'direct.torrent'),
      '-o',
      join(dir, 'direct-out'),
      '--peer',
      listening,
      '--timeout',
      '30',
      '--host',
      '127.0.0.42',
    ]);
    expect(r.code, r.out).toBe(0);
    expect((await readFile(join(dir, 'direct-out', 'd.bin'))).equals(Buffer.alloc(200_000, 9))).toBe(true);
    const bad = await run(['get', join(dir, 'direct.torrent'), '--peer', 'somehost:1']);
    expect(bad.code).toBe(1);
    expect(bad.out).toContain("'somehost:1' is not IP:PORT");
    const none = await run(['get', join(dir, 'direct.torrent'), '--no-dht']);
    expect(none.out).toContain(
      'names no tracker and no web seed: give a tracker with --tracker, peers with --peer, or leave the DHT on',
    );
  }, 60_000);

  it('get: no peer ever shows up -> exit 3 after --timeout, partial kept', async () => {
    await writeFile(join(dir, 'x.bin'), Buffer.alloc(50_000, 3));
    const c = await run([
      'create',
      join(dir, 'x.bin'),
      '-o',
      join(dir, 'x.torrent'),
      '--tracker',
      'http://127.0.0.1:9/announce',
    ]);
    expect(c.code).toBe(0);
    const r = await run(['get', join(dir, 'x.torrent'), '-o', join(dir, 'out'), '--timeout', '2']);
    expect(r.code).toBe(3);
    expect(r.out).toMatch(/not complete after 2 s/);
  });

  it('get -o into a folder that cannot exist (/proc/nope): exit 1 at once with the reason, not a hang or a timeout', async () => {
    const r = await run(['get', join(dir, 'x.torrent'), '-o', '/proc/nope', '--timeout', '20', '--no-dht']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/swarmshare: cannot make folder \/proc\/nope: .*ENOENT/);
    expect(r.out).not.toMatch(/not complete after/);
  });

  it('get "magnet:..." whose metadata never comes: exit 3 after --timeout, as for a torrent', async () => {
    const hex = 'ab'.repeat(20);
    const r = await run([
      'get',
      `magnet:?xt=urn:btih:${hex}&tr=${encodeURIComponent('http://127.0.0.1:9/announce')}`,
      '--timeout',
      '2',
      '--no-dht',
    ]);
    expect(r.code).toBe(3);
    expect(r.out).toMatch(/no metadata after 2 s/);
  });

  it('get: a tracker that never answers is named in the status line until it does', async () => {
    const silent = createSocket('udp4');
    await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
    const port = (silent.address() as { port: number }).port;
    try {
      const c = await run([
        'create',
        join(dir, 'x.bin'),
        '-o',
        join(dir, 'silent.torrent'),
        '--tracker',
        `udp://127.0.0.1:${port}/announce`,
      ]);
      expect(c.code, c.out).toBe(0);
      const r = await run([
        'get',
        join(dir, 'silent.torrent'),
        '-o',
        join(dir, 'silent-out'),
        '--no-dht',
        '--timeout',
        '5',
      ]);
      expect(r.code).toBe(3);
      expect(r.out).toContain(`no answer yet from udp://127.0.0.1:${port}/announce`);
    } finally {
      silent.close();
    }
  });

  it('create: a bad piece size and a missing path', async () => {
    const a = await run(['create', join(dir, 'x.bin'), '--piece-size', 'huge']);
    expect(a.code).not.toBe(0);
    expect(a.out).toMatch(/not a size/);
    const b = await run(['create', join(dir, 'missing')]);
    expect(b.code).toBe(1);
    expect(b.out).toMatch(/ENOENT|no such file/i);
  });

  it('share: without --tracker', async () => {
    const r = await run(['share', join(dir, 'x.bin'), '--no-dht']);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/--tracker/);
  });
});
