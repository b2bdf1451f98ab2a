import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { isMagnet } from '../core/magnet.js';
import type { Metainfo } from '../core/metainfo.js';
import type { DhtUdp } from '../net/dht-udp.js';
import { MAX_CONNECTIONS, MAX_PER_IP, type PeerNode } from '../node/peer-node.js';
import type { Session } from '../session/session.js';
import type { EncryptionMode } from '../wire/mse.js';
import { fetchMetadata, magnetPlan } from './magnet-metadata.js';
import { startOneTorrent } from './one-torrent.js';
import { collect, indexListOption, intOption, portOption } from './options.js';
import {
  addDhtOptions,
  countOption,
  type DhtFlags,
  encryptionOption,
  maybeMetrics,
  metricsOption,
  minIntervalOption,
  peerOption,
  readTorrent,
  reportRefusals,
  startDht,
  stopOnSignal,
  strategyOption,
  trackerLine,
} from './peer-options.js';
import { formatBytes, heldWanted, showProgress } from './progress.js';

/** How long a timed-out `get` waits for its peer to leave the tracker before it exits. */
const STOP_GRACE_MS = 3000;

type Peer = { ip: string; port: number };

interface GetFlags extends DhtFlags {
  tracker: string[];
  peer: Peer[];
  saveTorrent?: string;
  output: string;
  seed?: boolean;
  port: number;
  host: string;
  timeout?: number;
  strategy: 'rarest-first';
  maxConnections: number;
  maxPerIp: number;
  minAnnounceInterval: number;
  metricsPort?: number;
  encryption: EncryptionMode;
  only?: number[];
  exclude?: number[];
  serve?: number | true;
}

/** `swarmshare get <x.torrent | magnet>`: download, verify every piece, exit 0 when complete. */
export function registerGetCommand(program: Command): void {
  const get = program
    .command('get')
    .description('download a torrent, verify every piece, exit 0 when complete')
    .argument('<torrent>', '.torrent file, or a magnet link (magnet:?xt=urn:btih:...)')
    .option('--tracker <url>', "tracker to use instead of the torrent's (repeatable)", collect, [])
    .option(
      '--peer <host:port>',
      'a peer to dial directly, with or without trackers (repeatable)',
      peerOption,
      [],
    )
    .option('--save-torrent <file>', 'for a magnet link: write the .torrent made from the fetched metadata')
    .option('-o, --output <dir>', 'folder to download into', '.')
    .option('--seed', 'keep seeding after the download completes, until Ctrl-C')
    .option('--port <n>', 'TCP port to listen on (0 picks one)', portOption, 0)
    .option('--host <address>', 'address to bind and announce (e.g. 127.0.0.3)', '127.0.0.1')
    .option('--max-connections <n>', 'peer connections at most', countOption, MAX_CONNECTIONS)
    .option('--max-per-ip <n>', 'peer connections from one address at most', countOption, MAX_PER_IP)
    .option(
      '--serve [port]',
      'serve the files over HTTP while they download (Range requests; the pieces under a reader come first), until Ctrl-C (no port: any)',
      portOption,
    )
    .option(
      '--only <indexes>',
      'download only these files (indexes as `swarmshare info` prints them: 0,2-4)',
      indexListOption,
    )
    .option('--exclude <indexes>', 'download every file but these (0,2-4)', indexListOption)
    .option('--timeout <seconds>', 'give up (exit 3) if not complete by then', intOption(1, 10_000_000))
    .addOption(strategyOption())
    .addOption(minIntervalOption())
    .addOption(encryptionOption())
    .addOption(metricsOption());
  addDhtOptions(get).action(getAction);
}

/** One `get` as it goes: what the --timeout and the signals need to stop it. */
interface GetRun {
  meta?: Metainfo;
  dht?: DhtUdp;
  node?: PeerNode;
  session?: Session;
  stopProgress: () => void;
  timedOut: boolean;
}

async function getAction(torrent: string, o: GetFlags): Promise<void> {
  const run: GetRun = { stopProgress: () => {}, timedOut: false };
  const timer = giveUpAfter(o.timeout, run);
  const source = await sourceOf(torrent, o, run);
  const { session, node } = await startDownload(source, o, run);
  if (o.serve !== undefined) {
    const { serveFiles } = await import('./serve-files.js');
    const { urls } = await serveFiles(node, o.host, o.serve === true ? 0 : o.serve);
    urls.forEach((u, i) => {
      if (!node.opts.unwantedFiles?.includes(i) && i < 50) console.log(`Serving:   ${u}`);
    });
    if (urls.length > 50) console.log(`Serving:   ... and ${urls.length - 50} more (the same way, by index)`);
  }
  let exitCode = 130;
  let signalled = false;
  stopOnSignal(
    session,
    () => exitCode,
    () => {
      signalled = true;
      run.stopProgress();
    },
  );
  try {
    await node.done;
  } catch (e) {
    // Stopped by --timeout (exit 3) or a signal (130): those paths report and exit.
    if (run.timedOut || signalled) return;
    run.stopProgress();
    clearTimeout(timer);
    console.error(`swarmshare: ${(e as Error).message}`);
    await session.stop();
    process.exit(1);
  }
  clearTimeout(timer);
  run.stopProgress();
  const picked =
    node.wanted === null
      ? ''
      : `, ${node.core.picker.wantedCount} of ${source.meta.pieceCount} for the chosen files`;
  const web = node.webSeedDownloaded;
  const fromWeb =
    web > 0 ? `; ${formatBytes(web)} from web seeds, ${formatBytes(node.downloaded - web)} from peers` : '';
  console.log(`Done: ${node.store.finalPath} (${heldWanted(node)} pieces verified${picked}${fromWeb})`);
  exitCode = 0;
  if (!o.seed && o.serve === undefined) {
    await session.stop();
    process.exit(0);
  }
  console.log('Seeding (Ctrl-C to stop)');
}

