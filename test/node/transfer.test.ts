import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Metainfo } from '../../src/core/metainfo.js';
import { READ_BUFFER } from '../../src/net/peer-socket.js';
import { createTorrent } from '../../src/node/create-torrent.js';
import { PeerNode } from '../../src/node/peer-node.js';
import { type RunningTracker, startTracker } from '../../src/tracker-server/server.js';
import { freePort, waitFor } from '../support/proc.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => {});
  cleanup.length = 0;
});

async function setup(size: number, pieceLength = 64 * 1024) {
  const dir = await mkdtemp(join(tmpdir(), 'ss-transfer-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'seed'));
  const data = Buffer.alloc(size);
  for (let i = 0; i < size; i++) data[i] = (i * 13 + (i >> 11)) & 255;
  await writeFile(join(dir, 'seed', 'file.bin'), data);
  const { meta } = await createTorrent(join(dir, 'seed', 'file.bin'), { pieceLength });
  return { dir, data, meta };
}

async function tracker(port = 0): Promise<RunningTracker> {
  const t = await startTracker({ port }, { interval: 2 });
  cleanup.push(() => t.close());
  return t;
}

function node(
  meta: Metainfo,
  dir: string,
  mode: 'seed' | 'download',
  trackerUrl: string,
  host = '127.0.0.1',
) {
  const n = new PeerNode({
    // Our own test tracker asks for short intervals: take them.
    minAnnounceIntervalMs: 1000,
    meta,
    dir,
    mode,
    trackers: [trackerUrl],
    host,
  });
  cleanup.push(() => n.stop());
  return n;
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('PeerNode over real TCP', () => {
  for (const api of ['announce', 'json'] as const) {
    it(`a seed and a leecher complete a transfer through the tracker (${api} API)`, async () => {
      const { dir, data, meta } = await setup(1_500_000);
      const t = await tracker();
      const url = api === 'announce' ? `${t.url}/announce` : t.url;
      const seed = node(meta, join(dir, 'seed'), 'seed', url);
      await seed.start();
      const leech = node(meta, join(dir, 'out'), 'download', url, '127.0.0.2');
      let sawPart = false;
      leech.on('piece', () => {
        sawPart ||=
          existsSync(join(dir, 'out', 'file.bin.part')) && !existsSync(join(dir, 'out', 'file.bin'));
      });
      await leech.start();
      await Promise.race([
        leech.done,
        new Promise((_, r) => setTimeout(() => r(new Error('timeout')), 30_000)),
      ]);
      expect(sawPart).toBe(true);
      expect(existsSync(join(dir, 'out', 'file.bin.part'))).toBe(false);
      expect(sha(await readFile(join(dir, 'out', 'file.bin')))).toBe(sha(data));
      expect(leech.downloaded).toBe(data.length);
      expect(seed.uploaded).toBe(data.length);
      await leech.stop();
      await seed.stop();
      expect(leech.connections).toBe(0);
      expect(seed.connections).toBe(0);
      // Both left the tracker.
      await waitFor(
        'the tracker to forget both',
        () => (t.registry.peerCount === 0 ? true : undefined),
        5000,
      );
    });
  }

  it('a seed stops at once while a leecher still holds the connection it dialled', async () => {
    // The seed's listener closes only once its sockets have: it used to wait for that before
    // closing its own links, so it hung as long as the leecher stayed (a 50-peer demo never ended).
    const { dir, meta } = await setup(1_500_000);
    const t = await tracker();
    const seed = new PeerNode({
      meta,
      dir: join(dir, 'seed'),
      mode: 'seed',
      trackers: [t.url],
      uploadRate: 64 * 1024,
    });
    cleanup.push(() => seed.stop());
    await seed.start();
    const leech = node(meta, join(dir, 'out'), 'download', t.url, '127.0.0.2');
    const firstPiece = new Promise((r) => leech.once('piece', r));
    await leech.start();
    await Promise.race([
      firstPiece,
      new Promise((_, r) => setTimeout(() => r(new Error('no piece in 20 s')), 20_000)),
    ]);
    expect(seed.connections).toBe(1);
    const stopped = await Promise.race([
      seed.stop().then(() => 'stopped'),
      new Promise((r) => setTimeout(() => r('still stopping after 5 s'), 5000)),
    ]);
    expect(stopped).toBe('stopped');
    expect(seed.connections).toBe(0);
  });

  it('resumes: keeps verified pieces on disk, fetches only the missing and the corrupt ones', async () => {
    const pl = 64 * 1024;
    const { dir, data, meta } = await setup(20 * pl + 500, pl);
    await mkdir(join(dir, 'out'));
    // A crashed earlier run: the first 12 pieces written, piece 3 torn.
    const partial = Buffer.from(data.subarray(0, 12 * pl));
    partial.fill(0, 3 * pl + 100, 3 * pl + 200);
    await writeFile(join(dir, 'out', 'file.bin.part'), partial);
    const t = await tracker();
    const seed = node(meta, join(dir, 'seed'), 'seed', `${t.url}/announce`);
    await seed.start();
    const leech = node(meta, join(dir, 'out'), 'download', `${t.url}/announce`, '127.0.0.3');
    await leech.start();
    expect(leech.core.have.count).toBe(11);
    await Promise.race([
      leech.done,
      new Promise((_, r) => setTimeout(() => r(new Error('timeout')), 30_000)),
    ]);
    expect(sha(await readFile(join(dir, 'out', 'file.bin')))).toBe(sha(data));
    // 9 whole pieces and the short last one were missing; piece 3 was corrupt.
    expect(leech.downloaded).toBe(data.length - 11 * pl);
  });

  it('keeps going when the tracker is down at first: retries with backoff and registers once it is up', async () => {
    const { dir, data, meta } = await setup(600_000);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const seed = node(meta, join(dir, 'seed'), 'seed', url);
    const leech = node(meta, join(dir, 'out'), 'download', url, '127.0.0.4');
    const errors: string[] = [];
    leech.on('tracker', (_u, _n, e) => e && errors.push(e));
    await seed.start();
    await leech.start();
    await waitFor('a failed tracker attempt', () => (errors.length > 0 ? true : undefined), 10_000);
    await tracker(port);
    await Promise.race([
      leech.done,
      new Promise((_, r) => setTimeout(() => r(new Error('timeout')), 30_000)),
    ]);
    expect(sha(await readFile(join(dir, 'out', 'file.bin')))).toBe(sha(data));
  });

  it('refuses to seed files that do not match the torrent, and to overwrite a different file', async () => {
    const { dir, meta } = await setup(200_000);
    await writeFile(join(dir, 'seed', 'file.bin'), Buffer.alloc(200_000, 1));
    const t = await tracker();
    const seed = new PeerNode({
      // Our own test tracker asks for short intervals: take them.
      minAnnounceIntervalMs: 1000,
      meta,
      dir: join(dir, 'seed'),
      mode: 'seed',
      trackers: [`${t.url}/announce`],
    });
    await expect(seed.start()).rejects.toThrow(/does not match the torrent/);
    const get = new PeerNode({
      // Our own test tracker asks for short intervals: take them.
      minAnnounceIntervalMs: 1000,
      meta,
      dir: join(dir, 'seed'),
      mode: 'download',
      trackers: [`${t.url}/announce`],
    });
    await expect(get.start()).rejects.toThrow(/exists and is not this torrent/);
    expect((await readFile(join(dir, 'seed', 'file.bin')))[0]).toBe(1);
  });
});

describe('rate caps (token buckets)', () => {
  for (const cap of ['upload', 'download'] as const) {
    it(`a ${cap} cap keeps the transfer at or under the rate`, async () => {
      const size = 2 * 1024 * 1024;
      const { dir, data, meta } = await setup(size, 64 * 1024);
      const t = await tracker();
      const rate = 512 * 1024;
      const seed = new PeerNode({
        // Our own test tracker asks for short intervals: take them.
        minAnnounceIntervalMs: 1000,
        meta,
        dir: join(dir, 'seed'),
        mode: 'seed',
        trackers: [t.url],
        uploadRate: cap === 'upload' ? rate : undefined,
      });
      cleanup.push(() => seed.stop());
      await seed.start();
      const leech = new PeerNode({
        // Our own test tracker asks for short intervals: take them.
        minAnnounceIntervalMs: 1000,
        meta,
        dir: join(dir, 'out'),
        mode: 'download',
        trackers: [t.url],
        host: '127.0.0.6',
        downloadRate: cap === 'download' ? rate : undefined,
      });
      cleanup.push(() => leech.stop());
      const t0 = Date.now();
      await leech.start();
      await Promise.race([
        leech.done,
        new Promise((_, r) => setTimeout(() => r(new Error('timeout')), 30_000)),
      ]);
      const seconds = (Date.now() - t0) / 1000;
      // However fast the machine, the cap allows at most: a quarter second's burst, plus one read
      // buffer past the bucket (a download cap pauses reading after a read), plus the rate.
      const slack = rate / 4 + (cap === 'download' ? READ_BUFFER : 16384);
      expect(seconds).toBeGreaterThanOrEqual((size - slack) / rate);
      expect(sha(await readFile(join(dir, 'out', 'file.bin')))).toBe(sha(data));
    });
  }
});

describe('connection limit', () => {
  it('at its limit, a peer drops a link nobody wants to reach a peer that has data', async () => {
    const { dir, data, meta } = await setup(400_000);
    const t = await tracker();
    const url = `${t.url}/announce`;
    const empty = new PeerNode({
      // Our own test tracker asks for short intervals: take them.
      minAnnounceIntervalMs: 1000,
      meta,
      dir: join(dir, 'empty'),
      mode: 'download',
      trackers: [url],
      host: '127.0.0.30',
      maxConnections: 1,
    });
    cleanup.push(() => empty.stop());
    await empty.start();
    const leech = new PeerNode({
      // Our own test tracker asks for short intervals: take them.
      minAnnounceIntervalMs: 1000,
      meta,
      dir: join(dir, 'out'),
      mode: 'download',
      trackers: [url],
      host: '127.0.0.31',
      maxConnections: 1,
    });
    cleanup.push(() => leech.stop());
    await leech.start();
    await waitFor(
      'the two empty peers to connect',
      () => (leech.connections === 1 ? true : undefined),
      10_000,
    );
    const seed = node(meta, join(dir, 'seed'), 'seed', url, '127.0.0.32');
    await seed.start();
    await Promise.race([
      leech.done,
      new Promise((_, r) => setTimeout(() => r(new Error('timeout')), 30_000)),
    ]);
    expect(sha(await readFile(join(dir, 'out', 'file.bin')))).toBe(sha(data));
  }, 40_000);

  it('dials no peer already linked by its own dial, and rests one that refused it at its cap', async () => {
    const { dir, meta } = await setup(400_000);
    const t = await tracker();
    const url = `${t.url}/announce`;
    const peer = (name: string, host: string, o: { seed?: boolean; max?: number; rate?: number } = {}) => {
      const n = new PeerNode({
        minAnnounceIntervalMs: 1000,
        meta,
        dir: join(dir, o.seed ? 'seed' : name),
        mode: o.seed ? 'seed' : 'download',
        trackers: [url],
        host,
        maxConnections: o.max,
        uploadRate: o.rate,
      });
      cleanup.push(() => n.stop());
      return n;
    };
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
    // Two empty peers: one dials the other, which then hears of it from the tracker every second.
    const a = peer('a', '127.0.0.40');
    const b = peer('b', '127.0.0.41');
    await a.start();
    await b.start();
    await waitFor(
      'a and b linked',
      () => (a.connections === 1 && b.connections === 1 ? true : undefined),
      10_000,
    );
    await pause(4000);
    // Before: the peer dialled back, its duplicate was closed, and it dialled again each second.
    expect(a.partnersFound.tracker + b.partnersFound.tracker).toBe(1);
    expect(a.connections + b.connections).toBe(2);
    await a.stop();
    await b.stop();
    // A seed at its cap (one link, a slow one so it lasts) refuses a second leecher: that one
    // dials it once, then rests it (it dialled it again each second).
    const full = peer('seed', '127.0.0.42', { seed: true, max: 1, rate: 16 * 1024 });
    await full.start();
    const x = peer('x', '127.0.0.43');
    await x.start();
    await waitFor('x linked to the seed', () => (full.connections === 1 ? true : undefined), 10_000);
    const y = peer('y', '127.0.0.44');
    await y.start();
    await pause(4000);
    expect(full.connections).toBe(1);
    // Its dials that connected: x once, the seed once (closed unanswered).
    expect(y.partnersFound.tracker).toBe(2);
  }, 30_000);
});
