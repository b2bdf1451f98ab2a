/**
 * npm run bench:stream [-- --size 1GiB --piece-size 256KiB --rate 8M --reader-rate 4MiB --reader-seconds 30]
 *
 * Streaming while downloading (issue 29). One aria2c seeder capped at --rate, one `get --serve`:
 *   1. with readers: a reader from the start of the file consuming at --reader-rate for
 *      --reader-seconds (how long it waits for bytes after its first second), then five ranged
 *      reads of 64 KiB at random offsets (time to the first byte), then the time to complete;
 *   2. the same download without readers: the time to complete (the baseline), same run.
 * Targets: first byte of a random range <= 2 piece times + 1 s; the reader never waits after its
 * first second; the download time unchanged by readers.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseSize } from '../src/node/create-torrent.js';
import { aria2Flags } from '../test/support/proc.js';
import { stopChild } from './children.js';
import { writeRandomFile } from './random-file.js';

const { values: args } = parseArgs({
  options: {
    size: { type: 'string', default: '1GiB' },
    'piece-size': { type: 'string', default: '256KiB' },
    rate: { type: 'string', default: '8M' },
    'reader-rate': { type: 'string', default: '4MiB' },
    'reader-seconds': { type: 'string', default: '30' },
  },
});
const SIZE = parseSize(args.size as string);
const PIECE = parseSize(args['piece-size'] as string);
const RATE = parseSize(`${(args.rate as string).replace(/M$/, 'MiB').replace(/K$/, 'KiB')}`);
const READER_RATE = parseSize(args['reader-rate'] as string);
const READER_S = Number(args['reader-seconds']);
const root = resolve(import.meta.dirname, '..');
const cli = join(root, 'dist', 'cli', 'main.js');
const dir = join(tmpdir(), `swarmshare-bench-stream-${process.pid}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();

function background(cmd: string, argv: string[]): ChildProcess & { out: () => string } {
  const c = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  c.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  c.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return Object.assign(c, { out: () => out });
}

const stop = (c: ChildProcess) => stopChild(c, 'SIGINT');

async function until<T>(what: string, f: () => T | undefined, ms: number): Promise<T> {
  const end = now() + ms;
  while (now() < end) {
    const v = f();
    if (v !== undefined) return v;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** One download: the seeder, `get --serve`, and what `withReaders` measures; the time to complete. */
async function run(torrent: string, withReaders: boolean) {
  const port = 36900 + (withReaders ? 1 : 2);
  const seeder = background('aria2c', [
    ...aria2Flags(join(dir, 'src'), port),
    '--seed-ratio=0.0',
    '--bt-seed-unverified=true',
    `--max-upload-limit=${args.rate}`,
    torrent,
  ]);
  await sleep(1500);
  const out = join(dir, withReaders ? 'out-r' : 'out-n');
  rmSync(out, { recursive: true, force: true });
  const t0 = now();
  const get = background('node', [
    cli,
    'get',
    torrent,
    '-o',
    out,
    '--peer',
    `127.0.0.1:${port}`,
    '--no-dht',
    '--host',
    '127.0.0.2',
    '--serve',
    '0',
  ]);
  const url = await until('the URL', () => /Serving: +(\S+)/.exec(get.out())?.[1], 30_000);
  let reader = { waitedMs: 0, maxWaitMs: 0, firstByteMs: 0, bytes: 0 };
  const ttfb: number[] = [];
  if (withReaders) {
    reader = await readAt(url, READER_RATE, READER_S);
    for (let k = 0; k < 5; k++) {
      const at = Math.floor(Math.random() * (SIZE - 65536));
      const s = now();
      const r = await fetch(url, { headers: { range: `bytes=${at}-${at + 65535}` } });
      const body = r.body?.getReader();
      await body?.read();
      ttfb.push(now() - s);
      await body?.cancel();
    }
  }
  await until('the download to complete', () => (get.out().includes('Done:') ? true : undefined), 3_600_000);
  const doneS = (now() - t0) / 1000;
  await stop(get);
  await stop(seeder);
  rmSync(out, { recursive: true, force: true });
  return { doneS, reader, ttfb };
}

/** Reads from the start at `rate` for `seconds`: how long it waited for bytes once past its first second. */
async function readAt(url: string, rate: number, seconds: number) {
  const s = now();
  const r = await fetch(url);
  const body = r.body?.getReader();
  if (body === undefined) throw new Error('no body');
  let bytes = 0;
  let firstByteMs = 0;
  let waitedMs = 0;
  let maxWaitMs = 0;
  while (now() - s < seconds * 1000) {
    const asked = now();
    const chunk = await body.read();
    const got = now();
    if (chunk.done) break;
    if (bytes === 0) firstByteMs = got - s;
    // Waiting counts once the reader is past its first second and not ahead of its own pace.
    if (got - s > 1000 + firstByteMs) {
      waitedMs += got - asked;
      maxWaitMs = Math.max(maxWaitMs, got - asked);
    }
    bytes += chunk.value.length;
    // Consume at `rate`: sleep until this many bytes are due.
    const due = s + firstByteMs + (bytes / rate) * 1000;
    if (due > now()) await sleep(due - now());
  }
  await body.cancel();
  return { waitedMs, maxWaitMs, firstByteMs, bytes };
}

async function main(): Promise<void> {
  mkdirSync(join(dir, 'src'), { recursive: true });
  const file = join(dir, 'src', 'movie.bin');
  writeRandomFile(file, SIZE);
  const torrent = join(dir, 'movie.torrent');
  execFileSync('node', [
    cli,
    'create',
    file,
    '--piece-size',
    args['piece-size'] as string,
    '-o',
    torrent,
    '--tracker',
    'http://127.0.0.1:9/announce',
  ]);
  try {
    const a = await run(torrent, true);
    const b = await run(torrent, false);
    const pieceS = PIECE / RATE;
    const mib = (n: number) => (n / 2 ** 20).toFixed(0);
    console.log(
      `\nbench:stream, node ${process.version}: ${mib(SIZE)} MiB, ${(PIECE / 1024).toFixed(0)} KiB pieces, aria2c seeder capped at ${args.rate}, reader at ${args['reader-rate']}/s for ${READER_S} s\n`,
    );
    console.log('| measure | result | target |');
    console.log('| --- | --- | --- |');
    console.log(
      `| first byte of a 64 KiB range at a random offset (5 reads) | ${a.ttfb.map((t) => (t / 1000).toFixed(2)).join(', ')} s | <= 2 piece times + 1 s = ${(2 * pieceS + 1).toFixed(2)} s |`,
    );
    console.log(
      `| reader from the start at ${args['reader-rate']}/s: first byte, then waiting after its first second | ${(a.reader.firstByteMs / 1000).toFixed(2)} s; waited ${(a.reader.waitedMs / 1000).toFixed(2)} s in all, longest ${(a.reader.maxWaitMs / 1000).toFixed(2)} s (${mib(a.reader.bytes)} MiB read) | never waits |`,
    );
    console.log(`| download time with the readers | ${a.doneS.toFixed(1)} s | unchanged |`);
    console.log(`| download time without readers (baseline) | ${b.doneS.toFixed(1)} s | - |`);
    console.log(`| ratio | ${(a.doneS / b.doneS).toFixed(2)}x | ~1.00x |`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
