import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnnounceEvent, AnnounceRequest } from '../../src/tracker/announce.js';
import { defaultLimits, type TrackerLimits } from '../../src/tracker/limits.js';
import { SwarmRegistry } from '../../src/tracker/registry.js';
import { MemorySwarmStore, type SwarmStore } from '../../src/tracker/swarm-store.js';
import { RedisSwarmStore } from '../../src/tracker-server/redis-store.js';
import { startRedis, type TestRedis } from '../support/redis.js';

/**
 * One suite, both stores: the in-memory registry and Redis (a real redis-server). Counts, keys,
 * events, sampling, expiry, limits and scrape must agree.
 */

const limits: TrackerLimits = { ...defaultLimits(30), maxPeersPerSwarm: 50, maxSwarms: 1000 };
const T0 = 1_700_000_000_000;
let n = 0;
/** A fresh info hash per test, so the stores' swarms never meet. */
const freshHash = () => Buffer.alloc(20, 0).fill(++n, 0, 4).toString('latin1');
const pid = (i: number) => `-XX0001-${String(i).padStart(12, '0')}`;

function req(
  infoHash: string,
  i: number,
  o: {
    left?: number;
    event?: AnnounceEvent;
    key?: string | null;
    ip?: string;
    port?: number;
    compact?: boolean;
  } = {},
): AnnounceRequest {
  return {
    infoHash,
    peerId: pid(i),
    port: o.port ?? 6000 + i,
    uploaded: 0,
    downloaded: 0,
    left: o.left ?? 100,
    event: o.event ?? 'empty',
    numwant: 50,
    // Peer ids asked for (a non-compact reply), so the tests can name the peers returned.
    compact: o.compact ?? false,
    noPeerId: false,
    key: o.key ?? null,
    ip: o.ip ?? `10.0.${i >> 8}.${i & 255}`,
  };
}

const hexOf = (h: string) => Buffer.from(h, 'latin1').toString('hex');

let redis: TestRedis;
const stores: Record<string, () => SwarmStore> = {};
let redisStore: RedisSwarmStore;

beforeAll(async () => {
  redis = await startRedis();
  redisStore = new RedisSwarmStore({ url: redis.url, limits });
  await redisStore.ready();
  const memory = new MemorySwarmStore(new SwarmRegistry(limits, { random: Math.random, newKey: () => 'k' }));
  stores.memory = () => memory;
  stores.redis = () => redisStore;
}, 30_000);

afterAll(async () => {
  await redisStore?.close();
  await redis?.dispose();
});

