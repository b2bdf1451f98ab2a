/**
 * npm run bench:transfer [-- --sizes 256MiB,1GiB --piece-size 1MiB --web-seed-only]
 *
 * One seeder -> one leecher over loopback, for each size, in the same run:
 *   1. swarmshare share -> swarmshare get
 *   2. aria2c seeder -> aria2c leecher (the baseline)
 *   3. the same, with the downloaded file synced to disk after (as `get` syncs before its rename)
 *   4. swarmshare share -> get, RC4 both ways (--encryption require), our RC4 and OpenSSL's
 *   5. a web seed alone (BEP 19): nginx serving the file, `get` of a torrent that names it (no
 *      tracker, no peer), against curl fetching the same file from the same nginx (and curl, then
 *      sync: as durable as `get`)
 * beside the floor: SHA-1 and page-cache writes of the same bytes without a network, with and
 * without the final fsync.
 * Both through our tracker, both leechers timed with GNU time: wall-clock MiB/s (leecher start to
 * exit, startup included), leecher CPU seconds per GiB, leecher peak RSS; the seeder's CPU
 * seconds per GiB (from /proc, over the leecher's run) and peak RSS too.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseSize } from '../src/node/create-torrent.js';
import { startTracker } from '../src/tracker-server/server.js';
import { startNginx } from '../test/support/nginx.js';
import { aria2Flags, stopAll } from '../test/support/proc.js';
import { stopChild } from './children.js';
import { writeRandomFile } from './random-file.js';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '256MiB,1GiB' },
    'piece-size': { type: 'string', default: '1MiB' },
    /** Only the web seed rows (5), with their floor. */
    'web-seed-only': { type: 'boolean', default: false },
  },
});
const SIZES = (args.sizes as string).split(',').map((x) => parseSize(x.trim()));
const root = resolve(import.meta.dirname, '..');
const cli = join(root, 'dist', 'cli', 'main.js');

