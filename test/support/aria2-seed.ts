import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { RunningTracker } from '../../src/tracker-server/server.js';
import { aria2Flags, freePort, randomFile, start, waitFor } from './proc.js';

const CLI = 'dist/cli/main.js';

/**
 * A random file in `dir/src-<name>`, a torrent for it made by `swarmshare create` (announcing to
 * `tracker`, 64 KiB pieces, and what `createArgs` adds once the file exists), and aria2c seeding
 * it: back once the tracker counts the seed.
 */
export async function aria2Seeds(
  dir: string,
  tracker: RunningTracker,
  name: string,
  size: number,
  extra: string[] = [],
  createArgs: (file: string) => Promise<string[]> | string[] = () => [],
) {
  const src = join(dir, `src-${name}`);
  await mkdir(src);
  await randomFile(join(src, name), size);
  const torrent = join(dir, `${name}.torrent`);
  const c = start('node', [
    CLI,
    'create',
    join(src, name),
    '--tracker',
    `${tracker.url}/announce`,
    '--piece-size',
    '64KiB',
    '-o',
    torrent,
    ...(await createArgs(join(src, name))),
  ]);
  expect(await c.exited).toBe(0);
  const out = c.output();
  const hex = /Info hash: ([0-9a-f]{40})/.exec(out)?.[1] as string;
  const magnet = /Magnet:\s+(\S+)/.exec(out)?.[1] as string;
  const seeder = start('aria2c', [
    ...aria2Flags(src, await freePort()),
    '--seed-ratio=0.0',
    '--check-integrity=true',
    ...extra,
    torrent,
  ]);
  await waitFor(
    `aria2c seeding ${name}`,
    () => ((tracker.registry.swarmById(hex)?.seeds ?? 0) >= 1 ? true : undefined),
    30_000,
  );
  return { src, torrent, hex, magnet, seeder, file: join(src, name) };
}
