import bencode from 'bencode';
import { describe, expect, it } from 'vitest';
import { announce, compactPeers, get, hashOf, pct, peerIdOf, post, testTracker } from '../support/tracker.js';

const H = hashOf(1);

describe('GET /announce (BEP 3, BEP 23, BEP 7)', () => {
  it('returns interval, min interval, counts and compact peers, never the asker', async () => {
    const t = testTracker({ interval: 40 });
    await announce(
      t,
      { infoHash: H, peerId: peerIdOf(1), port: 6881, left: 0, event: 'started' },
      '127.0.0.2',
    );
    await announce(
      t,
      { infoHash: H, peerId: peerIdOf(2), port: 6882, left: 10, event: 'started' },
      '127.0.0.3',
    );
    const r = await announce(
      t,
      { infoHash: H, peerId: peerIdOf(3), port: 6883, left: 10, event: 'started' },
      '127.0.0.4',
    );
    expect(r.status).toBe(200);
    expect(r.body.interval).toBe(40);
    expect(r.body['min interval']).toBe(20);
    expect(r.body.complete).toBe(1);
    expect(r.body.incomplete).toBe(2);
    expect(compactPeers(r.body.peers).sort()).toEqual(['127.0.0.2:6881', '127.0.0.3:6882']);
  });

  it('returns a dictionary list when compact=0, without ids when no_peer_id=1', async () => {
    const t = testTracker();
    await announce(t, { infoHash: H, peerId: peerIdOf(1), port: 6881, left: 0 }, '127.0.0.2');
    const dict = await announce(t, { infoHash: H, peerId: peerIdOf(2), port: 6882, compact: 0 });
    expect(dict.body.peers).toHaveLength(1);
    const p = dict.body.peers[0];
    expect(Buffer.from(p.ip).toString()).toBe('127.0.0.2');
    expect(p.port).toBe(6881);
    expect(Buffer.from(p['peer id']).toString('latin1')).toBe(peerIdOf(1));
    const noId = await announce(t, {
      infoHash: H,
      peerId: peerIdOf(2),
      port: 6882,
      compact: 0,
      noPeerId: true,
    });
    expect(noId.body.peers[0]['peer id']).toBeUndefined();
  });

  it('puts IPv6 peers in peers6', async () => {
    const t = testTracker();
    await announce(t, { infoHash: H, peerId: peerIdOf(1), port: 6881 }, '::1');
    await announce(t, { infoHash: H, peerId: peerIdOf(2), port: 6882 }, '::ffff:127.0.0.9');
    const r = await announce(t, { infoHash: H, peerId: peerIdOf(3), port: 6883 });
    expect(compactPeers(r.body.peers)).toEqual(['127.0.0.9:6882']);
    expect(compactPeers(r.body.peers6, 18)).toEqual(['0000:0000:0000:0000:0000:0000:0000:0001:6881']);
  });

  it('honours numwant with a cap, and the ip parameter', async () => {
    const t = testTracker({ limits: { maxNumwant: 7 } });
    for (let i = 0; i < 20; i++) await announce(t, { infoHash: H, peerId: peerIdOf(i), port: 1000 + i });
    expect(
      compactPeers(
        (await announce(t, { infoHash: H, peerId: peerIdOf(99), port: 9, numwant: 3 })).body.peers,
      ),
    ).toHaveLength(3);
    expect(
      compactPeers(
        (await announce(t, { infoHash: H, peerId: peerIdOf(99), port: 9, numwant: 500 })).body.peers,
      ),
    ).toHaveLength(7);
    await announce(t, { infoHash: H, peerId: peerIdOf(50), port: 5050, ip: '10.1.2.3' });
    const rec = t.registry.swarmById(H.toString('hex'))?.peers.get(peerIdOf(50));
    expect(rec).toMatchObject({ ip: '10.1.2.3', port: 5050 });
  });

  it('removes a peer on stopped, counts completed, and answers scrape', async () => {
    const t = testTracker();
    await announce(t, { infoHash: H, peerId: peerIdOf(1), port: 1, left: 0, event: 'started' });
    await announce(t, { infoHash: H, peerId: peerIdOf(2), port: 2, left: 5, event: 'started' });
    await announce(t, { infoHash: H, peerId: peerIdOf(2), port: 2, left: 0, event: 'completed' });
    await announce(t, { infoHash: H, peerId: peerIdOf(3), port: 3, left: 5, event: 'started' });
    await announce(t, { infoHash: H, peerId: peerIdOf(3), port: 3, left: 5, event: 'stopped' });
    const scrape = async (query: string) => {
      const res = await t.app.inject({ url: `/scrape?${query}` });
      // Keys are raw 20-byte hashes: check them in the raw bytes, read the values in order.
      const raw = Buffer.from(res.rawPayload);
      const body = bencode.decode(raw) as { files: Record<string, Record<string, number>> };
      return { raw, values: Object.values(body.files) };
    };
    const one = await scrape(`info_hash=${pct(H)}`);
    expect(one.raw.includes(Buffer.concat([Buffer.from('20:'), H]))).toBe(true);
    expect(one.values).toEqual([{ complete: 2, incomplete: 0, downloaded: 1 }]);
    const unknown = await scrape(`info_hash=${pct(hashOf(2))}`);
    expect(unknown.values).toEqual([{ complete: 0, incomplete: 0, downloaded: 0 }]);
    expect((await scrape(`info_hash=${pct(H)}&info_hash=${pct(hashOf(2))}`)).values).toHaveLength(2);
    const all = bencode.decode((await t.app.inject({ url: '/scrape' })).rawPayload) as { files: object };
    expect(Object.keys(all.files)).toHaveLength(1);
  });

  it('keeps one announcing peer from replacing another: a key binds the peer id', async () => {
    const t = testTracker();
    await announce(t, { infoHash: H, peerId: peerIdOf(1), port: 1, key: 'secret1' }, '127.0.0.2');
    const hijack = await announce(
      t,
      { infoHash: H, peerId: peerIdOf(1), port: 2, key: 'other', event: 'stopped' },
      '127.0.0.3',
    );
    expect(Buffer.from(hijack.body['failure reason']).toString()).toMatch(/key/);
    expect(t.registry.peerCount).toBe(1);
  });

  const bad: [string, string, RegExp][] = [
    ['no info_hash', '/announce?peer_id=aaaaaaaaaaaaaaaaaaaa&port=1', /info_hash/],
    ['a short info_hash', `/announce?info_hash=abc&peer_id=${'a'.repeat(20)}&port=1`, /20 bytes/],
    [
      'a long info_hash',
      `/announce?info_hash=${'a'.repeat(21)}&peer_id=${'a'.repeat(20)}&port=1`,
      /20 bytes/,
    ],
    ['no peer_id', `/announce?info_hash=${'a'.repeat(20)}&port=1`, /peer_id/],
    ['a short peer_id', `/announce?info_hash=${'a'.repeat(20)}&peer_id=abc&port=1`, /peer_id/],
    ['no port', `/announce?info_hash=${'a'.repeat(20)}&peer_id=${'a'.repeat(20)}`, /port/],
    ['port 0', `/announce?info_hash=${'a'.repeat(20)}&peer_id=${'a'.repeat(20)}&port=0`, /port/],
    ['port 70000', `/announce?info_hash=${'a'.repeat(20)}&peer_id=${'a'.repeat(20)}&port=70000`, /port/],
    ['port abc', `/announce?info_hash=${'a'.repeat(20)}&peer_id=${'a'.repeat(20)}&port=abc`, /port/],
    ['left -1', `/announce?info_hash=${'a'.repeat(20)}&peer_id=${'a'.repeat(20)}&port=1&left=-1`, /left/],
    [
      'a bad event',
      `/announce?info_hash=${'a'.repeat(20)}&peer_id=${'a'.repeat(20)}&port=1&event=paused`,
      /event/,
    ],
    ['a bad escape', `/announce?info_hash=%zz${'a'.repeat(19)}&peer_id=${'a'.repeat(20)}&port=1`, /escape/],
    ['a bad ip', `/announce?info_hash=${'a'.repeat(20)}&peer_id=${'a'.repeat(20)}&port=1&ip=999.1.1.1`, /ip/],
    ['a huge query', `/announce?x=${'a'.repeat(9000)}`, /query string/],
  ];
  for (const [what, url, reason] of bad) {
    it(`answers ${what} with a bencoded failure reason, never a 5xx`, async () => {
      const t = testTracker();
      const res = await t.app.inject({ url });
      expect(res.statusCode).toBe(200);
      const body = bencode.decode(res.rawPayload) as Record<string, Uint8Array>;
      expect(Buffer.from(body['failure reason'] as Uint8Array).toString()).toMatch(reason);
      expect(t.registry.peerCount).toBe(0);
    });
  }
});

