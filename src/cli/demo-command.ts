import { readdir, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline/promises';
import cliProgress from 'cli-progress';
import { type Command, InvalidArgumentError, Option } from 'commander';
import type { DemoReport, DemoRun } from '../demo/run-demo.js';
import { DEFAULT_SAMPLE, writeSamples } from '../demo/samples.js';
import type { EncryptionMode } from '../wire/mse.js';
import { openBrowser } from './browser.js';
import { durationOption, portOption, positiveOption, sizeOption } from './options.js';
import { encryptionOption } from './peer-options.js';
import { formatBytes, RateMeter } from './progress.js';

/** `peer5@2s` -> { name: 'peer5', atMs: 2000 }; repeatable. */
function peerAt(v: string, prev: { name: string; atMs: number }[] | undefined) {
  const m = /^(peer[0-9]+)@(.+)$/.exec(v);
  if (!m) throw new InvalidArgumentError(`'${v}' is not peerN@time (e.g. peer5@2s)`);
  return [...(prev ?? []), { name: m[1] as string, atMs: durationOption(m[2] as string) }];
}

function originLeaves(v: string): number | 'copy' {
  return v === 'copy' ? 'copy' : durationOption(v);
}

/** Seconds the file picker waits before it takes the default. */
export const PICK_TIMEOUT_S = 15;

interface DemoCliOpts {
  trackerless?: boolean;
  webSeed?: boolean;
  encryption: EncryptionMode;
  file?: string;
  dir?: string;
  peers: number;
  pieceSize: number;
  size?: number;
  strategy: 'random' | 'rarest-first';
  maxChunks: number;
  uploadRate: number;
  downloadRate?: number;
  noUploadLimit?: boolean;
  out: string;
  log?: boolean;
  report?: string;
  originLeavesAfter?: number | 'copy';
  kill?: { name: string; atMs: number }[];
  join?: { name: string; atMs: number }[];
  timeout: number;
  processes?: boolean;
  port: number;
  open?: boolean;
  linger?: number;
}

async function chooseFile(o: DemoCliOpts, interactive: boolean): Promise<string> {
  if (o.file) return resolve(o.file);
  const samples = join(resolve(o.out), 'samples');
  let dir = o.dir ? resolve(o.dir) : samples;
  if (!o.dir) {
    await writeSamples(samples, o.pieceSize, o.size);
    dir = samples;
  }
  if (!interactive) return join(samples, DEFAULT_SAMPLE);
  const names: string[] = [];
  for (const n of (await readdir(dir)).sort()) if ((await stat(join(dir, n))).isFile()) names.push(n);
  if (names.length === 0) throw new Error(`${dir} holds no files to share`);
  console.log(`Files in ${dir}:`);
  for (const [i, n] of names.entries()) console.log(`  ${i + 1}. ${n}`);
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  try {
    const def = Math.max(1, names.indexOf(DEFAULT_SAMPLE) + 1);
    for (let tries = 0; tries < 5; tries++) {
      // Nobody answering (npm start left alone) takes the default, so the demo always runs through.
      const answer = (
        await rl
          .question(`Select a starting file [1-${names.length}] (Enter or ${PICK_TIMEOUT_S} s: ${def}): `, {
            signal: AbortSignal.timeout(PICK_TIMEOUT_S * 1000),
          })
          .catch(() => {
            console.log('');
            return '';
          })
      ).trim();
      const k = answer === '' ? def : Number(answer);
      if (Number.isInteger(k) && k >= 1 && k <= names.length) return join(dir, names[k - 1] as string);
      console.log(`Please answer a number from 1 to ${names.length}.`);
    }
  } finally {
    rl.close();
  }
  throw new Error('no file selected');
}

function table(report: DemoReport): string[] {
  const lines = [
    'peer     role          done    time      from origin   from peers    uploaded',
    '-------  ------------  ------  --------  ------------  ------------  ------------',
  ];
  for (const p of report.peers) {
    const done = p.killed ? 'killed' : p.completed ? (p.verified ? 'ok' : 'BAD') : 'no';
    const time = p.timeMs === null ? '-' : `${(p.timeMs / 1000).toFixed(2)} s`;
    lines.push(
      `${p.name.padEnd(7)}  ${p.role.padEnd(12)}  ${done.padEnd(6)}  ${time.padStart(8)}  ${formatBytes(p.bytesFromOrigin).padStart(12)}  ${formatBytes(p.bytesFromPeers).padStart(12)}  ${formatBytes(p.bytesUploaded).padStart(12)}`,
    );
  }
  return lines;
}

function summary(r: DemoReport): string[] {
  const lines = table(r);
  lines.push('');
  lines.push(
    `File ${r.file.name}: ${formatBytes(r.file.size)} in ${r.file.pieces} chunks of ${formatBytes(r.file.pieceSize)}, SHA-256 ${r.file.sha256.slice(0, 16)}...`,
  );
  lines.push(
    `Strategy ${r.strategy}${r.strategy === 'random' ? ` (up to ${r.maxChunks} chunks per exchange)` : ''}, upload cap ${r.uploadRate ? `${formatBytes(r.uploadRate)}/s` : 'none'} per peer`,
  );
  if (r.totalMs !== null) lines.push(`Total time: ${(r.totalMs / 1000).toFixed(2)} s`);
  if (r.lowerBoundMs !== null) {
    lines.push(
      `Lower bound max{F/u_s, F/d_min, N*F/(u_s + sum u_i)}: ${(r.lowerBoundMs / 1000).toFixed(2)} s` +
        (r.ratioToBound !== null ? `; actual / bound = ${r.ratioToBound.toFixed(2)}` : ''),
    );
  }
  const copies = (r.originUploadedBytes / r.file.size).toFixed(2);
  if (r.origin === 'web seed') {
    const fromPeers = r.peers.reduce((n, p) => n + p.bytesFromPeers, 0);
    lines.push(
      `Origin (a web seed, HTTP) sent ${formatBytes(r.originUploadedBytes)} (${copies}x the file); the peers sent each other ${formatBytes(fromPeers)}`,
    );
  } else lines.push(`Origin uploaded ${formatBytes(r.originUploadedBytes)} (${copies}x the file)`);
  if (r.discovery === 'dht') {
    lines.push(
      'Trackerless: the peers found each other through the DHT. Links each opened, by how it found the peer:',
    );
    for (const p of r.peers) {
      const f = p.partnersFound;
      if (f === null) continue;
      lines.push(
        `  ${p.name.padEnd(7)} dht ${f.dht ?? 0}, pex ${f.pex ?? 0}, tracker ${f.tracker ?? 0}; incoming ${f.incoming ?? 0}`,
      );
    }
  }
  lines.push(r.success ? 'Every peer has a verified copy.' : 'NOT every surviving peer has a verified copy.');
  return lines;
}

/** Live bars, one per peer: chunks held, download rate, whom it fetches from. */
function bars(run: DemoRun): () => void {
  const multi = new cliProgress.MultiBar(
    {
      format: '{name} {bar} {value}/{total} chunks | {rate} | {from}',
      hideCursor: true,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  const shown = new Map<string, { bar: cliProgress.SingleBar; meter: RateMeter; from: string }>();
  const timer = setInterval(() => {
    for (const m of run.members()) {
      let s = shown.get(m.name);
      if (!s) {
        const entry = {
          bar: multi.create(run.pieces, 0, { name: m.name.padEnd(7), rate: '', from: '' }),
          meter: new RateMeter(),
          from: '',
        };
        m.node.on('requesting', (_c, from) => {
          entry.from = `from ${from}`;
        });
        shown.set(m.name, entry);
        s = entry;
      }
      const have = m.node.haveCount();
      const r = s.meter.add(Date.now(), m.node.downloaded);
      s.bar.update(have, {
        name: m.name.padEnd(7),
        rate: `${formatBytes(r)}/s`,
        from: m.done ? (m.role === 'origin' ? 'origin' : 'done') : s.from,
      });
    }
  }, 200);
  return () => {
    clearInterval(timer);
    multi.stop();
  };
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description(
      'run the original simulation for real: a tracker, an origin peer and empty peers on 127.0.0.1, until all hold the file',
    )
    .option('--file <path>', 'the file to spread (default: pick one in a terminal, else a generated sample)')
    .option('--dir <folder>', 'the folder the picker lists (default: a generated sample set)')
    .option('--peers <n>', 'peers in all, the origin included', positiveOption, 10)
    .option('--piece-size <size>', 'chunk size', sizeOption, 256 * 1024)
    .option('--size <size>', 'size of the generated sample file (default: 20 chunks)', sizeOption)
    .addOption(
      new Option('--strategy <name>', 'how peers fetch')
        .choices(['random', 'rarest-first'])
        .default('random'),
    )
    .option('--max-chunks <n>', 'random strategy: chunks fetched per exchange', positiveOption, 5)
    .option('--upload-rate <rate>', 'upload cap per peer', sizeOption, 4 * 1024 * 1024)
    .option('--no-upload-limit', 'no upload cap')
    .option('--download-rate <rate>', 'download cap per peer (default: none)', sizeOption)
    .option('--out <folder>', 'where the peers’ folders go (emptied first)', 'swarm-demo')
    .option('--log', 'print the log lines even in a terminal (instead of progress bars)')
    .option('--report <file>', 'write the run as JSON')
    .option(
      '--origin-leaves-after <when>',
      "the origin leaves: after a time (e.g. 3s) or once the others hold a full copy ('copy')",
      originLeaves,
    )
    .option('--kill <peer@time>', 'a peer dies at that time, e.g. peer5@2s (repeatable)', peerAt)
    .option('--join <peer@time>', 'a new empty peer joins at that time, e.g. peer11@3s (repeatable)', peerAt)
    .option('--timeout <time>', 'give up after this long', durationOption, 120_000)
    .option('--processes', 'run each peer as its own OS process')
    .addOption(encryptionOption())
    .option(
      '--port <n>',
      "the tracker's port; its root is the live dashboard (0: any free port)",
      portOption,
      0,
    )
    .option('--open', 'open the dashboard in a browser, where one exists')
    .option(
      '--trackerless',
      'no tracker: the peers find each other through a DHT on loopback (rarest-first, in-process peers)',
    )
    .option(
      '--web-seed',
      'the origin is an HTTP server (a web seed, BEP 19, at the same upload cap) instead of peer1 (rarest-first)',
    )
    .option(
      '--linger <time>',
      'keep the swarm and its dashboard up this long after it completes (default with --open in a terminal: until Ctrl-C)',
      durationOption,
    )
    .action(demoAction);
}

async function demoAction(o: DemoCliOpts, cmd: Command): Promise<void> {
  // Trackerless swarms trade rarest-first (the random strategy's exchanges need the chunk-map tracker).
  if ((o.trackerless || o.webSeed) && cmd.getOptionValueSource('strategy') === 'default')
    o.strategy = 'rarest-first';
  const tty = process.stdout.isTTY === true && process.stdin.isTTY === true;
  const logMode = o.log === true || !tty;
  const run = await startRun(o, await chooseFile(o, tty), logMode);
  console.log(
    `Dashboard: ${run.tracker.url}/  (tracker ${run.tracker.url}, API docs ${run.tracker.url}/docs)`,
  );
  if (o.open) openBrowser(`${run.tracker.url}/`);
  const stopBars = logMode ? () => {} : bars(run);
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    stopBars();
    console.log('Stopping: peers leave the tracker, the tracker stops...');
    run.stop().then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const report = await run.finished.catch(async (e: Error) => {
    // The report could not be made (a file could not be read back): stop, then say why.
    stopBars();
    await run.stop();
    throw e;
  });
  stopBars();
  if (interrupted) return;
  // The finished swarm stays on the page (peers seeding, the report shown) for a while; else
  // the peers leave first, so the table is the last thing printed.
  const linger = o.linger ?? (o.open && tty ? Number.POSITIVE_INFINITY : 0);
  if (linger <= 0) await run.stop();
  for (const l of summary(report)) console.log(l);
  if (o.report) {
    await writeFile(o.report, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`Report: ${resolve(o.report)}`);
  }
  if (linger > 0) {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await lingerOn(run, linger);
  }
  process.exit(report.success ? 0 : 1);
}

/** The swarm, started from the command's options (the demo's code is loaded only when one runs). */
async function startRun(o: DemoCliOpts, file: string, logMode: boolean): Promise<DemoRun> {
  const { startDemo } = await import('../demo/run-demo.js');
  return startDemo({
    file,
    peers: o.peers,
    pieceSize: o.pieceSize,
    strategy: o.strategy,
    maxChunks: o.maxChunks,
    uploadRate:
      o.noUploadLimit === true || (o as { uploadLimit?: boolean }).uploadLimit === false
        ? undefined
        : o.uploadRate,
    downloadRate: o.downloadRate,
    out: o.out,
    originLeavesAfter: o.originLeavesAfter,
    kill: o.kill,
    join: o.join,
    timeoutMs: o.timeout,
    log: logMode ? (l) => console.log(l) : () => {},
    trackerLog: logMode,
    processes: o.processes ? { cli: process.argv[1] as string } : undefined,
    trackerPort: o.port,
    trackerless: o.trackerless === true,
    encryption: o.encryption,
    webSeed: o.webSeed === true,
  });
}

/** Keeps the finished swarm and its dashboard up for `linger` ms (Infinity: until a signal), then stops it. */
async function lingerOn(run: DemoRun, linger: number): Promise<void> {
  console.log(
    Number.isFinite(linger)
      ? `Dashboard stays up at ${run.tracker.url}/ for ${Math.round(linger / 1000)} s (Ctrl-C to stop sooner)`
      : `Dashboard stays up at ${run.tracker.url}/ until Ctrl-C`,
  );
  await new Promise<void>((r) => {
    const timer = Number.isFinite(linger) ? setTimeout(r, linger) : undefined;
    const end = () => {
      clearTimeout(timer);
      r();
    };
    process.once('SIGINT', end);
    process.once('SIGTERM', end);
  });
  await run.stop();
}
