/**
 * npm run bench:transfer [-- --size 1GiB --piece-size 1MiB]
 *
 * One seeder -> one leecher over loopback, in the same run:
 *   1. swarmshare share -> swarmshare get
 *   2. aria2c seeder -> aria2c leecher (the baseline)
 * Both through our tracker, both leechers timed with GNU time: wall-clock MiB/s (leecher start to
 * exit, startup included), leecher CPU seconds per GiB, leecher peak RSS; seeder peak RSS too.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startTracker } from '../src/net/tracker-server.js';
import { parseSize } from '../src/node/create-torrent.js';
import { aria2Flags } from '../test/support/proc.js';

const { values: args } = parseArgs({
  options: { size: { type: 'string', default: '1GiB' }, 'piece-size': { type: 'string', default: '1MiB' } },
});
const SIZE = parseSize(args.size as string);
const root = resolve(import.meta.dirname, '..');
const cli = join(root, 'dist', 'cli', 'main.js');

for (const [cmd, pkg] of [
  ['aria2c', 'aria2'],
  ['/usr/bin/time', 'time'],
]) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
  } catch {
    console.error(`bench:transfer needs ${cmd}: apt-get install -y ${pkg}`);
    process.exit(2);
  }
}

interface Timed {
  wall: number;
  user: number;
  sys: number;
  maxRssKiB: number;
}

function timed(cmd: string, argv: string[]): Promise<Timed> {
  return new Promise((res, rej) => {
    const t0 = process.hrtime.bigint();
    const child = spawn('/usr/bin/time', ['-f', 'TIME %U %S %M', cmd, ...argv], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 600_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      const m = /TIME ([0-9.]+) ([0-9.]+) (\d+)/.exec(err);
      if (code !== 0 || !m) return rej(new Error(`${cmd} failed (${code}): ${err.slice(-500)}`));
      res({ wall, user: Number(m[1]), sys: Number(m[2]), maxRssKiB: Number(m[3]) });
    });
  });
}

function background(cmd: string, argv: string[]): ChildProcess {
  return spawn(cmd, argv, { stdio: 'ignore' });
}

function peakRss(pid: number | undefined): number {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  } catch {
    return Number.NaN;
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  await new Promise<void>((r) => {
    child.once('exit', () => r());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 5000).unref();
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitSeed(
  registry: { swarmById(id: string): { seeds: number } | undefined },
  hex: string,
): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if ((registry.swarmById(hex)?.seeds ?? 0) >= 1) return;
    await sleep(100);
  }
  throw new Error('seeder never announced');
}

async function main(): Promise<void> {
  const dir = join(tmpdir(), `swarmshare-bench-transfer-${process.pid}`);
  mkdirSync(join(dir, 'src'), { recursive: true });
  const file = join(dir, 'src', 'payload.bin');
  console.log(`making a ${(SIZE / 2 ** 20).toFixed(0)} MiB file in ${dir}`);
  const fd = openSync(file, 'w');
  const chunk = Buffer.allocUnsafe(16 * 2 ** 20);
  for (let left = SIZE; left > 0; left -= chunk.length) {
    randomFillSync(chunk);
    writeSync(fd, chunk, 0, Math.min(chunk.length, left));
  }
  closeSync(fd);
  const tracker = await startTracker({ port: 0 }, { interval: 5 });
  const announce = `${tracker.url}/announce`;
  const torrent = join(dir, 'payload.torrent');
  const out = execFileSync(
    'node',
    [cli, 'create', file, '--piece-size', args['piece-size'] as string, '--tracker', announce, '-o', torrent],
    { encoding: 'utf8' },
  );
  const hex = /Info hash: ([0-9a-f]{40})/.exec(out)?.[1] as string;
  const results: [string, Timed, number][] = [];
  try {
    // 1. swarmshare -> swarmshare
    const seed = background('node', [
      cli,
      'share',
      torrent,
      '--dir',
      join(dir, 'src'),
      '--tracker',
      announce,
    ]);
    await waitSeed(tracker.registry, hex);
    const ours = await timed('node', [cli, 'get', torrent, '-o', join(dir, 'ss-out'), '--host', '127.0.0.2']);
    results.push(['swarmshare share -> swarmshare get', ours, peakRss(seed.pid)]);
    await stop(seed);
    rmSync(join(dir, 'ss-out'), { recursive: true, force: true });
    await sleep(500);
    // 2. aria2c -> aria2c
    const aseed = background('aria2c', [
      ...aria2Flags(join(dir, 'src'), 36881),
      '--seed-ratio=0.0',
      '--bt-seed-unverified=true',
      torrent,
    ]);
    await waitSeed(tracker.registry, hex);
    const theirs = await timed('aria2c', [
      ...aria2Flags(join(dir, 'aria-out'), 36882),
      '--seed-time=0',
      torrent,
    ]);
    results.push(['aria2c -> aria2c', theirs, peakRss(aseed.pid)]);
    await stop(aseed);
  } finally {
    await tracker.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const gib = SIZE / 2 ** 30;
  console.log(
    `\nswarmshare transfer benchmark: ${(SIZE / 2 ** 20).toFixed(0)} MiB, ${args['piece-size']} pieces, loopback, node ${process.version}\n`,
  );
  console.log('| run | MiB/s | leecher CPU s/GiB | leecher peak RSS MiB | seeder peak RSS MiB |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  for (const [name, t, seedRss] of results) {
    console.log(
      `| ${name} | ${(SIZE / 2 ** 20 / t.wall).toFixed(0)} | ${((t.user + t.sys) / gib).toFixed(2)} | ${(t.maxRssKiB / 1024).toFixed(0)} | ${(seedRss / 1024).toFixed(0)} |`,
    );
  }
  const [a, b] = results;
  if (a && b) {
    console.log(
      `\nthroughput ratio swarmshare / aria2c: ${(b[1].wall / a[1].wall).toFixed(2)}x (target >= 1.5x)`,
    );
    console.log(
      `CPU per GiB ratio swarmshare / aria2c: ${((a[1].user + a[1].sys) / (b[1].user + b[1].sys)).toFixed(2)}x (target <= 1x)`,
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
