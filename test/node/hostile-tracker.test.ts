import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  MAX_ANNOUNCE_REPLY_BYTES,
  MAX_PEERS_PER_REPLY,
  MAX_REDIRECTS,
  parseCompactPeers,
} from '../../src/net/tracker-client.js';
import { createTorrent } from '../../src/node/create-torrent.js';
import { PeerNode } from '../../src/node/peer-node.js';
import { MAX_KNOWN_PEERS, PeerSet } from '../../src/node/peer-set.js';
import { type RunningTracker, startTracker } from '../../src/tracker-server/server.js';
import { start, stopAll, waitFor } from '../support/proc.js';

/**
 * `swarmshare get` against a tracker that misbehaves, started here on loopback: a huge reply, a
 * redirect chain, a redirect to a scheme we do not speak, a zero interval. The process stays small,
 * paces its requests, says what went wrong, and completes through the torrent's other tracker.
 */

const CLI = 'dist/cli/main.js';
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await stopAll();
  for (const f of cleanup.reverse()) await f().catch(() => {});
  cleanup.length = 0;
});

type Mode = 'huge' | 'huge-chunked' | 'redirect-chain' | 'redirect-ftp' | 'interval0';

/** A tracker that misbehaves as `mode` says; counts the requests it gets. */
async function hostileTracker(mode: Mode) {
  let requests = 0;
  const server: Server = createServer((req, res) => {
    requests++;
    const url = new URL(req.url ?? '/', 'http://x');
    if (mode === 'redirect-chain') {
      const n = Number(url.searchParams.get('hop') ?? 0) + 1;
      res.writeHead(302, { location: `/announce?hop=${n}` });
      return res.end();
    }
    if (mode === 'redirect-ftp') {
      res.writeHead(301, { location: 'ftp://127.0.0.1/announce' });
      return res.end();
    }
    if (mode === 'interval0') {
      res.writeHead(200);
      return res.end(Buffer.from('d8:intervali0e5:peers0:e'));
    }
    // 16 MiB of compact peers (2.8 million), declared or streamed.
    const size = 16 * 1024 * 1024;
    const peers = randomBytes(size);
    const body = Buffer.concat([Buffer.from(`d8:intervali60e5:peers${size}:`), peers, Buffer.from('e')]);
    if (mode === 'huge') res.writeHead(200, { 'content-length': body.length });
    else res.writeHead(200);
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanup.push(() => new Promise((r) => server.close(r)));
  const a = server.address();
  const port = typeof a === 'object' && a !== null ? a.port : 0;
  return { url: `http://127.0.0.1:${port}/announce`, requests: () => requests };
}

/** A seed on a working tracker, and a torrent naming the hostile tracker first. */
async function swarm(hostileUrl: string) {
  const dir = await mkdtemp(join(tmpdir(), 'ss-htracker-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'seed'));
  await writeFile(join(dir, 'seed', 'f.bin'), randomBytes(256 * 1024));
  const good: RunningTracker = await startTracker({ port: 0 }, { interval: 2 });
  cleanup.push(() => good.close());
  const trackers = [hostileUrl, `${good.url}/announce`];
  const { bytes, meta } = await createTorrent(join(dir, 'seed', 'f.bin'), {
    pieceLength: 32 * 1024,
    trackers,
  });
  await writeFile(join(dir, 'f.torrent'), bytes);
  const seed = new PeerNode({
    meta,
    dir: join(dir, 'seed'),
    mode: 'seed',
    trackers: [`${good.url}/announce`],
  });
  await seed.start();
  cleanup.push(() => seed.stop());
  return { dir, torrent: join(dir, 'f.torrent') };
}

/** Peak resident memory of a running process, sampled every 50 ms until it exits. */
function watchRss(pid: number): () => number {
  let peak = 0;
  const timer = setInterval(() => {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]) * 1024);
    } catch {
      clearInterval(timer);
    }
  }, 50);
  return () => {
    clearInterval(timer);
    return peak;
  };
}

