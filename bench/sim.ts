/**
 * npm run bench:sim [-- --budget 120]
 *
 * Flash crowds of 10,000 peers x 1,000 pieces and 100,000 peers x 1,000 pieces (one seed, equal
 * capacities, rarest-first, seed 7), each given --budget seconds of wall time (default 120): prints
 * wall time, events, events per second, peak RSS, and how far the swarm got when the budget ran out.
 * A small run (1,000 x 100) that completes is printed first, as the reference.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_SCENARIO, runSimulation, type Scenario } from '../src/sim/simulator.js';

const { values: args } = parseArgs({ options: { budget: { type: 'string', default: '120' } } });
const budgetMs = Number(args.budget) * 1000;

const rows: string[] = [];
for (const [peers, pieces] of [
  [1_000, 100],
  [10_000, 1_000],
  [100_000, 1_000],
] as const) {
  const s: Scenario = { ...DEFAULT_SCENARIO, peers, pieces, seed: 7, maxWallMs: budgetMs };
  const r = runSimulation(s);
  const done = r.completionMs.filter((x) => x !== null).length;
  rows.push(
    `| ${peers} x ${pieces} | ${(r.wallMs / 1000).toFixed(1)} | ${r.events} | ${((r.events / r.wallMs) * 1000).toFixed(0)} | ${(r.peakRssBytes / 2 ** 30).toFixed(2)} | ${r.stoppedByWall ? `stopped by the budget at ${(r.virtualMs / 1000).toFixed(1)} s virtual, ${done}/${peers} done` : `complete at ${((r.lastCompletionMs ?? 0) / 1000).toFixed(1)} s virtual (${r.ratioToBound?.toFixed(2)}x the bound)`} |`,
  );
  console.log(rows[rows.length - 1]);
}
console.log(
  `\nsimulator benchmark (rarest-first, 1 seed, 1 MiB/s everywhere, 256 KiB pieces, seed 7; budget ${args.budget} s each), node ${process.version}\n`,
);
console.log('| peers x pieces | wall s | events | events/s | peak RSS GiB | outcome |');
console.log('| --- | ---: | ---: | ---: | ---: | --- |');
for (const r of rows) console.log(r);
