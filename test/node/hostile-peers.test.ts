import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { createTorrent } from '../../src/node/create-torrent.js';
import { PeerNode } from '../../src/node/peer-node.js';
import { type RunningTracker, startTracker } from '../../src/tracker-server/server.js';
import { encode, encodeHandshake } from '../../src/wire/encode.js';
import { type Behaviour, type Hostile, hostilePeer } from '../support/hostile-peer.js';
import { pct } from '../support/tracker.js';

const BEHAVIOURS: Behaviour[] = [
  'garbage-handshake',
  'wrong-info-hash',
  'huge-length',
  'truncated',
  'unknown-ids',
  'bitfield-wrong-length',
  'bitfield-spare-bits',
  'have-out-of-range',
  'unsolicited-pieces',
  'corrupt-data',
  'bad-extension',
  'pex-flood',
];

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('hostile peers over real sockets', () => {
  let tracker: RunningTracker;
  let dir = '';
  const nodes: PeerNode[] = [];
  const hostiles: Hostile[] = [];
  afterAll(async () => {
    for (const n of nodes) await n.stop().catch(() => {});
    for (const h of hostiles) await h.close();
    await tracker?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('a leecher among ten misbehaving peers and one honest seed: each is dropped as the protocol says, the file arrives intact', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-hostile-'));
    await mkdir(join(dir, 'seed'));
    const data = randomBytes(1024 * 1024 + 5000); // 17 pieces of 64 KiB: spare bits exist
    await writeFile(join(dir, 'seed', 'f.bin'), data);
    const { meta } = await createTorrent(join(dir, 'seed', 'f.bin'), { pieceLength: 64 * 1024 });
    tracker = await startTracker({ port: 0 }, { interval: 2, rateLimit: 0 });
    const infoHash = Buffer.from(meta.infoHash);
    for (const b of BEHAVIOURS) {
      const h = await hostilePeer(b, infoHash, meta.pieceCount);
      hostiles.push(h);
      const r = await fetch(
        `${tracker.url}/announce?info_hash=${pct(infoHash)}&peer_id=${pct(h.peerId)}&port=${h.port}&left=0&event=started`,
      );
      expect(r.status).toBe(200);
    }
    // The honest seed serves slowly, so the liars get their turn.
    const seed = new PeerNode({
      // Our own test tracker asks for short intervals: take them.
      minAnnounceIntervalMs: 1000,
      meta,
      dir: join(dir, 'seed'),
      mode: 'seed',
      trackers: [`${tracker.url}/announce`],
      uploadRate: 512 * 1024,
    });
    nodes.push(seed);
    await seed.start();
    const leech = new PeerNode({
      // Our own test tracker asks for short intervals: take them.
      minAnnounceIntervalMs: 1000,
      meta,
      dir: join(dir, 'out'),
      mode: 'download',
      trackers: [`${tracker.url}/announce`],
      host: '127.0.0.9',
      // The plain wire's violations, each met once: an encrypted dial first would spend the
      // MSE timeout on a peer that answers with 68 random bytes (test/wire/mse.test.ts fuzzes MSE).
      encryption: 'disable',
    });
    nodes.push(leech);
    const closes: string[] = [];
    leech.on('peer-closed', (_addr, code) => closes.push(code));
    let pexTold = 0;
    leech.on('pex', (told) => {
      pexTold += told;
    });
    const rss0 = process.memoryUsage().rss;
    await leech.start();
    await Promise.race([
      leech.done,
      new Promise((_, r) => setTimeout(() => r(new Error('timeout')), 45_000)),
    ]);
    expect(sha(await readFile(join(dir, 'out', 'f.bin')))).toBe(sha(data));
    for (const code of [
      'ERR_BAD_HANDSHAKE',
      'ERR_WRONG_INFO_HASH',
      'ERR_MESSAGE_TOO_LARGE',
      'ERR_BAD_BITFIELD',
      'ERR_BAD_HAVE',
      'ERR_HASH_MISMATCH',
      'ERR_BAD_EXTENSION',
      'ERR_PEX_FLOOD',
    ]) {
      expect(closes, `closed with ${code}`).toContain(code);
    }
    // The corrupt peer is banned by peer id: it sent data for pieces that failed their hash.
    expect(
      leech.core.banned.has(hostiles[BEHAVIOURS.indexOf('corrupt-data')]!.peerId.toString('latin1')),
    ).toBe(true);
    // Of the 1,000 addresses the PEX flood named, only its first message's 50 were taken.
    expect(pexTold).toBe(50);
    // Memory stayed bounded: a 4 GiB length prefix was never buffered.
    expect(process.memoryUsage().rss - rss0).toBeLessThan(200 * 1024 * 1024);
  }, 60_000);

  it('a seed survives hostile clients (bad requests, floods, random bytes) and still serves an honest one', async () => {
    const seed = nodes[0]!;
    const { meta } = seed;
    const infoHash = Buffer.from(meta.infoHash);
    const hs = () => encodeHandshake({ reserved: Buffer.alloc(8), infoHash, peerId: randomBytes(20) });
    const attack = (payload: Buffer) =>
      new Promise<void>((resolve) => {
        const s = connect({ host: '127.0.0.1', port: seed.port }, () =>
          s.end(Buffer.concat([hs(), payload])),
        );
        s.on('error', () => resolve());
        s.on('close', () => resolve());
        s.resume();
        setTimeout(() => {
          s.destroy();
          resolve();
        }, 3000);
      });
    const requests = (n: number, f: (i: number) => { index: number; begin: number; length: number }) =>
      Buffer.concat(Array.from({ length: n }, (_, i) => encode({ type: 'request', ...f(i) })));
    await attack(encode({ type: 'request', index: 0, begin: 0, length: 16384 })); // while choked
    await attack(
      Buffer.concat([
        encode({ type: 'interested' }),
        encode({ type: 'request', index: 999, begin: 0, length: 16384 }),
      ]),
    );
    await attack(
      Buffer.concat([
        encode({ type: 'interested' }),
        encode({ type: 'request', index: 0, begin: 0, length: 1 << 20 }),
      ]),
    );
    await attack(
      Buffer.concat([
        encode({ type: 'interested' }),
        requests(2000, (i) => ({ index: i % meta.pieceCount, begin: (i % 4) * 16384, length: 16384 })),
      ]),
    );
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2000 }), async (junk) => {
        await attack(Buffer.from(junk));
      }),
      { numRuns: 40 },
    );
    const leech = new PeerNode({
      // Our own test tracker asks for short intervals: take them.
      minAnnounceIntervalMs: 1000,
      meta,
      dir: join(dir, 'out2'),
      mode: 'download',
      trackers: [`${tracker.url}/announce`],
      host: '127.0.0.10',
    });
    nodes.push(leech);
    await leech.start();
    await Promise.race([
      leech.done,
      new Promise((_, r) => setTimeout(() => r(new Error('timeout')), 30_000)),
    ]);
    expect(sha(await readFile(join(dir, 'out2', 'f.bin')))).toBe(
      sha(await readFile(join(dir, 'seed', 'f.bin'))),
    );
  }, 90_000);
});

