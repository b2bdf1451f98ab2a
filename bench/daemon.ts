/**
 * npm run bench:daemon [-- --torrents 200 --restart 1000 --idle 60 --transfer 64MiB]
 *
 * One `swarmshare daemon` (the built CLI, a real process) measured against the targets:
 *   1. seeding --torrents small torrents (64 KiB files already in its download folder): peak RSS;
 *      idle CPU over --idle seconds once all seed (/proc: user + system time);
 *      GET /api/v1/torrents p50 / p99 over 200 sequential requests;
 *   2. restart with --restart seeding torrents: SIGTERM, start again, time until every torrent
 *      seeds again, and the pieces hashed on the way (0: resume data trusted);
 *   3. 10 torrents of --transfer each downloaded at once from one aria2c seeder, against one
 *      `swarmshare get` of one torrent of the same total size from the same kind of seeder;
 *   4. two torrents under a global 4 MiB/s download limit, from two uncapped `swarmshare share`
 *      seeders: each one's rate over a steady 8 s window.
 * Targets (issue 27): RSS <= 250 MiB at 200 torrents, idle CPU <= 2% of a core, list p99 <= 20 ms,
 * restart of 1,000 <= 10 s, throughput >= 0.9x one get, the two torrents 2 +- 0.4 MiB/s each.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createTorrent, parseSize } from '../src/node/create-torrent.js';
import { startTracker } from '../src/tracker-server/server.js';
import { aria2Flags, freePort } from '../test/support/proc.js';
import { stopChild } from './children.js';

const { values: args } = parseArgs({
  options: {
    torrents: { type: 'string', default: '200' },
    restart: { type: 'string', default: '1000' },
    idle: { type: 'string', default: '60' },
    transfer: { type: 'string', default: '64MiB' },
  },
});
const N = Number(args.torrents);
const M = Number(args.restart);
const IDLE_S = Number(args.idle);
const TRANSFER = parseSize(args.transfer as string);
const root = resolve(import.meta.dirname, '..');
const cli = join(root, 'dist', 'cli', 'main.js');
const dir = join(tmpdir(), `ss-bench-daemon-${process.pid}`);
const children = new Set<ChildProcess>();

function background(cmd: string, argv: string[]): ChildProcess {
  const c = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  c.stdout?.resume();
  c.stderr?.resume();
  children.add(c);
  c.on('exit', () => children.delete(c));
  return c;
}

const stop = (c: ChildProcess, signal: NodeJS.Signals = 'SIGTERM') => stopChild(c, signal, 15_000);

function procStatus(pid: number, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(f[11]) + Number(f[12])) / 100;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(
  what: string,
  f: () => Promise<T | undefined>,
  ms: number,
  every = 100,
): Promise<T> {
  const end = Date.now() + ms;
  for (let i = 0; Date.now() < end && i < 1_000_000; i++) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    await sleep(every);
  }
  throw new Error(`timed out waiting for ${what}`);
}

interface Row {
  id: string;
  name: string;
  state: string;
  hashChecks: number;
  downloaded: number;
  size: number;
}

class Daemon {
  child!: ChildProcess;
  api = '';
  async start(state: string, downloadDir: string, extra: string[] = []): Promise<number> {
    const port = await freePort();
    this.api = `http://127.0.0.1:${port}`;
    const t0 = performance.now();
    this.child = background('node', [
      cli,
      'daemon',
      '--state',
      state,
      '--download-dir',
      downloadDir,
      '--api-port',
      String(port),
      '--no-dht',
      '--min-announce-interval',
      '1',
      ...extra,
    ]);
    await waitFor(
      'the API',
      () => fetch(`${this.api}/api/v1/session`).then((r) => (r.ok ? true : undefined)),
      60_000,
      20,
    );
    return t0;
  }
  async list(): Promise<Row[]> {
    const r = await fetch(`${this.api}/api/v1/torrents`);
    return ((await r.json()) as { torrents: Row[] }).torrents;
  }
  async add(bytes: Uint8Array): Promise<void> {
    const r = await fetch(`${this.api}/api/v1/torrents`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-bittorrent' },
      body: new Blob([Uint8Array.from(bytes)]),
    });
    if (r.status !== 201) throw new Error(`add: ${r.status} ${await r.text()}`);
  }
  allSeeding(n: number) {
    return async () => {
      const l = await this.list();
      return l.length === n && l.every((t) => t.state === 'seeding') ? l : undefined;
    };
  }
}

/** n small files and their torrents (no tracker: they only seed). */
async function smallTorrents(data: string, from: number, n: number): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (let i = from; i < from + n; i++) {
    const p = join(data, `s${i}.bin`);
    writeFileSync(p, randomFillSync(Buffer.alloc(64 * 1024)));
    out.push((await createTorrent(p, { pieceLength: 16 * 1024 })).bytes);
  }
  return out;
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;

