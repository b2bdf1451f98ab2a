import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distributionLowerBound } from '../../src/core/lower-bound.js';
import { start, stopAll } from '../support/proc.js';

const CLI = 'dist/cli/main.js';

describe('distributionLowerBound', () => {
  it('is max{F/us, F/dmin, N*F/(us + sum ui)}', () => {
    // 9 peers, all at 1 MB/s: the aggregate term 9F/10 loses to F/us.
    expect(distributionLowerBound(10e6, 1e6, new Array(9).fill(1e6))).toBe(10);
    // A slow downloader dominates.
    expect(distributionLowerBound(10e6, 1e6, new Array(9).fill(1e6), 0.5e6)).toBe(20);
    // Weak peers: the aggregate term dominates: 9*10/(10 + 9*0.1) = 8.26 s vs F/us = 1 s.
    expect(distributionLowerBound(10e6, 10e6, new Array(9).fill(0.1e6))).toBeCloseTo(90 / 10.9, 5);
    expect(distributionLowerBound(1, 0, [1])).toBeNull();
  });
});

describe('swarmshare demo without a terminal', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-demo-'));
  });
  afterAll(async () => {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  });

  const demo = async (name: string, extra: string[]) => {
    const report = join(dir, `${name}.json`);
    const p = start('node', [
      CLI,
      'demo',
      '--out',
      join(dir, name),
      '--piece-size',
      '64KiB',
      '--report',
      report,
      '--timeout',
      '60s',
      ...extra,
    ]);
    const code = await p.exited;
    return { code, out: p.output(), report: JSON.parse(await readFile(report, 'utf8')) };
  };

  it("--out: removes only the peers' folders of an earlier run, never a user's .torrent or other files", async () => {
    const out = join(dir, 'keeps');
    await mkdir(join(out, 'peer7'), { recursive: true });
    await writeFile(join(out, 'peer7', 'stale.bin'), 'from an earlier run');
    await writeFile(join(out, 'mine.torrent'), 'a user file');
    await writeFile(join(out, 'notes.txt'), 'a user file');
    const r = await demo('keeps', ['--peers', '3']);
    expect(r.code, r.out.slice(-2000)).toBe(0);
    expect(await readFile(join(out, 'mine.torrent'), 'utf8')).toBe('a user file');
    expect(await readFile(join(out, 'notes.txt'), 'utf8')).toBe('a user file');
    expect(existsSync(join(out, 'peer7'))).toBe(false);
    expect(existsSync(join(out, 'file2.txt.torrent'))).toBe(true);
  });

  for (const strategy of ['random', 'rarest-first']) {
    it(`${strategy}: every peer ends with a verified copy, with the original's log lines`, async () => {
      const r = await demo(strategy, ['--strategy', strategy]);
      expect(r.code, r.out.slice(-2000)).toBe(0);
      expect(r.report.success).toBe(true);
      expect(r.report.peers).toHaveLength(10);
      expect(r.report.file).toMatchObject({ name: 'file2.txt', pieces: 20 });
      for (const p of r.report.peers) expect(p).toMatchObject({ completed: true, verified: true });
      const received = r.report.peers
        .filter((p: any) => p.role === 'peer')
        .map((p: any) => p.bytesFromOrigin + p.bytesFromPeers);
      for (const bytes of received) expect(bytes).toBe(r.report.file.size);
      expect(r.out).toMatch(
        /^Peer registered: peer1 at 127\.0\.0\.1:\d+ with files: \{'file2\.txt': \[0, 1, 2, .*19\]\}$/m,
      );
      expect(r.out).toMatch(/^Available peers for 'file2\.txt':$/m);
      expect(r.out).toMatch(/^Peer peer\d+ has downloaded all chunks\. Done!$/m);
      if (strategy === 'random')
        expect(r.out).toMatch(
          /^Peer peer\d+ requesting chunks \[[0-9, ]+\] from peer\d+ \(127\.0\.0\.1:\d+\)$/m,
        );
      expect(r.report.lowerBoundMs).toBeGreaterThan(0);
      expect(r.report.ratioToBound).toBeGreaterThanOrEqual(1);
      expect(r.out).toContain('Every peer has a verified copy.');
    }, 90_000);
  }

  it('--trackerless: no tracker, the peers find each other through a loopback DHT (and PEX), and the report says how', async () => {
    const r = await demo('trackerless', ['--trackerless', '--peers', '6']);
    expect(r.code, r.out.slice(-2000)).toBe(0);
    expect(r.report).toMatchObject({ success: true, discovery: 'dht', strategy: 'rarest-first' });
    for (const p of r.report.peers) {
      expect(p).toMatchObject({ completed: true, verified: true });
      // Nothing came from a tracker; every empty peer opened links it found through the DHT or PEX.
      expect(p.partnersFound.tracker).toBe(0);
      if (p.role === 'peer') expect(p.partnersFound.dht + p.partnersFound.pex).toBeGreaterThan(0);
    }
    // The torrent names no tracker, and no peer registered with the demo's tracker.
    expect(r.out).not.toMatch(/^Peer registered:/m);
    expect(r.out).toMatch(/Trackerless: the peers found each other through the DHT/);
    expect(r.out).toMatch(/^ {2}peer2 +dht \d+, pex \d+, tracker 0; incoming \d+$/m);
  }, 90_000);

  it('--web-seed: the origin is an HTTP server; the peers start from it and pass pieces on; the summary counts both', async () => {
    const r = await demo('web-seed', ['--web-seed', '--peers', '6']);
    expect(r.code, r.out.slice(-2000)).toBe(0);
    expect(r.report).toMatchObject({ success: true, origin: 'web seed', strategy: 'rarest-first' });
    // Five downloading peers, no peer1: the origin is not a peer.
    expect(r.report.peers.map((p: { name: string }) => p.name)).not.toContain('peer1');
    expect(r.report.peers).toHaveLength(5);
    let fromOrigin = 0;
    let fromPeers = 0;
    for (const p of r.report.peers) {
      expect(p).toMatchObject({ completed: true, verified: true });
      fromOrigin += p.bytesFromOrigin;
      fromPeers += p.bytesFromPeers;
    }
    // Every piece came from the origin at least once (it sent what the peers got from it, and more
    // only for ranges cut short), and the peers passed pieces on to each other.
    expect(fromOrigin).toBeGreaterThanOrEqual(r.report.file.size);
    expect(r.report.originUploadedBytes).toBeGreaterThanOrEqual(fromOrigin);
    expect(fromPeers).toBeGreaterThan(0);
    expect(r.out).toMatch(
      /Origin \(a web seed, HTTP\) sent .* \(\d+\.\d+x the file\); the peers sent each other/,
    );
  }, 90_000);

  it('--processes: each peer in its own OS process, all complete, none left running', async () => {
    const r = await demo('processes', ['--processes', '--strategy', 'rarest-first', '--peers', '5']);
    expect(r.code, r.out.slice(-2000)).toBe(0);
    expect(r.report.peers).toHaveLength(5);
    for (const p of r.report.peers) expect(p).toMatchObject({ completed: true, verified: true });
    const { execFileSync } = await import('node:child_process');
    const left = execFileSync('sh', ['-c', "pgrep -f '[_]demo-peer' || true"], { encoding: 'utf8' }).trim();
    expect(left).toBe('');
  }, 90_000);

  it('a peer killed mid-transfer and the origin leaving once a copy is out: the rest complete', async () => {
    const r = await demo('faults', [
      '--strategy',
      'rarest-first',
      '--upload-rate',
      '1MiB/s',
      '--kill',
      'peer5@300ms',
      '--origin-leaves-after',
      'copy',
      '--join',
      'peer11@500ms',
    ]);
    expect(r.code, r.out.slice(-2000)).toBe(0);
    const by = Object.fromEntries(r.report.peers.map((p: any) => [p.name, p]));
    expect(by.peer5.killed).toBe(true);
    expect(by.peer5.completed).toBe(false);
    expect(by.peer11.role).toBe('late joiner');
    for (const p of r.report.peers.filter((x: any) => !x.killed))
      expect(p).toMatchObject({ completed: true, verified: true });
    expect(r.out).toContain('Peer peer5 killed');
    expect(r.out).toContain('Origin peer1 leaves the swarm');
    // The origin left before the end: someone finished after it was gone.
    const leftAt = r.out.indexOf('Origin peer1 leaves the swarm');
    expect(r.out.indexOf('has downloaded all chunks', leftAt)).toBeGreaterThan(leftAt);
  }, 90_000);
});
