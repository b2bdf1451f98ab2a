/**
 * npm run bench:swarm [-- --size 64MiB --rate 8MiB --piece-size 256KiB]
 *
 * 1 origin + 9 peers, every peer's upload capped at --rate, in one run:
 *   1. swarmshare demo --strategy random (the original's exchanges)
 *   2. swarmshare demo --strategy rarest-first
 *   3. an aria2c swarm: 1 seeder + 9 leechers, --max-upload-limit the same, through our tracker
 * Prints the last peer's completion time, its ratio to the lower bound
 * max{F/u_s, N*F/(u_s + sum u_i)}, and the origin's bytes uploaded / file size.
 * aria2c leechers keep seeding until the last one is done (as demo peers do); a leecher is done
 * when aria2c's download-complete hook has run. The aria2c seeder's upload is read from /proc/<pid>/io
 * (wchar: bytes it wrote, nearly all to sockets).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { distributionLowerBound } from '../src/core/lower-bound.js';
import { parseSize } from '../src/node/create-torrent.js';
import { startTracker } from '../src/tracker-server/server.js';
import { aria2Flags } from '../test/support/proc.js';

const { values: args } = parseArgs({
  options: {
    size: { type: 'string', default: '64MiB' },
    rate: { type: 'string', default: '8MiB' },
    'piece-size': { type: 'string', default: '256KiB' },
  },
});
const SIZE = parseSize(args.size as string);
const RATE = parseSize((args.rate as string).replace(/\/s$/, ''));
const PEERS = 10;
const root = resolve(import.meta.dirname, '..');
const cli = join(root, 'dist', 'cli', 'main.js');
const dir = join(tmpdir(), `swarmshare-bench-swarm-${process.pid}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Row {
  name: string;
  seconds: number | null;
  originUpload: number | null;
}

function runDemo(strategy: string): Row {
  const report = join(dir, `${strategy}.json`);
  execFileSync(
    'node',
    [
      cli,
      'demo',
      '--file',
      join(dir, 'payload.bin'),
      '--strategy',
      strategy,
      '--upload-rate',
      String(RATE),
      '--piece-size',
      args['piece-size'] as string,
      '--out',
      join(dir, `demo-${strategy}`),
      '--report',
      report,
      '--timeout',
      '300s',
    ],
    { stdio: 'ignore' },
  );
  const r = JSON.parse(readFileSync(report, 'utf8'));
  return {
    name: `swarmshare demo --strategy ${strategy}`,
    seconds: r.totalMs / 1000,
    originUpload: r.originUploadedBytes / SIZE,
  };
}

async function runAria2(): Promise<Row> {
  const tracker = await startTracker({ port: 0 }, { interval: 5 });
  const torrent = join(dir, 'aria.torrent');
  const out = execFileSync(
    'node',
    [
      cli,
      'create',
      join(dir, 'payload.bin'),
      '--piece-size',
      args['piece-size'] as string,
      '--tracker',
      `${tracker.url}/announce`,
      '-o',
      torrent,
    ],
    { encoding: 'utf8' },
  );
  const hex = /Info hash: ([0-9a-f]{40})/.exec(out)?.[1] as string;
  // aria2c runs this when a download completes (before seeding): it leaves <file>.done.
  const hook = join(dir, 'on-complete.sh');
  writeFileSync(hook, '#!/bin/sh\ntouch "$3.done"\n', { mode: 0o755 });
  const flags = (d: string, port: number) => [
    ...aria2Flags(d, port),
    `--max-upload-limit=${RATE}`,
    '--seed-ratio=0.0',
    '--bt-tracker-interval=5',
    `--on-bt-download-complete=${hook}`,
  ];
  const procs: ChildProcess[] = [];
  try {
    const seedDir = join(dir, 'aria-seed');
    mkdirSync(seedDir, { recursive: true });
    execFileSync('cp', [join(dir, 'payload.bin'), seedDir]);
    const seeder = spawn('aria2c', [...flags(seedDir, 37000), '--bt-seed-unverified=true', torrent], {
      stdio: 'ignore',
    });
    procs.push(seeder);
    for (let i = 0; i < 300 && (tracker.registry.swarmById(hex)?.seeds ?? 0) < 1; i++) await sleep(100);
    const t0 = Date.now();
    const dirs: string[] = [];
    for (let i = 1; i < PEERS; i++) {
      const d = join(dir, `aria-peer${i}`);
      mkdirSync(d, { recursive: true });
      dirs.push(d);
      procs.push(spawn('aria2c', [...flags(d, 37000 + i), torrent], { stdio: 'ignore' }));
    }
    let done = 0;
    for (let i = 0; i < 3000 && done < dirs.length; i++) {
      await sleep(100);
      done = dirs.filter((d) => existsSync(join(d, 'payload.bin.done'))).length;
    }
    const seconds = done === dirs.length ? (Date.now() - t0) / 1000 : null;
    const io = readFileSync(`/proc/${seeder.pid}/io`, 'utf8');
    const wchar = Number(/wchar: (\d+)/.exec(io)?.[1]);
    return { name: 'aria2c swarm (1 seeder + 9 leechers)', seconds, originUpload: wchar / SIZE };
  } finally {
    for (const p of procs) p.kill('SIGKILL');
    await tracker.close();
  }
}

async function main(): Promise<void> {
  try {
    execFileSync('sh', ['-c', 'command -v aria2c'], { stdio: 'ignore' });
  } catch {
    console.error('bench:swarm needs aria2c: apt-get install -y aria2');
    process.exit(2);
  }
  mkdirSync(dir, { recursive: true });
  const fd = openSync(join(dir, 'payload.bin'), 'w');
  const chunk = Buffer.allocUnsafe(4 * 2 ** 20);
  for (let left = SIZE; left > 0; left -= chunk.length) {
    randomFillSync(chunk);
    writeSync(fd, chunk, 0, Math.min(chunk.length, left));
  }
  closeSync(fd);
  const bound = distributionLowerBound(SIZE, RATE, new Array(PEERS - 1).fill(RATE)) as number;
  const rows: Row[] = [];
  try {
    rows.push(runDemo('random'));
    rows.push(runDemo('rarest-first'));
    rows.push(await runAria2());
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(
    `\nswarm benchmark: ${PEERS} peers (1 origin), ${(SIZE / 2 ** 20).toFixed(0)} MiB, ${args['piece-size']} pieces, every upload capped at ${(RATE / 2 ** 20).toFixed(1)} MiB/s, loopback, node ${process.version}`,
  );
  console.log(`lower bound max{F/u_s, N*F/(u_s + sum u_i)}: ${bound.toFixed(2)} s\n`);
  console.log('| swarm | last peer done (s) | ratio to bound | origin upload / file |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const r of rows) {
    console.log(
      `| ${r.name} | ${r.seconds?.toFixed(2) ?? 'did not finish'} | ${r.seconds ? (r.seconds / bound).toFixed(2) : '-'} | ${r.originUpload?.toFixed(2) ?? '-'} |`,
    );
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