/**
 * --timeout bounds the whole command: the metadata of a magnet link, opening the folder, the
 * download. Past it: exit 3, the partial download kept for resume.
 */
function giveUpAfter(seconds: number | undefined, run: GetRun): NodeJS.Timeout | undefined {
  if (seconds === undefined) return undefined;
  return setTimeout(() => {
    run.timedOut = true;
    run.stopProgress();
    const have = run.node?.core?.have.count;
    console.error(
      run.meta === undefined
        ? `swarmshare: no metadata after ${seconds} s`
        : have === undefined
          ? `swarmshare: not started after ${seconds} s`
          : `swarmshare: not complete after ${seconds} s (${have}/${run.meta.pieceCount} pieces); the partial download is kept for resume`,
    );
    const stopped = run.session?.stop() ?? run.dht?.close() ?? Promise.resolve();
    Promise.race([stopped, new Promise((r) => setTimeout(r, STOP_GRACE_MS))]).finally(() => process.exit(3));
  }, seconds * 1000);
}

interface Source {
  meta: Metainfo;
  bytes: Uint8Array;
  trackers: string[];
  peers: Peer[];
  dht: DhtUdp | undefined;
}

/** The torrent, its trackers and peers, and our DHT node (never for a private torrent, BEP 27). */
async function sourceOf(torrent: string, o: GetFlags, run: GetRun): Promise<Source> {
  const s = isMagnet(torrent) ? await magnetSource(torrent, o, run) : await torrentSource(torrent, o, run);
  if (s.meta.private && s.dht !== undefined) {
    await s.dht.close();
    s.dht = undefined;
  }
  run.dht = s.dht;
  return s;
}

async function torrentSource(path: string, o: GetFlags, run: GetRun): Promise<Source> {
  const { meta, bytes } = await readTorrent(path);
  run.meta = meta;
  const trackers = o.tracker.length > 0 ? o.tracker : meta.trackers;
  if (trackers.length === 0 && o.peer.length === 0 && !o.dht && meta.webSeeds.length === 0)
    throw new Error(
      'the torrent names no tracker and no web seed: give a tracker with --tracker, peers with --peer, or leave the DHT on',
    );
  return { meta, bytes, trackers, peers: o.peer, dht: meta.private ? undefined : await startDht(o) };
}

async function magnetSource(link: string, o: GetFlags, run: GetRun): Promise<Source> {
  const plan = magnetPlan(link, o);
  const dht = await startDht(o);
  run.dht = dht;
  const { meta, bytes } = await fetchMetadata(plan, o, dht, (line) => console.log(line));
  if (o.saveTorrent !== undefined) {
    await writeFile(o.saveTorrent, bytes);
    console.log(`Torrent:   ${resolve(o.saveTorrent)}`);
  }
  run.meta = meta;
  return { meta, bytes, trackers: plan.trackers, peers: plan.peers, dht };
}

/** The torrent's session started on the folder (its verified pieces found), the progress shown. */
async function startDownload(s: Source, o: GetFlags, run: GetRun) {
  const started = await startOneTorrent({
    meta: s.meta,
    bytes: s.bytes,
    dir: resolve(o.output),
    host: o.host,
    port: o.port,
    maxConnections: o.maxConnections,
    minAnnounceIntervalMs: o.minAnnounceInterval * 1000,
    encryption: o.encryption,
    dht: s.dht,
    peer: {
      mode: 'download',
      unwantedFiles: unwantedFiles(s.meta, o),
      trackers: s.trackers,
      peers: s.peers,
      strategy: o.strategy,
      maxConnections: o.maxConnections,
      maxPerIp: o.maxPerIp,
      dhtIntervalMs: o.dhtInterval * 1000,
    },
    before: (node, session) => {
      run.node = node;
      run.session = session;
      reportRefusals(session, node);
      node.on('tracker', trackerLine);
      node.on('piece-failed', (i) => console.error(`piece ${i} failed its hash check; fetching it again`));
    },
  });
  const node = started.node;
  await maybeMetrics(node, o.host, o.metricsPort);
  const resumed = node.core.have.count;
  console.log(
    `Downloading ${s.meta.name} (${formatBytes(s.meta.length)}, ${s.meta.pieceCount} pieces) into ${resolve(o.output)}`,
  );
  if (resumed > 0 && !node.core.complete) console.log(`Resuming: ${resumed} verified pieces already on disk`);
  run.stopProgress = showProgress(node);
  return started;
}

/** `--only` / `--exclude` as the files not wanted; bad indexes are a clear error. Prints the choice. */
function unwantedFiles(meta: Metainfo, o: GetFlags): number[] | undefined {
  if (o.only === undefined && o.exclude === undefined) return undefined;
  if (o.only !== undefined && o.exclude !== undefined) throw new Error('give --only or --exclude, not both');
  const n = meta.files.length;
  const bad = (o.only ?? o.exclude ?? []).filter((i) => i >= n);
  if (bad.length > 0)
    throw new Error(
      `no file ${bad.join(', ')} in ${meta.name}: its files are 0 to ${n - 1} (see swarmshare info)`,
    );
  const listed = new Set(o.only ?? o.exclude);
  const unwanted = meta.files
    .map((_, i) => i)
    .filter((i) => (o.only !== undefined ? !listed.has(i) : listed.has(i)));
  if (unwanted.length === n) throw new Error('that leaves no file to download');
  const bytes = meta.files.reduce((sum, f, i) => sum + (unwanted.includes(i) ? 0 : f.length), 0);
  console.log(`Files:     ${n - unwanted.length} of ${n} chosen (${formatBytes(bytes)})`);
  return unwanted;
}
