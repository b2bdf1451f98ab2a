import { readFile, writeFile } from 'node:fs/promises';
import cliProgress from 'cli-progress';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { SimReport } from '../sim/report.js';
import { DEFAULT_SCENARIO, type Scenario, scenarioProblem } from '../sim/scenario.js';
import { fractionOption, intOption, numberOption, positiveOption, sizeOption } from './options.js';

/** `20%:4MiB,80%:512KiB` -> capacity classes; a single rate means everyone alike. */
function capacity(v: string): Scenario['capacity'] {
  return v.split(',').map((part) => {
    const m = /^(?:([0-9.]+)%:)?(.+)$/.exec(part.trim());
    if (!m) throw new InvalidArgumentError(`'${part}' is not SHARE%:RATE or RATE`);
    return { share: m[1] === undefined ? 1 : Number(m[1]), upload: sizeOption(m[2] as string) };
  });
}

interface SimCliOpts {
  scenario?: string;
  peers?: number;
  seeds?: number;
  pieces?: number;
  pieceSize?: number;
  blockSize?: number;
  pipeline?: number;
  size?: number;
  strategy?: 'rarest-first' | 'random';
  upload?: Scenario['capacity'];
  seedUpload?: number;
  download?: number;
  latency?: number;
  loss?: number;
  poisson?: number;
  leaveOnComplete?: boolean;
  seedsLeaveAt?: number;
  maxConnections?: number;
  superSeed?: boolean;
  fast?: boolean;
  malicious?: number;
  streamers?: number;
  meanStay?: number;
  seed?: number;
  report?: string;
  csv?: string;
  plot?: string;
  replay?: string;
  replayEvery?: number;
  maxWall?: number;
}

/** Piece size when only a piece count is given: 256 KiB, a common BitTorrent piece size. */
export const DEFAULT_SIM_PIECE_SIZE = 256 * 1024;

export function scenarioFrom(o: SimCliOpts, fromFile: Partial<Scenario>): Scenario {
  const s: Scenario = { ...DEFAULT_SCENARIO, ...fromFile };
  if (o.peers !== undefined) s.peers = o.peers;
  if (o.seeds !== undefined) s.seeds = o.seeds;
  if (o.pieceSize !== undefined) s.pieceSize = o.pieceSize;
  else if (fromFile.pieceSize === undefined) s.pieceSize = DEFAULT_SIM_PIECE_SIZE;
  if (o.pieces !== undefined) s.pieces = o.pieces;
  if (o.blockSize !== undefined) s.blockSize = o.blockSize;
  if (o.pipeline !== undefined) s.pipeline = o.pipeline;
  if (o.size !== undefined) s.pieces = Math.max(1, Math.ceil(o.size / s.pieceSize));
  if (o.strategy !== undefined) s.strategy = o.strategy;
  if (o.upload !== undefined) s.capacity = o.upload;
  if (o.download !== undefined) s.capacity = s.capacity.map((c) => ({ ...c, download: o.download }));
  if (o.seedUpload !== undefined) s.seedUpload = o.seedUpload;
  if (o.latency !== undefined) s.latencyMs = o.latency;
  if (o.loss !== undefined) s.loss = o.loss;
  if (o.poisson !== undefined) s.arrival = { kind: 'poisson', perSecond: o.poisson };
  if (o.leaveOnComplete) s.leaveOnComplete = true;
  if (o.seedsLeaveAt !== undefined) s.seedsLeaveAtMs = o.seedsLeaveAt * 1000;
  if (o.maxConnections !== undefined) s.maxConnections = o.maxConnections;
  if (o.superSeed) s.superSeed = true;
  if (o.fast === false) s.fast = false;
  if (o.malicious !== undefined) s.malicious = o.malicious;
  if (o.streamers !== undefined) s.streamers = o.streamers;
  if (o.meanStay !== undefined) s.meanStaySeconds = o.meanStay;
  if (o.seed !== undefined) s.seed = o.seed;
  if (o.maxWall !== undefined) s.maxWallMs = o.maxWall * 1000;
  return s;
}

