import { createHash } from 'node:crypto';
import bencode from 'bencode';
import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../src/core/bitfield.js';
import { parseMagnet } from '../../src/core/magnet.js';
import { buildTorrent, magnetUri, parseTorrent } from '../../src/core/metainfo.js';
import { segments, webSeedFileUrl } from '../../src/node/web-seed.js';
import { type Command, TorrentCore } from '../../src/swarm/torrent-core.js';
import { WEB_SEED_MIN_PEER_RATE, WEB_SEED_WINDOW_MS } from '../../src/swarm/web-seeds.js';
import { rng } from '../support/core-pipe.js';

/** Web seeds (BEP 19): the metainfo and magnet fields, the URLs, and the policy on the pure core. */

const sha1 = (b: Uint8Array) => createHash('sha1').update(b).digest();

describe('url-list and ws=', () => {
  const base = {
    name: 'a b.bin',
    pieceLength: 16384,
    pieceHashes: new Uint8Array(20),
    files: [{ path: ['a b.bin'], length: 100 }],
    multiFile: false,
    tiers: [],
  };
  it('reads url-list as a string or a list, keeps http(s) only, and writes it back', () => {
    const one = parseTorrent(buildTorrent({ ...base, webSeeds: ['http://x.example/a'] }), sha1);
    expect(one.webSeeds).toEqual(['http://x.example/a']);
    const raw = bencode.decode(buildTorrent({ ...base, webSeeds: ['http://x.example/a'] })) as Record<
      string,
      unknown
    >;
    expect(Buffer.from(raw['url-list'] as Uint8Array).toString()).toBe('http://x.example/a');
    const many = buildTorrent({
      ...base,
      webSeeds: ['https://m1/', 'ftp://no/', 'not a url', 'https://m1/', 'http://m2/x'],
    });
    expect(parseTorrent(many, sha1).webSeeds).toEqual(['https://m1/', 'http://m2/x']);
    expect(parseTorrent(buildTorrent(base), sha1).webSeeds).toEqual([]);
  });

  it('reads ws= from a magnet link, and a torrent`s magnet carries its web seeds', () => {
    const m = parseMagnet(
      `magnet:?xt=urn:btih:${'ab'.repeat(20)}&ws=${encodeURIComponent('http://h/f i.bin')}&ws=gopher://x`,
    );
    expect(m.webSeeds).toEqual(['http://h/f i.bin']);
    const t = parseTorrent(buildTorrent({ ...base, webSeeds: ['http://h/a b.bin'] }), sha1);
    expect(parseMagnet(magnetUri(t)).webSeeds).toEqual(['http://h/a b.bin']);
  });

  it('names a file on a web seed as BEP 19 says, each path component percent-encoded', () => {
    const single = {
      name: 'a b.bin',
      multiFile: false,
      files: [{ path: ['a b.bin'], length: 1, offset: 0 }],
    };
    expect(webSeedFileUrl('http://h/dl/file.bin', single, 0)).toBe('http://h/dl/file.bin');
    expect(webSeedFileUrl('http://h/dl/', single, 0)).toBe('http://h/dl/a%20b.bin');
    const multi = {
      name: 'Album ü',
      multiFile: true,
      files: [{ path: ['sub dir', '#1 ß.bin'], length: 1, offset: 0 }],
    };
    expect(webSeedFileUrl('http://h/m', multi, 0)).toBe(
      'http://h/m/Album%20%C3%BC/sub%20dir/%231%20%C3%9F.bin',
    );
    expect(webSeedFileUrl('http://h/m/', multi, 0)).toBe(
      'http://h/m/Album%20%C3%BC/sub%20dir/%231%20%C3%9F.bin',
    );
  });

  it('splits a byte range of the torrent by file', () => {
    const files = [
      { path: ['a'], length: 10, offset: 0 },
      { path: ['b'], length: 0, offset: 10 },
      { path: ['c'], length: 20, offset: 10 },
    ];
    expect(segments({ files }, 5, 15)).toEqual([
      { file: 0, offset: 5, length: 5 },
      { file: 2, offset: 0, length: 5 },
    ]);
    expect(segments({ files }, 12, 30)).toEqual([{ file: 2, offset: 2, length: 18 }]);
  });
});

