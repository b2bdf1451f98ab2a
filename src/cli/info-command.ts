import type { Command } from 'commander';
import { isMagnet } from '../core/magnet.js';
import { type Metainfo, magnetUri } from '../core/metainfo.js';
import type { DhtUdp } from '../net/dht-udp.js';
import type { EncryptionMode } from '../wire/mse.js';
import { fetchMetadata, magnetPlan } from './magnet-metadata.js';
import { collect, intOption } from './options.js';
import {
  addDhtOptions,
  type DhtFlags,
  encryptionOption,
  minIntervalOption,
  peerOption,
  readTorrent,
  startDht,
} from './peer-options.js';
import { formatBytes } from './progress.js';

interface InfoFlags extends DhtFlags {
  json?: boolean;
  tracker: string[];
  peer: { ip: string; port: number }[];
  timeout: number;
  minAnnounceInterval: number;
  encryption: EncryptionMode;
}

/** `swarmshare info <x.torrent | magnet>`: what a torrent holds, its files by index. */
export function registerInfoCommand(program: Command): void {
  const cmd = program
    .command('info')
    .description('show a torrent: name, info hash, pieces, trackers, and its files by index')
    .argument('<torrent>', '.torrent file, or a magnet link (its metadata is fetched from peers first)')
    .option('--json', 'print it as JSON (for scripts)')
    .option(
      '--tracker <url>',
      'for a magnet link: a tracker to ask besides its own (repeatable)',
      collect,
      [],
    )
    .option(
      '--peer <host:port>',
      'for a magnet link: a peer to ask for the metadata (repeatable)',
      peerOption,
      [],
    )
    .option(
      '--timeout <seconds>',
      'for a magnet link: give up (exit 3) without metadata by then',
      intOption(1, 86_400),
      60,
    )
    .option('--host <address>', 'for a magnet link: the address to dial from', '127.0.0.1')
    .addOption(minIntervalOption())
    .addOption(encryptionOption());
  addDhtOptions(cmd).action(infoAction);
}

async function infoAction(torrent: string, o: InfoFlags): Promise<void> {
  const meta = isMagnet(torrent) ? await magnetMeta(torrent, o) : (await readTorrent(torrent)).meta;
  if (o.json === true) console.log(JSON.stringify(describe(meta), null, 2));
  else for (const line of lines(meta)) console.log(line);
  process.exit(0);
}

/** A magnet link's metadata, bounded by --timeout (exit 3 past it). */
async function magnetMeta(link: string, o: InfoFlags): Promise<Metainfo> {
  const plan = magnetPlan(link, o);
  let dht: DhtUdp | undefined;
  const timer = setTimeout(() => {
    console.error(`swarmshare: no metadata after ${o.timeout} s`);
    process.exit(3);
  }, o.timeout * 1000);
  try {
    // Progress to stderr: stdout is the answer (JSON with --json).
    dht = await startDht(o, (line) => console.error(line));
    return (await fetchMetadata(plan, o, dht, (line) => console.error(line))).meta;
  } finally {
    clearTimeout(timer);
    await dht?.close();
  }
}

/** What `--json` prints: one object, files with their index (as `get --only` takes them). */
export function describe(m: Metainfo) {
  return {
    name: m.name,
    infoHash: m.infoHashHex,
    length: m.length,
    pieceLength: m.pieceLength,
    pieceCount: m.pieceCount,
    private: m.private,
    trackers: m.tiers,
    webSeeds: m.webSeeds,
    magnet: magnetUri(m),
    files: m.files.map((f, index) => ({
      index,
      path: m.multiFile ? [m.name, ...f.path].join('/') : m.name,
      length: f.length,
      offset: f.offset,
    })),
  };
}

function lines(m: Metainfo): string[] {
  const d = describe(m);
  const out = [
    `Name:      ${d.name}`,
    `Info hash: ${d.infoHash}${d.private ? ' (private)' : ''}`,
    `Size:      ${formatBytes(d.length)} (${d.length} bytes)`,
    `Pieces:    ${d.pieceCount} x ${formatBytes(d.pieceLength)}`,
    `Magnet:    ${d.magnet}`,
  ];
  if (d.trackers.length === 0) out.push('Trackers:  none');
  for (const [i, tier] of d.trackers.entries())
    out.push(`${i === 0 ? 'Trackers:  ' : '           '}tier ${i + 1}: ${tier.join(', ')}`);
  for (const [i, w] of d.webSeeds.entries()) out.push(`${i === 0 ? 'Web seeds: ' : '           '}${w}`);
  out.push(`Files:     ${d.files.length}`);
  const width = String(d.files.length - 1).length;
  for (const f of d.files)
    out.push(`  ${String(f.index).padStart(width)}  ${formatBytes(f.length).padStart(10)}  ${f.path}`);
  return out;
}
