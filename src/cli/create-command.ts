import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { magnetUri } from '../core/metainfo.js';
import { createTorrent } from '../node/create-torrent.js';
import { collect, sizeOption } from './options.js';
import { formatBytes } from './progress.js';

interface CreateFlags {
  pieceSize: number;
  tracker: string[];
  output?: string;
  private?: boolean;
  webSeed: string[];
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
    .option(
      '--web-seed <url>',
      'an http(s) URL serving the file (or, ending in /, the folder holding it) as a web seed (BEP 19); repeatable',
      webSeedOption,
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
  const { bytes, meta } = await createTorrent(path, {
    pieceLength: o.pieceSize,
    tiers,
    private: o.private,
    webSeeds: o.webSeed,
  });
  const out = resolve(o.output ?? `${meta.name}.torrent`);
  await writeFile(out, bytes);
  console.log(`Torrent:   ${out}`);
  console.log(
    `Name:      ${meta.name} (${formatBytes(meta.length)}, ${meta.pieceCount} pieces of ${formatBytes(meta.pieceLength)})`,
  );
  console.log(`Info hash: ${meta.infoHashHex}${meta.private ? ' (private)' : ''}`);
  for (const w of meta.webSeeds) console.log(`Web seed:  ${w}`);
  console.log(`Magnet:    ${magnetUri(meta)}`);
}

function webSeedOption(v: string, prev: string[]): string[] {
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new InvalidArgumentError(`'${v}' is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new InvalidArgumentError(`a web seed is an http or https URL, not ${u.protocol}`);
  return [...prev, v];
}
