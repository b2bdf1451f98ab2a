/**
 * npm run bench:sim [-- --budget 120] [-- --only swarms|haves]   (haves: parts 2 and 3)
 *
 * 1. Flash crowds: 1,000 peers x 100 pieces (the reference, completes), then 10,000 x 1,000 and
 *    100,000 x 1,000 (one seed, 1 MiB/s everywhere, 256 KiB pieces moved whole, rarest-first,
 *    seed 7), each given --budget seconds of wall time: wall time, events, events per second, peak
 *    RSS, and how far the swarm got (virtual time against the lower bound, peers done). The
 *    100,000-peer row (the last) runs with V8's heap growth held to 20%, for its memory target.
 * 2. Why large swarms are slow: the cost of one `have` at the receiving TorrentCore, for 100,
 *    1,000 and 10,000 cores of 1,000 pieces and 20 links each, receivers in random order (as in a
 *    swarm), side by side with the same bookkeeping done in flat typed arrays (the floor: the few
 *    memory reads a have needs at least).
 * 3. The machine's memory: one read that depends on the one before (a pointer chase over random
 *    64-byte lines) and reads that do not (a stride through the same array), over 1 to 1,024 MiB.
 *    A message landing on a cold peer waits for a chain of dependent reads; this is their price.
 */
import { parseArgs } from 'node:util';
import v8 from 'node:v8';
import { seededRandom } from '../src/core/rng.js';
import { DEFAULT_SCENARIO, runSimulation, type Scenario } from '../src/sim/simulator.js';
import { TorrentCore } from '../src/swarm/torrent-core.js';

const { values: args } = parseArgs({
  options: { budget: { type: 'string', default: '120' }, only: { type: 'string' } },
});
const budgetMs = Number(args.budget) * 1000;
if (!(budgetMs > 0) || (args.only !== undefined && args.only !== 'swarms' && args.only !== 'haves')) {
  console.error('usage: npm run bench:sim [-- --budget SECONDS] [-- --only swarms|haves]');
  process.exit(2);
}

function swarms(): string[] {
  const rows: string[] = [];
  for (const [peers, pieces] of [
    [1_000, 100],
    [10_000, 1_000],
    [100_000, 1_000],
  ] as const) {
    const s: Scenario = { ...DEFAULT_SCENARIO, peers, pieces, seed: 7, maxWallMs: budgetMs };
    // The memory target's row: V8 may grow its heap by 20% past the live data after a full
    // collection instead of its default (up to about twice): half the peak memory, ~10% slower.
    const lean = peers >= 100_000;
    if (lean) v8.setFlagsFromString('--heap-growing-percent=20');
    const r = runSimulation(s);
    const done = r.completionMs.filter((x) => x !== null).length;
    const bound = (r.lowerBoundMs ?? 0) / 1000;
    const outcome = r.stoppedByWall
      ? `stopped by the budget at ${(r.virtualMs / 1000).toFixed(1)} s virtual (bound ${bound.toFixed(0)} s), ${done}/${peers} done`
      : `complete at ${((r.lastCompletionMs ?? 0) / 1000).toFixed(1)} s virtual (${r.ratioToBound?.toFixed(2)}x the bound)`;
    rows.push(
      `| ${peers} x ${pieces}${lean ? ' (heap growth 20%)' : ''} | ${(r.wallMs / 1000).toFixed(1)} | ${r.events} | ${((r.events / r.wallMs) * 1000).toFixed(0)} | ${(r.peakRssBytes / 2 ** 30).toFixed(2)} | ${outcome} |`,
    );
    console.log(rows[rows.length - 1]);
  }
  return rows;
}

const PIECES = 1000;
const LINKS = 20;
const HAVES = 2_000_000;

/** ns per have delivered to TorrentCore.message, receivers (core, link, piece) drawn at random. */
function coreHave(cores: number): number {
  const rng = seededRandom(1);
  const list: TorrentCore[] = [];
  const hs = (l: number) => ({
    type: 'handshake' as const,
    reserved: new Uint8Array(8),
    infoHash: new Uint8Array(20),
    peerId: new Uint8Array(20).fill(l),
  });
  for (let c = 0; c < cores; c++) {
    const core = new TorrentCore(
      {
        infoHash: new Uint8Array(20),
        peerId: new Uint8Array(20).fill(0xaa),
        pieceCount: PIECES,
        pieceLength: 262144,
        length: PIECES * 262144,
        assemble: false,
        blockLength: 262144,
        pipeline: 1,
      },
      rng,
    );
    for (let l = 1; l <= LINKS; l++) {
      core.addLink(l, true, 0);
      core.message(l, hs(l), 0);
    }
    list.push(core);
  }
  const msgs = Array.from({ length: PIECES }, (_, i) => ({ type: 'have' as const, index: i }));
  const r = seededRandom(2);
  const t0 = performance.now();
  let out = 0;
  for (let k = 0; k < HAVES; k++) {
    const core = list[(r() * cores) | 0] as TorrentCore;
    out += core.message(
      1 + ((r() * LINKS) | 0),
      msgs[(r() * PIECES) | 0] as { type: 'have'; index: number },
      1,
    ).length;
  }
  if (out < 0) console.log(out);
  return ((performance.now() - t0) * 1e6) / HAVES;
}

