import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Session } from '../../src/session/session.js';
import { waitFor } from '../support/proc.js';
import { torrentFor } from '../support/torrent.js';

/**
 * A session asks every UDP tracker of every torrent from one socket: a UDP tracker on loopback
 * (BEP 15's connect and announce, answered by hand) sees two torrents announced from one port.
 */
describe('a session shares one UDP socket among its torrents’ UDP trackers', () => {
  let dir = '';
  let tracker: Socket;
  let port = 0;
  /** Each announce seen: the torrent's info hash and the port it came from. */
  const announces: { infoHash: string; from: number; event: number }[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-udp-share-'));
    tracker = createSocket('udp4');
    tracker.on('message', (msg, rinfo) => {
      if (msg.length < 16) return;
      const action = msg.readUInt32BE(8);
      const reply = Buffer.alloc(action === 0 ? 16 : 20);
      reply.writeUInt32BE(action, 0);
      msg.copy(reply, 4, 12, 16);
      if (action === 0) randomBytes(8).copy(reply, 8);
      else if (action === 1 && msg.length >= 98) {
        announces.push({
          infoHash: msg.toString('hex', 16, 36),
          from: rinfo.port,
          event: msg.readUInt32BE(80),
        });
        reply.writeUInt32BE(1800, 8);
      } else return;
      tracker.send(reply, rinfo.port, rinfo.address);
    });
    await new Promise<void>((r) => tracker.bind(0, '127.0.0.1', r));
    port = tracker.address().port;
  });
  afterAll(async () => {
    tracker.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('two torrents, one source port, both answered', async () => {
    const session = new Session({ downloadDir: join(dir, 'dl'), host: '127.0.0.1', port: 0 });
    await session.start();
    try {
      const url = `udp://127.0.0.1:${port}/announce`;
      const a = torrentFor('a.bin', randomBytes(40_000), 16_384, url);
      const b = torrentFor('b.bin', randomBytes(40_000), 16_384, url);
      const ea = (await session.add(a.bytes)).entry;
      const eb = (await session.add(b.bytes)).entry;
      await waitFor(
        'both torrents announced and answered',
        () =>
          ea.trackers.get(url)?.error === null && eb.trackers.get(url)?.error === null ? true : undefined,
        10_000,
      );
      const hashes = new Set(announces.map((x) => x.infoHash));
      expect(hashes).toEqual(new Set([ea.id, eb.id]));
      expect(new Set(announces.map((x) => x.from)).size).toBe(1);
      expect(session.udpTrackers.sockets).toBe(1);
      expect(session.udpTrackers.waiting).toBe(0);
    } finally {
      await session.stop();
    }
    // Leaving: each torrent said `stopped` (event 3) through the same socket before it closed.
    const stopped = announces.filter((x) => x.event === 3);
    expect(stopped.length).toBe(2);
    expect(new Set(announces.map((x) => x.from)).size).toBe(1);
    expect(session.udpTrackers.sockets).toBe(0);
  });
});
