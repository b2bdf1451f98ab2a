import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningTracker, startTracker } from '../../src/tracker-server/server.js';
import { aria2Flags, freePort, randomFile, sha256File, start, stopAll, waitFor } from '../support/proc.js';

/**
 * `get --only` / `--exclude` on a multi-file torrent made by another tool (mktorrent): exactly
 * the chosen files arrive, byte-identical; pieces shared with unchosen files are kept in a hidden
 * parts file and served. Two such partial peers between them hold everything: an aria2c leecher
 * completes the whole torrent from them alone.
 */

const CLI = 'dist/cli/main.js';
const exec = promisify(execFile);
const within = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms))]);

describe('choosing which files to download (get --only / --exclude)', () => {
  let dir = '';
  let tracker: RunningTracker;
  let torrent = '';
  // Sizes that make pieces (32 KiB, mktorrent's least) straddle files: a|b, b|c and c|d share pieces.
  const sizes = { 'a.bin': 40_000, 'b.bin': 30_000, 'c d.bin': 50_000, 'e.bin': 20_000 };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-select-'));
    tracker = await startTracker({ port: 0 }, { interval: 2 });
    const album = join(dir, 'src', 'album');
    await mkdir(album, { recursive: true });
    for (const [name, size] of Object.entries(sizes)) await randomFile(join(album, name), size);
    torrent = join(dir, 'album.torrent');
    await exec('mktorrent', ['-l', '15', '-a', `${tracker.url}/announce`, '-o', torrent, album]);
  });
  afterAll(async () => {
    await stopAll();
    await tracker.close();
    await rm(dir, { recursive: true, force: true });
  });

  const files = async () =>
    (
      JSON.parse((await exec('node', [CLI, 'info', torrent, '--json'])).stdout) as {
        files: { index: number; path: string }[];
      }
    ).files;

  it('only the chosen files exist, byte-identical; partial peers serve an aria2c leecher the whole torrent', async () => {
    const list = await files();
    const index = (name: string) =>
      (list.find((f) => f.path.endsWith(`/${name}`)) as { index: number }).index;
    const seed = start('node', [
      CLI,
      'share',
      torrent,
      '--dir',
      join(dir, 'src'),
      '--no-dht',
      '--min-announce-interval',
      '1',
    ]);
    await waitFor(
      'the seed to listen',
      () => (seed.output().includes('Listening:') ? true : undefined),
      20_000,
    );
    const get = (out: string, flag: string, idx: number[], host: string) =>
      start('node', [
        CLI,
        'get',
        torrent,
        '-o',
        join(dir, out),
        flag,
        idx.join(','),
        '--seed',
        '--no-dht',
        '--host',
        host,
        '--min-announce-interval',
        '1',
        '--timeout',
        '60',
      ]);
    const one = get('one', '--only', [index('a.bin'), index('c d.bin')], '127.0.0.5');
    const two = get('two', '--exclude', [index('a.bin'), index('c d.bin')], '127.0.0.6');
    for (const p of [one, two])
      await waitFor(
        'a partial download to be done',
        () => (p.output().includes('Done:') ? true : undefined),
        60_000,
      );
    expect(one.output()).toMatch(/Files: +2 of 4 chosen/);
    const src = join(dir, 'src', 'album');
    // Exactly the chosen files, byte-identical; the others never created.
    expect((await readdir(join(dir, 'one', 'album'))).sort()).toEqual(['a.bin', 'c d.bin']);
    expect((await readdir(join(dir, 'two', 'album'))).sort()).toEqual(['b.bin', 'e.bin']);
    for (const [out, names] of [
      ['one', ['a.bin', 'c d.bin']],
      ['two', ['b.bin', 'e.bin']],
    ] as const)
      for (const n of names)
        expect(await sha256File(join(dir, out, 'album', n))).toBe(await sha256File(join(src, n)));
    // The shared pieces' other halves are kept aside, hidden, beside the download.
    expect((await stat(join(dir, 'one', '.album.parts'))).size).toBeGreaterThan(0);
    // The full seed leaves: the two partial peers alone hold every piece between them.
    seed.child.kill('SIGINT');
    expect(await within(seed.exited, 10_000)).toBe(0);
    const out = join(dir, 'aria');
    const leech = start('aria2c', [...aria2Flags(out, await freePort()), '--seed-time=0', torrent]);
    expect(await within(leech.exited, 90_000), leech.output()).toBe(0);
    for (const n of Object.keys(sizes))
      expect(await sha256File(join(out, 'album', n))).toBe(await sha256File(join(src, n)));
    for (const p of [one, two]) {
      p.child.kill('SIGINT');
      expect(await within(p.exited, 10_000)).toBe(0);
    }
  }, 180_000);

  it('bad choices: an index past the last file, both flags, nothing left', async () => {
    const run = (args: string[]) =>
      exec('node', [CLI, 'get', torrent, '-o', join(dir, 'bad'), '--no-dht', ...args]).catch((e) => e);
    const past = await run(['--only', '0,9']);
    expect(past.code).toBe(1);
    expect(past.stderr).toMatch(/no file 9 in album: its files are 0 to 3/);
    const both = await run(['--only', '0', '--exclude', '1']);
    expect(both.stderr).toMatch(/--only or --exclude, not both/);
    const none = await run(['--exclude', '0-3']);
    expect(none.stderr).toMatch(/no file to download/);
    const syntax = await run(['--only', '2-1']);
    expect(syntax.stderr).toMatch(/not a list of file indexes/);
  });
});
