import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnnounceRequest } from '../../src/tracker/announce.js';
import { defaultLimits } from '../../src/tracker/limits.js';
import { RedisSwarmStore, SAMPLE_CACHE_MIN_PEERS, SAMPLE_MS } from '../../src/tracker-server/redis-store.js';
import { startRedis, type TestRedis } from '../support/redis.js';

/**
 * A large swarm in Redis is answered from a sample at most SAMPLE_MS old (the script skips
 * sampling); the counts stay exact at every announce, the reply never holds the announcer, and a
 * small swarm is sampled fresh every time.
 */

const limits = { ...defaultLimits(30), maxPeersPerSwarm: 10_000 };
const T0 = 1_700_000_000_000;
const pid = (i: number) => `-XX0001-${String(i).padStart(12, '0')}`;
const ipOf = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
const compactOf = (i: number) =>
  Buffer.from([10, (i >> 16) & 255, (i >> 8) & 255, i & 255, 0x1b, 0x58]).toString('latin1');

function req(
  infoHash: string,
  i: number,
  left = 100,
  event: AnnounceRequest['event'] = 'empty',
): AnnounceRequest {
  return {
    infoHash,
    peerId: pid(i),
    port: 7000,
    uploaded: 0,
    downloaded: 0,
    left,
    event,
    numwant: 50,
    compact: true,
    noPeerId: false,
    key: null,
    ip: ipOf(i),
  };
}

describe('Redis store: samples of large swarms', () => {
  let redis: TestRedis;
  let store: RedisSwarmStore;
  beforeAll(async () => {
    redis = await startRedis();
    store = new RedisSwarmStore({ url: redis.url, limits });
    await store.ready();
  }, 20_000);
  afterAll(async () => {
    await store?.close();
    await redis?.dispose();
  });

  it('counts exact at every announce; replies of members only, never the announcer', async () => {
    const h = Buffer.alloc(20, 0x5a).toString('latin1');
    const n = SAMPLE_CACHE_MIN_PEERS + 200;
    for (let i = 1; i <= n; i++) await store.announce(req(h, i, i <= 100 ? 0 : 100), 0, undefined, T0);
    const members = new Set(Array.from({ length: n + 10 }, (_, i) => compactOf(i + 1)));
    // Within one sample's life: new peers, a seed, a stopped peer; each reply right.
    for (let k = 0; k < 10; k++) {
      const i = n + 1 + k;
      const r = await store.announce(req(h, i, k === 0 ? 0 : 100), 50, undefined, T0 + k);
      expect(r.complete).toBe(101);
      expect(r.incomplete).toBe(n - 100 + k);
      expect(r.peers.length).toBe(50);
      const got = r.peers.map((p) => p.compact);
      expect(new Set(got).size).toBe(50);
      expect(got).not.toContain(compactOf(i));
      for (const c of got) expect(members.has(c)).toBe(true);
    }
    const stopped = await store.announce(req(h, 5, 0, 'stopped'), 50, undefined, T0 + 20);
    expect(stopped.peers).toEqual([]);
    expect(stopped.complete).toBe(100);
    // A sample older than SAMPLE_MS is replaced: the reply is still full and valid.
    const later = await store.announce(req(h, 7, 0), 50, undefined, T0 + SAMPLE_MS + 50);
    expect(later.peers.length).toBe(50);
    expect(later.peers.map((p) => p.compact)).not.toContain(compactOf(7));
  }, 30_000);

  it('a small swarm is sampled at every announce: a peer that just joined is given at once', async () => {
    const h = Buffer.alloc(20, 0x6b).toString('latin1');
    await store.announce(req(h, 1, 0), 50, undefined, T0);
    const second = await store.announce(req(h, 2), 50, undefined, T0 + 1);
    expect(second.peers.map((p) => p.compact)).toEqual([compactOf(1)]);
    const third = await store.announce(req(h, 3), 50, undefined, T0 + 2);
    expect(third.peers.map((p) => p.compact).sort()).toEqual([compactOf(1), compactOf(2)].sort());
  });
});