/** ns per have with the same bookkeeping (their bit, availability, interest) in flat typed arrays. */
function flatHave(cores: number): number {
  const bytes = PIECES >> 3;
  const theirs = new Uint8Array(cores * LINKS * bytes);
  const mine = new Uint8Array(cores * bytes);
  const avail = new Uint16Array(cores * PIECES);
  const interesting = new Int32Array(cores * LINKS);
  const r = seededRandom(2);
  const t0 = performance.now();
  for (let k = 0; k < HAVES; k++) {
    const c = (r() * cores) | 0;
    const l = (r() * LINKS) | 0;
    const i = (r() * PIECES) | 0;
    const o = (c * LINKS + l) * bytes + (i >> 3);
    const m = 0x80 >> (i & 7);
    if (((theirs[o] as number) & m) === 0) {
      theirs[o] = (theirs[o] as number) | m;
      avail[c * PIECES + i] = (avail[c * PIECES + i] as number) + 1;
      if (((mine[c * bytes + (i >> 3)] as number) & m) === 0)
        interesting[c * LINKS + l] = (interesting[c * LINKS + l] as number) + 1;
    }
  }
  return ((performance.now() - t0) * 1e6) / HAVES;
}

/** ns per read over `mib` MiB of random lines: each depending on the last, then independent ones. */
function memoryRead(mib: number): [number, number] {
  const n = (mib * 2 ** 20) / 4;
  const a = new Int32Array(n);
  // One cycle through all lines in random order (Sattolo's shuffle), 16 ints to a line.
  const lines = n / 16;
  const order = new Int32Array(lines);
  for (let i = 0; i < lines; i++) order[i] = i;
  const r = seededRandom(3);
  for (let i = lines - 1; i > 0; i--) {
    const j = Math.floor(r() * i);
    const t = order[i] as number;
    order[i] = order[j] as number;
    order[j] = t;
  }
  for (let i = 0; i < lines; i++) a[(order[i] as number) * 16] = (order[(i + 1) % lines] as number) * 16;
  const steps = 4_000_000;
  let p = 0;
  let t0 = performance.now();
  for (let k = 0; k < steps; k++) p = a[p] as number;
  const dependent = ((performance.now() - t0) * 1e6) / steps;
  let sum = 0;
  t0 = performance.now();
  for (let k = 0; k < steps; k++) sum += a[((k * 2654435761) >>> 0) % n] as number;
  const independent = ((performance.now() - t0) * 1e6) / steps;
  if (p + sum === -1) console.log(p);
  return [dependent, independent];
}

function memory(): string[] {
  const rows: string[] = [];
  for (const mib of [1, 16, 256, 1024]) {
    const [d, i] = memoryRead(mib);
    rows.push(`| ${mib} | ${d.toFixed(0)} | ${i.toFixed(0)} |`);
    console.log(rows[rows.length - 1]);
  }
  return rows;
}

function haves(): string[] {
  const rows: string[] = [];
  for (const cores of [100, 1_000, 10_000]) {
    const a = coreHave(cores);
    const b = flatHave(cores);
    rows.push(`| ${cores} | ${a.toFixed(0)} | ${b.toFixed(0)} | ${(a / b).toFixed(1)}x |`);
    console.log(rows[rows.length - 1]);
  }
  return rows;
}

const swarmRows = args.only === 'haves' ? [] : swarms();
const haveRows = args.only === 'swarms' ? [] : haves();
const memoryRows = args.only === 'swarms' ? [] : memory();
console.log(
  `\nnpm run bench:sim -- --budget ${args.budget}${args.only ? ` --only ${args.only}` : ''}, node ${process.version}`,
);
if (swarmRows.length > 0) {
  console.log(
    `\nFlash crowds (rarest-first, 1 seed, 1 MiB/s everywhere, 256 KiB pieces moved whole, 20 connections, seed 7; budget ${args.budget} s each)\n`,
  );
  console.log('| peers x pieces | wall s | events | events/s | peak RSS GiB | outcome |');
  console.log('| --- | ---: | ---: | ---: | ---: | --- |');
  for (const r of swarmRows) console.log(r);
}
if (haveRows.length > 0) {
  console.log(
    `\nOne have at the receiver, ${PIECES} pieces, ${LINKS} links per core, receivers in random order (${HAVES} haves)\n`,
  );
  console.log('| cores | TorrentCore.message ns | flat arrays ns (floor) | ratio |');
  console.log('| ---: | ---: | ---: | ---: |');
  for (const r of haveRows) console.log(r);
}
if (memoryRows.length > 0) {
  console.log('\nOne read of memory: each depending on the last (a chain) or not, random 64-byte lines\n');
  console.log('| MiB | dependent ns | independent ns |');
  console.log('| ---: | ---: | ---: |');
  for (const r of memoryRows) console.log(r);
}
