import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RedisJsonLog } from '../../src/tracker-server/redis-log.js';
import type { TrackerOpts } from '../../src/tracker-server/server.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { get, post, testTracker } from '../support/tracker.js';

/**
 * The JSON API, one suite for both registries: this process's (the default), and the one shared
 * by instances through a log in Redis (`tracker --store redis://...`; a real redis-server, each
 * tracker under its own key prefix). Replies, refusals and state must agree.
 */

let redis: TestRedis;
const logs: RedisJsonLog[] = [];
let prefixes = 0;
beforeAll(async () => {
  redis = await startRedis();
}, 20_000);
afterAll(async () => {
  for (const l of logs) await l.close();
  await redis?.dispose();
});

function makeTracker(mode: 'memory' | 'redis', opts: TrackerOpts) {
  if (mode === 'memory') return testTracker(opts);
  return testTracker({
    ...opts,
    sharedJson: (registry) => {
      const l = new RedisJsonLog({ url: redis.url, registry, prefix: `json${++prefixes}:` });
      logs.push(l);
      return l;
    },
  });
}

describe.each(['memory', 'redis'] as const)('JSON API, %s registry', (mode) => {
  const tracker = (opts: TrackerOpts = {}) => makeTracker(mode, opts);

  const ALL20 = Array.from({ length: 20 }, (_, i) => i);

  async function registerTwo() {
    const t = tracker();
    const lines: string[] = [];
    const r1 = await post(t, '/register', { peer_id: 'peer1', port: 6000, files: { 'file2.txt': ALL20 } });
    const r2 = await post(t, '/register', {
      peer_id: 'peer2',
      ip: '127.0.0.3',
      port: 6001,
      files: { 'file2.txt': [0, 1, 2] },
    });
    return { t, r1, r2, lines };
  }

  describe('POST /register', () => {
    it('registers a peer, returns its record and a secret key, defaults ip to the remote address', async () => {
      const { r1, r2 } = await registerTwo();
      expect(r1.status).toBe(200);
      expect(r1.json).toMatchObject({
        peer_id: 'peer1',
        ip: '127.0.0.1',
        port: 6000,
        files: { 'file2.txt': ALL20 },
      });
      expect(typeof r1.json.key).toBe('string');
      expect(r2.json.ip).toBe('127.0.0.3');
      expect(r2.json.key).not.toBe(r1.json.key);
    });

    it('logs the original line', async () => {
      const lines: string[] = [];
      const t = tracker({ log: (l) => lines.push(l) });
      await post(t, '/register', { peer_id: 'peer2', port: 6001, files: { 'file2.txt': [0, 1, 2] } });
      expect(lines).toContain(
        "Peer registered: peer2 at 127.0.0.1:6001 with files: {'file2.txt': [0, 1, 2]}",
      );
    });

    it('refuses a taken peer id without its key, and re-registers with it', async () => {
      const { t, r1 } = await registerTwo();
      const taken = await post(t, '/register', { peer_id: 'peer1', port: 7000 });
      expect(taken.status).toBe(409);
      expect(taken.json.error.code).toBe('ERR_PEER_ID_TAKEN');
      const again = await post(t, '/register', {
        peer_id: 'peer1',
        port: 7000,
        key: r1.json.key,
        files: { 'file2.txt': [5] },
      });
      expect(again.status).toBe(200);
      expect(again.json.key).toBe(r1.json.key);
      const peers = await get(t, '/get_peers?file=file2.txt');
      expect(peers.json.peers.peer1).toMatchObject({ port: 7000, chunks: [5] });
    });

    it('accepts a compact base64 bitfield with its piece count', async () => {
      const t = tracker();
      // 10 pieces: 0,1,9 held -> 11000000 01000000
      const r = await post(t, '/register', {
        peer_id: 'p',
        port: 1000,
        files: { 'big.iso': { bitfield: Buffer.from([0xc0, 0x40]).toString('base64'), pieces: 10 } },
      });
      expect(r.status).toBe(200);
      expect(r.json.files['big.iso']).toEqual([0, 1, 9]);
      const g = await get(t, '/get_peers?file=big.iso&format=bitfield');
      expect(g.json.peers.p.bitfield).toBe(Buffer.from([0xc0, 0x40]).toString('base64'));
    });

    const bad: [string, unknown, number, string][] = [
      ['malformed JSON', '{"peer_id":', 400, 'ERR_BAD_JSON'],
      ['a JSON array', '[1,2]', 400, 'ERR_VALIDATION'],
      ['missing peer_id', { port: 6000 }, 400, 'ERR_VALIDATION'],
      ['missing port', { peer_id: 'x' }, 400, 'ERR_VALIDATION'],
      ['port as a string', { peer_id: 'x', port: '6000' }, 400, 'ERR_VALIDATION'],
      ['port 0', { peer_id: 'x', port: 0 }, 400, 'ERR_VALIDATION'],
      ['port 65536', { peer_id: 'x', port: 65536 }, 400, 'ERR_VALIDATION'],
      ['a peer id with spaces', { peer_id: 'a b', port: 1 }, 400, 'ERR_VALIDATION'],
      ['an unknown field', { peer_id: 'x', port: 1, colour: 'red' }, 400, 'ERR_VALIDATION'],
      ['a bad ip', { peer_id: 'x', port: 1, ip: '300.1.1.1' }, 400, 'ERR_BAD_IP'],
      ['a hostname as ip', { peer_id: 'x', port: 1, ip: 'example.org' }, 400, 'ERR_BAD_IP'],
      ['negative chunks', { peer_id: 'x', port: 1, files: { f: [-1] } }, 400, 'ERR_VALIDATION'],
      ['fractional chunks', { peer_id: 'x', port: 1, files: { f: [1.5] } }, 400, 'ERR_VALIDATION'],
      ['chunks as a string', { peer_id: 'x', port: 1, files: { f: '0,1' } }, 400, 'ERR_VALIDATION'],
      [
        'a bitfield without pieces',
        { peer_id: 'x', port: 1, files: { f: { bitfield: 'wA==' } } },
        400,
        'ERR_BAD_CHUNKS',
      ],
      [
        'a bitfield of the wrong size',
        { peer_id: 'x', port: 1, files: { f: { bitfield: 'wA==', pieces: 20 } } },
        400,
        'ERR_BAD_CHUNKS',
      ],
      [
        'a bitfield with spare bits',
        { peer_id: 'x', port: 1, files: { f: { bitfield: 'Aw==', pieces: 4 } } },
        400,
        'ERR_BAD_CHUNKS',
      ],
      [
        'a bitfield not base64',
        { peer_id: 'x', port: 1, files: { f: { bitfield: '!!!!', pieces: 4 } } },
        400,
        'ERR_BAD_CHUNKS',
      ],
      [
        'chunks past pieces',
        { peer_id: 'x', port: 1, files: { f: { chunks: [4], pieces: 4 } } },
        400,
        'ERR_BAD_CHUNKS',
      ],
      [
        'a bad info_hash',
        { peer_id: 'x', port: 1, files: { f: { info_hash: 'abc' } } },
        400,
        'ERR_VALIDATION',
      ],
    ];
    for (const [what, body, status, code] of bad) {
      it(`rejects ${what} with ${status} ${code}`, async () => {
        const t = tracker();
        const r = await post(t, '/register', body);
        expect(r.status).toBe(status);
        expect(r.json.error.code).toBe(code);
        expect(typeof r.json.error.message).toBe('string');
        expect(t.registry.peerCount).toBe(0);
        expect(t.registry.clients.size).toBe(0);
      });
    }

    it('rejects a body that is not JSON (415) and one over the size limit (413)', async () => {
      const t = tracker({ limits: { maxBodyBytes: 1024 } });
      const text = await t.app.inject({
        method: 'POST',
        url: '/register',
        headers: { 'content-type': 'application/xml' },
        payload: '<a/>',
      });
      expect(text.statusCode).toBe(415);
      expect(text.json().error.code).toBe('ERR_UNSUPPORTED_MEDIA_TYPE');
      const big = await post(t, '/register', {
        peer_id: 'x',
        port: 1,
        files: { f: Array.from({ length: 600 }, (_, i) => i) },
      });
      expect(big.status).toBe(413);
      expect(big.json.error.code).toBe('ERR_BODY_TOO_LARGE');
    });

    it('leaves nothing behind when one file of several is bad', async () => {
      const t = tracker();
      const r = await post(t, '/register', {
        peer_id: 'x',
        port: 1,
        files: { good: [0, 1], bad: { chunks: [9], pieces: 4 } },
      });
      expect(r.status).toBe(400);
      expect(t.registry.swarms.size).toBe(0);
      expect(t.registry.peerCount).toBe(0);
    });
  });

  describe('GET /get_peers', () => {
    it('returns every peer and its chunks, and logs the availability table', async () => {
      const lines: string[] = [];
      const t = tracker({ log: (l) => lines.push(l) });
      await post(t, '/register', { peer_id: 'peer1', port: 6000, files: { 'file2.txt': ALL20 } });
      await post(t, '/register', { peer_id: 'peer4', port: 6003, files: { 'file2.txt': [0, 1, 2, 3, 4] } });
      const r = await get(t, '/get_peers?file=file2.txt');
      expect(r.status).toBe(200);
      expect(r.json).toMatchObject({ file: 'file2.txt', pieces: 20, seeds: 1, leechers: 1, total_peers: 2 });
      expect(r.json.peers.peer1).toEqual({
        ip: '127.0.0.1',
        port: 6000,
        source: 'json',
        complete: true,
        chunks: ALL20,
      });
      expect(r.json.peers.peer4.chunks).toEqual([0, 1, 2, 3, 4]);
      const table = lines.find((l) => l.startsWith("Available peers for 'file2.txt':")) as string;
      expect(table.split('\n')).toEqual([
        "Available peers for 'file2.txt':",
        expect.stringMatching(/^peer[14]: \[/),
        expect.stringMatching(/^peer[14]: \[/),
      ]);
      expect(table).toContain('peer4: [0, 1, 2, 3, 4]');
    });

    it('honours exclude and numwant, and caps numwant', async () => {
      const t = tracker({ limits: { maxNumwant: 5 } });
      for (let i = 0; i < 12; i++)
        await post(t, '/register', { peer_id: `p${i}`, port: 6000 + i, files: { f: [i] } });
      const ex = await get(t, '/get_peers?file=f&exclude=p3&numwant=100');
      expect(Object.keys(ex.json.peers)).toHaveLength(5);
      expect(ex.json.total_peers).toBe(12);
      const all = await get(t, '/get_peers?file=f&exclude=p3&numwant=5');
      expect(Object.keys(all.json.peers)).not.toContain('p3');
      const small = tracker();
      await post(small, '/register', { peer_id: 'a', port: 1, files: { f: [0] } });
      await post(small, '/register', { peer_id: 'b', port: 2, files: { f: [0] } });
      expect(Object.keys((await get(small, '/get_peers?file=f&exclude=a')).json.peers)).toEqual(['b']);
    });

    it('defaults to 50 peers for a large swarm', async () => {
      const t = tracker();
      for (let i = 0; i < 80; i++)
        await post(t, '/register', { peer_id: `p${i}`, port: 1000 + i, files: { f: [0] } });
      const r = await get(t, '/get_peers?file=f');
      expect(Object.keys(r.json.peers)).toHaveLength(50);
      expect(r.json.total_peers).toBe(80);
    });

    const bad: [string, number, string][] = [
      ['/get_peers', 400, 'ERR_VALIDATION'],
      ['/get_peers?file=nope', 404, 'ERR_UNKNOWN_FILE'],
      ['/get_peers?file=f&numwant=abc', 400, 'ERR_VALIDATION'],
      ['/get_peers?file=f&numwant=-1', 400, 'ERR_VALIDATION'],
      ['/get_peers?file=f&format=xml', 400, 'ERR_VALIDATION'],
      ['/get_peers?file=f&file=g', 400, 'ERR_VALIDATION'],
      [`/get_peers?file=${'a'.repeat(40)}`, 404, 'ERR_UNKNOWN_FILE'],
    ];
    for (const [url, status, code] of bad) {
      it(`answers ${url.slice(0, 40)} with ${status} ${code}`, async () => {
        const t = tracker();
        const r = await get(t, url);
        expect(r.status).toBe(status);
        expect(r.json.error.code).toBe(code);
      });
    }
  });

  describe('POST /update', () => {
    it('sets the chunk set, may add a new file, and counts a completed download', async () => {
      const { t, r2 } = await registerTwo();
      const key = r2.json.key;
      const u = await post(t, '/update', {
        peer_id: 'peer2',
        key,
        file: 'file2.txt',
        chunks: [0, 1, 2, 3, 4],
      });
      expect(u.status).toBe(200);
      expect(u.json).toMatchObject({ ok: true, chunks: 5, pieces: 20, complete: false });
      const done = await post(t, '/update', { peer_id: 'peer2', key, file: 'file2.txt', chunks: ALL20 });
      expect(done.json.complete).toBe(true);
      const added = await post(t, '/update', { peer_id: 'peer2', key, file: 'other.bin', chunks: [0] });
      expect(added.status).toBe(200);
      const g = await get(t, '/get_peers?file=file2.txt');
      expect(g.json.seeds).toBe(2);
      expect((await get(t, '/get_peers?file=other.bin')).json.peers.peer2.chunks).toEqual([0]);
      const stats = await get(t, '/stats');
      const swarm = stats.json.swarms.find((s: { file: string }) => s.file === 'file2.txt');
      expect(swarm.downloaded).toBe(1);
    });

    it('lets no peer update another: wrong key 403, unknown peer 404', async () => {
      const { t, r1 } = await registerTwo();
      const wrong = await post(t, '/update', {
        peer_id: 'peer2',
        key: r1.json.key,
        file: 'file2.txt',
        chunks: [],
      });
      expect(wrong.status).toBe(403);
      expect(wrong.json.error.code).toBe('ERR_WRONG_KEY');
      const unknown = await post(t, '/update', { peer_id: 'ghost', key: 'k', file: 'file2.txt', chunks: [] });
      expect(unknown.status).toBe(404);
      expect(unknown.json.error.code).toBe('ERR_UNKNOWN_PEER');
      expect((await get(t, '/get_peers?file=file2.txt')).json.peers.peer2.chunks).toEqual([0, 1, 2]);
    });

    it('rejects chunks out of the file range, missing key, chunks without file', async () => {
      const { t, r2 } = await registerTwo();
      const key = r2.json.key;
      await post(t, '/update', { peer_id: 'peer2', key, file: 'file2.txt', chunks: [0], pieces: 20 });
      const out = await post(t, '/update', { peer_id: 'peer2', key, file: 'file2.txt', chunks: [20] });
      expect(out.status).toBe(400);
      expect(out.json.error.code).toBe('ERR_BAD_CHUNKS');
      const noKey = await post(t, '/update', { peer_id: 'peer2', file: 'file2.txt', chunks: [1] });
      expect(noKey.json.error.code).toBe('ERR_VALIDATION');
      const noFile = await post(t, '/update', { peer_id: 'peer2', key, chunks: [1] });
      expect(noFile.json.error.code).toBe('ERR_VALIDATION');
    });

    it('with no file is a heartbeat that keeps the peer alive', async () => {
      const t = tracker({ interval: 10 });
      const r = await post(t, '/register', { peer_id: 'a', port: 1, files: { f: [0] } });
      t.clock.t += 15_000;
      expect((await post(t, '/update', { peer_id: 'a', key: r.json.key })).status).toBe(200);
      t.clock.t += 15_000;
      t.registry.expire(t.clock.t);
      expect(t.registry.peerCount).toBe(1);
      t.clock.t += 21_000;
      t.registry.expire(t.clock.t);
      expect(t.registry.peerCount).toBe(0);
      expect(t.registry.clients.size).toBe(0);
    });
  });

  describe('POST /deregister', () => {
    it('removes the peer from every swarm, only with its key', async () => {
      const { t, r1, r2 } = await registerTwo();
      await post(t, '/update', { peer_id: 'peer2', key: r2.json.key, file: 'x.bin', chunks: [0] });
      const wrong = await post(t, '/deregister', { peer_id: 'peer2', key: r1.json.key });
      expect(wrong.status).toBe(403);
      const ok = await post(t, '/deregister', { peer_id: 'peer2', key: r2.json.key });
      expect(ok.status).toBe(200);
      expect(ok.json.left_swarms).toBe(2);
      expect(Object.keys((await get(t, '/get_peers?file=file2.txt')).json.peers)).toEqual(['peer1']);
      expect((await get(t, '/get_peers?file=x.bin')).status).toBe(404);
      const again = await post(t, '/deregister', { peer_id: 'peer2', key: r2.json.key });
      expect(again.json.error.code).toBe('ERR_UNKNOWN_PEER');
    });
  });

  describe('names and info hashes', () => {
    const H1 = '11'.repeat(20);
    const H2 = '22'.repeat(20);

    it('never mixes two different files that share a name', async () => {
      const t = tracker();
      await post(t, '/register', {
        peer_id: 'a',
        port: 1,
        files: { 'same.txt': { info_hash: H1, chunks: [0], pieces: 4 } },
      });
      // While one file has the name, the name finds it.
      const one = await get(t, '/get_peers?file=same.txt');
      expect(one.json.info_hash).toBe(H1);
      await post(t, '/register', {
        peer_id: 'b',
        port: 2,
        files: { 'same.txt': { info_hash: H2, chunks: [1], pieces: 8 } },
      });
      const amb = await get(t, '/get_peers?file=same.txt');
      expect(amb.status).toBe(409);
      expect(amb.json.error.code).toBe('ERR_AMBIGUOUS_FILE');
      expect(amb.json.error.info_hashes.sort()).toEqual([H1, H2]);
      const g1 = await get(t, `/get_peers?file=${H1}`);
      expect(Object.keys(g1.json.peers)).toEqual(['a']);
      expect(g1.json.pieces).toBe(4);
      const g2 = await get(t, `/get_peers?file=${H2.toUpperCase()}`);
      expect(Object.keys(g2.json.peers)).toEqual(['b']);
      // A peer known by name only forms its own swarm, which the bare name then addresses.
      await post(t, '/register', { peer_id: 'c', port: 3, files: { 'same.txt': [0] } });
      const byName = await get(t, '/get_peers?file=same.txt');
      expect(byName.json.info_hash).toBe(null);
      expect(Object.keys(byName.json.peers)).toEqual(['c']);
    });

    it('an update by name goes to the file the peer registered by info hash', async () => {
      const t = tracker();
      const r = await post(t, '/register', {
        peer_id: 'a',
        port: 1,
        files: { 'f.bin': { info_hash: H1, chunks: [], pieces: 4 } },
      });
      const u = await post(t, '/update', {
        peer_id: 'a',
        key: r.json.key,
        file: 'f.bin',
        chunks: [0, 1, 2, 3],
      });
      expect(u.json).toMatchObject({ info_hash: H1, complete: true });
    });

    it('refuses a piece count that contradicts the swarm', async () => {
      const t = tracker();
      await post(t, '/register', { peer_id: 'a', port: 1, files: { [H1]: { chunks: [0], pieces: 4 } } });
      const r = await post(t, '/register', {
        peer_id: 'b',
        port: 2,
        files: { [H1]: { chunks: [0], pieces: 5 } },
      });
      expect(r.status).toBe(400);
      expect(r.json.error.code).toBe('ERR_BAD_CHUNKS');
    });
  });

  describe('health, stats, unknown routes', () => {
    it('answers /health and /stats, 404 JSON for an unknown route', async () => {
      const { t } = await registerTwo();
      expect((await get(t, '/health')).json).toMatchObject({ status: 'ok', peers: 2, swarms: 1 });
      const s = await get(t, '/stats');
      expect(s.json).toMatchObject({ peers: 2, clients: 2, swarm_count: 1 });
      expect(s.json.swarms[0]).toMatchObject({ file: 'file2.txt', seeds: 1, leechers: 1 });
      expect(s.json.requests.register).toBe(2);
      const nf = await get(t, '/nope');
      expect(nf.status).toBe(404);
      expect(nf.json.error.code).toBe('ERR_NOT_FOUND');
    });

    it('answers 405 with the methods it takes for a known path asked with another method', async () => {
      const t = tracker();
      const wrong = await get(t, '/register');
      expect(wrong.status).toBe(405);
      expect(wrong.json.error.code).toBe('ERR_METHOD_NOT_ALLOWED');
      const res = await t.app.inject({ method: 'DELETE', url: '/get_peers?file=x' });
      expect(res.statusCode).toBe(405);
      expect(res.headers.allow).toBe('GET');
      expect((await post(t, '/health', {})).status).toBe(405);
    });
  });

  describe('availability log lines', () => {
    it('count the peers left out, not the asker', async () => {
      const lines: string[] = [];
      const t = tracker({ log: (l) => lines.push(l), limits: { defaultGetPeers: 2 } });
      for (let i = 1; i <= 5; i++)
        await post(t, '/register', { peer_id: `peer${i}`, port: 6000 + i, files: { f: [0] } });
      await get(t, '/get_peers?file=f&exclude=peer1');
      const table = lines.filter((l) => l.startsWith('Available')).pop() as string;
      expect(table.split('\n')).toHaveLength(4);
      expect(table).toContain('(2 more peers not listed)');
      await get(t, '/get_peers?file=f&exclude=peer1&numwant=10');
      expect(lines.filter((l) => l.startsWith('Available')).pop()).not.toContain('more peers');
    });
  });
});

describe('the OpenAPI document', () => {
  it('lists the JSON API, the dashboard-independent routes and their schemas', async () => {
    const t = testTracker();
    const doc = (await t.app.inject({ method: 'GET', url: '/docs/json' })).json() as {
      paths: Record<string, Record<string, { requestBody?: unknown }>>;
    };
    for (const p of [
      '/register',
      '/get_peers',
      '/update',
      '/deregister',
      '/announce',
      '/scrape',
      '/health',
      '/stats',
    ])
      expect(Object.keys(doc.paths)).toContain(p);
    expect(doc.paths['/register']?.post?.requestBody).toBeDefined();
  });
});