for (const [cmd, pkg] of [
  ['aria2c', 'aria2'],
  ['/usr/bin/time', 'time'],
  ['nginx', 'nginx'],
  ['curl', 'curl'],
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

/** A process's CPU seconds so far (user + system), from /proc. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the command name, in ticks.
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return Number.NaN;
  }
}

const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

function peakRss(pid: number | undefined): number {
  try {
    return Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  } catch {
    return Number.NaN;
  }
}

const stop = (child: ChildProcess) => stopChild(child);

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

const FLOOR_SCRIPT = `
const fs = require('node:fs/promises'); const { createHash } = require('node:crypto');
(async () => {
  const src = await fs.open(process.argv[1]); const dst = await fs.open(process.argv[2], 'w');
  const b = Buffer.allocUnsafe(1 << 20);
  for (let at = 0; ; at += b.length) {
    const { bytesRead } = await src.read(b, 0, b.length, at);
    if (bytesRead === 0) break;
    createHash('sha1').update(b.subarray(0, bytesRead)).digest();
    await dst.write(b, 0, bytesRead, at);
  }
  if (process.argv[3] === 'sync') await dst.sync();
  await dst.close(); await src.close();
})();
`;

/**
 * Every run starts from the same state: what earlier runs wrote is on disk and the kernel has
 * nothing left to write back (a run right after a gigabyte of writes paid up to 1.5 s more system
 * time, whichever client it was).
 */
async function settle(): Promise<void> {
  execFileSync('sync');
  await sleep(2000);
}

interface Row {
  name: string;
  leecher: Timed;
  seedCpu: number;
  seedRssKiB: number;
}

async function runSize(SIZE: number): Promise<Row[]> {
  const dir = join(tmpdir(), `swarmshare-bench-transfer-${process.pid}`);
  mkdirSync(join(dir, 'src'), { recursive: true });
  const file = join(dir, 'src', 'payload.bin');
  console.log(`making a ${(SIZE / 2 ** 20).toFixed(0)} MiB file in ${dir}`);
  writeRandomFile(file, SIZE);
  const tracker = await startTracker({ port: 0 }, { interval: 5 });
  const announce = `${tracker.url}/announce`;
  const torrent = join(dir, 'payload.torrent');
  const out = execFileSync(
    'node',
    [cli, 'create', file, '--piece-size', args['piece-size'] as string, '--tracker', announce, '-o', torrent],
    { encoding: 'utf8' },
  );
  const hex = /Info hash: ([0-9a-f]{40})/.exec(out)?.[1] as string;
  const rows: Row[] = [];
  // The floor: what any leecher must do with these bytes, without the network: SHA-1 each piece,
  // write it (1 MiB at a time, as ours does), fsync. In its own process, timed the same way.
  // Without the fsync too: the page-cache writes alone (aria2c does not sync; `get` does, before
  // it renames the download to its final name).
  await settle();
  const floorNoSync = await timed('node', ['-e', FLOOR_SCRIPT, file, join(dir, 'floor.bin'), 'nosync']);
  rows.push({ name: 'floor: SHA-1 + write, no network', leecher: floorNoSync, seedCpu: 0, seedRssKiB: 0 });
  rmSync(join(dir, 'floor.bin'), { force: true });
  await settle();
  const floor = await timed('node', ['-e', FLOOR_SCRIPT, file, join(dir, 'floor.bin'), 'sync']);
  rows.push({ name: 'floor: SHA-1 + write + fsync, no network', leecher: floor, seedCpu: 0, seedRssKiB: 0 });
  rmSync(join(dir, 'floor.bin'), { force: true });
  /** Runs the leecher while `seed` seeds; the seeder's CPU counted over the leecher's run. */
  const pair = async (name: string, seed: ChildProcess, leech: () => Promise<Timed>) => {
    await waitSeed(tracker.registry, hex);
    await settle();
    const cpu0 = cpuSeconds(seed.pid);
    const leecher = await leech();
    rows.push({ name, leecher, seedCpu: cpuSeconds(seed.pid) - cpu0, seedRssKiB: peakRss(seed.pid) });
    await stop(seed);
  };
  const aria2Seed = () =>
    background('aria2c', [
      ...aria2Flags(join(dir, 'src'), 36881),
      '--seed-ratio=0.0',
      '--bt-seed-unverified=true',
      torrent,
    ]);
  try {
    if (!args['web-seed-only']) {
      // 1. swarmshare -> swarmshare
      await pair(
        'swarmshare share -> swarmshare get',
        background('node', [cli, 'share', torrent, '--dir', join(dir, 'src'), '--tracker', announce]),
        () => timed('node', [cli, 'get', torrent, '-o', join(dir, 'ss-out'), '--host', '127.0.0.2']),
      );
      rmSync(join(dir, 'ss-out'), { recursive: true, force: true });
      await sleep(500);
      // 2. aria2c -> aria2c
      await pair('aria2c -> aria2c', aria2Seed(), () =>
        timed('aria2c', [...aria2Flags(join(dir, 'aria-out'), 36882), '--seed-time=0', torrent]),
      );
      rmSync(join(dir, 'aria-out'), { recursive: true, force: true });
      await sleep(500);
      // 3. the same, then the file synced to disk (what `get` does before it renames the download):
      // the same durability, timed together (GNU time counts the shell's children: aria2c and sync).
      const synced = join(dir, 'aria-out', 'payload.bin');
      await pair('aria2c -> aria2c, then sync (durable, as get)', aria2Seed(), () =>
        timed('sh', [
          '-c',
          `aria2c "$@" && sync "${synced}"`,
          'sh',
          ...aria2Flags(join(dir, 'aria-out'), 36882),
          '--seed-time=0',
          torrent,
        ]),
      );
      // 4. swarmshare -> swarmshare, RC4 both ways (--encryption require on both sides): with our
      // TypeScript RC4, then with OpenSSL's (Node started with its legacy provider loaded).
      for (const [label, flags] of [
        ['RC4 in TypeScript', []],
        ['RC4 from OpenSSL (--openssl-legacy-provider)', ['--openssl-legacy-provider']],
      ] as const) {
        rmSync(join(dir, 'ss-out'), { recursive: true, force: true });
        await sleep(500);
        await pair(
          `swarmshare, --encryption require both sides, ${label}`,
          background('node', [
            ...flags,
            cli,
            'share',
            torrent,
            '--dir',
            join(dir, 'src'),
            '--tracker',
            announce,
            '--encryption',
            'require',
          ]),
          () =>
            timed('node', [
              ...flags,
              cli,
              'get',
              torrent,
              '-o',
              join(dir, 'ss-out'),
              '--host',
              '127.0.0.2',
              '--encryption',
              'require',
            ]),
        );
      }
    }
    // 5. a web seed alone: nginx serving the file; `get` of a torrent naming it, against curl.
    rmSync(join(dir, 'ss-out'), { recursive: true, force: true });
    const nginx = await startNginx(join(dir, 'nginx'), join(dir, 'src'));
    const wsTorrent = join(dir, 'payload-ws.torrent');
    execFileSync('node', [
      cli,
      'create',
      file,
      '--piece-size',
      args['piece-size'] as string,
      '--web-seed',
      `${nginx.url}/payload.bin`,
      '-o',
      wsTorrent,
    ]);
    const none = { seedCpu: 0, seedRssKiB: 0 };
    await settle();
    const curlOut = join(dir, 'curl.bin');
    rows.push({
      name: 'web seed: curl from nginx',
      leecher: await timed('curl', ['-s', '-o', curlOut, `${nginx.url}/payload.bin`]),
      ...none,
    });
    rmSync(curlOut, { force: true });
    await settle();
    rows.push({
      name: 'web seed: curl from nginx, then sync (durable, as get)',
      leecher: await timed('sh', [
        '-c',
        `curl -s -o "${curlOut}" "$1" && sync "${curlOut}"`,
        'sh',
        `${nginx.url}/payload.bin`,
      ]),
      ...none,
    });
    rmSync(curlOut, { force: true });
    await settle();
    rows.push({
      name: 'web seed: swarmshare get from nginx alone',
      leecher: await timed('node', [cli, 'get', wsTorrent, '-o', join(dir, 'ss-out'), '--no-dht']),
      ...none,
    });
  } finally {
    await stopAll();
    await tracker.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

async function main(): Promise<void> {
  const all: [number, Row[]][] = [];
  for (const size of SIZES) all.push([size, await runSize(size)]);
  console.log(
    `\nswarmshare transfer benchmark: ${args['piece-size']} pieces, loopback, node ${process.version}\n`,
  );
  console.log(
    '| size | run | MiB/s | leecher CPU s/GiB (user + sys) | leecher peak RSS MiB | seeder CPU s/GiB | seeder peak RSS MiB |',
  );
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: |');
  for (const [size, rows] of all) {
    const gib = size / 2 ** 30;
    for (const r of rows) {
      const t = r.leecher;
      console.log(
        `| ${(size / 2 ** 20).toFixed(0)} MiB | ${r.name} | ${(size / 2 ** 20 / t.wall).toFixed(0)} | ${((t.user + t.sys) / gib).toFixed(2)} (${(t.user / gib).toFixed(2)} + ${(t.sys / gib).toFixed(2)}) | ${(t.maxRssKiB / 1024).toFixed(0)} | ${r.seedRssKiB === 0 ? '-' : (r.seedCpu / gib).toFixed(2)} | ${r.seedRssKiB === 0 ? '-' : (r.seedRssKiB / 1024).toFixed(0)} |`,
      );
    }
  }
  console.log('');
  for (const [size, [, , a, , , e1, e2]] of all) {
    if (!a || !e1 || !e2) continue;
    const cpu = (t: Timed) => (t.user + t.sys) / (size / 2 ** 30);
    console.log(
      `${(size / 2 ** 20).toFixed(0)} MiB: encrypted (RC4) / plain speed: TypeScript RC4 ${(a.leecher.wall / e1.leecher.wall).toFixed(2)}x, OpenSSL RC4 ${(a.leecher.wall / e2.leecher.wall).toFixed(2)}x (goal >= 0.8x); leecher CPU s/GiB plain ${cpu(a.leecher).toFixed(2)}, TypeScript RC4 ${cpu(e1.leecher).toFixed(2)}, OpenSSL RC4 ${cpu(e2.leecher).toFixed(2)}`,
    );
  }
  for (const [size, rows] of all) {
    const get = rows.find((r) => r.name === 'web seed: swarmshare get from nginx alone');
    const curl = rows.find((r) => r.name === 'web seed: curl from nginx');
    const curlSync = rows.find((r) => r.name === 'web seed: curl from nginx, then sync (durable, as get)');
    if (!get || !curl || !curlSync) continue;
    console.log(
      `${(size / 2 ** 20).toFixed(0)} MiB: web seed alone, get / curl speed ${(curl.leecher.wall / get.leecher.wall).toFixed(2)}x (goal >= 0.8x), get / (curl + sync) ${(curlSync.leecher.wall / get.leecher.wall).toFixed(2)}x`,
    );
  }
  for (const [size, [, , a, b, c]] of all) {
    if (!a || !b || !c || args['web-seed-only']) continue;
    const mib = `${(size / 2 ** 20).toFixed(0)} MiB`;
    console.log(
      `${mib}: speed swarmshare / aria2c ${(b.leecher.wall / a.leecher.wall).toFixed(2)}x (goal >= 3x); leecher CPU per GiB ${((a.leecher.user + a.leecher.sys) / (b.leecher.user + b.leecher.sys)).toFixed(2)}x aria2c's (goal <= 1x), ${((a.leecher.user + a.leecher.sys) / (c.leecher.user + c.leecher.sys)).toFixed(2)}x aria2c's + sync; seeder CPU per GiB ${(a.seedCpu / b.seedCpu).toFixed(2)}x aria2c's; peak RSS leecher ${(a.leecher.maxRssKiB / 1024).toFixed(0)} MiB, seeder ${(a.seedRssKiB / 1024).toFixed(0)} MiB (goal <= 100)`,
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