describe('connection caps', () => {
  it('refuses connections past the per-address cap, at once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ss-caps-'));
    await mkdir(join(dir, 'seed'));
    await writeFile(join(dir, 'seed', 'f.bin'), randomBytes(100_000));
    const { meta } = await createTorrent(join(dir, 'seed', 'f.bin'), { pieceLength: 16384 });
    const seed = new PeerNode({
      // Our own test tracker asks for short intervals: take them.
      minAnnounceIntervalMs: 1000,
      meta,
      dir: join(dir, 'seed'),
      mode: 'seed',
      trackers: ['http://127.0.0.1:9/announce'],
      maxPerIp: 2,
      maxConnections: 3,
    });
    await seed.start();
    const open = (host: string) =>
      new Promise<boolean>((resolve) => {
        const s = connect({ host: '127.0.0.1', port: seed.port, localAddress: host });
        let closed = false;
        s.on('close', () => {
          closed = true;
        });
        s.on('error', () => {});
        setTimeout(() => resolve(!closed), 500);
      });
    try {
      const fromOne = await Promise.all([1, 2, 3, 4].map(() => open('127.0.0.20')));
      expect(fromOne.filter(Boolean)).toHaveLength(2);
      const fromOthers = await Promise.all(['127.0.0.21', '127.0.0.22'].map((h) => open(h)));
      // One more fits under the total cap of 3; the next is refused.
      expect(fromOthers.filter(Boolean)).toHaveLength(1);
    } finally {
      await seed.stop();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
