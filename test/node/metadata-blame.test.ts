import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bencode from 'bencode';
import { afterEach, describe, expect, it } from 'vitest';
import { createTorrent } from '../../src/node/create-torrent.js';
import { MetadataFetcher } from '../../src/node/metadata-fetch.js';
import { PeerNode } from '../../src/node/peer-node.js';
import { OUR_EXTENSIONS } from '../../src/swarm/extensions.js';
import { encode, encodeHandshake } from '../../src/wire/encode.js';
import { freePort } from '../support/proc.js';

/**
 * A magnet download's metadata from a lying peer (BEP 9): it announces the right size and serves
 * bytes that do not hash to the info hash. It is dropped and named; an honest seed that turns up
 * later gives the real info dictionary.
 */

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => {});
  cleanup.length = 0;
});

/** A peer that speaks BEP 10 and answers every ut_metadata request with random bytes of the right size. */
function lyingPeer(
  infoHash: Uint8Array,
  size: number,
): Promise<{ server: Server; port: number; asked: () => number }> {
  let asked = 0;
  const sockets = new Set<Socket>();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('error', () => {});
    sock.on('close', () => sockets.delete(sock));
    let buf = Buffer.alloc(0);
    let greeted = false;
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (!greeted) {
        if (buf.length < 68) return;
        greeted = true;
        buf = buf.subarray(68);
        const reserved = Buffer.from([0, 0, 0, 0, 0, 0x10, 0, 0]);
        sock.write(
          encodeHandshake({
            reserved,
            infoHash,
            peerId: Buffer.from(`-LY0001-${randomBytes(6).toString('hex')}`),
          }),
        );
        sock.write(
          encode({
            type: 'extended',
            ext: 0,
            payload: bencode.encode({ m: { ut_metadata: 2 }, metadata_size: size }),
          }),
        );
      }
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32BE(0)) {
        const msg = buf.subarray(4, 4 + buf.readUInt32BE(0));
        buf = buf.subarray(4 + msg.length);
        if (msg[0] !== 20 || msg[1] !== 2) continue;
        const req = bencode.decode(msg.subarray(2)) as { msg_type: number; piece: number };
        if (req.msg_type !== 0) continue;
        asked++;
        const len = Math.min(16384, size - req.piece * 16384);
        const head = bencode.encode({ msg_type: 1, piece: req.piece, total_size: size });
        sock.write(
          encode({
            type: 'extended',
            ext: OUR_EXTENSIONS.ut_metadata,
            payload: Buffer.concat([head, randomBytes(len)]),
          }),
        );
      }
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const a = server.address();
      resolve({ server, port: typeof a === 'object' && a ? a.port : 0, asked: () => asked });
      cleanup.push(async () => {
        for (const s of sockets) s.destroy();
        await new Promise((r) => server.close(r));
      });
    });
  });
}

describe('metadata from a lying peer (BEP 9)', () => {
  it('the liar is dropped and named; the real info dictionary comes from an honest seed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ss-meta-blame-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    await mkdir(join(dir, 'seed'));
    await writeFile(join(dir, 'seed', 'f.bin'), randomBytes(17 * 1024 * 1024));
    // 16 KiB pieces: the info dictionary spans several metadata pieces.
    const { meta } = await createTorrent(join(dir, 'seed', 'f.bin'), { pieceLength: 16 * 1024 });
    expect(meta.infoBytes.length).toBeGreaterThan(16384);
    const liar = await lyingPeer(meta.infoHash, meta.infoBytes.length);
    const seedPort = await freePort();
    const fetcher = new MetadataFetcher({
      infoHash: meta.infoHash,
      host: '127.0.0.1',
      tiers: [],
      peers: [
        { ip: '127.0.0.1', port: liar.port },
        { ip: '127.0.0.1', port: seedPort },
      ],
    });
    const failed: [string, string][] = [];
    fetcher.on('peer-failed', (addr, why) => failed.push([addr, why]));
    const got = fetcher.fetch();
    // The honest seed arrives once the liar has been caught.
    const t0 = Date.now();
    while (failed.length === 0 && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 50));
    expect(failed).toContainEqual([
      `127.0.0.1:${liar.port}`,
      expect.stringMatching(/does not hash to the info hash/),
    ]);
    expect(liar.asked()).toBe(Math.ceil(meta.infoBytes.length / 16384));
    const seed = new PeerNode({ meta, dir: join(dir, 'seed'), mode: 'seed', trackers: [], port: seedPort });
    cleanup.push(() => seed.stop());
    await seed.start();
    const info = await Promise.race([
      got,
      new Promise<never>((_, r) => setTimeout(() => r(new Error('no metadata in 30 s')), 30_000)),
    ]);
    expect(Buffer.from(info).equals(Buffer.from(meta.infoBytes))).toBe(true);
    // The liar was asked once, never again.
    expect(failed.filter(([a]) => a === `127.0.0.1:${liar.port}`)).toHaveLength(1);
  }, 60_000);
});
