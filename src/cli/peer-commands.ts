import { readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { splitHostPort, usablePeerAddress } from '../core/ip.js';
import { isMagnet, parseMagnet } from '../core/magnet.js';
import { magnetUri, parseTorrent } from '../core/metainfo.js';
import { DhtUdp, parseBootstrap } from '../net/dht-udp.js';
import { nodeHasher } from '../net/system.js';
import { createTorrent } from '../node/create-torrent.js';
import { MetadataFetcher } from '../node/metadata-fetch.js';
import { MAX_CONNECTIONS, MAX_PER_IP, MIN_ANNOUNCE_INTERVAL_MS, PeerNode } from '../node/peer-node.js';
import { collect, intOption, portOption, sizeOption } from './options.js';
import { formatBytes, showProgress } from './progress.js';

/**
 * A magnet link's metadata from peers (BEP 9), made into a torrent: the info dictionary verified
 * against the info hash, the first tracker as `announce`.
 */
async function metadataFor(
  mg: ReturnType<typeof parseMagnet>,
  trackers: string[],
  peers: { ip: string; port: number }[],
  o: { host: string; minAnnounceInterval: number; saveTorrent?: string },
  dht?: DhtUdp,
) {
  console.log(`Fetching the metadata of ${mg.name ?? mg.infoHashHex} from its peers...`);
  const fetcher = new MetadataFetcher({
    infoHash: mg.infoHash,
    host: o.host,
    tiers: trackers.map((u) => [u]),
    peers,
    minAnnounceIntervalMs: o.minAnnounceInterval * 1000,
    dht,
  });
  fetcher.on('tracker', trackerLine);
  fetcher.on('peer-failed', (addr, why) => console.error(`peer ${addr}: ${why}`));
  // Bounded by the command's --timeout (exit 3), which covers fetching the metadata too.
  const info = await fetcher.fetch();
  const first = trackers[0];
  const announce = first === undefined ? '' : `8:announce${Buffer.byteLength(first)}:${first}`;
  const bytes = Buffer.concat([Buffer.from(`d${announce}4:info`), info, Buffer.from('e')]);
  const meta = parseTorrent(bytes, nodeHasher.sha1);
  console.log(`Metadata:  ${meta.name}, verified against the info hash`);
  if (o.saveTorrent !== undefined) {
    await writeFile(o.saveTorrent, bytes);
    console.log(`Torrent:   ${resolve(o.saveTorrent)}`);
  }
  return meta;
}

/** `--peer host:port` (repeatable): an IPv4 or `[IPv6]` literal and a port. */
function peerOption(value: string, previous: { ip: string; port: number }[]): { ip: string; port: number }[] {
  const hp = splitHostPort(value);
  const ip = hp === null ? null : usablePeerAddress(hp.host, hp.port);
  if (hp === null || ip === null)
    throw new InvalidArgumentError(
      `'${value}' is not IP:PORT (an IP address, [IPv6] in brackets, port 1-65535)`,
    );
  return [...previous, { ip, port: hp.port }];
}

/** How long a timed-out `get` waits for its peer to leave the tracker before it exits. */
const STOP_GRACE_MS = 3000;

/** Connection counts. */
const countOption = intOption(1, 100_000);

async function readTorrent(path: string) {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return parseTorrent(bytes, nodeHasher.sha1);
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

/** Runs until SIGINT/SIGTERM, then stops the node cleanly and exits with `code`. */
function stopOnSignal(node: PeerNode, code: () => number, cleanup?: () => void): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    cleanup?.();
    console.log(`Stopping (${signal}): leaving the tracker...`);
    node.stop().then(
      () => process.exit(code()),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

/** What a tracker failure looks like on the console: what went wrong, and when we try again. */
function trackerLine(url: string, _peers: number, error?: string, retryInMs?: number): void {
  if (error === undefined) return;
  const next =
    retryInMs === undefined
      ? 'retrying'
      : retryInMs === 0
        ? 'trying the next tracker of its tier'
        : `next try in ${Math.max(1, Math.round(retryInMs / 1000))} s`;
  console.error(`tracker ${url}: ${error} (${next})`);
}

/** `--metrics-port`: Prometheus metrics of the running peer. */
const metricsOption = () =>
  new Option(
    '--metrics-port <n>',
    'serve Prometheus metrics at http://HOST:N/metrics (bytes, peers, pieces)',
  ).argParser(portOption);

/** Starts the metrics endpoint when asked; says where it is. */
async function maybeMetrics(node: PeerNode, host: string, port: number | undefined): Promise<void> {
  if (port === undefined) return;
  // prom-client loads only for a peer asked for metrics (~13 MB of RSS otherwise spent by every get).
  const { peerMetrics, serveMetrics } = await import('../node/peer-metrics.js');
  const server = await serveMetrics(peerMetrics(node), host, port);
  server.unref();
  const a = server.address();
  console.log(`Metrics:   http://${host}:${typeof a === 'object' && a !== null ? a.port : port}/metrics`);
}

/** `--dht-bootstrap`, `--dht-port`, `--no-dht`, `--dht-interval`: the Mainline DHT (BEP 5). */
function addDhtOptions(cmd: Command): Command {
  return cmd
    .option(
      '--dht-bootstrap <host:port,...>',
      'DHT nodes to join through (default: the public routers router.bittorrent.com, dht.transmissionbt.com, router.utorrent.com)',
      (v: string) => {
        const list = parseBootstrap(v);
        if (typeof list === 'string') throw new InvalidArgumentError(list);
        return list;
      },
    )
    .option('--dht-port <n>', 'UDP port of our DHT node (0 picks one)', portOption, 0)
    .option('--no-dht', 'do not use the DHT (a private torrent never does)')
    .option('--dht-interval <seconds>', 'announce to the DHT this often', intOption(1, 86_400), 900);
}

interface DhtFlags {
  dht: boolean;
  dhtBootstrap?: string[];
  dhtPort: number;
  dhtInterval: number;
  host: string;
}

/** Our DHT node, when the DHT is on: bound, joining in the background; its address printed. */
async function startDht(o: DhtFlags): Promise<DhtUdp | undefined> {
  if (!o.dht) return undefined;
  const d = await DhtUdp.start({
    host: o.host,
    port: o.dhtPort,
    bootstrap: o.dhtBootstrap,
    log: (line) => console.error(line),
  });
  console.log(`DHT:       udp://${o.host}:${d.port} (node ${Buffer.from(d.node.id).toString('hex')})`);
  d.bootstrap().catch(() => {});
  return d;
}

/** `--min-announce-interval`: the shortest announce interval we take from a tracker. */
const minIntervalOption = () =>
  new Option(
    '--min-announce-interval <seconds>',
    'the shortest announce interval taken from a tracker (lower it for a local tracker you run)',
  )
    .argParser(intOption(1, 86_400))
    .default(MIN_ANNOUNCE_INTERVAL_MS / 1000);

const strategyOption = () =>
  new Option('--strategy <name>', 'piece selection')
    .choices(['rarest-first', 'random', 'sequential'])
    .default('rarest-first');

export function registerPeerCommands(program: Command): void {
  program
    .command('create')
    .description('write a v1 .torrent for a file or folder; print its info hash and magnet URI')
    .argument('<path>', 'file or folder to describe')
    .option('--piece-size <size>', 'piece length, a power of two >= 16KiB', sizeOption, 256 * 1024)
    .option(
      '--tracker <url[,url...]>',
      'tracker announce URL; repeatable: each is a tier (BEP 12), and URLs joined by commas share one',
      collect,
      [],
    )
    .option('-o, --output <file>', 'where to write the .torrent (default: <name>.torrent here)')
    .option(
      '--private',
      'a private torrent (BEP 27): peers come from its trackers only, never from PEX or the DHT',
    )
    .action(
      async (
        path: string,
        o: { pieceSize: number; tracker: string[]; output?: string; private?: boolean },
      ) => {
        const tiers = o.tracker.map((v) =>
          v
            .split(',')
            .map((u) => u.trim())
            .filter((u) => u !== ''),
        );
        const { bytes, meta } = await createTorrent(path, {
          pieceLength: o.pieceSize,
          tiers,
          private: o.private,
        });
        const out = resolve(o.output ?? `${meta.name}.torrent`);
        await writeFile(out, bytes);
        console.log(`Torrent:   ${out}`);
        console.log(
          `Name:      ${meta.name} (${formatBytes(meta.length)}, ${meta.pieceCount} pieces of ${formatBytes(meta.pieceLength)})`,
        );
        console.log(`Info hash: ${meta.infoHashHex}${meta.private ? ' (private)' : ''}`);
        console.log(`Magnet:    ${magnetUri(meta)}`);
      },
    );

  const share = program
    .command('share')
    .description('seed a file or folder (or the content of a .torrent) until Ctrl-C')
    .argument('<path>', 'file, folder, or .torrent whose content is in --dir')
    .option(
      '--tracker <url>',
      'tracker: an announce URL (…/announce) or a swarmshare tracker base URL (repeatable)',
      collect,
      [],
    )
    .option('--port <n>', 'TCP port to listen on (0 picks one)', portOption, 0)
    .option('--host <address>', 'address to bind and announce (e.g. 127.0.0.2)', '127.0.0.1')
    .option('--max-connections <n>', 'peer connections at most', countOption, MAX_CONNECTIONS)
    .option('--max-per-ip <n>', 'peer connections from one address at most', countOption, MAX_PER_IP)
    .option('--piece-size <size>', 'piece length when making the torrent', sizeOption, 256 * 1024)
    .option(
      '-o, --output <file>',
      'where to write the .torrent made for a file or folder (default: <name>.torrent here)',
    )
    .option('--dir <folder>', 'for a .torrent: the folder holding its content (default: the current folder)')
    .option(
      '--super-seed',
      'offer each peer a few pieces at a time (BEP 16): the seed sends each piece about once',
    )
    .option(
      '--peer <host:port>',
      'a peer to dial, as a seed too (once a minute while not linked); repeatable',
      peerOption,
      [],
    )
    .addOption(minIntervalOption())
    .addOption(metricsOption());
  addDhtOptions(share).action(
    async (
      path: string,
      o: {
        tracker: string[];
        port: number;
        host: string;
        pieceSize: number;
        output?: string;
        dir?: string;
        superSeed?: boolean;
        peer: { ip: string; port: number }[];
        maxConnections: number;
        maxPerIp: number;
        minAnnounceInterval: number;
        metricsPort?: number;
      } & DhtFlags,
    ) => {
      if (o.tracker.length === 0 && o.peer.length === 0 && !o.dht)
        throw new Error('no way to find peers: give --tracker or --peer, or leave the DHT on (no --no-dht)');
      let torrentPath: string;
      let meta: Awaited<ReturnType<typeof readTorrent>>;
      let dir: string;
      if (path.endsWith('.torrent') && (await stat(path)).isFile()) {
        torrentPath = resolve(path);
        meta = await readTorrent(path);
        dir = resolve(o.dir ?? '.');
      } else {
        const made = await createTorrent(path, { pieceLength: o.pieceSize, trackers: o.tracker });
        meta = made.meta;
        torrentPath = resolve(o.output ?? `${meta.name}.torrent`);
        await writeFile(torrentPath, made.bytes);
        dir = dirname(resolve(path));
      }
      const node = new PeerNode({
        meta,
        dir,
        mode: 'seed',
        host: o.host,
        port: o.port,
        trackers: o.tracker,
        maxConnections: o.maxConnections,
        maxPerIp: o.maxPerIp,
        superSeed: o.superSeed === true,
        peers: o.peer,
        minAnnounceIntervalMs: o.minAnnounceInterval * 1000,
        dht: meta.private ? undefined : await startDht(o),
        dhtIntervalMs: o.dhtInterval * 1000,
      });
      node.on('error', (e) => console.error(`swarmshare: ${e.message}`));
      node.on('tracker', trackerLine);
      await node.start();
      await maybeMetrics(node, o.host, o.metricsPort);
      console.log(`Seeding:   ${meta.name} (${formatBytes(meta.length)}, ${meta.pieceCount} pieces)`);
      console.log(`Info hash: ${meta.infoHashHex}${meta.private ? ' (private)' : ''}`);
      console.log(`Magnet:    ${magnetUri(meta)}`);
      console.log(`Torrent:   ${torrentPath}`);
      console.log(`Listening: ${o.host}:${node.port}  (Ctrl-C to stop)`);
      stopOnSignal(node, () => 0);
    },
  );

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
    .option('--timeout <seconds>', 'give up (exit 3) if not complete by then', intOption(1, 10_000_000))
    .addOption(strategyOption())
    .addOption(minIntervalOption())
    .addOption(metricsOption());
  addDhtOptions(get).action(
    async (
      torrent: string,
      o: {
        tracker: string[];
        peer: { ip: string; port: number }[];
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
      } & DhtFlags,
    ) => {
      let meta: Awaited<ReturnType<typeof readTorrent>> | undefined;
      let dht: DhtUdp | undefined;
      let trackers: string[];
      let peers = o.peer;
      let node: PeerNode | undefined;
      let stopProgress = () => {};
      let timedOut = false;
      // --timeout bounds the whole command: the metadata of a magnet link, opening the folder, the
      // download. Past it: exit 3, the partial download kept for resume.
      const timer =
        o.timeout === undefined
          ? undefined
          : setTimeout(() => {
              timedOut = true;
              stopProgress();
              const have = node?.core?.have.count;
              console.error(
                meta === undefined
                  ? `swarmshare: no metadata after ${o.timeout} s`
                  : have === undefined
                    ? `swarmshare: not started after ${o.timeout} s`
                    : `swarmshare: not complete after ${o.timeout} s (${have}/${meta.pieceCount} pieces); the partial download is kept for resume`,
              );
              const stopped = node?.stop() ?? dht?.close() ?? Promise.resolve();
              Promise.race([stopped, new Promise((r) => setTimeout(r, STOP_GRACE_MS))]).finally(() =>
                process.exit(3),
              );
            }, o.timeout * 1000);
      if (isMagnet(torrent)) {
        const mg = parseMagnet(torrent);
        trackers = [...o.tracker, ...mg.trackers.filter((u) => !o.tracker.includes(u))];
        for (const p of mg.peers) {
          const ip = usablePeerAddress(p.host, p.port);
          if (ip !== null) peers = [...peers, { ip, port: p.port }];
        }
        if (trackers.length === 0 && peers.length === 0 && !o.dht)
          throw new Error(
            'the magnet link names no tracker (tr) and no peer (x.pe): give one with --tracker or --peer, or leave the DHT on',
          );
        dht = await startDht(o);
        meta = await metadataFor(mg, trackers, peers, o, dht);
      } else {
        meta = await readTorrent(torrent);
        trackers = o.tracker.length > 0 ? o.tracker : meta.trackers;
        if (trackers.length === 0 && o.peer.length === 0 && !o.dht)
          throw new Error(
            'the torrent names no tracker: give one with --tracker, peers with --peer, or leave the DHT on',
          );
        if (!meta.private) dht = await startDht(o);
      }
      if (meta.private && dht !== undefined) {
        // BEP 27: a private torrent's peers come from its trackers only.
        await dht.close();
        dht = undefined;
      }
      node = new PeerNode({
        meta,
        dir: resolve(o.output),
        mode: 'download',
        host: o.host,
        port: o.port,
        trackers,
        peers,
        strategy: o.strategy,
        maxConnections: o.maxConnections,
        maxPerIp: o.maxPerIp,
        minAnnounceIntervalMs: o.minAnnounceInterval * 1000,
        dht,
        dhtIntervalMs: o.dhtInterval * 1000,
      });
      node.on('tracker', trackerLine);
      node.on('piece-failed', (i) => console.error(`piece ${i} failed its hash check; fetching it again`));
      await node.start();
      await maybeMetrics(node, o.host, o.metricsPort);
      const resumed = node.core.have.count;
      console.log(
        `Downloading ${meta.name} (${formatBytes(meta.length)}, ${meta.pieceCount} pieces) into ${resolve(o.output)}`,
      );
      if (resumed > 0 && !node.core.complete)
        console.log(`Resuming: ${resumed} verified pieces already on disk`);
      stopProgress = showProgress(node);
      let exitCode = 130;
      stopOnSignal(node, () => exitCode, stopProgress);
      try {
        await node.done;
      } catch (e) {
        // Stopped by --timeout: that path reports and exits 3.
        if (timedOut) return;
        stopProgress();
        clearTimeout(timer);
        console.error(`swarmshare: ${(e as Error).message}`);
        await node.stop();
        process.exit(1);
      }
      clearTimeout(timer);
      stopProgress();
      console.log(`Done: ${node.store.finalPath} (${meta.pieceCount} pieces verified)`);
      exitCode = 0;
      if (!o.seed) {
        await node.stop();
        process.exit(0);
      }
      console.log('Seeding (Ctrl-C to stop)');
    },
  );
}
