import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createTorrent } from '../../src/node/create-torrent.js';
import { type RunningTracker, startTracker } from '../../src/tracker-server/server.js';
import { aria2Flags, freePort, randomFile, sha256File, start, stopAll, waitFor } from '../support/proc.js';
import { torrentFor } from '../support/torrent.js';
import { pct } from '../support/tracker.js';

/**
 * UDP trackers (BEP 15) over loopback: ours serving aria2c and our own peers, and Debian's
 * opentracker serving our peers; a torrent whose first tier is dead still downloads.
 */

const CLI = 'dist/cli/main.js';
/** Our peers against a local tracker: short intervals taken, UDP retransmissions shortened. */
const LOCAL = ['--min-announce-interval', '1'];
let dir = '';
const trackers: RunningTracker[] = [];

afterEach(async () => {
  await stopAll();
  for (const t of trackers.splice(0)) await t.close();
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** aria2c speaks to UDP trackers only with its DHT on (they share its UDP port): on, with no entry point. */
function aria2Udp(dir: string, port: number, udpPort: number): string[] {
  return [
    ...aria2Flags(dir, port).filter((f) => f !== '--enable-dht=false'),
    '--enable-dht=true',
    `--dht-listen-port=${udpPort}`,
    `--dht-file-path=${join(dir, 'dht.dat')}`,
  ];
}

async function files(name: string, size: number) {
  if (!dir) {
    dir = await mkdtemp(join(tmpdir(), 'ss-udp-'));
    await chmod(dir, 0o755);
  }
  const base = join(dir, name);
  await mkdir(join(base, 'seed'), { recursive: true });
  await mkdir(join(base, 'leech'), { recursive: true });
  const data = await randomFile(join(base, 'seed', 'payload.bin'), size);
  return { base, data };
}

/**
 * `share` and `get` of payload.bin, the seed through `seedTrackers`, the download through
 * `getTrackers` (none: the torrent's own); resolves when `get` exits.
 */
async function shareAndGet(
  base: string,
  torrent: string,
  seedTrackers: string[],
  getTrackers = seedTrackers,
) {
  const tr = (urls: string[]) => urls.flatMap((u) => ['--tracker', u]);
  const seed = start('node', [
    CLI,
    'share',
    torrent,
    '--dir',
    join(base, 'seed'),
    '--host',
    '127.0.0.20',
    ...tr(seedTrackers),
    ...LOCAL,
  ]);
  await waitFor('the seed to listen', () => seed.output().includes('Listening:'), 20_000);
  const get = start('node', [
    CLI,
    'get',
    torrent,
    '-o',
    join(base, 'leech'),
    '--host',
    '127.0.0.21',
    '--timeout',
    '60',
    ...tr(getTrackers),
    ...LOCAL,
  ]);
  const code = await get.exited;
  return { code, out: get.output() + seed.output() };
}

describe('our UDP tracker', () => {
  it('our share and get meet through it; the peers show in the HTTP tracker too', async () => {
    const { base } = await files('ours', 1024 * 1024 + 77);
    const t = await startTracker({ port: 0, udpPort: 0 }, { interval: 2 });
    trackers.push(t);
    const { meta, bytes } = await createTorrent(join(base, 'seed', 'payload.bin'), {
      pieceLength: 64 * 1024,
      trackers: [t.udpUrl as string],
    });
    const torrent = join(base, 'p.torrent');
    await writeFile(torrent, bytes);
    const r = await shareAndGet(base, torrent, [t.udpUrl as string]);
    expect(r.code, r.out).toBe(0);
    expect(await sha256File(join(base, 'leech', 'payload.bin'))).toBe(
      await sha256File(join(base, 'seed', 'payload.bin')),
    );
    // Announced over UDP, counted and served over HTTP: the seed (at its own address) and one
    // completed download.
    const swarm = t.registry.swarmById(meta.infoHashHex);
    expect(swarm).toMatchObject({ seeds: 1, downloaded: 1 });
    const q = `info_hash=${pct(Buffer.from(meta.infoHash))}&peer_id=-XX0001-000000000001&port=7000&left=5&compact=1`;
    const reply = Buffer.from(await (await fetch(`${t.url}/announce?${q}`)).arrayBuffer()).toString('latin1');
    expect(reply).toContain(String.fromCharCode(127, 0, 0, 20));
    expect(t.counters.udp).toBeGreaterThan(2);
  }, 90_000);

  it('an aria2c seeder and an aria2c leecher find each other through it', async () => {
    const { base, data } = await files('aria2', 2 * 1024 * 1024 + 5);
    const t = await startTracker({ port: 0, udpPort: 0 }, { interval: 5 });
    trackers.push(t);
    const tor = torrentFor('payload.bin', data, 256 * 1024, t.udpUrl as string);
    const torrent = join(base, 'p.torrent');
    await writeFile(torrent, tor.bytes);
    const hex = tor.infoHash.toString('hex');
    start('aria2c', [
      ...aria2Udp(join(base, 'seed'), await freePort(), await freePort()),
      '--seed-ratio=0.0',
      '--check-integrity=true',
      torrent,
    ]);
    await waitFor(
      'the aria2c seeder to announce over UDP',
      () => (t.registry.swarmById(hex)?.seeds ?? 0) >= 1 || undefined,
      30_000,
    );
    const leecher = start('aria2c', [
      ...aria2Udp(join(base, 'leech'), await freePort(), await freePort()),
      '--seed-time=0',
      torrent,
    ]);
    const code = await Promise.race([
      leecher.exited,
      new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000)),
    ]);
    expect(code, leecher.output()).toBe(0);
    expect(await sha256File(join(base, 'leech', 'payload.bin'))).toBe(
      await sha256File(join(base, 'seed', 'payload.bin')),
    );
  }, 120_000);
});