describe('a web seed on the core: peers preferred, the origin shared', () => {
  const PIECES = 32;
  const PL = 32 * 1024;
  const infoHash = Buffer.alloc(20, 0xcc);
  const pid = (s: string) => Buffer.from(s.padEnd(20, '0'));
  const requests = (cmds: Command[], link: number) =>
    cmds
      .filter((c): c is Extract<Command, { type: 'send' }> => c.type === 'send' && c.link === link)
      .map((c) => c.msg)
      .filter((m): m is Extract<typeof m, { type: 'request' }> => m.type === 'request');
  const FAST = Uint8Array.from([0, 0, 0, 0, 0, 0, 0, 4]);
  const WS = 2 ** 30;

  /** A core with one peer (its id, the pieces it has) and a web seed, as node/web-seed.ts opens one. */
  function setup(me: string, peer: string, peerHas: number[]) {
    const core = new TorrentCore(
      {
        infoHash,
        peerId: pid(me),
        pieceCount: PIECES,
        pieceLength: PL,
        length: PIECES * PL,
        sha1,
        pipeline: 8,
      },
      rng(9),
    );
    core.webSeeds.self = pid(me).toString('latin1');
    core.webSeeds.kin = '-SS0001-';
    core.addLink(1, true, 0, undefined, { ip: '10.0.0.1', listenPort: 6881 });
    core.message(1, { type: 'handshake', reserved: new Uint8Array(8), infoHash, peerId: pid(peer) }, 0);
    core.message(1, { type: 'bitfield', bitfield: Bitfield.fromIndices(PIECES, peerHas).bytes }, 0);
    core.addLink(WS, false, 0);
    core.message(WS, { type: 'handshake', reserved: FAST, infoHash, peerId: pid('-WS0001-') }, 0);
    core.webSeeds.links.add(WS);
    core.message(WS, { type: 'haveAll' }, 0);
    return core;
  }
  const half = [...Array(PIECES / 2).keys()];

  it('is asked only for pieces no linked peer has, about one piece at a time', () => {
    const core = setup('-SS0001-me', '-XX0001-other', half);
    const first = requests(core.message(WS, { type: 'unchoke' }, 1), WS);
    expect(first.length).toBeGreaterThan(0);
    expect(first.length).toBeLessThanOrEqual(16);
    expect(first.every((r) => r.index >= PIECES / 2)).toBe(true);
  });

  it('peers of our own kind share the origin: each piece is one downloader`s to fetch from it', () => {
    // What the web seed may be asked for, piece by piece (the picker's view of its offer).
    const owned = (me: string, other: string) => {
      const core = setup(me, other, []);
      core.tick(1);
      const offer = core.webSeeds.offer(
        core.links.get(WS) as NonNullable<ReturnType<typeof core.links.get>>,
        core.picker.availability,
      );
      return new Set([...Array(PIECES).keys()].filter((i) => offer.has(i)));
    };
    const a = owned('-SS0001-aaaa', '-SS0001-bbbb');
    const b = owned('-SS0001-bbbb', '-SS0001-aaaa');
    expect(a.size).toBeGreaterThan(0);
    expect(b.size).toBeGreaterThan(0);
    // Each piece is one of theirs: the two sets split the torrent.
    for (const i of a) expect(b.has(i)).toBe(false);
    expect(a.size + b.size).toBe(PIECES);
    // Without kin (another client), every piece is ours to take.
    expect(owned('-SS0001-aaaa', '-XX0001-bbbb').size).toBe(PIECES);
  });

  /** The peer unchokes us and sends 8 blocks a second for a window and a bit; returns the time after. */
  function peerSends(core: TorrentCore, from: number): number {
    const peerReqs = requests(core.message(1, { type: 'unchoke' }, from), 1);
    let t = from + 10;
    for (let s = 0; s <= WEB_SEED_WINDOW_MS; s += 1000) {
      for (const r of peerReqs.splice(0, 8))
        peerReqs.push(
          ...requests(
            core.message(
              1,
              { type: 'piece', index: r.index, begin: r.begin, block: Buffer.alloc(r.length) },
              t,
            ),
            1,
          ),
        );
      peerReqs.push(...requests(core.tick(t), 1));
      t += 1000;
    }
    return t;
  }

  it('when peers have every piece: nothing while they keep the download going, anything once they go quiet', () => {
    const core = setup('-SS0001-me', '-XX0001-seed', [...Array(PIECES).keys()]);
    expect(requests(core.message(WS, { type: 'unchoke' }, 1), WS)).toEqual([]);
    // 8 blocks a second (128 KiB/s, over WEB_SEED_MIN_PEER_RATE) for a whole window: still nothing.
    expect(8 * 16384).toBeGreaterThan(WEB_SEED_MIN_PEER_RATE);
    let t = peerSends(core, 10);
    expect(core.webSeeds.fallback).toBe(false);
    // The peer goes quiet: within a window the web seed is asked for pieces again.
    let asked = 0;
    for (let s = 0; s <= WEB_SEED_WINDOW_MS + 1000; s += 1000) {
      t += 1000;
      asked += requests(core.tick(t), WS).length;
    }
    expect(core.webSeeds.fallback).toBe(true);
    expect(asked).toBeGreaterThan(0);
  });
});