describe('swarmshare get under a hostile or broken tracker', () => {
  for (const mode of ['huge', 'huge-chunked'] as const) {
    it(`refuses a ${mode === 'huge' ? 'declared' : 'streamed'} 16 MiB reply, stays small, completes through the other tracker`, async () => {
      const h = await hostileTracker(mode);
      const { dir, torrent } = await swarm(h.url);
      const p = start('node', [CLI, 'get', torrent, '-o', join(dir, 'out'), '--timeout', '60']);
      const peak = watchRss(p.child.pid as number);
      expect(await p.exited, p.output()).toBe(0);
      const rss = peak();
      expect(p.output()).toContain(`answered more than ${MAX_ANNOUNCE_REPLY_BYTES} bytes: refused`);
      expect(p.output()).toMatch(/next try in \d+ s/);
      expect(rss).toBeGreaterThan(0);
      expect(rss).toBeLessThan(150 * 1024 * 1024);
    }, 60_000);
  }

  it('follows a redirect chain a few hops at most, backs off, and says so', async () => {
    const h = await hostileTracker('redirect-chain');
    const { dir, torrent } = await swarm(h.url);
    const p = start('node', [CLI, 'get', torrent, '-o', join(dir, 'out'), '--seed']);
    await waitFor('the download', () => p.output().includes('Seeding (Ctrl-C to stop)'), 30_000);
    await new Promise((r) => setTimeout(r, 7_000));
    p.child.kill('SIGTERM');
    await p.exited;
    expect(p.output()).toContain(`redirected more than ${MAX_REDIRECTS} times`);
    // Attempts in ~8 s: started, then retries after 2 and 4 s (backing off), completed, stopped.
    expect(h.requests()).toBeLessThanOrEqual(5 * (1 + MAX_REDIRECTS));
    expect(h.requests()).toBeGreaterThanOrEqual(1 + MAX_REDIRECTS);
  }, 60_000);

  it('names a redirect to a scheme it does not speak', async () => {
    const h = await hostileTracker('redirect-ftp');
    const { dir, torrent } = await swarm(h.url);
    const p = start('node', [CLI, 'get', torrent, '-o', join(dir, 'out'), '--timeout', '60']);
    expect(await p.exited, p.output()).toBe(0);
    expect(p.output()).toContain('redirects to ftp:// which we do not speak');
  }, 60_000);

  it('does not let a zero interval pace it into a storm', async () => {
    const h = await hostileTracker('interval0');
    const { dir, torrent } = await swarm(h.url);
    const p = start('node', [CLI, 'get', torrent, '-o', join(dir, 'out'), '--seed']);
    await waitFor('the download', () => p.output().includes('Seeding (Ctrl-C to stop)'), 30_000);
    await new Promise((r) => setTimeout(r, 6_000));
    p.child.kill('SIGTERM');
    await p.exited;
    // started, completed, stopped: the next regular announce is 30 s away whatever the tracker says.
    expect(h.requests()).toBeLessThanOrEqual(3);
    expect(h.requests()).toBeGreaterThanOrEqual(2);
  }, 60_000);
});

describe('what a tracker reply may put in the peer list', () => {
  it('compact peers: unusable addresses dropped, at most MAX_PEERS_PER_REPLY taken', () => {
    const entry = (ip: number[], port: number) => [...ip, port >> 8, port & 255];
    const buf = Uint8Array.from([
      ...entry([10, 0, 0, 1], 6881),
      ...entry([10, 0, 0, 2], 0),
      ...entry([0, 0, 0, 0], 6881),
      ...entry([255, 255, 255, 255], 6881),
      ...entry([224, 0, 0, 1], 6881),
      ...entry([10, 0, 0, 3], 6882),
    ]);
    expect(parseCompactPeers(buf, 6, MAX_PEERS_PER_REPLY)).toEqual([
      { ip: '10.0.0.1', port: 6881 },
      { ip: '10.0.0.3', port: 6882 },
    ]);
    const many = new Uint8Array(6 * (MAX_PEERS_PER_REPLY + 100)).fill(9);
    expect(parseCompactPeers(many, 6, MAX_PEERS_PER_REPLY)).toHaveLength(MAX_PEERS_PER_REPLY);
  });

  it('the known-peer set: no duplicates, never ourselves, capped, new peers replace ones already tried', () => {
    const set = new PeerSet((p) => p.ip === '10.9.9.9' && p.port === 6881, 3);
    expect(set.learn({ ip: '10.0.0.1', port: 1 })).toBe(true);
    expect(set.learn({ ip: '10.0.0.1', port: 1 })).toBe(true);
    expect(set.size).toBe(1);
    expect(set.learn({ ip: '10.9.9.9', port: 6881 })).toBe(false);
    expect(set.learn({ ip: 'tracker.example', port: 1 })).toBe(false);
    set.learn({ ip: '10.0.0.2', port: 1 });
    set.learn({ ip: '10.0.0.3', port: 1 });
    expect(set.learn({ ip: '10.0.0.4', port: 1 })).toBe(false);
    // Dial one: it has had its chance, and a newcomer may take its place.
    expect(set.toDial(1, () => false, 0).map((d) => d.addr)).toEqual(['10.0.0.1:1']);
    expect(set.learn({ ip: '10.0.0.4', port: 1 })).toBe(true);
    expect(set.size).toBe(3);
    expect(set.toDial(10, () => false, 0).map((d) => d.addr)).toEqual([
      '10.0.0.2:1',
      '10.0.0.3:1',
      '10.0.0.4:1',
    ]);
    expect(MAX_KNOWN_PEERS).toBeGreaterThanOrEqual(1000);
  });
});
