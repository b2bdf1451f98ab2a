import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { magnetUri } from '../core/metainfo.js';
import { createTorrent } from '../node/create-torrent.js';
import { collect, sizeOption } from './options.js';
import { formatBytes } from './progress.js';

interface CreateFlags {
  pieceSize: number;
  tracker: string[];
  output?: string;
  private?: boolean;
}

/** `swarmshare create <path>`: a v1 .torrent for a file or folder. */
export function registerCreateCommand(program: Command): void {
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
    .action(create);
}

async function create(path: string, o: CreateFlags): Promise<void> {
  const tiers = o.tracker.map((v) =>
    v
      .split(',')
      .map((u) => u.trim())
      .filter((u) => u !== ''),
  );
  const { bytes, meta } = await createTorrent(path, { pieceLength: o.pieceSize, tiers, private: o.private });
  const out = resolve(o.output ?? `${meta.name}.torrent`);
  await writeFile(out, bytes);
  console.log(`Torrent:   ${out}`);
  console.log(
    `Name:      ${meta.name} (${formatBytes(meta.length)}, ${meta.pieceCount} pieces of ${formatBytes(meta.pieceLength)})`,
  );
  console.log(`Info hash: ${meta.infoHashHex}${meta.private ? ' (private)' : ''}`);
  console.log(`Magnet:    ${magnetUri(meta)}`);
}
