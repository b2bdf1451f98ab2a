import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startDemo } from '../../src/demo/run-demo.js';
import { sampleText } from '../../src/demo/samples.js';
import { DEFAULT_SCENARIO, runSimulation } from '../../src/sim/simulator.js';

/** How far the simulated completion time may be from the real one (stated in docs/simulator.md). */
const TOLERANCE = 0.3;

describe('the simulator agrees with a real swarm', () => {
  it('10 peers on loopback TCP with rate caps vs the same scenario simulated: last completion within 30%', async () => {
    const pieceSize = 256 * 1024;
    const pieces = 20;
    const rate = 1024 * 1024;
    const dir = await mkdtemp(join(tmpdir(), 'ss-agree-'));
    try {
      const file = join(dir, 'file2.txt');
      await writeFile(file, sampleText('file2.txt', pieces * pieceSize));
      const run = await startDemo({
        file,
        peers: 10,
        pieceSize,
        strategy: 'rarest-first',
        maxChunks: 5,
        uploadRate: rate,
        out: join(dir, 'swarm'),
        timeoutMs: 60_000,
        log: () => {},
        trackerLog: false,
      });
      const report = await run.finished;
      await run.stop();
      expect(report.success).toBe(true);
      const real = report.totalMs as number;
      // The same swarm in the simulator: the demo's settings (everyone unchoked, 16 requests of
      // 16 KiB per link under caps, a super-seeding origin, 2 s announces), loopback latency; once
      // with wire-level 16 KiB blocks, once with the default piece-level transfers.
      for (const blocks of [{ blockSize: 16 * 1024, pipeline: 16 }, {}]) {
        const sims = [1, 2, 3].map(
          (seed) =>
            runSimulation({
              ...DEFAULT_SCENARIO,
              peers: 9,
              seeds: 1,
              pieces,
              pieceSize,
              capacity: [{ share: 1, upload: rate }],
              latencyMs: 1,
              uploadSlots: 10,
              superSeed: true,
              interval: 2,
              seed,
              ...blocks,
            }).lastCompletionMs as number,
        );
        const sim = sims.reduce((a, b) => a + b, 0) / sims.length;
        expect(
          Math.abs(sim - real) / real,
          `${JSON.stringify(blocks)}: real ${real} ms, simulated ${sims.join(', ')} ms`,
        ).toBeLessThan(TOLERANCE);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