describe('one swarm behind both APIs', () => {
  it('a JSON peer holding every chunk is a seed to /announce, and an announcing client shows in /get_peers', async () => {
    const t = testTracker();
    const hex = H.toString('hex');
    await post(t, '/register', {
      peer_id: 'peer1',
      port: 6000,
      files: { 'movie.mkv': { info_hash: hex, chunks: [0, 1, 2, 3], pieces: 4 } },
    });
    await post(t, '/register', {
      peer_id: 'peer2',
      port: 6001,
      files: { 'movie.mkv': { info_hash: hex, chunks: [1], pieces: 4 } },
    });
    const r = await announce(
      t,
      { infoHash: H, peerId: peerIdOf(7), port: 6881, left: 100, event: 'started' },
      '127.0.0.5',
    );
    expect(r.body.complete).toBe(1);
    expect(r.body.incomplete).toBe(2);
    expect(compactPeers(r.body.peers).sort()).toEqual(['127.0.0.1:6000', '127.0.0.1:6001']);
    await announce(
      t,
      { infoHash: H, peerId: peerIdOf(8), port: 6882, left: 0, event: 'started' },
      '127.0.0.6',
    );
    const g = await get(t, '/get_peers?file=movie.mkv');
    expect(g.json.peers[peerIdOf(7)]).toEqual({
      ip: '127.0.0.5',
      port: 6881,
      source: 'announce',
      complete: false,
      chunks: null,
    });
    expect(g.json.peers[peerIdOf(8)]).toMatchObject({ source: 'announce', complete: true, chunks: null });
    expect(g.json.seeds).toBe(2);
  });

  it('drops peers that stay silent past the timeout (twice the interval by default)', async () => {
    const t = testTracker({ interval: 30 });
    await announce(t, { infoHash: H, peerId: peerIdOf(1), port: 1 });
    await post(t, '/register', { peer_id: 'json1', port: 2, files: { [H.toString('hex')]: [0] } });
    t.clock.t += 45_000;
    await announce(t, { infoHash: H, peerId: peerIdOf(2), port: 3 });
    t.clock.t += 20_000; // peer 1 and json1 silent for 65 s > 60 s; peer 2 for 20 s
    expect(t.registry.expire(t.clock.t)).toBe(2);
    const r = await announce(t, { infoHash: H, peerId: peerIdOf(3), port: 4 });
    expect(compactPeers(r.body.peers)).toEqual(['127.0.0.1:3']);
    expect(t.registry.clients.size).toBe(0);
  });
});
