import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isMagnet, parseMagnet } from '../../src/core/magnet.js';
import { magnetUri } from '../../src/core/metainfo.js';

const HEX = 'c12fe1c06bba254a9dc9f519b335aa7c1367a88a';

describe('magnet links (BEP 9)', () => {
  it('reads the info hash (hex or base32), name, length, trackers and peers', () => {
    const m = parseMagnet(
      `magnet:?xt=urn:btih:${HEX}&dn=Some+File.iso&xl=1234&tr=udp%3A%2F%2Ft1%3A6969%2Fannounce&tr=http%3A%2F%2Ft2%2Fannounce&tr=udp%3A%2F%2Ft1%3A6969%2Fannounce&x.pe=10.0.0.1%3A6881&x.pe=%5B%3A%3A1%5D%3A51413`,
    );
    expect(m.infoHashHex).toBe(HEX);
    expect(m.name).toBe('Some File.iso');
    expect(m.length).toBe(1234);
    expect(m.trackers).toEqual(['udp://t1:6969/announce', 'http://t2/announce']);
    expect(m.peers).toEqual([
      { host: '10.0.0.1', port: 6881 },
      { host: '::1', port: 51413 },
    ]);
    // The same hash in base32 (BEP 9 allows both).
    expect(parseMagnet('magnet:?xt=urn:btih:YEX6DQDLXISUVHOJ6UM3GNNKPQJWPKEK').infoHashHex).toBe(HEX);
  });

  it('reads back what create prints', () => {
    const uri = magnetUri({ infoHashHex: HEX, name: 'a b', trackers: ['http://x/announce'], length: 5 });
    expect(parseMagnet(uri)).toMatchObject({
      infoHashHex: HEX,
      name: 'a b',
      trackers: ['http://x/announce'],
      length: 5,
    });
  });

  it('says what is wrong with a bad one', () => {
    expect(() => parseMagnet('http://x')).toThrow(/not a magnet link/);
    expect(() => parseMagnet('magnet:?dn=x')).toThrow(/no BitTorrent info hash/);
    expect(() => parseMagnet('magnet:?xt=urn:btih:1234')).toThrow(/not an info hash/);
    expect(() => parseMagnet(`magnet:?xt=urn:btih:${HEX}&x.pe=nohost`)).toThrow(/not host:port/);
    expect(() => parseMagnet(`magnet:?xt=urn:btih:${HEX}&dn=%E0%A4%A`)).toThrow(/percent-encoding/);
    expect(isMagnet('MAGNET:?xt=1')).toBe(true);
  });

  it('any text: a Magnet or a MagnetError, never anything else', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (s) => {
        try {
          parseMagnet(`magnet:?${s}`);
        } catch (e) {
          expect((e as Error).name).toBe('Error');
          expect((e as { code?: string }).code).toBe('ERR_BAD_TORRENT');
        }
      }),
      { numRuns: 1000 },
    );
  });
});
