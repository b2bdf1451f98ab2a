import DHT from 'bittorrent-dht';
import { afterAll, describe, expect, it } from 'vitest';
import { DhtUdp } from '../../src/net/dht-udp.js';

/**
 * Our DHT node and an independent implementation (the bittorrent-dht npm package, used only
 * here) on loopback UDP: each finds the peer the other announced.
 */

const within = <T>(p: Promise<T>, ms: number, what: string) =>
  Promise.race([
    p,
    new Promise<never>((_, r) => setTimeout(() => r(new Error(`${what}: no answer in ${ms} ms`)), ms)),
  ]);

describe('DHT interop with bittorrent-dht (loopback UDP)', () => {
  const closers: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
  });

  it('bittorrent-dht announces, we find it; we announce, it finds us', async () => {
    const ours = await DhtUdp.start({ port: 0, bootstrap: [] });
    closers.push(() => ours.close());
    const theirs = new DHT({ bootstrap: [`127.0.0.1:${ours.port}`], host: false });
    closers.push(() => new Promise<void>((r) => theirs.destroy(() => r())));
    await within(new Promise<void>((r) => theirs.listen(0, '127.0.0.1', () => r())), 5000, 'listen');
    await within(new Promise<void>((r) => theirs.once('ready', () => r())), 10_000, 'their bootstrap');
    expect(ours.node.table.size).toBeGreaterThanOrEqual(1);

    const h1 = Buffer.alloc(20, 0xa1);
    await within(
      new Promise<void>((resolve, reject) => theirs.announce(h1, 7777, (e) => (e ? reject(e) : resolve()))),
      10_000,
      'their announce',
    );
    const found = await within(ours.getPeers(h1), 10_000, 'our lookup');
    expect(found.peers).toContainEqual({ ip: '127.0.0.1', port: 7777 });

    const h2 = Buffer.alloc(20, 0xb2);
    await within(ours.getPeers(h2, 8888), 10_000, 'our announce');
    // The announce went to the closest node we know (theirs); another bittorrent-dht node, which
    // knows only us at first, finds it through us (a node does not report what it holds itself).
    const other = new DHT({ bootstrap: [`127.0.0.1:${ours.port}`], host: false });
    closers.push(() => new Promise<void>((r) => other.destroy(() => r())));
    await within(new Promise<void>((r) => other.listen(0, '127.0.0.1', () => r())), 5000, 'listen');
    await within(new Promise<void>((r) => other.once('ready', () => r())), 10_000, 'their second bootstrap');
    const peers: string[] = [];
    other.on('peer', (p: { host: string; port: number }, infoHash: Uint8Array) => {
      if (Buffer.from(infoHash).equals(h2)) peers.push(`${p.host}:${p.port}`);
    });
    await within(new Promise<void>((r) => other.lookup(h2, () => r())), 10_000, 'their lookup');
    expect(peers).toContain('127.0.0.1:8888');
  }, 40_000);
});
