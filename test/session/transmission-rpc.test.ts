import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/server.js';
import { createTorrent } from '../../src/node/create-torrent.js';
import { Session } from '../../src/session/session.js';
import { StateStore } from '../../src/session/state-store.js';
import { torrentFor } from '../support/torrent.js';

/**
 * Transmission's RPC façade in process (requests injected): its handshake and auth, its reply
 * form, ids in every form, torrent-get in both forms, file selection and limits through
 * torrent-set, session-set, free-space, the errors. Real clients drive it in
 * test/interop/transmission-rpc.test.ts.
 */

describe("Transmission's RPC", () => {
  let dir = '';
  let session: Session;
  let app: ReturnType<typeof buildApi>;
  let sid = '';
  const auth = { authorization: `Basic ${Buffer.from('me:pw').toString('base64')}`, host: '127.0.0.1' };
  let multi: Uint8Array;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-trpc-unit-'));
    await mkdir(join(dir, 'src', 'album'), { recursive: true });
    for (const [n, size] of [
      ['a.flac', 50_000],
      ['b.flac', 30_000],
      ['cover.jpg', 5_000],
    ] as const)
      await writeFile(join(dir, 'src', 'album', n), randomBytes(size));
    multi = (
      await createTorrent(join(dir, 'src', 'album'), {
        pieceLength: 16_384,
        trackers: ['http://127.0.0.1:9/announce'],
      })
    ).bytes;
    session = new Session({
      state: new StateStore(join(dir, 'state')),
      downloadDir: join(dir, 'dl'),
      host: '127.0.0.1',
      port: 0,
    });
    await session.start();
    app = buildApi(session, { host: '127.0.0.1', auth: 'me:pw' });
  });
  afterAll(async () => {
    await app.close();
    await session.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const call = async (method: string, args?: object, tag?: number) => {
    const r = await app.inject({
      method: 'POST',
      url: '/transmission/rpc',
      headers: { ...auth, 'x-transmission-session-id': sid },
      payload: JSON.stringify({ method, arguments: args, tag }),
    });
    return { status: r.statusCode, body: r.json() as { result: string; arguments: any; tag?: number } };
  };

  it('answers 409 with the session id until a request carries it; 401 without credentials', async () => {
    const first = await app.inject({
      method: 'POST',
      url: '/transmission/rpc',
      headers: auth,
      payload: '{"method":"session-get"}',
    });
    expect(first.statusCode).toBe(409);
    sid = first.headers['x-transmission-session-id'] as string;
    expect(sid.length).toBeGreaterThanOrEqual(32);
    const wrong = await app.inject({
      method: 'POST',
      url: '/transmission/rpc/',
      headers: { ...auth, 'x-transmission-session-id': 'nope' },
      payload: '{}',
    });
    expect(wrong.statusCode).toBe(409);
    const noAuth = await app.inject({
      method: 'POST',
      url: '/transmission/rpc',
      headers: { host: '127.0.0.1', 'x-transmission-session-id': sid },
      payload: '{"method":"session-get"}',
    });
    expect(noAuth.statusCode).toBe(401);
    const ok = await call('session-get', undefined, 7);
    expect(ok.status).toBe(200);
    expect(ok.body.result).toBe('success');
    expect(ok.body.tag).toBe(7);
    expect(ok.body.arguments['rpc-version']).toBe(17);
    expect(ok.body.arguments.version).toMatch(/^swarmshare /);
    expect(ok.body.arguments['download-dir']).toBe(join(dir, 'dl'));
    const some = await call('session-get', { fields: ['version', 'peer-port'] });
    expect(Object.keys(some.body.arguments).sort()).toEqual(['peer-port', 'version']);
  });

  it('an unknown method, bad JSON and bad arguments get error results, never a crash', async () => {
    expect((await call('torrent-frobnicate')).body.result).toBe('method name not recognized');
    expect((await call('__proto__')).body.result).toBe('method name not recognized');
    const bad = await app.inject({
      method: 'POST',
      url: '/transmission/rpc',
      headers: { ...auth, 'x-transmission-session-id': sid },
      payload: '{"method":',
    });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().result).toMatch(/JSON/);
    expect((await call('torrent-get', {})).body.result).toMatch(/no fields/);
    expect((await call('torrent-get', { fields: ['id'], ids: [{}] })).body.result).toMatch(/invalid id/);
    expect((await call('torrent-add', {})).body.result).toBe('no filename or metainfo specified');
    expect(
      (await call('torrent-add', { metainfo: Buffer.from('not a torrent').toString('base64') })).body.result,
    ).toMatch(/not a usable \.torrent/);
    expect((await call('torrent-add', { filename: join(dir, 'missing.torrent') })).body.result).toMatch(
      /ENOENT/,
    );
    expect((await call('session-set', { 'download-dir': 'relative/dir' })).body.result).toMatch(
      /not absolute/,
    );
    expect((await call('torrent-set', { ids: [], labels: ['a,b'] })).body.result).toMatch(/commas/);
  });

  it('adds by metainfo and by path (paused, with labels and files left out), says duplicate, numbers them', async () => {
    const one = torrentFor('one.bin', randomBytes(40_000), 16_384, 'http://127.0.0.1:9/announce').bytes;
    const a = await call('torrent-add', { metainfo: one.toString('base64'), paused: true });
    expect(a.body.result).toBe('success');
    const added = a.body.arguments['torrent-added'];
    expect(added.name).toBe('one.bin');
    expect(added.hashString).toMatch(/^[0-9a-f]{40}$/);
    const again = await call('torrent-add', { metainfo: one.toString('base64') });
    expect(again.body.arguments['torrent-duplicate'].id).toBe(added.id);
    await writeFile(join(dir, 'album.torrent'), multi);
    const b = await call('torrent-add', {
      filename: join(dir, 'album.torrent'),
      paused: true,
      labels: ['music'],
      'files-unwanted': [2],
      'priority-high': [0],
    });
    const album = b.body.arguments['torrent-added'];
    expect(album.id).toBe(added.id + 1);
    const got = await call('torrent-get', {
      ids: [album.id],
      fields: [
        'id',
        'name',
        'labels',
        'status',
        'files',
        'fileStats',
        'wanted',
        'priorities',
        'sizeWhenDone',
        'totalSize',
        'no-such-field',
      ],
    });
    const t = got.body.arguments.torrents[0];
    expect(t.name).toBe('album');
    expect(t.labels).toEqual(['music']);
    expect(t.status).toBe(0);
    expect(t['no-such-field']).toBeUndefined();
    expect(t.files.map((f: { name: string }) => f.name)).toEqual([
      'album/a.flac',
      'album/b.flac',
      'album/cover.jpg',
    ]);
    expect(t.wanted).toEqual([true, true, false]);
    expect(t.priorities).toEqual([1, 0, 0]);
    expect(t.fileStats[2]).toEqual({ bytesCompleted: 0, wanted: false, priority: 0 });
    expect(t.totalSize).toBe(85_000);
    expect(t.sizeWhenDone).toBeLessThan(85_000);
    // The same choice through the REST API (one session underneath).
    const rest = await app.inject({
      method: 'GET',
      url: `/api/v1/torrents/${album.hashString}`,
      headers: auth,
    });
    expect(rest.json().torrent.files.map((f: { wanted: boolean }) => f.wanted)).toEqual([true, true, false]);
  });

  it('torrent-get by number, hash and recently-active, as objects and as a table; removed ones are listed', async () => {
    const all = (await call('torrent-get', { fields: ['id', 'hashString', 'name'] })).body.arguments.torrents;
    expect(all.length).toBe(2);
    const [one, album] = all;
    const byHash = await call('torrent-get', { ids: [album.hashString.toUpperCase()], fields: ['id'] });
    expect(byHash.body.arguments.torrents).toEqual([{ id: album.id }]);
    const byNumber = await call('torrent-get', { ids: one.id, fields: ['name'] });
    expect(byNumber.body.arguments.torrents).toEqual([{ name: 'one.bin' }]);
    const table = await call('torrent-get', { fields: ['id', 'name'], format: 'table' });
    expect(table.body.arguments.torrents).toEqual([
      ['id', 'name'],
      [one.id, 'one.bin'],
      [album.id, 'album'],
    ]);
    expect((await call('torrent-remove', { ids: [one.id], 'delete-local-data': true })).body.result).toBe(
      'success',
    );
    const recent = await call('torrent-get', { ids: 'recently-active', fields: ['id'] });
    expect(recent.body.arguments.removed).toEqual([one.id]);
    expect(recent.body.arguments.torrents).toEqual([{ id: album.id }]);
  });

  it('torrent-set: files wanted again (an empty list is every file), priorities, limits with their flags, labels', async () => {
    const [album] = (await call('torrent-get', { fields: ['id'] })).body.arguments.torrents;
    const get = async () =>
      (
        await call('torrent-get', {
          ids: [album.id],
          fields: [
            'wanted',
            'priorities',
            'downloadLimit',
            'downloadLimited',
            'uploadLimit',
            'uploadLimited',
            'labels',
          ],
        })
      ).body.arguments.torrents[0];
    expect(
      (await call('torrent-set', { ids: [album.id], 'files-wanted': [], 'priority-low': [1] })).body.result,
    ).toBe('success');
    expect((await get()).wanted).toEqual([true, true, true]);
    expect((await get()).priorities).toEqual([1, -1, 0]);
    await call('torrent-set', { ids: [album.id], downloadLimit: 300 });
    let t = await get();
    expect(t.downloadLimited).toBe(false);
    expect(t.downloadLimit).toBe(300);
    await call('torrent-set', {
      ids: [album.id],
      downloadLimited: true,
      uploadLimit: 50,
      uploadLimited: true,
    });
    t = await get();
    expect([t.downloadLimited, t.downloadLimit, t.uploadLimited, t.uploadLimit]).toEqual([
      true,
      300,
      true,
      50,
    ]);
    const id = session.torrents.values().next().value?.id as string;
    expect(session.get(id).downloadLimit).toBe(300_000);
    expect(session.get(id).uploadLimit).toBe(50_000);
    await call('torrent-set', { ids: [album.id], downloadLimited: false, labels: [] });
    t = await get();
    expect([t.downloadLimited, t.downloadLimit, t.labels]).toEqual([false, 300, []]);
    expect(session.get(id).downloadLimit).toBeNull();
    expect((await call('torrent-set', { ids: [album.id], 'files-unwanted': [0, 1, 2] })).body.result).toMatch(
      /no file wanted/,
    );
    expect((await call('torrent-set', { ids: [album.id], 'files-wanted': [9] })).body.result).toMatch(
      /no file 9/,
    );
  });

  it('session-set: speed limits and their flags, queue size, download folder; session-stats; free-space', async () => {
    await call('session-set', {
      'speed-limit-down': 2000,
      'speed-limit-down-enabled': true,
      'download-queue-size': 3,
    });
    expect(session.settings.downloadLimit).toBe(2_000_000);
    expect(session.settings.maxActive).toBe(3);
    await call('session-set', { 'speed-limit-down-enabled': false, 'download-dir': join(dir, 'other') });
    const s = (await call('session-get')).body.arguments;
    expect([s['speed-limit-down-enabled'], s['speed-limit-down'], s['download-queue-size']]).toEqual([
      false,
      2000,
      3,
    ]);
    expect(s['download-dir']).toBe(join(dir, 'other'));
    expect(session.settings.downloadLimit).toBeNull();
    const stats = (await call('session-stats')).body.arguments;
    expect(stats.torrentCount).toBe(1);
    expect(stats.pausedTorrentCount).toBe(1);
    expect(stats['current-stats'].downloadedBytes).toBe(0);
    const free = (await call('free-space', { path: dir })).body.arguments;
    expect(free.path).toBe(dir);
    expect(free['size-bytes']).toBeGreaterThan(0);
    expect(free.total_size).toBeGreaterThanOrEqual(free['size-bytes']);
    expect((await call('free-space', { path: join(dir, 'nope') })).body.result).toMatch(/ENOENT/);
    expect((await call('port-test')).body.arguments['port-is-open']).toBe(true);
  });

  it('stop, start and verify by number: the status numbers follow (0 stopped, 2 checking or 3/4 downloading)', async () => {
    const [album] = (await call('torrent-get', { fields: ['id', 'status'] })).body.arguments.torrents;
    expect(album.status).toBe(0);
    await call('torrent-start', { ids: [album.id] });
    const status = (await call('torrent-get', { ids: [album.id], fields: ['status'] })).body.arguments
      .torrents[0].status;
    expect([2, 3, 4]).toContain(status);
    await call('torrent-stop', { ids: album.id });
    expect(
      (await call('torrent-get', { ids: [album.id], fields: ['status'] })).body.arguments.torrents[0].status,
    ).toBe(0);
  });
});
