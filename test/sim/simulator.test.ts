import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../src/core/rng.js';
import { EventQueue } from '../../src/sim/event-queue.js';
import { MAX_FRAMES, type ReplayFrame, ReplayRecorder, readReplay } from '../../src/sim/replay.js';
import { DEFAULT_SCENARIO, runSimulation, type Scenario, scenarioProblem } from '../../src/sim/simulator.js';
import { start } from '../support/proc.js';

const small: Scenario = { ...DEFAULT_SCENARIO, peers: 40, pieces: 40, seed: 3 };

describe('simulator building blocks', () => {
  it('EventQueue: earliest first, ties in scheduling order', () => {
    const q = new EventQueue();
    const out: string[] = [];
    q.push(5, () => out.push('c'));
    q.push(1, () => out.push('a'));
    q.push(5, () => out.push('d'));
    q.push(3, () => out.push('b'));
    while (q.size > 0) q.pop()?.();
    expect(out).toEqual(['a', 'b', 'c', 'd']);
  });

  it('EventQueue: any interleaving of pushes (callbacks and codes, never before the last popped time) and pops comes out by time, then push order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 17 })), { maxLength: 300 }),
        (ops) => {
          const q = new EventQueue();
          const pending: { time: number; seq: number }[] = [];
          const got: number[] = [];
          const want: number[] = [];
          let now = 0;
          let seq = 0;
          for (const op of ops) {
            if (op === -1) {
              if (pending.length === 0) {
                expect(q.size).toBe(0);
                expect(q.pop()).toBeUndefined();
                expect(q.popCode()).toBeNaN();
                continue;
              }
              expect(q.peekTime()).toBe(Math.min(...pending.map((e) => e.time)));
              pending.sort((a, b) => a.time - b.time || a.seq - b.seq);
              const e = pending.shift() as { time: number; seq: number };
              want.push(e.seq);
              now = e.time;
              const code = q.popCode();
              if (code >= 0) got.push(code);
              else q.takeFn(code)();
            } else {
              // The simulator schedules at or after the current time; delays of 0 are common.
              const time = now + (op % 3 === 0 ? 0 : op % 9);
              const id = seq++;
              pending.push({ time, seq: id });
              // Half the events are codes (the code is the id), half callbacks.
              if (op >= 9) q.pushCode(time, id);
              else q.push(time, () => got.push(id));
            }
            expect(q.size).toBe(pending.length);
          }
          expect(got).toEqual(want);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('EventQueue: pop refuses a code event; takeFn frees callback slots for reuse', () => {
    const q = new EventQueue();
    q.pushCode(1, 42);
    expect(() => q.pop()).toThrow(/popCode/);
    expect(q.size).toBe(1);
    expect(q.popCode()).toBe(42);
    // Many callbacks in turn: each slot is reused, and each callback runs once, in order.
    const out: number[] = [];
    for (let i = 0; i < 5000; i++) {
      q.push(i, () => out.push(i));
      const code = q.popCode();
      expect(code).toBeLessThan(0);
      expect(code).toBeGreaterThanOrEqual(-2);
      q.takeFn(code)();
    }
    expect(out).toEqual(Array.from({ length: 5000 }, (_, i) => i));
  });

  it('seededRandom: the same seed, the same sequence; another seed, another', () => {
    const a = seededRandom(7);
    const b = seededRandom(7);
    const c = seededRandom(8);
    const xa = Array.from({ length: 5 }, a);
    expect(Array.from({ length: 5 }, b)).toEqual(xa);
    expect(Array.from({ length: 5 }, c)).not.toEqual(xa);
    expect(xa.every((x) => x >= 0 && x < 1)).toBe(true);
  });
});

describe('simulator', () => {
  it('is deterministic: the same scenario and seed give the same run, event for event', () => {
    const r1 = runSimulation(small);
    const r2 = runSimulation(small);
    expect(r2.events).toBe(r1.events);
    expect(r2.completionMs).toEqual(r1.completionMs);
    expect(r2.availability).toEqual(r1.availability);
    const r3 = runSimulation({ ...small, seed: 4 });
    expect(r3.completionMs).not.toEqual(r1.completionMs);
  });

  it('says what the seed sent: its piece sends agree with its upload, every piece went out, super-seeding sends each once first', () => {
    for (const superSeed of [false, true]) {
      const r = runSimulation({ ...small, superSeed });
      const ss = r.seedSends;
      // Pieces moved whole: the seed's upload is its sends times the piece size.
      expect(ss.total).toBe(Math.round((r.originLoad * small.pieces * small.pieceSize) / small.pieceSize));
      expect(Object.values(ss.copies).reduce((a, b) => a + b, 0)).toBe(small.pieces);
      expect(Object.entries(ss.copies).reduce((a, [c, n]) => a + Number(c) * n, 0)).toBe(ss.total);
      expect(ss.coveredAfter).not.toBeNull();
      expect(ss.coveredAfter as number).toBeGreaterThanOrEqual(small.pieces);
      expect(ss.coveredAfter as number).toBeLessThanOrEqual(ss.total);
      // A super-seed offers the pieces given out least: every piece once before any twice.
      if (superSeed) expect(ss.coveredAfter).toBe(small.pieces);
    }
  });

  it('says where the upload capacity went: busy, or idle and why; busy agrees with the utilization', () => {
    const r = runSimulation({ ...DEFAULT_SCENARIO, peers: 200, pieces: 50, seed: 5 });
    const u = r.uplinks;
    expect(u.samples).toBeGreaterThan(200 * 10);
    const sum = u.busy + u.empty + u.noneUnchoked + u.notInterested + u.askedElsewhere;
    expect(sum).toBeCloseTo(1, 9);
    expect(Math.abs(u.busy - r.uploadUtilization)).toBeLessThan(0.08);
    // Before the first pieces spread, most peers hold nothing: a flash crowd's start shows.
    expect(u.empty).toBeGreaterThan(0.01);
  });

  it('streamers (a share of peers asking for the pieces ahead of their reader first): deterministic, every peer completes, the run changes', () => {
    const streaming = { ...small, streamers: 0.25 };
    const r1 = runSimulation(streaming);
    const r2 = runSimulation(streaming);
    expect(r2.events).toBe(r1.events);
    expect(r2.completionMs).toEqual(r1.completionMs);
    expect(r1.completionMs.every((t) => t !== null)).toBe(true);
    expect(r1.completionMs).not.toEqual(runSimulation(small).completionMs);
    expect(scenarioProblem({ ...small, streamers: 1.5 })).toMatch(/streamers must be in \[0, 1\]/);
  });

  it('every peer completes, and never faster than the lower bound allows', () => {
    const r = runSimulation(small);
    expect(r.completionMs.every((t) => t !== null)).toBe(true);
    expect(r.lastCompletionMs).not.toBeNull();
    expect(r.ratioToBound).toBeGreaterThanOrEqual(1);
    // The seed must upload at least one copy; peers did the rest.
    expect(r.originLoad).toBeGreaterThanOrEqual(1);
  });

  it('capacity classes, a download cap and leaving on completion are honoured', () => {
    const r = runSimulation({
      ...small,
      capacity: [
        { share: 20, upload: 4 * 1024 * 1024, download: 2 * 1024 * 1024 },
        { share: 80, upload: 256 * 1024, download: 2 * 1024 * 1024 },
      ],
      leaveOnComplete: true,
    });
    expect(r.completionMs.every((t) => t !== null)).toBe(true);
    // Nobody downloads 40 x 256 KiB faster than its 2 MiB/s download cap allows (5 s).
    expect(Math.min(...(r.completionMs as number[]))).toBeGreaterThanOrEqual(5000);
  });

  it('with a slow seed, rarest-first beats random piece selection (Bharambe et al.; Legout et al.); a seed suggesting beats both', () => {
    const slowSeed = { ...DEFAULT_SCENARIO, peers: 60, pieces: 60, seedUpload: 256 * 1024 };
    const mean = (strategy: 'rarest-first' | 'random', fast: boolean) =>
      [1, 2]
        .map((seed) => runSimulation({ ...slowSeed, strategy, seed, fast }).distribution?.mean as number)
        .reduce((a, b) => a + b, 0) / 2;
    // Plain peers: what each asks the seed for decides which pieces the seed sends.
    const plainRarest = mean('rarest-first', false);
    expect(plainRarest).toBeLessThan(mean('random', false));
    // Fast peers: the seed suggests its least-sent pieces and they take them, whatever their strategy.
    expect(mean('rarest-first', true)).toBeLessThan(plainRarest * 0.97);
    expect(mean('random', true)).toBeLessThan(plainRarest * 0.97);
  }, 60_000);

  it('with equal capacities, rarest-first finishes within 5% of the lower bound', () => {
    // The bound is F/u here (the seed uploads as fast as anyone): every uplink must stay busy from
    // start to end, so the file needs many pieces against the log2(N) hops the last ones take.
    const equal: Scenario = { ...DEFAULT_SCENARIO, peers: 50, pieces: 2000 };
    for (const [seed, superSeed] of [
      [1, true],
      [2, true],
      [1, false],
    ] as const) {
      const r = runSimulation({ ...equal, seed, superSeed });
      expect(r.ratioToBound, `seed ${seed}, super-seed ${superSeed}`).toBeGreaterThanOrEqual(1);
      expect(r.ratioToBound, `seed ${seed}, super-seed ${superSeed}`).toBeLessThan(1.05);
    }
  }, 60_000);

  it('packet loss: every peer still completes, later; the same seed replays the same run', () => {
    const clean = runSimulation(small);
    const lossy = runSimulation({ ...small, loss: 0.3 });
    expect(lossy.completionMs.every((t) => t !== null)).toBe(true);
    // 30% of packets sent twice and a round trip each: well behind the loss-free run.
    expect(lossy.distribution?.mean).toBeGreaterThan((clean.distribution?.mean as number) * 1.1);
    expect(runSimulation({ ...small, loss: 0.3 }).completionMs).toEqual(lossy.completionMs);
    expect(() => runSimulation({ ...small, loss: 1 })).toThrow(/loss must be in/);
  });

  it('malicious peers: their data fails the hash check, every honest peer still completes', () => {
    const r = runSimulation({ ...small, peers: 50, malicious: 0.1 });
    expect(r.completionMs).toHaveLength(45);
    expect(r.completionMs.every((t) => t !== null)).toBe(true);
    expect(r.failedPieces).toBeGreaterThan(0);
    const clean = runSimulation({ ...small, peers: 50 });
    expect(clean.failedPieces).toBe(0);
  });

  it('random departures: every honest peer either completes or left first', () => {
    const r = runSimulation({ ...small, peers: 50, meanStaySeconds: 20 });
    const completed = r.completionMs.filter((t) => t !== null).length;
    expect(r.departedIncomplete).toBeGreaterThan(0);
    expect(completed + r.departedIncomplete).toBe(50);
  });

  it('a scenario that cannot run is refused with the field named, by the library and the CLI', async () => {
    const bad: [Partial<Scenario>, RegExp][] = [
      [{ pieceSize: 1000 }, /pieceSize must be a positive multiple of 16 KiB/],
      [{ blockSize: 20_000 }, /blockSize must be a positive multiple of 16 KiB/],
      [{ peers: 0 }, /peers must be a positive integer/],
      [{ capacity: [] }, /capacity needs at least one class/],
      [{ capacity: [{ share: 1, upload: -5 }] }, /positive share and upload/],
      [{ arrival: { kind: 'poisson', perSecond: 0 } }, /Poisson arrival rate must be positive/],
    ];
    for (const [change, message] of bad) {
      expect(scenarioProblem({ ...small, ...change })).toMatch(message);
      expect(() => runSimulation({ ...small, ...change })).toThrow(message);
    }
    expect(scenarioProblem(small)).toBeNull();
    const cli = start('node', ['dist/cli/main.js', 'simulate', '--peers', '5', '--block-size', '1000']);
    expect(await cli.exited).toBe(1);
    expect(cli.output()).toMatch(/blockSize must be a positive multiple of 16 KiB, not 1000/);
  });

  it('replay frames: the live feed shape, evenly spaced, at most MAX_FRAMES, the last one complete', async () => {
    const rec = new ReplayRecorder(100);
    const r = runSimulation({ ...small, peers: 20, pieces: 10 }, undefined, rec);
    const frames = rec.frames;
    expect(frames.length).toBeGreaterThan(10);
    expect(frames.length).toBeLessThanOrEqual(MAX_FRAMES);
    for (let i = 1; i < frames.length - 1; i++)
      expect((frames[i] as ReplayFrame).timeMs - (frames[i - 1] as ReplayFrame).timeMs).toBe(rec.everyMs);
    const last = frames[frames.length - 1] as ReplayFrame;
    expect(last.timeMs).toBe(r.virtualMs);
    expect(last.view.peers).toHaveLength(21);
    expect(last.view.peers.every((p) => p.complete && p.have === 10)).toBe(true);
    expect(last.swarms[0]).toMatchObject({ seeds: 21, leechers: 0, downloaded: 20, pieces: 10 });
    expect(last.view.availability).toEqual(Array(10).fill(21));
    // More frames than kept: every other one dropped, the interval doubled, still evenly spaced.
    const thin = new ReplayRecorder(1);
    const base = frames[0] as ReplayFrame;
    for (let t = 0; t <= MAX_FRAMES; t++) thin.add({ ...base, timeMs: t });
    expect(thin.frames.length).toBe(MAX_FRAMES / 2 + 1);
    expect(thin.everyMs).toBe(2);
    expect(thin.frames.map((f) => f.timeMs)).toEqual(thin.frames.map((_, i) => i * 2));
    // Files that are not replays are refused with a clear message.
    const dir = await mkdtemp(join(tmpdir(), 'ss-replay-'));
    try {
      const { writeFile } = await import('node:fs/promises');
      await writeFile(join(dir, 'a.json'), '{"format":"other"}');
      await expect(readReplay(join(dir, 'a.json'))).rejects.toThrow(/not a replay file/);
      await writeFile(join(dir, 'b.json'), 'not json');
      await expect(readReplay(join(dir, 'b.json'))).rejects.toThrow(/not a replay file/);
      await writeFile(join(dir, 'c.json'), JSON.stringify(rec.replay(small)));
      expect((await readReplay(join(dir, 'c.json'))).frames).toHaveLength(frames.length);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a YAML scenario file drives the CLI; unknown fields are refused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ss-sim-yaml-'));
    try {
      const { writeFile } = await import('node:fs/promises');
      await writeFile(
        join(dir, 's.yaml'),
        'peers: 12\npieces: 8\nseed: 5\nlatencyMs: 10\ncapacity:\n  - share: 1\n    upload: 524288\n',
      );
      const ok = start('node', [
        'dist/cli/main.js',
        'simulate',
        '--scenario',
        join(dir, 's.yaml'),
        '--report',
        join(dir, 'r.json'),
      ]);
      expect(await ok.exited, ok.output()).toBe(0);
      const r = JSON.parse(await readFile(join(dir, 'r.json'), 'utf8'));
      expect(r.scenario).toMatchObject({
        peers: 12,
        pieces: 8,
        seed: 5,
        latencyMs: 10,
        capacity: [{ share: 1, upload: 524288 }],
      });
      await writeFile(join(dir, 'bad.yaml'), 'peers: 12\npeeers: 3\n');
      const bad = start('node', ['dist/cli/main.js', 'simulate', '--scenario', join(dir, 'bad.yaml')]);
      expect(await bad.exited).toBe(1);
      expect(bad.output()).toMatch(/unknown scenario field 'peeers'/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('swarmshare simulate runs from the CLI and writes its report, CSV and plot', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ss-sim-'));
    try {
      const p = start('node', [
        'dist/cli/main.js',
        'simulate',
        '--peers',
        '30',
        '--pieces',
        '20',
        '--seed',
        '7',
        '--report',
        join(dir, 'r.json'),
        '--csv',
        join(dir, 'r.csv'),
        '--plot',
        join(dir, 'r.svg'),
      ]);
      expect(await p.exited, p.output()).toBe(0);
      expect(p.output()).toMatch(/Completed: 30\/30 honest peers/);
      const r = JSON.parse(await readFile(join(dir, 'r.json'), 'utf8'));
      expect(r.scenario).toMatchObject({ peers: 30, pieces: 20, pieceSize: 262144, seed: 7 });
      expect(r.completionMs).toHaveLength(30);
      expect((await readFile(join(dir, 'r.csv'), 'utf8')).split('\n')[0]).toBe('peer,completion_ms');
      expect(await readFile(join(dir, 'r.svg'), 'utf8')).toMatch(/^<svg[\s\S]*polyline[\s\S]*<\/svg>\n$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