async function seedingAndRestart(): Promise<string[]> {
  const data = join(dir, 'small');
  mkdirSync(data, { recursive: true });
  const state = join(dir, 'state-small');
  const d = new Daemon();
  await d.start(state, data);
  for (const t of await smallTorrents(data, 0, N)) await d.add(t);
  await waitFor(`${N} torrents seeding`, d.allSeeding(N), 120_000, 250);
  await sleep(2000);
  const pid = d.child.pid as number;
  const cpu0 = cpuSeconds(pid);
  await sleep(IDLE_S * 1000);
  const idleCpu = ((cpuSeconds(pid) - cpu0) / IDLE_S) * 100;
  const times: number[] = [];
  for (let i = 0; i < 200; i++) {
    const t0 = performance.now();
    await d.list();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const rss = procStatus(pid, 'VmHWM') / 1024;
  // Up to M torrents, then a restart.
  for (const t of await smallTorrents(data, N, M - N)) await d.add(t);
  await waitFor(`${M} torrents seeding`, d.allSeeding(M), 300_000, 500);
  await stop(d.child);
  const t0 = await d.start(state, data);
  const back = await waitFor(`${M} torrents back`, d.allSeeding(M), 300_000, 100);
  const restartS = (performance.now() - t0) / 1000;
  const hashed = back.reduce((n, t) => n + t.hashChecks, 0);
  await stop(d.child);
  return [
    `| ${N} seeding torrents: peak RSS | ${rss.toFixed(0)} MiB | <= 250 MiB |`,
    `| idle CPU over ${IDLE_S} s (all seeding) | ${idleCpu.toFixed(2)}% of a core | <= 2% |`,
    `| GET /api/v1/torrents (${N} torrents) p50 / p99 | ${pct(times, 50).toFixed(1)} / ${pct(times, 99).toFixed(1)} ms | p99 <= 20 ms |`,
    `| restart with ${M} seeding torrents (start to all seeding) | ${restartS.toFixed(1)} s, ${hashed} pieces hashed | <= 10 s, no re-hash |`,
  ];
}

async function throughput(): Promise<string[]> {
  const tracker = await startTracker({ port: 0 }, { interval: 2 });
  try {
    const src = join(dir, 'src');
    mkdirSync(src, { recursive: true });
    const torrents: string[] = [];
    for (let i = 0; i < 10; i++) {
      const p = join(src, `t${i}.bin`);
      writeFileSync(p, randomFillSync(Buffer.alloc(TRANSFER)));
      const { bytes } = await createTorrent(p, {
        pieceLength: 256 * 1024,
        trackers: [`${tracker.url}/announce`],
      });
      torrents.push(join(dir, `t${i}.torrent`));
      writeFileSync(torrents[i] as string, bytes);
    }
    const big = join(src, 'big.bin');
    execFileSync('sh', ['-c', `cat ${join(src, 't*.bin')} > ${big}`]);
    const { bytes: bigBytes } = await createTorrent(big, {
      pieceLength: 1024 * 1024,
      trackers: [`${tracker.url}/announce`],
    });
    writeFileSync(join(dir, 'big.torrent'), bigBytes);
    const seeder = background('aria2c', [
      ...aria2Flags(src, await freePort()),
      '--seed-ratio=0.0',
      '--check-integrity=true',
      '--bt-max-open-files=200',
      '--max-concurrent-downloads=20',
      ...torrents,
      join(dir, 'big.torrent'),
    ]);
    await waitFor(
      'aria2c seeding 11 torrents',
      async () => (tracker.registry.swarms.size >= 11 ? true : undefined),
      120_000,
      200,
    );
    await sleep(3000);
    // One get of the same total.
    const getOut = join(dir, 'get-out');
    const g0 = performance.now();
    // Not execFileSync: the tracker runs in this process and must keep answering.
    const get = background('node', [
      cli,
      'get',
      join(dir, 'big.torrent'),
      '-o',
      getOut,
      '--no-dht',
      '--host',
      '127.0.0.71',
      '--min-announce-interval',
      '1',
      '--timeout',
      '300',
    ]);
    const code = await new Promise<number | null>((r) => get.once('exit', r));
    if (code !== 0) throw new Error(`get exited ${code}`);
    const getS = (performance.now() - g0) / 1000;
    // The daemon, 10 at once.
    const d = new Daemon();
    await d.start(join(dir, 'state-10'), join(dir, 'daemon-out'), [
      '--host',
      '127.0.0.72',
      '--max-active',
      '10',
    ]);
    const d0 = performance.now();
    for (const t of torrents) await d.add(readFileSync(t));
    await waitFor('10 torrents complete', d.allSeeding(10), 300_000, 50);
    const daemonS = (performance.now() - d0) / 1000;
    await stop(d.child);
    await stop(seeder);
    const total = (10 * TRANSFER) / 2 ** 20;
    return [
      `| 10 torrents x ${TRANSFER / 2 ** 20} MiB at once from aria2c | ${(total / daemonS).toFixed(0)} MiB/s (${daemonS.toFixed(1)} s) | >= 0.9x one get |`,
      `| one \`get\` of the same ${total} MiB (one torrent) from aria2c | ${(total / getS).toFixed(0)} MiB/s (${getS.toFixed(1)} s) | baseline |`,
      `| ratio daemon / get | ${(getS / daemonS).toFixed(2)}x | >= 0.9x |`,
    ];
  } finally {
    await tracker.close();
  }
}

async function fairness(): Promise<string[]> {
  const tracker = await startTracker({ port: 0 }, { interval: 2 });
  try {
    const src = join(dir, 'fair');
    mkdirSync(src, { recursive: true });
    const paths: string[] = [];
    for (const n of ['x', 'y']) {
      const p = join(src, `${n}.bin`);
      writeFileSync(p, randomFillSync(Buffer.alloc(64 * 1024 * 1024)));
      const { bytes } = await createTorrent(p, {
        pieceLength: 256 * 1024,
        trackers: [`${tracker.url}/announce`],
      });
      writeFileSync(join(dir, `${n}.torrent`), bytes);
      paths.push(join(dir, `${n}.torrent`));
    }
    const seeds = ['x', 'y'].map((n, i) =>
      background('node', [
        cli,
        'share',
        join(dir, `${n}.torrent`),
        '--dir',
        src,
        '--no-dht',
        '--host',
        `127.0.0.${81 + i}`,
        '--min-announce-interval',
        '1',
      ]),
    );
    await waitFor('two seeders', async () => (tracker.registry.peerCount >= 2 ? true : undefined), 30_000);
    const d = new Daemon();
    await d.start(join(dir, 'state-fair'), join(dir, 'fair-out'), [
      '--host',
      '127.0.0.83',
      '--download-limit',
      '4MiB/s',
    ]);
    for (const p of paths) await d.add(readFileSync(p));
    await sleep(4000);
    const a = await d.list();
    await sleep(8000);
    const b = await d.list();
    await stop(d.child);
    for (const s of seeds) await stop(s);
    return b.map((t) => {
      const before = a.find((x) => x.id === t.id)?.downloaded ?? 0;
      return `| under a global 4 MiB/s limit: ${t.name} | ${((t.downloaded - before) / 8 / 2 ** 20).toFixed(2)} MiB/s | 2 +- 0.4 MiB/s |`;
    });
  } finally {
    await tracker.close();
  }
}

async function main(): Promise<void> {
  mkdirSync(dir, { recursive: true });
  try {
    console.log(
      `bench:daemon, node ${process.version}: ${N} torrents, restart with ${M}, idle ${IDLE_S} s, transfers of ${TRANSFER / 2 ** 20} MiB\n`,
    );
    console.log('| measure | result | target |');
    console.log('| --- | --- | --- |');
    for (const part of [seedingAndRestart, throughput, fairness])
      for (const line of await part()) console.log(line);
  } finally {
    for (const c of [...children]) await stop(c);
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch(async (e) => {
  console.error(e);
  for (const c of [...children]) await stop(c, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  process.exit(1);
});
