import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/server.js';
import { SharedListener } from '../../src/net/shared-listener.js';
import { activeSet, type QueuedTorrent, stateOf } from '../../src/session/queue.js';
import { Session } from '../../src/session/session.js';
import { checkResume, StateStore } from '../../src/session/state-store.js';
import { encodeHandshake } from '../../src/wire/encode.js';
import { waitFor } from '../support/proc.js';
import { torrentFor } from '../support/torrent.js';

/** The session's policy and its API, in process: queue, state files, refusals, the shared listener. */

const q = (id: string, position: number, o: Partial<QueuedTorrent> = {}): QueuedTorrent => ({
  id,
  position,
  paused: false,
  complete: false,
  failed: false,
  ...o,
});

describe('the download queue (pure)', () => {
  it('runs at most maxActive downloads, in queue order; seeds take no slot; paused and failed never run', () => {
    const list = [
      q('c', 2),
      q('a', 0),
      q('b', 1),
      q('s', 3, { complete: true }),
      q('p', -1, { paused: true }),
      q('f', -2, { failed: true }),
    ];
    expect([...activeSet(list, 1)].sort()).toEqual(['a', 's']);
    expect([...activeSet(list, 2)].sort()).toEqual(['a', 'b', 's']);
    expect([...activeSet(list, 10)].sort()).toEqual(['a', 'b', 'c', 's']);
    expect([...activeSet([q('a', 0, { paused: true }), q('b', 1)], 1)]).toEqual(['b']);
  });

  it('names the state: error over paused over checking over queued; a running torrent seeds or downloads', () => {
    expect(stateOf(q('a', 0, { failed: true, paused: true }), true, true)).toBe('error');
    expect(stateOf(q('a', 0, { paused: true }), true, true)).toBe('paused');
    expect(stateOf(q('a', 0), true, true)).toBe('checking');
    expect(stateOf(q('a', 0), false, false)).toBe('queued');
    expect(stateOf(q('a', 0, { complete: true }), true, false)).toBe('seeding');
    expect(stateOf(q('a', 0), true, false)).toBe('downloading');
  });
});

describe('resume data is read defensively', () => {
  const id = 'ab'.repeat(20);
  const good = {
    version: 1,
    id,
    downloadDir: '/x',
    addedAt: 1,
    completedAt: null,
    paused: false,
    position: 0,
    uploaded: 0,
    downloaded: 0,
    have: '',
    files: [],
    downloadLimit: null,
    uploadLimit: null,
  };
  it('takes what we wrote and refuses anything else with a reason', () => {
    expect(checkResume(good, id).id).toBe(id);
    expect(() => checkResume({ ...good, id: 'cd'.repeat(20) }, id)).toThrow(/another torrent/);
    expect(() => checkResume({ ...good, version: 2 }, id)).toThrow(/version/);
    expect(() => checkResume({ ...good, files: [{ path: 1 }] }, id)).toThrow(/file list/);
    expect(() => checkResume('x', id)).toThrow(/not an object/);
    expect(() => checkResume({ ...good, uploaded: -1 }, id)).toThrow(/numbers/);
  });
});

