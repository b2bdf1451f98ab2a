import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningTracker, startTracker } from '../../src/tracker-server/server.js';
import { aria2Seeds as aria2SeedsVia } from '../support/aria2-seed.js';
import {
  aria2Flags,
  freePort,
  randomFile,
  type Started,
  sha256File,
  start,
  stopAll,
  waitFor,
} from '../support/proc.js';

/**
 * `swarmshare daemon` as users run it: real processes, sockets and files. aria2c seeds and
 * leeches; the daemon is driven by its CLI (add, ls, show, pause, rm) and its API; it is stopped
 * with SIGTERM and with SIGKILL and comes back from its state folder.
 */

const CLI = 'dist/cli/main.js';

interface Row {
  id: string;
  name: string;
  state: string;
  progress: number;
  hashChecks: number;
  downloaded: number;
  uploaded: number;
  size: number;
}

describe('swarmshare daemon', () => {
  let tracker: RunningTracker;
  let dir = '';
  let api = '';
  let apiPort = 0;
  let daemon: Started | null = null;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-daemon-'));
    tracker = await startTracker({ port: 0 }, { interval: 2 });
    apiPort = await freePort();
    api = `http://127.0.0.1:${apiPort}`;
  });
  afterAll(async () => {
    await stopAll();
    await tracker.close();
    await rm(dir, { recursive: true, force: true });
  });

  const cli = async (args: string[]) => {
    const p = start('node', [CLI, ...args, '--api', api]);
    const code = await p.exited;
    return { code, out: p.output() };
  };
  const list = async (): Promise<Row[]> => {
    const r = await fetch(`${api}/api/v1/torrents`);
    return ((await r.json()) as { torrents: Row[] }).torrents;
  };
  const startDaemon = async (extra: string[] = []) => {
    daemon = start('node', [
      CLI,
      'daemon',
      '--state',
      join(dir, 'state'),
      '--download-dir',
      join(dir, 'dl'),
      '--api-port',
      String(apiPort),
      '--host',
      '127.0.0.60',
      '--no-dht',
      '--min-announce-interval',
      '1',
      ...extra,
    ]);
    await waitFor('the daemon API', () => (daemon?.output().includes('API:') ? true : undefined), 20_000);
    return daemon;
  };
  const stopDaemon = async (signal: NodeJS.Signals) => {
    const d = daemon as Started;
    d.child.kill(signal);
    const code = await d.exited;
    daemon = null;
    return code;
  };

  const aria2Seeds = (name: string, size: number, extra: string[] = []) =>
    aria2SeedsVia(dir, tracker, name, size, extra);

  it('downloads three torrents at once from aria2c seeders (one by magnet), seeds to an aria2c leecher, and restarts without re-hashing', async () => {
    const a = await aria2Seeds('a.bin', 3_000_000);
    const b = await aria2Seeds('b.bin', 2_000_000);
    const c = await aria2Seeds('c.bin', 1_500_000);
    await startDaemon();
    expect((await cli(['add', a.torrent])).out).toMatch(/Added: [0-9a-f]{12} a\.bin/);
    expect((await cli(['add', b.torrent])).code).toBe(0);
    const byMagnet = await cli(['add', c.magnet]);
    expect(byMagnet.code, byMagnet.out).toBe(0);
    await waitFor(
      'three torrents seeding',
      async () => ((await list()).filter((t) => t.state === 'seeding').length === 3 ? true : undefined),
      60_000,
    );
    for (const s of [a, b, c])
      expect(await sha256File(join(dir, 'dl', s.file.split('/').pop() as string))).toBe(
        await sha256File(s.file),
      );
    const ls = await cli(['ls']);
    expect(ls.out).toMatch(/a\.bin/);
    expect(ls.out.match(/seeding/g)?.length).toBe(3);

    // An aria2c leecher gets a.bin from the daemon alone (its aria2c seeder gone).
    a.seeder.child.kill('SIGTERM');
    await a.seeder.exited;
    const out = join(dir, 'leech');
    await mkdir(out);
    const leech = start('aria2c', [...aria2Flags(out, await freePort()), '--seed-time=0', a.torrent]);
    expect(await leech.exited, leech.output()).toBe(0);
    expect(await sha256File(join(out, 'a.bin'))).toBe(await sha256File(a.file));
    const aRow = (await list()).find((t) => t.name === 'a.bin') as Row;
    expect(aRow.uploaded).toBeGreaterThanOrEqual(3_000_000);

    // SIGTERM: state saved, exit 0; a restart brings all three back as seeds, nothing hashed.
    expect(await stopDaemon('SIGTERM')).toBe(0);
    await startDaemon();
    await waitFor(
      'three seeds again',
      async () => ((await list()).filter((t) => t.state === 'seeding').length === 3 ? true : undefined),
      20_000,
    );
    for (const t of await list()) expect(t.hashChecks, t.name).toBe(0);
    expect((await list()).find((t) => t.name === 'a.bin')?.uploaded).toBeGreaterThanOrEqual(3_000_000);

    // rm by a prefix of the id, with its data.
    const rmOut = await cli(['rm', '--delete-data', b.hex.slice(0, 6)]);
    expect(rmOut.code, rmOut.out).toBe(0);
    expect((await list()).map((t) => t.name).sort()).toEqual(['a.bin', 'c.bin']);
    await expect(readFile(join(dir, 'dl', 'b.bin'))).rejects.toThrow(/ENOENT/);
    const show = await cli(['show', c.hex.slice(0, 8)]);
    expect(show.out).toContain('c.bin');
    expect(show.out).toContain(`${tracker.url}/announce`);
    expect(await stopDaemon('SIGTERM')).toBe(0);
  }, 180_000);

  it('killed with SIGKILL mid-download, a restart re-checks what is on disk and completes it byte-identical', async () => {
    // A seeder capped at 1 MiB/s: 8 MB takes ~8 s.
    const d = await aria2Seeds('d.bin', 8_000_000, ['--max-upload-limit=1M']);
    await startDaemon();
    expect((await cli(['add', d.torrent])).code).toBe(0);
    await waitFor(
      'a third of d.bin',
      async () => {
        const t = (await list()).find((x) => x.name === 'd.bin');
        return t !== undefined && t.progress > 0.3 ? true : undefined;
      },
      60_000,
    );
    await stopDaemon('SIGKILL');
    await startDaemon();
    await waitFor(
      'd.bin complete',
      async () => ((await list()).find((x) => x.name === 'd.bin')?.state === 'seeding' ? true : undefined),
      90_000,
    );
    const t = (await list()).find((x) => x.name === 'd.bin') as Row;
    // Its files changed after the last save: re-checked, and only the rest fetched again.
    expect(t.hashChecks).toBeGreaterThan(0);
    expect(t.downloaded).toBeLessThan(0.75 * t.size);
    expect(await sha256File(join(dir, 'dl', 'd.bin'))).toBe(await sha256File(d.file));
    expect(await stopDaemon('SIGTERM')).toBe(0);
  }, 180_000);

  it('streams a file while it downloads: ranged reads byte-identical before completion; 416; 409 when paused', async () => {
    // 4 MB from a seeder capped at 512 KiB/s: about 8 s whole.
    const s = await aria2Seeds('s.bin', 4_000_000, ['--max-upload-limit=512K']);
    await startDaemon();
    expect((await cli(['add', s.torrent])).code).toBe(0);
    const want = await readFile(s.file);
    const url = `${api}/api/v1/torrents/${s.hex}/files/0`;
    for (const at of [3_500_000, 1_000_000]) {
      const r = await fetch(url, { headers: { range: `bytes=${at}-${at + 99_999}` } });
      expect(r.status).toBe(206);
      expect(r.headers.get('content-range')).toBe(`bytes ${at}-${at + 99_999}/4000000`);
      expect(Buffer.from(await r.arrayBuffer()).equals(want.subarray(at, at + 100_000))).toBe(true);
      const t = (await list()).find((x) => x.name === 's.bin') as Row;
      expect(t.progress).toBeLessThan(1);
    }
    expect((await fetch(url, { headers: { range: 'bytes=4000000-' } })).status).toBe(416);
    expect((await fetch(`${api}/api/v1/torrents/${s.hex}/files/7`)).status).toBe(404);
    expect((await cli(['pause', s.hex])).code).toBe(0);
    const paused = await fetch(url);
    expect(paused.status).toBe(409);
    expect(((await paused.json()) as { error: { code: string } }).error.code).toBe('ERR_NOT_RUNNING');
    expect(await stopDaemon('SIGTERM')).toBe(0);
  }, 90_000);

  it('file selection through the API: unwanted files never created; chosen again while running, fetched', async () => {
    const src = join(dir, 'src-album');
    await mkdir(join(src, 'album'), { recursive: true });
    for (const [n, size] of [
      ['x.bin', 300_000],
      ['y.bin', 200_000],
      ['z.bin', 250_000],
    ] as const)
      await randomFile(join(src, 'album', n), size);
    const torrent = join(dir, 'album.torrent');
    const c = start('node', [
      CLI,
      'create',
      join(src, 'album'),
      '--tracker',
      `${tracker.url}/announce`,
      '--piece-size',
      '64KiB',
      '-o',
      torrent,
    ]);
    expect(await c.exited).toBe(0);
    const hex = /Info hash: ([0-9a-f]{40})/.exec(c.output())?.[1] as string;
    start('aria2c', [
      ...aria2Flags(src, await freePort()),
      '--seed-ratio=0.0',
      '--check-integrity=true',
      torrent,
    ]);
    await waitFor(
      'aria2c seeding the album',
      () => ((tracker.registry.swarmById(hex)?.seeds ?? 0) >= 1 ? true : undefined),
      30_000,
    );
    await startDaemon();
    expect((await cli(['add', torrent, '--paused'])).code).toBe(0);
    const patch = (files: { index: number; wanted: boolean }[]) =>
      fetch(`${api}/api/v1/torrents/${hex}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ files }),
      });
    // y.bin is file 1 (create lists a folder's files by name).
    expect((await patch([{ index: 1, wanted: false }])).status).toBe(200);
    expect((await patch([{ index: 9, wanted: false }])).status).toBe(400);
    expect((await patch([{ index: 2, priority: 'high' } as never])).status).toBe(200);
    expect((await patch([{ index: 2, priority: 'urgent' } as never])).status).toBe(400);
    expect((await cli(['resume', hex])).code).toBe(0);
    const seeding = async () =>
      (await list()).find((t) => t.id === hex)?.state === 'seeding' ? true : undefined;
    await waitFor('the chosen files', seeding, 60_000);
    const detail = async () =>
      (
        (await (await fetch(`${api}/api/v1/torrents/${hex}`)).json()) as {
          torrent: { files: { path: string; wanted: boolean; progress: number; priority: string }[] };
        }
      ).torrent;
    expect((await detail()).files.map((f) => [f.path, f.wanted, f.progress === 1, f.priority])).toEqual([
      ['x.bin', true, true, 'normal'],
      ['y.bin', false, false, 'normal'],
      ['z.bin', true, true, 'high'],
    ]);
    expect((await list()).find((t) => t.id === hex)?.progress).toBe(1);
    const got = join(dir, 'dl', 'album');
    expect((await readdir(got)).sort()).toEqual(['x.bin', 'z.bin']);
    // Wanted again while it runs: its peer restarts with every file and fetches y.bin.
    expect((await patch([{ index: 1, wanted: true }])).status).toBe(200);
    await waitFor(
      'y.bin too',
      async () => ((await readdir(got)).includes('y.bin') && (await seeding()) ? true : undefined),
      60_000,
    );
    for (const n of ['x.bin', 'y.bin', 'z.bin'])
      expect(await sha256File(join(got, n))).toBe(await sha256File(join(src, 'album', n)));
    expect(await stopDaemon('SIGTERM')).toBe(0);
  }, 120_000);

  it('the remote CLI with no daemon, and a daemon on a public address without credentials: clear errors, exit 1', async () => {
    const none = await cli(['ls']);
    expect(none.code).toBe(1);
    expect(none.out).toMatch(/no daemon answers at http:\/\/127\.0\.0\.1:\d+/);
    const open = start('node', [
      CLI,
      'daemon',
      '--state',
      join(dir, 'state2'),
      '--api-host',
      '0.0.0.0',
      '--no-dht',
    ]);
    expect(await open.exited).toBe(1);
    expect(open.output()).toMatch(/reachable by others: give --api-auth/);
    const authFile = join(dir, 'auth');
    await writeFile(authFile, 'nocolon\n');
    const bad = start('node', [
      CLI,
      'daemon',
      '--state',
      join(dir, 'state2'),
      '--api-auth-file',
      authFile,
      '--no-dht',
    ]);
    expect(await bad.exited).toBe(1);
    expect(bad.output()).toMatch(/expected one line user:password/);
  });
});
