import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseTorrent } from '../../src/core/metainfo.js';
import { nodeHasher } from '../../src/net/system.js';
import { randomFile, start, stopAll, waitFor } from '../support/proc.js';

/** `swarmshare info`: a torrent's files by index, as text and JSON, from a .torrent or a magnet link. */

const CLI = 'dist/cli/main.js';
const exec = promisify(execFile);

describe('swarmshare info', () => {
  let dir = '';
  let torrent = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-info-'));
    const album = join(dir, 'album');
    await mkdir(join(album, 'disc 2'), { recursive: true });
    await randomFile(join(album, 'a.bin'), 100_000);
    await randomFile(join(album, 'disc 2', 'b é.bin'), 50_000);
    await writeFile(join(album, 'c.txt'), 'hello');
    torrent = join(dir, 'album.torrent');
    await exec('node', [
      CLI,
      'create',
      album,
      '--piece-size',
      '16KiB',
      '--tracker',
      'http://127.0.0.1:9/announce',
      '-o',
      torrent,
    ]);
  });
  afterAll(async () => {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  });

  it('prints name, info hash, pieces, trackers and each file with its index; --json says the same', async () => {
    const meta = parseTorrent(
      await import('node:fs/promises').then((f) => f.readFile(torrent)),
      nodeHasher.sha1,
    );
    const text = (await exec('node', [CLI, 'info', torrent])).stdout;
    expect(text).toContain(`Info hash: ${meta.infoHashHex}`);
    expect(text).toMatch(/Pieces: +10 x 16\.0 KiB/);
    expect(text).toContain('tier 1: http://127.0.0.1:9/announce');
    expect(text).toMatch(/Files: +3/);
    const json = JSON.parse((await exec('node', [CLI, 'info', torrent, '--json'])).stdout);
    expect(json.infoHash).toBe(meta.infoHashHex);
    expect(json.pieceCount).toBe(meta.pieceCount);
    expect(
      json.files.map((f: { index: number; path: string; length: number }) => [f.index, f.path, f.length]),
    ).toEqual(meta.files.map((f, i) => [i, ['album', ...f.path].join('/'), f.length]));
    for (const f of json.files)
      expect(text).toMatch(new RegExp(`\\n +${f.index} +\\S+ \\S+ +${f.path.replace(/[.]/g, '\\.')}`));
    expect(json.files.map((f: { path: string }) => f.path)).toContain('album/disc 2/b é.bin');
  });

  it('a magnet link: the metadata fetched from a peer first (progress on stderr, JSON alone on stdout)', async () => {
    const share = start('node', [CLI, 'share', torrent, '--dir', dir, '--no-dht', '--port', '0']);
    await waitFor(
      'the seeder to listen',
      () => /Listening: 127\.0\.0\.1:(\d+)/.exec(share.output())?.[1],
      20_000,
    );
    const port = /Listening: 127\.0\.0\.1:(\d+)/.exec(share.output())?.[1] as string;
    const magnet = /Magnet: +(\S+)/.exec(share.output())?.[1] as string;
    const r = await exec(
      'node',
      [CLI, 'info', magnet, '--json', '--no-dht', '--peer', `127.0.0.1:${port}`, '--timeout', '30'],
      {
        timeout: 40_000,
      },
    );
    const fromMagnet = JSON.parse(r.stdout);
    const fromFile = JSON.parse((await exec('node', [CLI, 'info', torrent, '--json'])).stdout);
    expect(fromMagnet.infoHash).toBe(fromFile.infoHash);
    expect(fromMagnet.files).toEqual(fromFile.files);
    expect(r.stderr).toMatch(/Metadata: +album, verified against the info hash/);
    share.child.kill('SIGINT');
    await share.exited;
  }, 60_000);

  it('bad input: not a torrent, a magnet nobody serves (exit 3 at --timeout)', async () => {
    await writeFile(join(dir, 'bad.torrent'), 'hello');
    const bad = await exec('node', [CLI, 'info', join(dir, 'bad.torrent')]).catch((e) => e);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/bad\.torrent: not a torrent file/);
    const none = await exec('node', [
      CLI,
      'info',
      `magnet:?xt=urn:btih:${'ab'.repeat(20)}&x.pe=127.0.0.1:9`,
      '--no-dht',
      '--timeout',
      '2',
    ]).catch((e) => e);
    expect(none.code).toBe(3);
    expect(none.stderr).toMatch(/no metadata after 2 s/);
  }, 30_000);
});
