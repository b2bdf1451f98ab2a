import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeKrpc,
  decodeNodes,
  encodeError,
  encodeNodes,
  encodeQuery,
  encodeResponse,
  MAX_KRPC_PACKET,
} from '../../src/dht/krpc.js';

/** KRPC (BEP 5): the BEP's own example messages, byte for byte, and any bytes without a throw. */

const b = (s: string) => Buffer.from(s, 'latin1');
const t = b('aa');
const id = b('abcdefghij0123456789');
const other = b('mnopqrstuvwxyz123456');

describe('KRPC codec (BEP 5 examples)', () => {
  it('ping: query and response', () => {
    const q = 'd1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe';
    expect(Buffer.from(encodeQuery(t, { q: 'ping', id })).toString('latin1')).toBe(q);
    expect(decodeKrpc(b(q))).toMatchObject({ y: 'q', query: { q: 'ping' } });
    const r = 'd1:rd2:id20:mnopqrstuvwxyz123456e1:t2:aa1:y1:re';
    expect(Buffer.from(encodeResponse(t, { id: other })).toString('latin1')).toBe(r);
    const m = decodeKrpc(b(r));
    expect(m).toMatchObject({ y: 'r' });
    expect(Buffer.from((m as { r: { id: Uint8Array } }).r.id).toString()).toBe('mnopqrstuvwxyz123456');
  });

  it('find_node and get_peers queries', () => {
    const fn = 'd1:ad2:id20:abcdefghij01234567896:target20:mnopqrstuvwxyz123456e1:q9:find_node1:t2:aa1:y1:qe';
    expect(Buffer.from(encodeQuery(t, { q: 'find_node', id, target: other })).toString('latin1')).toBe(fn);
    expect(decodeKrpc(b(fn))).toMatchObject({ y: 'q', query: { q: 'find_node' } });
    const gp =
      'd1:ad2:id20:abcdefghij01234567899:info_hash20:mnopqrstuvwxyz123456e1:q9:get_peers1:t2:aa1:y1:qe';
    expect(Buffer.from(encodeQuery(t, { q: 'get_peers', id, infoHash: other })).toString('latin1')).toBe(gp);
  });

  it('get_peers response with values, and announce_peer with implied_port', () => {
    const r = 'd1:rd2:id20:abcdefghij01234567895:token8:aoeusnth6:valuesl6:axje.u6:idhtnmee1:t2:aa1:y1:re';
    const m = decodeKrpc(b(r)) as {
      y: 'r';
      r: { values: { ip: string; port: number }[]; token: Uint8Array };
    };
    expect(Buffer.from(m.r.token).toString()).toBe('aoeusnth');
    // "axje.u" = 97.120.106.101 port 0x2e75; "idhtnm" = 105.100.104.116 port 0x6e6d.
    expect(m.r.values).toEqual([
      { ip: '97.120.106.101', port: 0x2e75 },
      { ip: '105.100.104.116', port: 0x6e6d },
    ]);
    const a =
      'd1:ad2:id20:abcdefghij012345678912:implied_porti1e9:info_hash20:mnopqrstuvwxyz1234564:porti6881e5:token8:aoeusnthe1:q13:announce_peer1:t2:aa1:y1:qe';
    expect(
      Buffer.from(
        encodeQuery(t, {
          q: 'announce_peer',
          id,
          infoHash: other,
          port: 6881,
          token: b('aoeusnth'),
          impliedPort: true,
        }),
      ).toString('latin1'),
    ).toBe(a);
    expect(decodeKrpc(b(a))).toMatchObject({
      y: 'q',
      query: { q: 'announce_peer', port: 6881, impliedPort: true },
    });
  });

  it('error', () => {
    const e = 'd1:eli201e23:A Generic Error Ocurrede1:t2:aa1:y1:ee';
    expect(Buffer.from(encodeError(t, 201, 'A Generic Error Ocurred')).toString('latin1')).toBe(e);
    expect(decodeKrpc(b(e))).toMatchObject({ y: 'e', code: 201, message: 'A Generic Error Ocurred' });
  });

  it('compact node info round-trips; partial entries and unusable addresses are skipped', () => {
    const nodes = [
      { id: Buffer.alloc(20, 1), ip: '10.0.0.1', port: 6881 },
      { id: Buffer.alloc(20, 2), ip: '192.168.1.9', port: 1 },
    ];
    const enc = encodeNodes(nodes);
    expect(enc.length).toBe(52);
    expect(decodeNodes(enc)).toEqual(nodes.map((n) => ({ ...n, id: Uint8Array.from(n.id) })));
    expect(decodeNodes(Buffer.concat([enc, Buffer.alloc(10)]))).toHaveLength(2);
    const zeroPort = Buffer.concat([Buffer.alloc(20, 3), Buffer.from([10, 0, 0, 1, 0, 0])]);
    expect(decodeNodes(zeroPort)).toEqual([]);
  });

  it('refuses what is not KRPC, with a reason, and never throws', () => {
    expect(decodeKrpc(new Uint8Array(MAX_KRPC_PACKET + 1))).toMatchObject({
      error: expect.stringMatching(/over/),
    });
    expect(decodeKrpc(b('zz'))).toMatchObject({ error: 'not bencoded' });
    expect(decodeKrpc(b('d1:t2:aa1:y1:qe'))).toMatchObject({ error: 'query without arguments' });
    expect(decodeKrpc(b('d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe'))).toMatchObject({
      error: expect.stringMatching(/20-byte id/),
    });
    expect(decodeKrpc(b('d1:ad2:id20:abcdefghij0123456789e1:q4:vote1:t2:aa1:y1:qe'))).toMatchObject({
      unknownMethod: true,
    });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (p) => {
        decodeKrpc(p);
      }),
      { numRuns: 2000 },
    );
  });
});
