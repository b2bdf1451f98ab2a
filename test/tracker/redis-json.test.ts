import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerDashboard } from '../../src/dashboard/routes.js';
import { RedisJsonLog } from '../../src/tracker-server/redis-log.js';
import { type RunningTracker, startTracker } from '../../src/tracker-server/server.js';
import { waitFor } from '../support/proc.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { announceUrl, peerIdOf } from '../support/tracker.js';

/**
 * The JSON chunk-map API and the dashboard across tracker instances on one real redis-server:
 * a peer registered at one instance is given (with its chunks) by another at once, updated and
 * deregistered through any of them, shown live by every instance's dashboard, and expired by
 * all alike; a new instance starts from the snapshot; Redis down means a clear 503, and Redis
 * back (empty) means the instances start again from nothing, together.
 */

async function call(t: RunningTracker, method: 'GET' | 'POST', path: string, body?: unknown) {
  const res = await fetch(`${t.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as Record<string, any> };
}

describe('the JSON API shared by tracker instances through Redis', () => {
  let redis: TestRedis;
  const trackers: RunningTracker[] = [];
  const lines: string[][] = [];
  const instance = async (interval = 30) => {
    const log: string[] = [];
    const t = await startTracker(
      { port: 0 },
      { storeUrl: redis.url, routes: registerDashboard, interval, log: (l) => log.push(l) },
    );
    trackers.push(t);
    lines.push(log);
    return t;
  };
  beforeAll(async () => {
    redis = await startRedis();
  }, 20_000);
  afterAll(async () => {
    for (const t of trackers) await t.close().catch(() => {});
    await redis?.dispose();
  });

  it('register at one, get_peers at another (chunks and all); update and deregister anywhere', async () => {
    const a = await instance();
    const b = await instance();
    expect(a.shared).toBeInstanceOf(RedisJsonLog);
    const r = await call(a, 'POST', '/register', {
      peer_id: 'origin',
      port: 6001,
      files: { 'movie.mkv': { chunks: [0, 1, 2, 3], pieces: 4 } },
    });
    expect(r.status).toBe(200);
    const key = r.json.key as string;
    // No waiting: the read at b waits for b to apply what was appended before it.
    const p = await call(b, 'GET', '/get_peers?file=movie.mkv');
    expect(p.status).toBe(200);
    expect(p.json).toMatchObject({ pieces: 4, seeds: 1, leechers: 0 });
    expect(p.json.peers.origin).toMatchObject({ port: 6001, chunks: [0, 1, 2, 3], complete: true });
    // Every instance logged the registration (each applies every write).
    expect(lines[1]?.some((l) => l.startsWith('Peer registered: origin'))).toBe(true);

    const l = await call(b, 'POST', '/register', {
      peer_id: 'leech',
      port: 6002,
      files: { 'movie.mkv': [1] },
    });
    // The leecher's key, given by b, works at a; a wrong key is refused at either alike.
    const up = await call(a, 'POST', '/update', {
      peer_id: 'leech',
      key: l.json.key,
      file: 'movie.mkv',
      chunks: [0, 1, 2],
      stats: { downloaded: 3000, uploaded: 0 },
    });
    expect(up.json).toMatchObject({ ok: true, chunks: 3, complete: false });
    for (const t of [a, b]) {
      const wrong = await call(t, 'POST', '/update', { peer_id: 'origin', key: 'nope', file: 'movie.mkv' });
      expect(wrong.status).toBe(403);
      expect(wrong.json.error.code).toBe('ERR_WRONG_KEY');
    }
    const taken = await call(b, 'POST', '/register', { peer_id: 'origin', port: 9 });
    expect(taken.json.error.code).toBe('ERR_PEER_ID_TAKEN');

    // The dashboard of either instance shows the whole swarm.
    for (const t of [a, b]) {
      const view = await call(t, 'GET', '/api/swarm?swarm=name:movie.mkv');
      expect(view.json.totalPeers).toBe(2);
      const have = Object.fromEntries(
        (view.json.peers as { id: string; have: number }[]).map((x) => [x.id, x.have]),
      );
      expect(have).toEqual({ origin: 4, leech: 3 });
    }

    const gone = await call(b, 'POST', '/deregister', { peer_id: 'origin', key });
    expect(gone.json).toMatchObject({ ok: true, left_swarms: 1 });
    const after = await call(a, 'GET', '/get_peers?file=movie.mkv');
    expect(Object.keys(after.json.peers)).toEqual(['leech']);
  });

  it('the dashboard of any instance shows the announce peers kept in Redis too', async () => {
    const [a, b] = trackers as [RunningTracker, RunningTracker];
    const hash = Buffer.alloc(20, 0xab);
    const hex = hash.toString('hex');
    for (const [t, n, left] of [
      [a, 1, 0],
      [b, 2, 500],
    ] as const) {
      const res = await fetch(
        `${t.url}${announceUrl({ infoHash: hash, peerId: peerIdOf(n), port: 7100 + n, left, ip: `10.1.0.${n}` })}`,
      );
      expect(res.status).toBe(200);
    }
    for (const t of [a, b]) {
      const list = await call(t, 'GET', '/api/swarms');
      expect(list.json.swarms).toContainEqual(
        expect.objectContaining({ id: hex, info_hash: hex, seeds: 1, leechers: 1 }),
      );
      const view = await call(t, 'GET', `/api/swarm?swarm=${hex}`);
      expect(view.json.totalPeers).toBe(2);
      expect(
        (view.json.peers as { address: string; source: string; complete: boolean }[])
          .map((p) => [p.address, p.source, p.complete])
          .sort(),
      ).toEqual([
        ['10.1.0.1:7101', 'announce', true],
        ['10.1.0.2:7102', 'announce', false],
      ]);
    }
  });

  it('a new instance starts from the snapshot; the log is trimmed up to it', async () => {
    const a = trackers[0] as RunningTracker;
    await call(a, 'POST', '/register', { peer_id: 'late', port: 6003, files: { 'movie.mkv': [2] } });
    await (a.shared as RedisJsonLog).snapshot();
    const r = new Redis(redis.url);
    try {
      const snap = await r.get('ss:j:snap');
      expect(snap).toMatch(/^\d+ \d+-\d+ \{/);
      // Entries before the snapshot's own are gone.
      expect(await r.xlen('ss:j:log')).toBe(1);
    } finally {
      r.disconnect();
    }
    const c = await instance();
    const p = await call(c, 'GET', '/get_peers?file=movie.mkv');
    expect(Object.keys(p.json.peers).sort()).toEqual(['late', 'leech']);
    expect(p.json.peers.leech.chunks).toEqual([0, 1, 2]);
    expect((c.shared as RedisJsonLog).applied).toBe((a.shared as RedisJsonLog).applied);
  });

  it('entries that are not our operations (written to Redis by someone else) are skipped by all', async () => {
    const [a, b] = trackers as [RunningTracker, RunningTracker];
    const r = new Redis(redis.url);
    try {
      for (const o of ['not json', JSON.stringify({ id: 'x:1', op: { t: 'update', body: null } }), '{}']) {
        const seq = await r.incr('ss:j:seq');
        await r.xadd('ss:j:log', '*', 's', String(seq), 'o', o);
      }
    } finally {
      r.disconnect();
    }
    const reg = await call(b, 'POST', '/register', {
      peer_id: 'after-junk',
      port: 6030,
      files: { 'movie.mkv': [0] },
    });
    expect(reg.status).toBe(200);
    for (const t of [a, b]) {
      const p = await call(t, 'GET', '/get_peers?file=movie.mkv');
      expect(p.status).toBe(200);
      expect(Object.keys(p.json.peers)).toContain('after-junk');
    }
    expect((a.shared as RedisJsonLog).applied).toBe((b.shared as RedisJsonLog).applied);
  });

  it('Redis down: writes and reads get a clear 503 in bounded time; back up empty, all start again', async () => {
    const [a, b] = trackers as [RunningTracker, RunningTracker];
    await redis.stop();
    const t0 = Date.now();
    const down = await call(a, 'POST', '/register', { peer_id: 'x', port: 6010 });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(down.status).toBe(503);
    expect(down.json.error.code).toBe('ERR_STORE_UNAVAILABLE');
    const read = await call(b, 'GET', '/get_peers?file=movie.mkv');
    expect(read.status).toBe(503);
    expect((await fetch(`${a.url}/health`)).status).toBe(200);
    await redis.restart();
    // The restarted Redis is empty (no persistence here): the first write resets every instance.
    const again = await waitFor(
      'a registration to be served again',
      async () => {
        const r = await call(b, 'POST', '/register', {
          peer_id: 'fresh',
          port: 6011,
          files: { 'movie.mkv': [0] },
        });
        return r.status === 200 ? r : undefined;
      },
      15_000,
      250,
    );
    expect(again.json.peer_id).toBe('fresh');
    for (const t of [a, b]) {
      const p = await call(t, 'GET', '/get_peers?file=movie.mkv');
      expect(Object.keys(p.json.peers)).toEqual(['fresh']);
    }
  }, 30_000);

  it('silent peers expire at every instance alike', async () => {
    const r = new Redis(redis.url);
    await r.flushall();
    r.disconnect();
    const x = await instance(1);
    const y = await instance(1);
    await call(x, 'POST', '/register', { peer_id: 'brief', port: 6020, files: { 'clip.mp4': [0] } });
    expect((await call(y, 'GET', '/get_peers?file=clip.mp4')).json.total_peers).toBe(1);
    // Interval 1 s: silent for 2 s, a peer goes (the sweep's expiry is an entry of the log).
    await waitFor(
      'the peer to expire at both',
      () => (x.registry.peerCount === 0 && y.registry.peerCount === 0 ? true : undefined),
      10_000,
      100,
    );
    expect(lines.at(-1)?.some((l) => l.includes('brief left the tracker (expired)'))).toBe(true);
  }, 20_000);
});