describe('a session and its API, in process', () => {
  let dir = '';
  let session: Session;
  let app: ReturnType<typeof buildApi>;
  const torrents: Buffer[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-session-'));
    // Trackers that never answer: nothing downloads, so states stay where the queue puts them.
    for (let i = 0; i < 17; i++)
      torrents.push(
        torrentFor(`f${i}.bin`, randomBytes(40_000), 16_384, 'http://127.0.0.1:9/announce').bytes,
      );
    session = new Session({
      state: new StateStore(join(dir, 'state')),
      downloadDir: join(dir, 'dl'),
      host: '127.0.0.1',
      port: 0,
      maxActive: 1,
    });
    await session.start();
    app = buildApi(session, { host: '127.0.0.1', auth: 'me:secret' });
  });
  afterAll(async () => {
    await app.close();
    await session.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const auth = {
    authorization: `Basic ${Buffer.from('me:secret').toString('base64')}`,
    host: '127.0.0.1:9080',
  };
  const add = (bytes: Buffer, paused = false) =>
    app.inject({
      method: 'POST',
      url: `/api/v1/torrents?paused=${paused}`,
      headers: { ...auth, 'content-type': 'application/x-bittorrent' },
      payload: bytes,
    });
  const list = async () =>
    (await app.inject({ method: 'GET', url: '/api/v1/torrents', headers: auth })).json().torrents as {
      id: string;
      state: string;
      name: string;
    }[];

  it('queues downloads past --max-active; pausing the running one starts the next', async () => {
    const r0 = await add(torrents[0] as Buffer);
    expect(r0.statusCode).toBe(201);
    expect((await add(torrents[1] as Buffer)).statusCode).toBe(201);
    expect((await add(torrents[2] as Buffer)).statusCode).toBe(201);
    expect((await add(torrents[0] as Buffer)).statusCode).toBe(200);
    const states = async () => Object.fromEntries((await list()).map((t) => [t.name, t.state]));
    await waitFor(
      'f0 to run',
      async () => ((await states())['f0.bin'] === 'downloading' ? true : undefined),
      10_000,
    );
    expect(await states()).toEqual({ 'f0.bin': 'downloading', 'f1.bin': 'queued', 'f2.bin': 'queued' });
    const id0 = r0.json().torrent.id as string;
    const p = await app.inject({
      method: 'POST',
      url: `/api/v1/torrents/${id0.slice(0, 8)}/pause`,
      headers: auth,
    });
    expect(p.statusCode).toBe(200);
    await waitFor(
      'f1 to run',
      async () => ((await states())['f1.bin'] === 'downloading' ? true : undefined),
      10_000,
    );
    expect(await states()).toEqual({ 'f0.bin': 'paused', 'f1.bin': 'downloading', 'f2.bin': 'queued' });
  });

  it('refuses with the table codes: 401 without credentials, 403 for a foreign Host or Origin, 404, 409, 400', async () => {
    const noAuth = await app.inject({
      method: 'GET',
      url: '/api/v1/torrents',
      headers: { host: '127.0.0.1' },
    });
    expect(noAuth.statusCode).toBe(401);
    expect(noAuth.json().error.code).toBe('ERR_UNAUTHORIZED');
    expect(noAuth.headers['www-authenticate']).toMatch(/Basic/);
    const rebinding = await app.inject({
      method: 'GET',
      url: '/api/v1/torrents',
      headers: { ...auth, host: 'evil.example:9080' },
    });
    expect(rebinding.statusCode).toBe(403);
    expect(rebinding.json().error.code).toBe('ERR_FORBIDDEN');
    const csrf = await app.inject({
      method: 'POST',
      url: '/api/v1/torrents',
      headers: { ...auth, origin: 'http://evil.example', 'content-type': 'application/json' },
      payload: { magnet: 'magnet:?xt=urn:btih:' + 'a'.repeat(40) },
    });
    expect(csrf.statusCode).toBe(403);
    const sameOrigin = await app.inject({
      method: 'PATCH',
      url: '/api/v1/session',
      headers: { ...auth, origin: 'http://127.0.0.1:9080', 'content-type': 'application/json' },
      payload: { maxActive: 1 },
    });
    expect(sameOrigin.statusCode).toBe(200);
    const missing = await app.inject({
      method: 'GET',
      url: `/api/v1/torrents/${'f'.repeat(40)}`,
      headers: auth,
    });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('ERR_UNKNOWN_TORRENT');
    // 17 torrents: two share a first hex digit, so that digit alone is ambiguous.
    for (const t of torrents.slice(3)) expect((await add(t, true)).statusCode).toBe(201);
    const ids = (await list()).map((t) => t.id);
    const shared = [...'0123456789abcdef'].find(
      (c) => ids.filter((id) => id.startsWith(c)).length > 1,
    ) as string;
    const ambiguous = await app.inject({ method: 'GET', url: `/api/v1/torrents/${shared}`, headers: auth });
    expect(ambiguous.statusCode).toBe(409);
    expect(ambiguous.json().error.code).toBe('ERR_AMBIGUOUS_ID');
    const bad = await add(Buffer.from('not a torrent'));
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('ERR_INVALID_TORRENT');
    const two = await app.inject({
      method: 'POST',
      url: '/api/v1/torrents',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: { magnet: 'magnet:?xt=urn:btih:' + 'a'.repeat(40), url: 'http://x/y.torrent' },
    });
    expect(two.statusCode).toBe(400);
    expect(two.json().error.code).toBe('ERR_VALIDATION');
    const scheme = await app.inject({
      method: 'POST',
      url: '/api/v1/torrents',
      headers: { ...auth, 'content-type': 'application/json' },
      payload: { url: 'file:///etc/passwd' },
    });
    expect(scheme.statusCode).toBe(400);
    expect(scheme.json().error.message).toMatch(/only http and https/);
  });

  it('streams server-sent events: hello, then added for a new torrent', async () => {
    const live = buildApi(session, { host: '127.0.0.1' });
    await live.listen({ host: '127.0.0.1', port: 0 });
    const port = (live.server.address() as { port: number }).port;
    const ac = new AbortController();
    try {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/events`, { signal: ac.signal });
      expect(res.headers.get('content-type')).toBe('text/event-stream');
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      let text = '';
      const until = async (what: string) => {
        for (let i = 0; i < 50 && !text.includes(what); i++) {
          const { value, done } = await reader.read();
          if (done) break;
          text += Buffer.from(value).toString();
        }
        return text.includes(what);
      };
      expect(await until('event: hello')).toBe(true);
      const t = torrentFor('sse.bin', randomBytes(20_000), 16_384, 'http://127.0.0.1:9/announce');
      await session.add(t.bytes, { paused: true });
      expect(await until('event: added')).toBe(true);
      expect(text).toContain('"name":"sse.bin"');
    } finally {
      ac.abort();
      await live.close();
    }
  });

  it('describes every route in its OpenAPI document', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/api/v1/openapi.json', headers: auth })).json();
    expect(Object.keys(doc.paths).sort()).toEqual(
      [
        '/api/v1/events',
        '/api/v1/session',
        '/api/v1/torrents',
        '/api/v1/torrents/{id}',
        '/api/v1/torrents/{id}/files/{index}',
        '/api/v1/torrents/{id}/pieces',
        '/api/v1/torrents/{id}/pause',
        '/api/v1/torrents/{id}/recheck',
        '/api/v1/torrents/{id}/resume',
      ].sort(),
    );
  });

  it('the shared listener closes a handshake for a torrent it does not serve, and bytes that are not one', async () => {
    const before = { ...session.listener.refused };
    const closedAfter = (bytes: Uint8Array) =>
      new Promise<void>((resolve, reject) => {
        const s = connect(session.port, '127.0.0.1', () => s.write(bytes));
        // Read what comes (an encrypted handshake's answer), or the close is never seen.
        s.resume();
        s.on('close', () => resolve());
        s.on('error', () => {});
        setTimeout(() => reject(new Error('not closed')), 5000).unref();
      });
    await closedAfter(
      encodeHandshake({
        reserved: new Uint8Array(8),
        infoHash: new Uint8Array(20).fill(1),
        peerId: new Uint8Array(20),
      }),
    );
    // Bytes that do not open a plain handshake are taken as an encrypted one (MSE/PE): past the
    // key and the padding limit without the synchronisation hash, closed at once.
    await closedAfter(Buffer.alloc(96 + 532 + 20, 7));
    expect(session.listener.refused.ERR_WRONG_INFO_HASH).toBe(before.ERR_WRONG_INFO_HASH + 1);
    expect(session.listener.refused.ERR_MSE_HANDSHAKE).toBe(before.ERR_MSE_HANDSHAKE + 1);
    // With encryption disabled they are simply not a handshake.
    const plainOnly = new SharedListener('127.0.0.1', undefined, { encryption: 'disable' });
    await plainOnly.listen(0);
    try {
      await new Promise<void>((resolve, reject) => {
        const s = connect(plainOnly.port, '127.0.0.1', () => s.write(Buffer.alloc(68, 7)));
        s.on('close', () => resolve());
        s.on('error', () => {});
        setTimeout(() => reject(new Error('not closed')), 5000).unref();
      });
      expect(plainOnly.refused.ERR_BAD_HANDSHAKE).toBe(1);
    } finally {
      await plainOnly.close();
    }
  });
});

describe('the global connection cap', () => {
  let dir = '';
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  it('an incoming peer past --max-connections-total is refused, whichever torrent it is for; below it, taken', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-cap-'));
    const session = new Session({
      state: new StateStore(join(dir, 'state')),
      downloadDir: join(dir, 'dl'),
      host: '127.0.0.1',
      port: 0,
      maxConnectionsTotal: 1,
    });
    await session.start();
    const sockets: import('node:net').Socket[] = [];
    try {
      const a = torrentFor('a.bin', randomBytes(40_000), 16_384, 'http://127.0.0.1:9/announce');
      const b = torrentFor('b.bin', randomBytes(40_000), 16_384, 'http://127.0.0.1:9/announce');
      await session.add(a.bytes);
      await session.add(b.bytes);
      const ea = session.get(a.infoHash.toString('hex'));
      const eb = session.get(b.infoHash.toString('hex'));
      await waitFor(
        'both running',
        () => (ea.node?.core !== undefined && eb.node?.core !== undefined ? true : undefined),
        10_000,
      );
      const dialIn = (infoHash: Uint8Array) =>
        new Promise<{ closed: boolean }>((resolve) => {
          const s = connect(session.port, '127.0.0.1', () =>
            s.write(encodeHandshake({ reserved: new Uint8Array(8), infoHash, peerId: randomBytes(20) })),
          );
          sockets.push(s);
          const state = { closed: false };
          s.on('close', () => {
            state.closed = true;
          });
          s.on('error', () => {});
          setTimeout(() => resolve(state), 800);
        });
      const first = await dialIn(a.infoHash);
      expect(first.closed).toBe(false);
      expect(ea.node?.connections).toBe(1);
      const second = await dialIn(b.infoHash);
      expect(second.closed).toBe(true);
      expect(eb.node?.connections).toBe(0);
    } finally {
      for (const s of sockets) s.destroy();
      await session.stop();
    }
  });
});

describe('state folder', () => {
  let dir = '';
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  it('a truncated resume file means a re-check, named in the log; a corrupt .torrent is skipped; the session starts', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-state-'));
    const state = new StateStore(join(dir, 'state'));
    const data = randomBytes(50_000);
    const t = torrentFor('g.bin', data, 16_384, 'http://127.0.0.1:9/announce');
    const id = t.infoHash.toString('hex');
    const lines: string[] = [];
    const s1 = new Session({
      state,
      downloadDir: dir,
      host: '127.0.0.1',
      port: 0,
      log: (l) => lines.push(l),
    });
    await writeFile(join(dir, 'g.bin'), data);
    await s1.start();
    await s1.add(t.bytes);
    await waitFor('g to seed', () => (s1.get(id).complete ? true : undefined), 10_000);
    await s1.stop();
    await writeFile(join(state.torrentsDir, `${id}.resume.json`), '{"version":1,"id":');
    await writeFile(join(state.torrentsDir, `${'0'.repeat(40)}.torrent`), 'garbage');
    const s2 = new Session({
      state,
      downloadDir: dir,
      host: '127.0.0.1',
      port: 0,
      log: (l) => lines.push(l),
    });
    await s2.start();
    try {
      expect(lines.some((l) => l.includes(`${id}.resume.json`) && l.includes('re-checked'))).toBe(true);
      expect(
        lines.some((l) => l.includes('0000000000000000000000000000000000000000.torrent cannot be read')),
      ).toBe(true);
      await waitFor(
        'g to seed again',
        () => (s2.get(id).complete && !s2.get(id).checking ? true : undefined),
        10_000,
      );
      expect(s2.get(id).hashChecks).toBe(4);
    } finally {
      await s2.stop();
    }
    // Unchanged files: the next start trusts the resume data (no piece hashed).
    const s3 = new Session({ state, downloadDir: dir, host: '127.0.0.1', port: 0 });
    await s3.start();
    try {
      await waitFor(
        'g to seed a third time',
        () => (s3.get(id).node?.core !== undefined ? true : undefined),
        10_000,
      );
      expect(s3.get(id).complete).toBe(true);
      expect(s3.get(id).hashChecks).toBe(0);
    } finally {
      await s3.stop();
    }
  });
});
