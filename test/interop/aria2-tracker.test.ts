import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type RunningTracker, startTracker } from '../../src/tracker-server/server.js';
import { aria2Flags, freePort, randomFile, sha256File, start, stopAll, waitFor } from '../support/proc.js';
import { torrentFor } from '../support/torrent.js';

describe('aria2c through our tracker', () => {
  let tracker: RunningTracker | undefined;
  let dir = '';
  afterAll(async () => {
    await stopAll();
    await tracker?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('an aria2c seeder and an aria2c leecher find each other and the transfer completes', async () => {
    dir = await mkdtemp(join(tmpdir(), 'swarmshare-aria2-'));
    const seedDir = join(dir, 'seed');
    const leechDir = join(dir, 'leech');
    await mkdir(seedDir);
    await mkdir(leechDir);
    const data = await randomFile(join(seedDir, 'payload.bin'), 3 * 1024 * 1024 + 1234);
    const lines: string[] = [];
    tracker = await startTracker({ port: 0 }, { interval: 5, log: (l) => lines.push(l) });
    const t = torrentFor('payload.bin', data, 256 * 1024, `${tracker.url}/announce`);
    const torrentPath = join(dir, 'payload.torrent');
    await writeFile(torrentPath, t.bytes);
    const hex = t.infoHash.toString('hex');

    const seeder = start('aria2c', [
      ...aria2Flags(seedDir, await freePort()),
      '--seed-ratio=0.0',
      '--check-integrity=true',
      torrentPath,
    ]);
    const reg = tracker.registry;
    await waitFor(
      'the aria2c seeder to announce as a seed',
      () => (reg.swarmById(hex)?.seeds ?? 0) >= 1 || undefined,
      30_000,
    );

    const leecher = start('aria2c', [
      ...aria2Flags(leechDir, await freePort()),
      '--seed-time=0',
      torrentPath,
    ]);
    const code = await Promise.race([
      leecher.exited,
      new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 60_000)),
    ]);
    expect(code, leecher.output()).toBe(0);
    expect(await sha256File(join(leechDir, 'payload.bin'))).toBe(
      await sha256File(join(seedDir, 'payload.bin')),
    );
    // The leecher said event=completed; the scrape counts it.
    const swarm = reg.swarmById(hex);
    expect(swarm?.downloaded).toBe(1);
    seeder.child.kill('SIGTERM');
    await seeder.exited;
  }, 120_000);
});
