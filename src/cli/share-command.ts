import { stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Command } from 'commander';
import { magnetUri } from '../core/metainfo.js';
import { createTorrent } from '../node/create-torrent.js';
import { MAX_CONNECTIONS, MAX_PER_IP } from '../node/peer-node.js';
import type { EncryptionMode } from '../wire/mse.js';
import { startOneTorrent } from './one-torrent.js';
import { collect, portOption, sizeOption } from './options.js';
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
  trackerLine,
} from './peer-options.js';
import { formatBytes } from './progress.js';

interface ShareFlags extends DhtFlags {
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
  encryption: EncryptionMode;
}

/** `swarmshare share <path>`: seed a file, a folder or a .torrent's content until Ctrl-C. */
export function registerShareCommand(program: Command): void {
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
    .addOption(encryptionOption())
    .addOption(metricsOption());
  addDhtOptions(share).action(shareAction);
}

async function shareAction(path: string, o: ShareFlags): Promise<void> {
  const { torrentPath, meta, bytes, dir } = await shareSource(path, o);
  // Without --tracker, a .torrent's own trackers (announce, announce-list) are announced to.
  if (meta.trackers.length === 0 && o.tracker.length === 0 && o.peer.length === 0 && !o.dht)
    throw new Error('no way to find peers: give --tracker or --peer, or leave the DHT on (no --no-dht)');
  const { session, node } = await startOneTorrent({
    meta,
    bytes,
    dir,
    host: o.host,
    port: o.port,
    maxConnections: o.maxConnections,
    minAnnounceIntervalMs: o.minAnnounceInterval * 1000,
    encryption: o.encryption,
    dht: meta.private ? undefined : await startDht(o),
    peer: {
      mode: 'seed',
      trackers: o.tracker.length > 0 ? o.tracker : undefined,
      maxConnections: o.maxConnections,
      maxPerIp: o.maxPerIp,
      superSeed: o.superSeed === true,
      peers: o.peer,
      dhtIntervalMs: o.dhtInterval * 1000,
    },
    before: (node, session) => {
      reportRefusals(session, node);
      node.on('error', (e) => console.error(`swarmshare: ${e.message}`));
      node.on('tracker', trackerLine);
    },
  });
  await maybeMetrics(node, o.host, o.metricsPort);
  console.log(`Seeding:   ${meta.name} (${formatBytes(meta.length)}, ${meta.pieceCount} pieces)`);
  console.log(`Info hash: ${meta.infoHashHex}${meta.private ? ' (private)' : ''}`);
  console.log(`Magnet:    ${magnetUri(meta)}`);
  console.log(`Torrent:   ${torrentPath}`);
  console.log(`Listening: ${o.host}:${node.port}  (Ctrl-C to stop)`);
  stopOnSignal(session, () => 0);
}

/** What to seed: a .torrent and its content in --dir, or a file or folder (its .torrent written first). */
async function shareSource(path: string, o: ShareFlags) {
  if (path.endsWith('.torrent') && (await stat(path)).isFile()) {
    const { meta, bytes } = await readTorrent(path);
    return { torrentPath: resolve(path), meta, bytes, dir: resolve(o.dir ?? '.') };
  }
  const made = await createTorrent(path, { pieceLength: o.pieceSize, trackers: o.tracker });
  const torrentPath = resolve(o.output ?? `${made.meta.name}.torrent`);
  await writeFile(torrentPath, made.bytes);
  return { torrentPath, meta: made.meta, bytes: made.bytes, dir: dirname(resolve(path)) };
}