/** A scenario file: JSON, or YAML when it ends in .yaml or .yml. */
async function readScenario(path: string): Promise<Partial<Scenario>> {
  const text = await readFile(path, 'utf8');
  let value: unknown;
  try {
    value = /\.ya?ml$/i.test(path) ? (await import('yaml')).parse(text) : JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not a valid scenario file: ${(e as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error(`${path}: a scenario is an object of fields`);
  const known = new Set(
    Object.keys(DEFAULT_SCENARIO).concat([
      'seedUpload',
      'seedsLeaveAtMs',
      'loss',
      'blockSize',
      'pipeline',
      'malicious',
      'streamers',
      'meanStaySeconds',
      'maxWallMs',
    ]),
  );
  for (const k of Object.keys(value))
    if (!known.has(k)) throw new Error(`${path}: unknown scenario field '${k}'`);
  return value as Partial<Scenario>;
}

export function registerSimulateCommand(program: Command): void {
  program
    .command('simulate')
    .description(
      'run the peer logic (picker, choker, tracker registry) for a large swarm on a simulated network in virtual time',
    )
    .option('--scenario <file>', 'a JSON scenario (see docs/simulator.md); flags override it')
    .option('--peers <n>', 'peers that arrive empty', positiveOption)
    .option('--seeds <n>', 'seeds present at the start', positiveOption)
    .option('--pieces <n>', 'pieces in the file (piece size: 256KiB unless --piece-size)', positiveOption)
    .option('--piece-size <size>', 'piece size', sizeOption)
    .option('--size <size>', 'file size (sets the piece count)', sizeOption)
    .option(
      '--block-size <size>',
      'bytes per request, a multiple of 16KiB (default: the piece size, piece-level transfers)',
      sizeOption,
    )
    .option('--pipeline <n>', 'requests outstanding per connection (default: 256KiB worth)', positiveOption)
    .addOption(new Option('--strategy <name>', 'piece selection').choices(['rarest-first', 'random']))
    .option(
      '--upload <rates>',
      'upload capacity: RATE, or classes SHARE%:RATE,... (e.g. 20%:4MiB,80%:512KiB)',
      capacity,
    )
    .option('--seed-upload <rate>', "the seeds' upload capacity", sizeOption)
    .option('--download <rate>', 'download capacity of every peer (default: unlimited)', sizeOption)
    .option('--latency <ms>', 'one-way latency between peers, ms', positiveOption)
    .option(
      '--loss <fraction>',
      'packet loss (0..1): lost packets are sent again, as TCP does',
      fractionOption,
    )
    .option(
      '--poisson <per-second>',
      'arrivals as a Poisson process (default: a flash crowd)',
      numberOption(0, Number.MAX_VALUE, false, true, 'a positive rate'),
    )
    .option('--leave-on-complete', 'peers leave as soon as they complete')
    .option('--seeds-leave-at <seconds>', 'the seeds leave at this virtual time', positiveOption)
    .option('--max-connections <n>', 'connections per peer', positiveOption)
    .option('--super-seed', 'the initial seeds super-seed (BEP 16)')
    .option(
      '--no-fast',
      'peers do not speak the fast extension (BEP 6: have all/none, rejects, allowed-fast pieces, suggestions), which they do by default',
    )
    .option('--malicious <fraction>', 'share of the peers (0..1) that serve corrupt data', fractionOption)
    .option(
      '--streamers <fraction>',
      'share of the peers (0..1) that stream the file: the next 16 MiB ahead of each reader fetched first',
      fractionOption,
    )
    .option(
      '--mean-stay <seconds>',
      'peers leave at random, after this mean stay (exponential)',
      positiveOption,
    )
    .option('--seed <n>', 'RNG seed (same scenario and seed: same run)', intOption(0, 2 ** 31 - 1))
    .option(
      '--max-wall <seconds>',
      'stop after this much real time; the report says how far the swarm got',
      positiveOption,
    )
    .option('--report <file>', 'write the report as JSON')
    .option('--csv <file>', 'write per-peer completion times as CSV')
    .option('--plot <file>', 'write an SVG plot (completion over time, rarest piece copies)')
    .option('--replay <file>', "record the run for the dashboard ('swarmshare replay FILE' plays it)")
    .option(
      '--replay-every <seconds>',
      'virtual seconds between replay frames (at most 600 frames are kept; the interval doubles past that)',
      numberOption(0, 86_400, false, true, 'seconds above 0, at most 86400'),
      1,
    )
    .action(simulateAction);
}

async function simulateAction(o: SimCliOpts): Promise<void> {
  const fromFile = o.scenario ? await readScenario(o.scenario) : {};
  const s = scenarioFrom(o, fromFile);
  const problem = scenarioProblem(s);
  if (problem !== null) throw new Error(`${o.scenario ? `${o.scenario}: ` : ''}${problem}`);
  const bar = process.stderr.isTTY
    ? new cliProgress.SingleBar(
        {
          format: 'simulating {bar} {value}/{total} peers done | virtual {vt} s',
          stream: process.stderr,
        },
        cliProgress.Presets.shades_classic,
      )
    : null;
  bar?.start(s.peers, 0, { vt: 0 });
  // The simulator, plots and replays load when a simulation runs (not for every command).
  const [{ runSimulation }, { ReplayRecorder }, { completionCsv, plotSvg }] = await Promise.all([
    import('../sim/simulator.js'),
    import('../sim/replay.js'),
    import('../sim/plot.js'),
  ]);
  const recorder = o.replay ? new ReplayRecorder((o.replayEvery ?? 1) * 1000) : undefined;
  const r = runSimulation(s, (done, _total, t) => bar?.update(done, { vt: (t / 1000).toFixed(0) }), recorder);
  bar?.stop();
  for (const line of reportLines(s, r)) console.log(line);
  if (o.report) await writeFile(o.report, `${JSON.stringify(r, null, 2)}\n`);
  if (o.csv) await writeFile(o.csv, completionCsv(r));
  if (o.plot) await writeFile(o.plot, plotSvg(r));
  if (o.replay && recorder) {
    await writeFile(o.replay, JSON.stringify(recorder.replay(s)));
    console.log(`Replay: ${recorder.frames.length} frames in ${o.replay} (swarmshare replay ${o.replay})`);
  }
}

/** The run's summary as printed: completions, first pieces, the bound, the origin's load, the cost. */
function reportLines(s: Scenario, r: SimReport): string[] {
  const out: string[] = [];
  const sec = (ms: number, digits = 1) => (ms / 1000).toFixed(digits);
  out.push(
    `Scenario: ${s.peers} peers + ${s.seeds} seed(s), ${s.pieces} pieces of ${s.pieceSize} bytes, ${s.strategy}, seed ${s.seed}`,
  );
  out.push(
    `Completed: ${r.completionMs.filter((x) => x !== null).length}/${r.completionMs.length} honest peers` +
      (r.departedIncomplete > 0 ? ` (${r.departedIncomplete} left before completing)` : '') +
      (r.failedPieces > 0 ? `; ${r.failedPieces} pieces failed their hash` : ''),
  );
  if (r.stoppedByWall)
    out.push(
      `Stopped by --max-wall at ${sec(r.virtualMs)} s of virtual time (the bound: ${sec(r.lowerBoundMs ?? 0)} s)`,
    );
  const d = r.distribution;
  if (d)
    out.push(
      `Completion (s): min ${sec(d.min)}, p50 ${sec(d.p50)}, p90 ${sec(d.p90)}, p99 ${sec(d.p99)}, max ${sec(d.max)}, mean ${sec(d.mean)}`,
    );
  const f = r.firstPiece;
  if (f !== null)
    out.push(
      `First piece (s after joining): p10 ${sec(f.p10, 2)}, p50 ${sec(f.p50, 2)}, p90 ${sec(f.p90, 2)}, mean ${sec(f.mean, 2)}`,
    );
  if (r.lowerBoundMs !== null)
    out.push(
      `Lower bound: ${sec(r.lowerBoundMs)} s; last completion / bound: ${r.ratioToBound?.toFixed(3) ?? '-'}`,
    );
  out.push(
    `Origin load: ${r.originLoad.toFixed(2)}x the file; upload utilization ${(r.uploadUtilization * 100).toFixed(1)}%`,
  );
  const ss = r.seedSends;
  if (ss.total > 0)
    out.push(
      `Seed sends: ${ss.total} pieces; every piece once after ${ss.coveredAfter ?? '-'} sends${ss.coveredAtMs === null ? '' : ` (${sec(ss.coveredAtMs)} s)`}; pieces sent 1x, 2x, ...: ${Object.entries(
        ss.copies,
      )
        .map(([c, n]) => `${c}x ${n}`)
        .join(', ')}`,
    );
  const u = r.uplinks;
  const pc = (x: number) => `${(x * 100).toFixed(1)}%`;
  if (u.samples > 0)
    out.push(
      `Uplinks (share of the upload capacity, sampled each second): busy ${pc(u.busy)}; idle: holds nothing ${pc(u.empty)}, unchokes nobody ${pc(u.noneUnchoked)}, unchoked peers want nothing it has ${pc(u.notInterested)}, unchoked peers asked elsewhere ${pc(u.askedElsewhere)}`,
    );
  out.push(
    `Events: ${r.events} in ${sec(r.wallMs)} s wall (${((r.events / r.wallMs) * 1000).toFixed(0)}/s), peak RSS ${(r.peakRssBytes / 2 ** 20).toFixed(0)} MiB`,
  );
  return out;
}
