import { createSocket } from 'node:dgram';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createTorrent } from '../../src/node/create-torrent.js';
import { type RunningTracker, startTracker } from '../../src/tracker-server/server.js';
import { randomFile, start, stopAll, waitFor } from '../support/proc.js';
import { announce, get, hashOf, peerIdOf, post, testTracker } from '../support/tracker.js';

/** Prometheus metrics: the tracker's /metrics, and a peer's --metrics-port. */

const CLI = 'dist/cli/main.js';
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await stopAll();
  for (const f of cleanup.splice(0).reverse()) await f().catch(() => {});
});

/** The value of one sample line (`name{labels} value`), or undefined. */
function sample(text: string, line: string): number | undefined {
  const esc = line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`^${esc} ([0-9.e+-]+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

describe('tracker GET /metrics', () => {
  it('counts requests by endpoint, protocol and status; times announces; reads the swarms', async () => {
    const t = testTracker();
    const H = hashOf(9);
    await announce(
      t,
      { infoHash: H, peerId: peerIdOf(1), port: 6881, left: 0, event: 'started' },
      '127.0.0.2',
    );
    await announce(
      t,
      { infoHash: H, peerId: peerIdOf(2), port: 6882, left: 5, event: 'started' },
      '127.0.0.3',
    );
    await post(t, '/register', { peer_id: 'j1', port: 7000, files: { f: [0] } });
    await get(t, '/nope');
    const res = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    const m = res.payload;
    expect(
      sample(m, 'swarmshare_tracker_requests_total{endpoint="/announce",protocol="http",status="200"}'),
    ).toBe(2);
    expect(
      sample(m, 'swarmshare_tracker_requests_total{endpoint="/register",protocol="http",status="200"}'),
    ).toBe(1);
    expect(
      sample(m, 'swarmshare_tracker_requests_total{endpoint="unknown",protocol="http",status="404"}'),
    ).toBe(1);
    expect(sample(m, 'swarmshare_tracker_announce_duration_seconds_count{protocol="http"}')).toBe(2);
    expect(sample(m, 'swarmshare_tracker_swarms')).toBe(2);
    expect(sample(m, 'swarmshare_tracker_peers')).toBe(3);
    expect(sample(m, 'swarmshare_tracker_seeders')).toBe(2);
    expect(sample(m, 'swarmshare_tracker_leechers')).toBe(1);
  });

  it('counts UDP packets and rate-limited HTTP requests over real sockets', async () => {
    const t: RunningTracker = await startTracker({ port: 0, udpPort: 0 }, { rateLimit: 1 });
    cleanup.push(() => t.close());
    const sock = createSocket('udp4');
    cleanup.push(() => new Promise<void>((r) => sock.close(() => r())));
    const connect = Buffer.from('00000417271019800000000000000007', 'hex');
    const reply = new Promise<Buffer>((r) => sock.once('message', r));
    sock.send(connect, t.udpPort as number, '127.0.0.1');
    expect((await reply).readUInt32BE(4)).toBe(7);
    for (let i = 0; i < 6; i++) await (await fetch(`${t.url}/health`)).arrayBuffer();
    // /metrics itself may be limited too: read the registry directly.
    const m = await t.metrics.registry.metrics();
    expect(
      sample(m, 'swarmshare_tracker_requests_total{endpoint="connect",protocol="udp",status="ok"}'),
    ).toBe(1);
    expect(sample(m, 'swarmshare_tracker_rate_limited_total{protocol="http"}')).toBeGreaterThan(0);
  });
});

describe('peer --metrics-port', () => {
  it('a get serves its bytes, pieces and hash failures at /metrics', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ss-metrics-'));
    cleanup.push(() => rm(dir, { recursive: true, force: true }));
    await randomFile(join(dir, 'f.bin'), 300_000);
    const t = await startTracker({ port: 0 }, { interval: 2 });
    cleanup.push(() => t.close());
    const { bytes } = await createTorrent(join(dir, 'f.bin'), {
      pieceLength: 32 * 1024,
      trackers: [`${t.url}/announce`],
    });
    await writeFile(join(dir, 'f.torrent'), bytes);
    const seed = start('node', [
      CLI,
      'share',
      join(dir, 'f.torrent'),
      '--dir',
      dir,
      '--tracker',
      `${t.url}/announce`,
      '--min-announce-interval',
      '1',
    ]);
    await waitFor('the seed', () => seed.output().includes('Listening:'), 20_000);
    const g = start('node', [
      CLI,
      'get',
      join(dir, 'f.torrent'),
      '-o',
      join(dir, 'out'),
      '--seed',
      '--metrics-port',
      '0',
      '--host',
      '127.0.0.31',
      '--min-announce-interval',
      '1',
    ]);
    const url = await waitFor(
      'the metrics URL',
      () => /Metrics: +(http:\/\/\S+)/.exec(g.output())?.[1],
      20_000,
    );
    await waitFor('the download', () => g.output().includes('Seeding (Ctrl-C to stop)'), 30_000);
    const m = await (await fetch(url)).text();
    expect(sample(m, 'swarmshare_peer_downloaded_bytes_total{source="peer"}')).toBe(300_000);
    expect(sample(m, 'swarmshare_peer_downloaded_bytes_total{source="webseed"}')).toBe(0);
    expect(sample(m, 'swarmshare_peer_pieces_verified_total')).toBe(10);
    expect(sample(m, 'swarmshare_peer_pieces')).toBe(10);
    expect(sample(m, 'swarmshare_peer_hash_failures_total')).toBe(0);
    expect(sample(m, 'swarmshare_peer_peers')).toBeGreaterThanOrEqual(0);
  }, 60_000);
});
