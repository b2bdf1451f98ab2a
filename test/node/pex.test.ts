import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createTorrent } from '../../src/node/create-torrent.js';
import { PeerNode, type PeerNodeOpts } from '../../src/node/peer-node.js';

/**
 * Peer exchange (BEP 11) over real sockets: three peers, no tracker. A seeds; B knows A; C knows
 * only B. C reaches A because B tells it of A. With a private torrent (BEP 27), it does not.
 */

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const f of cleanup.reverse()) await f().catch(() => {});
  cleanup.length = 0;
});

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function threePeers(priv: boolean, b: Partial<PeerNodeOpts>) {
  const dir = await mkdtemp(join(tmpdir(), 'ss-pex-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'a'));
  const data = randomBytes(2 * 1024 * 1024);
  await writeFile(join(dir, 'a', 'f.bin'), data);
  const { meta } = await createTorrent(join(dir, 'a', 'f.bin'), { pieceLength: 64 * 1024, private: priv });
  expect(meta.private).toBe(priv);
  const make = (name: string, o: Partial<PeerNodeOpts>) => {
    const n = new PeerNode({
      meta,
      dir: join(dir, name),
      mode: name === 'a' ? 'seed' : 'download',
      trackers: [],
      pexIntervalMs: 1000,
      ...o,
    });
    cleanup.push(() => n.stop());
    return n;
  };
  const a = make('a', { host: '127.0.0.1' });
  await a.start();
  const bNode = make('b', { host: '127.0.0.2', peers: [{ ip: '127.0.0.1', port: a.port }], ...b });
  await bNode.start();
  const c = make('c', { host: '127.0.0.3', peers: [{ ip: '127.0.0.2', port: bNode.port }] });
  const told: number[] = [];
  c.on('pex', (n, learned) => told.push(n, learned));
  await c.start();
  await Promise.race([
    c.done,
    new Promise((_, r) => setTimeout(() => r(new Error('C did not complete in 60 s')), 60_000)),
  ]);
  expect(sha(await readFile(join(dir, 'c', 'f.bin')))).toBe(sha(data));
  const fromA = c.receivedFrom.get(Buffer.from(a.peerId).toString('latin1')) ?? 0;
  const fromB = c.receivedFrom.get(Buffer.from(bNode.peerId).toString('latin1')) ?? 0;
  return { told, fromA, fromB, length: data.length };
}

describe('peer exchange (BEP 11)', () => {
  it('C, told only of B, reaches A through B’s PEX message and gets most of the file from it', async () => {
    // B downloads slowly (so it stays linked to A while C arrives) and serves slowly.
    const r = await threePeers(false, { downloadRate: 256 * 1024, uploadRate: 32 * 1024 });
    // B told C of A (and C learned it: a new, usable address).
    expect(r.told.length).toBeGreaterThanOrEqual(2);
    expect(r.told[1]).toBeGreaterThanOrEqual(1);
    expect(r.fromA).toBeGreaterThan(r.length / 2);
  }, 90_000);

  it('a private torrent exchanges no peers: C gets everything from B', async () => {
    const r = await threePeers(true, { downloadRate: 512 * 1024 });
    expect(r.told).toEqual([]);
    expect(r.fromA).toBe(0);
    expect(r.fromB).toBe(r.length);
  }, 90_000);
});
