/**
 * npm run bench:flash [-- --big] [-- --seeds 7]
 *
 * Flash crowds in the simulator (the real peer core on a simulated network, deterministic: the
 * same scenario and RNG seed give the same run), the scenarios of issue 32 with `simulate`'s
 * defaults (one seed, 1 MiB/s uploads, 256 KiB pieces moved whole, 20 connections, rarest-first):
 * last completion over the fluid lower bound, beside the binomial-pipeline optimum (k pieces to N
 * peers in about k + log2(N) piece times, equal capacities only) and the target; what the seed
 * sent (copies of the file, sends until every piece went out once); p50 completion; the first
 * piece's p50; upload utilization and where the idle uplinks were. Beside each, the same scenario
 * with plain BEP 3 peers (`fast: false`: no suggestions from the seed, the baseline). `--big` adds
 * 10,000 x 1,000 (minutes of wall time). `--seeds` takes several RNG seeds (comma-separated): one
 * row each.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_SCENARIO, runSimulation, type Scenario } from '../src/sim/simulator.js';

const { values: args } = parseArgs({
  options: { big: { type: 'boolean', default: false }, seeds: { type: 'string', default: '7' } },
});
const seeds = (args.seeds as string).split(',').map(Number);
if (seeds.some((s) => !Number.isSafeInteger(s))) {
  console.error('usage: npm run bench:flash [-- --big] [-- --seeds 1,2,3]');
  process.exit(2);
}

interface Row {
  name: string;
  s: Partial<Scenario>;
  /** The issue's target for last completion / bound (null: report only). */
  target: number | null;
  /** Equal capacities: the binomial pipeline's optimum applies. */
  equal: boolean;
}

const rows: Row[] = [
  { name: '1,000 x 100', s: { peers: 1_000, pieces: 100 }, target: 1.25, equal: true },
  { name: '200 x 1,000', s: { peers: 200, pieces: 1_000 }, target: 1.06, equal: true },
  {
    name: '1,000 x 200, 20% 4 MiB/s + 80% 512 KiB/s',
    s: {
      peers: 1_000,
      pieces: 200,
      capacity: [
        { share: 20, upload: 4 * 1024 * 1024 },
        { share: 80, upload: 512 * 1024 },
      ],
    },
    target: 1.3,
    equal: false,
  },
  { name: '50 x 2,000', s: { peers: 50, pieces: 2_000 }, target: 1.02, equal: true },
];
if (args.big)
  rows.push({ name: '10,000 x 1,000', s: { peers: 10_000, pieces: 1_000 }, target: null, equal: true });

console.log(`bench:flash, node ${process.version}: simulate's defaults, RNG seed(s) ${seeds.join(', ')}\n`);
console.log(
  '| scenario | seed | last / bound | plain BEP 3 | optimum / bound | target | seed copies (plain) | sends until every piece out once (plain) | p50 completion | first piece p50 | utilization | uplinks busy / idle: asked elsewhere, want nothing, unchoke nobody, empty | wall |',
);
console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |');
for (const row of rows) {
  for (const seed of seeds) {
    const s: Scenario = { ...DEFAULT_SCENARIO, ...row.s, seed };
    const r = runSimulation(s);
    const plain = runSimulation({ ...s, fast: false });
    const pieceTime = s.pieceSize / (s.capacity[0]?.upload ?? 1);
    const optimum =
      row.equal && r.lowerBoundMs !== null
        ? ((s.pieces + Math.log2(s.peers)) * pieceTime * 1000) / r.lowerBoundMs
        : null;
    const ss = r.seedSends;
    const sec = (ms: number | null | undefined) => (ms == null ? '-' : `${(ms / 1000).toFixed(1)} s`);
    const pc = (x: number) => `${(x * 100).toFixed(0)}%`;
    const u = r.uplinks;
    console.log(
      `| ${row.name} | ${seed} | ${r.ratioToBound?.toFixed(3) ?? 'incomplete'} | ${plain.ratioToBound?.toFixed(3) ?? 'incomplete'} | ${optimum?.toFixed(3) ?? '-'} | ${row.target === null ? '-' : `<= ${row.target}`} | ${r.originLoad.toFixed(2)} (${plain.originLoad.toFixed(2)}) | ${ss.coveredAfter ?? '-'} (${plain.seedSends.coveredAfter ?? '-'}) | ${sec(r.distribution?.p50)} | ${r.firstPiece === null ? '-' : `${(r.firstPiece.p50 / 1000).toFixed(2)} s`} | ${(r.uploadUtilization * 100).toFixed(1)}% | ${pc(u.busy)} / ${pc(u.askedElsewhere)}, ${pc(u.notInterested)}, ${pc(u.noneUnchoked)}, ${pc(u.empty)} | ${((r.wallMs + plain.wallMs) / 1000).toFixed(1)} s |`,
    );
  }
}
