import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createTorrent } from '../../src/node/create-torrent.js';
import { PeerNode } from '../../src/node/peer-node.js';
import { type RunningTracker, startTracker } from '../../src/tracker-server/server.js';
import { freePort, start, stopAll, waitFor } from '../support/proc.js';

const CLI = 'dist/cli/main.js';
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  await stopAll();
  for (const f of cleanup.reverse()) await f().catch(() => {});
  cleanup.length = 0;
});

async function setup(size: number, pieceLength = 64 * 1024) {
  const dir = await mkdtemp(join(tmpdir(), 'ss-faults-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  await mkdir(join(dir, 'seed'));
  const data = randomBytes(size);
  await writeFile(join(dir, 'seed', 'f.bin'), data);
  const { bytes, meta } = await createTorrent(join(dir, 'seed', 'f.bin'), { pieceLength });
  await writeFile(join(dir, 'f.torrent'), bytes);
  return { dir, data, meta, torrent: join(dir, 'f.torrent') };
}

/** A tracker and a seed capped at `uploadRate`, and the `get` command line that fetches from them. */
async function seeded(
  setupResult: Awaited<ReturnType<typeof setup>>,
  uploadRate: number,
  host: string,
  extra: string[] = [],
) {
  const { dir, meta, torrent } = setupResult;
  const tracker = await startTracker({ port: 0 }, { interval: 2 });
  cleanup.push(() => tracker.close());
  const seed = new PeerNode({
    // Our own test tracker asks for short intervals: take them.
    minAnnounceIntervalMs: 1000,
    meta,
    dir: join(dir, 'seed'),
    mode: 'seed',
    trackers: [`${tracker.url}/announce`],
    uploadRate,
  });
  cleanup.push(() => seed.stop());
  await seed.start();
  const out = join(dir, 'out');
  const getArgs = [
    CLI,
    'get',
    torrent,
    '-o',
    out,
    '--tracker',
    `${tracker.url}/announce`,
    '--host',
    host,
    '--min-announce-interval',
    '1',
    ...extra,
  ];
  return { seed, out, getArgs };
}

describe('faults', () => {
  it('a `get` killed with SIGKILL mid-transfer resumes from its verified pieces and fetches only the rest', async () => {
    const swarm = await setup(3 * 1024 * 1024);
    const { data, meta } = swarm;
    const { seed, out, getArgs } = await seeded(swarm, 1024 * 1024, '127.0.0.11');
    const first = start('node', getArgs);
    await waitFor('some progress', () => (seed.uploaded > 1024 * 1024 ? true : undefined), 20_000);
    first.child.kill('SIGKILL');
    expect(await first.exited).toBe(null);
    expect(existsSync(join(out, 'f.bin'))).toBe(false);
    expect(existsSync(join(out, 'f.bin.part'))).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    const before = seed.uploaded;
    const second = start('node', [...getArgs, '--timeout', '60']);
    expect(await second.exited, second.output()).toBe(0);
    const resumed = Number(/Resuming: (\d+) verified pieces/.exec(second.output())?.[1]);
    expect(resumed).toBeGreaterThan(0);
    expect(sha(await readFile(join(out, 'f.bin')))).toBe(sha(data));
    // The second run fetched exactly the pieces that were not verified on disk.
    expect(seed.uploaded - before).toBe(data.length - resumed * meta.pieceLength);
  }, 60_000);

  it('the tracker killed and restarted mid-swarm: peers register again and the transfer completes', async () => {
    const { dir, data, meta } = await setup(3 * 1024 * 1024);
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const tr1 = start('node', [CLI, 'tracker', '--port', String(port), '--interval', '1', '--quiet']);
    await waitFor('the tracker', () => (tr1.output().includes('listening') ? true : undefined));
    const seed = new PeerNode({
      // Our own test tracker asks for short intervals: take them.
      minAnnounceIntervalMs: 1000,
      meta,
      dir: join(dir, 'seed'),
      mode: 'seed',
      trackers: [url],
      uploadRate: 1024 * 1024,
    });
    const leech = new PeerNode({
      // Our own test tracker asks for short intervals: take them.
      minAnnounceIntervalMs: 1000,
      meta,
      dir: join(dir, 'out'),
      mode: 'download',
      trackers: [url],
      host: '127.0.0.12',
    });
    cleanup.push(
      () => seed.stop(),
      () => leech.stop(),
    );
    await seed.start();
    await leech.start();
    await waitFor('the transfer to start', () => (leech.downloaded > 0 ? true : undefined), 20_000);
    tr1.child.kill('SIGKILL');
    await tr1.exited;
    const tr2 = start('node', [CLI, 'tracker', '--port', String(port), '--interval', '1', '--quiet']);
    await waitFor('the new tracker', () => (tr2.output().includes('listening') ? true : undefined));
    // Both peers find out (ERR_UNKNOWN_PEER on update) and register again.
    await waitFor(
      'both peers registered with the new tracker',
      async () => {
        const s = (await (await fetch(`${url}/stats`)).json()) as { clients: number };
        return s.clients === 2 ? true : undefined;
      },
      20_000,
    );
    await Promise.race([
      leech.done,
      new Promise((_, r) => setTimeout(() => r(new Error('timeout')), 30_000)),
    ]);
    expect(sha(await readFile(join(dir, 'out', 'f.bin')))).toBe(sha(data));
  }, 60_000);

  it('a full disk: a clear error, the download stays partial, nothing appears under the final name', async () => {
    const { dir, meta } = await setup(3 * 1024 * 1024);
    const tracker: RunningTracker = await startTracker({ port: 0 }, { interval: 2 });
    cleanup.push(() => tracker.close());
    const small = join(dir, 'small');
    await mkdir(small);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', small]);
    cleanup.push(async () => execFileSync('umount', ['-l', small]));
    const seed = new PeerNode({
      // Our own test tracker asks for short intervals: take them.
      minAnnounceIntervalMs: 1000,
      meta,
      dir: join(dir, 'seed'),
      mode: 'seed',
      trackers: [`${tracker.url}/announce`],
    });
    const leech = new PeerNode({
      // Our own test tracker asks for short intervals: take them.
      minAnnounceIntervalMs: 1000,
      meta,
      dir: small,
      mode: 'download',
      trackers: [`${tracker.url}/announce`],
      host: '127.0.0.13',
    });
    cleanup.push(
      () => seed.stop(),
      () => leech.stop(),
    );
    await seed.start();
    await leech.start();
    await expect(leech.done).rejects.toThrow(/cannot write piece \d+: .*ENOSPC/);
    expect(await readdir(small)).toEqual(['f.bin.part']);
  }, 60_000);

  it('an output folder that cannot be made: a clear error, exit 1', async () => {
    const { dir, torrent } = await setup(100_000);
    await writeFile(join(dir, 'not-a-folder'), 'x');
    const p = start('node', [
      CLI,
      'get',
      torrent,
      '-o',
      join(dir, 'not-a-folder', 'sub'),
      '--tracker',
      'http://127.0.0.1:9/announce',
    ]);
    expect(await p.exited).toBe(1);
    expect(p.output()).toMatch(/swarmshare: .*(ENOTDIR|EEXIST|not a directory)/i);
  });
  it('an output folder on a read-only file system: a clear error, exit 1, nothing written', async () => {
    const { dir, torrent } = await setup(100_000);
    const ro = join(dir, 'ro');
    await mkdir(ro);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=1m', 'tmpfs', ro]);
    cleanup.push(async () => execFileSync('umount', ['-l', ro]));
    const p = start('node', [
      CLI,
      'get',
      torrent,
      '-o',
      ro,
      '--timeout',
      '20',
      '--no-dht',
      '--tracker',
      'http://127.0.0.1:9/announce',
    ]);
    expect(await p.exited).toBe(1);
    expect(p.output()).toMatch(/swarmshare: cannot make folder .*ro: not writable \(EROFS\)/);
    expect(await readdir(ro)).toEqual([]);
  });
});

describe('crashes at any moment never leave a corrupt file under the final name', () => {
  it('SIGKILL at random times: the final name holds either nothing or the verified file; the last run completes', async () => {
    const swarm = await setup(2 * 1024 * 1024, 32 * 1024);
    const { data } = swarm;
    const {
      seed,
      out,
      getArgs: args,
    } = await seeded(swarm, 2 * 1024 * 1024, '127.0.0.14', ['--timeout', '60']);
    const final = join(out, 'f.bin');
    const part = join(out, 'f.bin.part');
    // Kill points by what the seed has sent (over all runs; each run resumes the last), not by the
    // clock: before the first byte, a third, two thirds and nine tenths in, and once every byte is
    // sent (the final writes, the fsync and the rename).
    for (const share of [0, 0.3, 0.6, 0.9, 1]) {
      const p = start('node', args);
      if (share > 0)
        await waitFor(
          `the seed to have sent ${share * 100}% of the file`,
          () => seed.uploaded >= share * data.length || undefined,
          20_000,
          5,
        );
      p.child.kill('SIGKILL');
      const code = await p.exited;
      // Killed before its first write there is nothing at all; after it, a partial under
      // f.bin.part; only a verified file ever appears as f.bin.
      const seen = existsSync(final) ? sha(await readFile(final)) : 'nothing';
      expect(['nothing', sha(data)]).toContain(seen);
      if (share < 1) {
        // The kill landed where it was meant to: the process was still running, mid-transfer.
        expect(p.child.signalCode, `kill at ${share}: ${p.output()}`).toBe('SIGKILL');
        expect(code).toBe(null);
        expect(seen).toBe('nothing');
        if (share > 0) expect(existsSync(part)).toBe(true);
      }
    }
    const last = start('node', args);
    expect(await last.exited, last.output()).toBe(0);
    expect(sha(await readFile(join(out, 'f.bin')))).toBe(sha(data));
    expect(existsSync(join(out, 'f.bin.part'))).toBe(false);
  }, 90_000);
});