for (const kind of ['memory', 'redis']) {
  describe(`swarm store: ${kind}`, () => {
    const s = () => (stores[kind] as () => SwarmStore)();

    it('counts seeders and leechers, and never returns the announcer', async () => {
      const h = freshHash();
      const a = await s().announce(req(h, 1), 50, undefined, T0);
      expect(a).toMatchObject({ complete: 0, incomplete: 1, downloaded: 0, peers: [] });
      const b = await s().announce(req(h, 2, { left: 0 }), 50, undefined, T0);
      expect(b).toMatchObject({ complete: 1, incomplete: 1, downloaded: 0 });
      expect(b.peers.map((p) => p.peerId)).toEqual([pid(1)]);
      expect(Buffer.from(b.peers[0]!.compact, 'latin1').toString('hex')).toBe('0a0000011771');
    });

    it('a leecher that reaches left=0 is a completed download; a first announce with completed is too', async () => {
      const h = freshHash();
      await s().announce(req(h, 1, { event: 'started' }), 50, undefined, T0);
      const done = await s().announce(req(h, 1, { left: 0 }), 50, undefined, T0 + 1);
      expect(done).toMatchObject({ complete: 1, incomplete: 0, downloaded: 1 });
      const second = await s().announce(req(h, 2, { left: 0, event: 'completed' }), 50, undefined, T0 + 2);
      expect(second).toMatchObject({ complete: 2, incomplete: 0, downloaded: 2 });
      // A seed that registers as a seed did not download.
      const third = await s().announce(req(h, 3, { left: 0, event: 'started' }), 50, undefined, T0 + 3);
      expect(third).toMatchObject({ complete: 3, downloaded: 2 });
    });

    it('stopped removes the peer (a leecher stopping with left=0 counts as completed)', async () => {
      const h = freshHash();
      await s().announce(req(h, 1), 50, undefined, T0);
      await s().announce(req(h, 2), 50, undefined, T0);
      const r = await s().announce(req(h, 1, { left: 0, event: 'stopped' }), 50, undefined, T0 + 1);
      expect(r).toMatchObject({ complete: 0, incomplete: 1, downloaded: 1, peers: [] });
      const left = await s().announce(req(h, 3), 50, undefined, T0 + 2);
      expect(left.peers.map((p) => p.peerId)).toEqual([pid(2)]);
    });

    it('a peer id held with a key refuses announces without it', async () => {
      const h = freshHash();
      await s().announce(req(h, 1, { key: 'abc' }), 50, undefined, T0);
      await expect(
        Promise.resolve().then(() => s().announce(req(h, 1, { key: 'zzz' }), 50, undefined, T0)),
      ).rejects.toMatchObject({
        code: 'ERR_WRONG_KEY',
      });
      await expect(
        Promise.resolve().then(() => s().announce(req(h, 1, { key: 'abc' }), 50, undefined, T0)),
      ).resolves.toMatchObject({
        incomplete: 1,
      });
    });

    it('numwant caps the peers; a family filter keeps one family', async () => {
      const h = freshHash();
      for (let i = 1; i <= 20; i++) await s().announce(req(h, i), 0, undefined, T0);
      await s().announce(req(h, 21, { ip: '2001:db8::1' }), 0, undefined, T0);
      const r = await s().announce(req(h, 22), 5, undefined, T0);
      expect(r.peers).toHaveLength(5);
      expect(new Set(r.peers.map((p) => p.peerId)).size).toBe(5);
      expect(r.peers.some((p) => p.peerId === pid(22))).toBe(false);
      const v6 = await s().announce(req(h, 22), 50, 6, T0);
      expect(v6.peers.map((p) => p.compact.length)).toEqual([18]);
      const v4 = await s().announce(req(h, 22), 50, 4, T0);
      expect(v4.peers).toHaveLength(20);
      expect(v4.peers.every((p) => p.compact.length === 6)).toBe(true);
    });

    it('a compact request gets the same addresses (the ids may be left out)', async () => {
      const h = freshHash();
      for (let i = 1; i <= 4; i++) await s().announce(req(h, i), 0, undefined, T0);
      await s().announce(req(h, 5, { ip: '2001:db8::5' }), 0, undefined, T0);
      const r = await s().announce(req(h, 6, { compact: true }), 50, undefined, T0);
      const hexes = r.peers.map((p) => Buffer.from(p.compact, 'latin1').toString('hex')).sort();
      expect(hexes).toEqual(
        [
          '0a0000011771',
          '0a0000021772',
          '0a0000031773',
          '0a0000041774',
          '20010db80000000000000000000000051775',
        ].sort(),
      );
    });

    it('peers silent for longer than the timeout are gone', async () => {
      const h = freshHash();
      await s().announce(req(h, 1, { left: 0 }), 50, undefined, T0);
      const later = T0 + limits.peerTimeoutMs + 1000;
      // The registry expires on its sweep; Redis on the next announce to the swarm.
      await expireMemory(s(), later);
      const r = await s().announce(req(h, 2), 50, undefined, later);
      expect(r).toMatchObject({ complete: 0, incomplete: 1, peers: [] });
    });

    it('a full swarm refuses newcomers, not the peers it holds', async () => {
      const h = freshHash();
      for (let i = 1; i <= limits.maxPeersPerSwarm; i++) await s().announce(req(h, i), 0, undefined, T0);
      await expect(
        Promise.resolve().then(() => s().announce(req(h, 999), 0, undefined, T0)),
      ).rejects.toMatchObject({ code: 'ERR_SWARM_FULL' });
      await expect(
        Promise.resolve().then(() => s().announce(req(h, 1, { left: 0 }), 0, undefined, T0)),
      ).resolves.toMatchObject({
        complete: 1,
      });
    });

    it('scrape: the counts of the swarms asked for; unknown ones absent', async () => {
      const h = freshHash();
      await s().announce(req(h, 1, { left: 0 }), 0, undefined, T0);
      await s().announce(req(h, 2), 0, undefined, T0);
      const unknown = hexOf(freshHash());
      const c = await s().scrape([hexOf(h), unknown], 100);
      expect(c.get(hexOf(h))).toMatchObject({ complete: 1, incomplete: 1, downloaded: 0 });
      expect(c.has(unknown)).toBe(false);
      const all = await s().scrape(null, 10_000);
      expect(all.get(hexOf(h))).toMatchObject({ complete: 1, incomplete: 1 });
    });

    it('concurrent announces keep the counts exact', async () => {
      const h = freshHash();
      const big = { ...limits, maxPeersPerSwarm: 1000 };
      const st =
        kind === 'redis'
          ? new RedisSwarmStore({ url: redis.url, limits: big })
          : new MemorySwarmStore(new SwarmRegistry(big, { random: Math.random, newKey: () => 'k' }));
      if (st instanceof RedisSwarmStore) await st.ready();
      // 300 peers at once, a third of them seeds, then half the leechers complete, at once.
      await Promise.all(
        Array.from({ length: 300 }, (_, i) =>
          st.announce(req(h, i + 1, { left: i % 3 === 0 ? 0 : 50 }), 5, undefined, T0),
        ),
      );
      await Promise.all(
        Array.from({ length: 300 }, (_, i) => i)
          .filter((i) => i % 3 !== 0 && i % 2 === 0)
          .map((i) => st.announce(req(h, i + 1, { left: 0 }), 5, undefined, T0 + 1)),
      );
      const completed = Array.from({ length: 300 }, (_, i) => i).filter(
        (i) => i % 3 !== 0 && i % 2 === 0,
      ).length;
      const c = (await st.scrape([hexOf(h)], 10)).get(hexOf(h));
      expect(c).toEqual({ complete: 100 + completed, incomplete: 200 - completed, downloaded: completed });
      if (st instanceof RedisSwarmStore) await st.close();
    });
  });
}

/** The in-memory store's registry expires on the tracker's sweep: run it. */
async function expireMemory(s: SwarmStore, now: number): Promise<void> {
  if (s instanceof MemorySwarmStore) s.expire(now);
}
