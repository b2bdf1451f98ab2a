import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/core/rate-limit.js';
import { registerDashboard } from '../../src/dashboard/routes.js';
import { type RunningTracker, startTracker } from '../../src/tracker-server/server.js';
import { post, testTracker } from '../support/tracker.js';

const json = fc.jsonValue({ maxDepth: 3 });
const junkString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constant(''),
  fc.constant('%'),
  fc.constant('%zz'),
);

describe('the tracker under random and boundary input: always 4xx (or a bencoded failure), never 5xx', () => {
  const t = testTracker();

  it('JSON endpoints: arbitrary JSON bodies', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('/register', '/update', '/deregister'), json, async (url, body) => {
        const r = await t.app.inject({
          method: 'POST',
          url,
          headers: { 'content-type': 'application/json' },
          payload: JSON.stringify(body),
        });
        expect(r.statusCode).toBeLessThan(500);
        if (r.statusCode >= 400) expect(r.json().error.code).toMatch(/^ERR_/);
      }),
      { numRuns: 300 },
    );
  });

  it('JSON endpoints: mutated valid bodies (wrong types, huge numbers, odd strings)', async () => {
    const field = fc.oneof(
      json,
      fc.double(),
      fc.bigInt().map(String),
      fc.constant(2 ** 53),
      fc.constant(-1),
      junkString,
    );
    await fc.assert(
      fc.asyncProperty(field, field, field, async (a, b, c) => {
        const bodies = [
          { peer_id: a, port: b, files: { f: c } },
          // (String(a) would throw for objects like {toString: false}: a bug in the test, not the tracker.)
          { peer_id: 'p', port: 1, files: { [typeof a === 'string' ? a : (JSON.stringify(a) ?? 'x')]: c } },
          { peer_id: 'p', key: a, file: b, chunks: c },
          { peer_id: a, key: b },
        ];
        for (const [i, body] of bodies.entries()) {
          const url = ['/register', '/register', '/update', '/deregister'][i] as string;
          const r = await post(t, url, body);
          expect(r.status, `${url} ${JSON.stringify(body)} -> ${JSON.stringify(r.json)}`).toBeLessThan(500);
          if (r.status >= 400) expect(r.json.error?.code, JSON.stringify(r.json)).toMatch(/^ERR_/);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('GET endpoints: arbitrary query strings', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/announce', '/scrape', '/get_peers', '/api/swarm', '/stats', '/health'),
        fc.array(fc.tuple(junkString, junkString), { maxLength: 8 }),
        async (path, pairs) => {
          const q = pairs.map(([k, v]) => `${encodeURIComponent(k)}=${v.replace(/[#\s]/g, '')}`).join('&');
          const r = await t.app.inject({ method: 'GET', url: `${path}?${q}` });
          expect(r.statusCode).toBeLessThan(500);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('caps a swarm: the peer past the limit is refused (403), the swarm keeps working', async () => {
    const small = testTracker({ limits: { maxPeersPerSwarm: 3 } });
    const results = [];
    for (let i = 0; i < 4; i++)
      results.push(await post(small, '/register', { peer_id: `p${i}`, port: 1000 + i, files: { f: [0] } }));
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 403]);
    expect(results[3]?.json.error.code).toBe('ERR_SWARM_FULL');
    expect(small.registry.peerCount).toBe(3);
  });

  it('caps the number of swarms', async () => {
    const small = testTracker({ limits: { maxSwarms: 2 } });
    await post(small, '/register', { peer_id: 'a', port: 1, files: { f1: [0] } });
    await post(small, '/register', { peer_id: 'b', port: 1, files: { f2: [0] } });
    const r = await post(small, '/register', { peer_id: 'c', port: 1, files: { f3: [0] } });
    expect(r.status).toBe(403);
    expect(r.json.error.code).toBe('ERR_TOO_MANY_SWARMS');
  });
});

describe('per-address rate limit', () => {
  let tracker: RunningTracker | undefined;
  afterAll(() => tracker?.close());

  it('RateLimiter: a burst, then the rate; idle addresses forgotten', () => {
    const r = new RateLimiter(10, 20);
    let allowed = 0;
    for (let i = 0; i < 100; i++) if (r.allow('1.2.3.4', 0)) allowed++;
    expect(allowed).toBe(20);
    expect(r.allow('5.6.7.8', 0)).toBe(true);
    expect(r.allow('1.2.3.4', 1000)).toBe(true);
    r.sweep(120_000);
    expect(r.size).toBe(0);
  });

  it('answers 429 over real HTTP past the limit, on the JSON API and /announce alike', async () => {
    tracker = await startTracker({ port: 0 }, { rateLimit: 5, routes: registerDashboard });
    const codes: number[] = [];
    for (let i = 0; i < 30; i++) codes.push((await fetch(`${tracker.url}/health`)).status);
    expect(codes.slice(0, 10)).toEqual(new Array(10).fill(200));
    expect(codes).toContain(429);
    const limited = await fetch(`${tracker.url}/get_peers?file=x`);
    expect(limited.status).toBe(429);
    expect(((await limited.json()) as { error: { code: string } }).error.code).toBe('ERR_RATE_LIMITED');
    const ann = await fetch(`${tracker.url}/announce?info_hash=x`);
    expect(ann.status).toBe(429);
    expect(await ann.text()).toMatch(/^d14:failure reason/);
    expect(tracker.counters.rate_limited).toBeGreaterThan(0);
  });
});
