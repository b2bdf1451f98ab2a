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

describe('a web seed on the core: peers preferred', () => {
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

  function setup() {
    const core = new TorrentCore(
      {
        infoHash,
        peerId: pid('-SS-me'),
        pieceCount: PIECES,
        pieceLength: PL,
        length: PIECES * PL,
        sha1,
        pipeline: 8,
      },
      rng(9),
    );
    // A peer with the first half, unchoking us.
    core.addLink(1, true, 0, undefined, { ip: '10.0.0.1', listenPort: 6881 });
    core.message(1, { type: 'handshake', reserved: new Uint8Array(8), infoHash, peerId: pid('-XX-peer') }, 0);
    const half = new Bitfield(PIECES);
    for (let i = 0; i < PIECES / 2; i++) half.set(i);
    core.message(1, { type: 'bitfield', bitfield: half.bytes }, 0);
    // A web seed, as node/web-seed.ts opens one.
    const WS = 2 ** 30;
    core.addLink(WS, false, 0);
    core.message(WS, { type: 'handshake', reserved: FAST, infoHash, peerId: pid('-WS0001-') }, 0);
    core.webSeeds.links.add(WS);
    core.message(WS, { type: 'haveAll' }, 0);
    return { core, WS };
  }

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

  it('is asked for anything while peers send too little, then only for pieces no peer has', () => {
    const { core, WS } = setup();
    // At first nothing came from peers: it may be asked for any piece.
    const first = requests(core.message(WS, { type: 'unchoke' }, 1), WS);
    expect(first.length).toBe(8);
    expect(core.webSeeds.fallback).toBe(true);
    // The peer sends 8 blocks a second (128 KiB/s, over WEB_SEED_MIN_PEER_RATE) for a whole window.
    expect(8 * 16384).toBeGreaterThan(WEB_SEED_MIN_PEER_RATE);
    const t = peerSends(core, 10);
    expect(core.webSeeds.fallback).toBe(false);
    // Its first requests answered (and rejected: nothing new) — new ones are for the second half only.
    for (const r of first)
      core.message(WS, { type: 'reject', index: r.index, begin: r.begin, length: r.length }, t);
    const next = requests(core.tick(t + 1), WS);
    expect(next.length).toBeGreaterThan(0);
    expect(next.every((r) => r.index >= PIECES / 2)).toBe(true);
  });

  it('a peer gone quiet puts the web seed back to anything', () => {
    const { core } = setup();
    let t = peerSends(core, 10);
    expect(core.webSeeds.fallback).toBe(false);
    for (let s = 0; s <= WEB_SEED_WINDOW_MS; s += 1000) {
      t += 1000;
      core.tick(t);
    }
    expect(core.webSeeds.fallback).toBe(true);
  });
});