describe("Debian's opentracker over UDP", () => {
  it('our share and get meet through its UDP port', async () => {
    const { base } = await files('opentracker', 1024 * 1024 + 3);
    const udpPort = await freePort();
    const tcpPort = await freePort();
    const { meta, bytes } = await createTorrent(join(base, 'seed', 'payload.bin'), {
      pieceLength: 64 * 1024,
    });
    // Debian builds opentracker in whitelist mode: only listed info hashes are tracked.
    const whitelist = join(base, 'whitelist');
    await writeFile(whitelist, `${meta.infoHashHex}\n`);
    // It will not run as root: it chroots into `base` and becomes nobody (who must read the list).
    await chmod(base, 0o755);
    const ot = start('opentracker', [
      '-i',
      '127.0.0.1',
      '-p',
      String(tcpPort),
      '-P',
      String(udpPort),
      '-w',
      'whitelist',
      '-u',
      'nobody',
      '-d',
      base,
    ]);
    await new Promise((r) => setTimeout(r, 500));
    expect(ot.child.exitCode, ot.output()).toBeNull();
    const torrent = join(base, 'p.torrent');
    await writeFile(torrent, bytes);
    const r = await shareAndGet(base, torrent, [`udp://127.0.0.1:${udpPort}/announce`]);
    expect(r.code, r.out).toBe(0);
    expect(await sha256File(join(base, 'leech', 'payload.bin'))).toBe(
      await sha256File(join(base, 'seed', 'payload.bin')),
    );
  }, 90_000);
});

describe('announce-list tiers (BEP 12)', () => {
  it('a torrent whose first tier is dead still downloads through the next', async () => {
    const { base } = await files('tiers', 512 * 1024);
    const t = await startTracker({ port: 0 }, { interval: 2 });
    trackers.push(t);
    const dead = `udp://127.0.0.1:${await freePort()}/announce`;
    const deadHttp = `http://127.0.0.1:${await freePort()}/announce`;
    const { bytes } = await createTorrent(join(base, 'seed', 'payload.bin'), {
      pieceLength: 64 * 1024,
      tiers: [[dead, deadHttp], [`${t.url}/announce`]],
    });
    const torrent = join(base, 'p.torrent');
    await writeFile(torrent, bytes);
    // The seed through the live tracker; the download through the torrent's own tiers, dead first.
    const r = await shareAndGet(base, torrent, [`${t.url}/announce`], []);
    expect(r.code, r.out).toBe(0);
    expect(await sha256File(join(base, 'leech', 'payload.bin'))).toBe(
      await sha256File(join(base, 'seed', 'payload.bin')),
    );
  }, 90_000);
});
