import bencode from 'bencode';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_EARLY_PEX, PEX_MIN_GAP_MS, PexLink, pexDue, pexReceived } from '../../src/swarm/pex.js';
import { Decoder } from '../../src/wire/decoder.js';
import { encode } from '../../src/wire/encode.js';
import type { Message } from '../../src/wire/messages.js';
import {
  decodePex,
  encodePex,
  MAX_PEX_MESSAGE,
  MAX_PEX_READ,
  MAX_PEX_SEND,
  PEX_CONNECTABLE,
  PEX_SEED,
  type PexPeer,
} from '../../src/wire/pex.js';

/** BEP 11 peer exchange: the codec (wire/pex.ts) and the policy (swarm/pex.ts), pure. */

const v4 = (i: number, flags = 0): PexPeer => ({
  ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
  port: 6881,
  flags,
});

const arbPeer = fc
  .oneof(
    fc
      .tuple(fc.integer({ min: 1, max: 223 }), fc.nat(255), fc.nat(255), fc.integer({ min: 1, max: 254 }))
      .map((b) => b.join('.')),
    fc
      .array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 })
      .filter(
        (g) =>
          (g[0] as number) >> 8 !== 0xff &&
          g.some((x) => x !== 0) &&
          !(g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff),
      )
      .map((g) => g.map((x) => x.toString(16)).join(':')),
  )
  .chain((ip) =>
    fc.record({ ip: fc.constant(ip), port: fc.integer({ min: 1, max: 65535 }), flags: fc.nat(255) }),
  );

describe('PEX codec (BEP 11)', () => {
  it('decode(encode(added, dropped)) gives them back, both families, flags with the added', () => {
    fc.assert(
      fc.property(
        fc.array(arbPeer, { maxLength: 40 }),
        fc.array(arbPeer, { maxLength: 40 }),
        (added, dropped) => {
          const m = decodePex(encodePex(added, dropped));
          if (typeof m === 'string') throw new Error(m);
          const fam = (p: { ip: string }) => (p.ip.includes(':') ? 6 : 4);
          const order = <T extends { ip: string }>(ps: T[]) => [
            ...ps.filter((p) => fam(p) === 4),
            ...ps.filter((p) => fam(p) === 6),
          ];
          expect(m.added.map((p) => [p.port, p.flags, fam(p)])).toEqual(
            order(added).map((p) => [p.port, p.flags, fam(p)]),
          );
          expect(m.dropped.map((p) => p.port)).toEqual(order(dropped).map((p) => p.port));
        },
      ),
    );
  });

  it('sends at most 50 per list and family; reads at most 100; skips unusable addresses', () => {
    const many = Array.from({ length: 300 }, (_, i) => v4(i + 1));
    const m = decodePex(encodePex(many, many));
    if (typeof m === 'string') throw new Error(m);
    expect(m.added).toHaveLength(MAX_PEX_SEND);
    expect(m.dropped).toHaveLength(MAX_PEX_SEND);
    // A sender that ignores the BEP's 50: we take 100.
    const added = Buffer.alloc(300 * 6, 1);
    const big = decodePex(bencode.encode({ added }));
    expect(typeof big !== 'string' && big.added.length).toBe(MAX_PEX_READ);
    // Port 0, the unspecified address, multicast, broadcast: skipped, the good one kept with its flags.
    const list = Buffer.from([
      0, 0, 0, 0, 1, 1, 224, 0, 0, 1, 1, 1, 255, 255, 255, 255, 1, 1, 10, 0, 0, 1, 0, 0, 10, 0, 0, 2, 0x1a,
      0xe1,
    ]);
    const r = decodePex(bencode.encode({ added: list, 'added.f': Buffer.from([1, 2, 3, 4, PEX_SEED]) }));
    expect(r).toEqual({ added: [{ ip: '10.0.0.2', port: 6881, flags: PEX_SEED }], dropped: [] });
  });

  it('refuses what is not a PEX message: too large, not a dictionary, lists of partial addresses', () => {
    expect(decodePex(new Uint8Array(MAX_PEX_MESSAGE + 1))).toMatch(/over 16384/);
    expect(decodePex(Buffer.from('zz'))).toMatch(/not bencoded/);
    expect(decodePex(bencode.encode([1]))).toMatch(/not a dictionary/);
    expect(decodePex(bencode.encode({ added: Buffer.alloc(7) }))).toMatch(/6-byte/);
    expect(decodePex(bencode.encode({ dropped6: 5 }))).toMatch(/18-byte/);
    expect(decodePex(bencode.encode({}))).toEqual({ added: [], dropped: [] });
  });

  it('split anywhere on the wire, PEX messages decode the same; random payloads never throw', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.array(arbPeer, { maxLength: 10 }), fc.array(arbPeer, { maxLength: 10 })), {
          maxLength: 6,
        }),
        fc.array(fc.nat(), { maxLength: 20 }),
        (msgs, cuts) => {
          const payloads = msgs.map(([a, d]) => encodePex(a, d));
          const stream = Buffer.concat(payloads.map((p) => encode({ type: 'extended', ext: 1, payload: p })));
          const points = [...new Set(cuts.map((c) => (stream.length === 0 ? 0 : c % stream.length)))].sort(
            (a, b) => a - b,
          );
          const d = new Decoder({ handshake: false });
          const got: unknown[] = [];
          let prev = 0;
          for (const p of [...points, stream.length]) {
            got.push(...d.push(stream.subarray(prev, p)).messages);
            prev = p;
          }
          expect(got.map((m) => decodePex((m as { payload: Uint8Array }).payload))).toEqual(
            payloads.map(decodePex),
          );
        },
      ),
      { numRuns: 300 },
    );
    // Random bytes, and well-formed dictionaries whose address lists run past what we read (up to
    // 400 IPv4 and 400 IPv6 peers, random flags): never a throw, and at most MAX_PEX_READ of each
    // family kept.
    const dict = fc
      .tuple(fc.nat(400), fc.nat(400), fc.uint8Array({ maxLength: 400 }))
      .map(([n4, n6, flags]) =>
        bencode.encode({
          added: Buffer.alloc(6 * n4, 7),
          'added.f': Buffer.from(flags),
          added6: Buffer.alloc(18 * n6, 9),
        }),
      );
    let decoded = 0;
    let capped = 0;
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 3000 }), dict), (p) => {
        const m = decodePex(p);
        if (typeof m === 'string') return;
        decoded++;
        expect(m.added.length).toBeLessThanOrEqual(2 * MAX_PEX_READ);
        if (m.added.length > MAX_PEX_READ) capped++;
      }),
      { numRuns: 1000 },
    );
    expect(decoded).toBeGreaterThan(300);
    expect(capped).toBeGreaterThan(50);
  });
});

describe('PEX policy', () => {
  const linked = (ids: number[]) => new Map(ids.map((i) => [`${v4(i).ip}:6881`, v4(i, PEX_CONNECTABLE)]));
  const decoded = (m: Message | null) => {
    if (m === null || m.type !== 'extended') return null;
    return decodePex(m.payload);
  };

  it('one message per interval, with what changed since the last, never the peer itself', () => {
    const l = new PexLink(7);
    const self = v4(1);
    const first = pexDue(l, linked([1, 2, 3]), self, 0, 60_000);
    expect(first).toMatchObject({ type: 'extended', ext: 7 });
    expect(decoded(first)).toEqual({ added: [v4(2, PEX_CONNECTABLE), v4(3, PEX_CONNECTABLE)], dropped: [] });
    // Not due before the interval, whatever changed.
    expect(pexDue(l, linked([1, 3, 4]), self, 59_999, 60_000)).toBeNull();
    expect(decoded(pexDue(l, linked([1, 3, 4]), self, 60_000, 60_000))).toEqual({
      added: [v4(4, PEX_CONNECTABLE)],
      dropped: [{ ip: v4(2).ip, port: 6881 }],
    });
    // Nothing changed: nothing sent.
    expect(pexDue(l, linked([1, 3, 4]), self, 200_000, 60_000)).toBeNull();
  });

  it('sends at most 50 added at a time; the rest in later messages', () => {
    const l = new PexLink(1);
    const all = linked(Array.from({ length: 120 }, (_, i) => i + 1));
    const sizes: number[] = [];
    for (let t = 0; t < 5; t++) {
      const m = decoded(pexDue(l, all, null, t * 60_000, 60_000));
      sizes.push(m === null || typeof m === 'string' ? 0 : m.added.length);
    }
    expect(sizes).toEqual([50, 50, 20, 0, 0]);
  });

  it('messages faster than the minimum gap are ignored; a steady flood closes the link', () => {
    const l = new PexLink(1);
    const msg = encodePex([v4(9)], []);
    expect(pexReceived(l, msg, 0)).toEqual({ peers: [v4(9)] });
    for (let i = 1; i <= MAX_EARLY_PEX; i++) expect(pexReceived(l, msg, i)).toEqual({ peers: [] });
    expect(pexReceived(l, msg, PEX_MIN_GAP_MS - 1)).toMatchObject({ code: 'ERR_PEX_FLOOD' });
    const calm = new PexLink(1);
    expect(pexReceived(calm, msg, 0)).toEqual({ peers: [v4(9)] });
    expect(pexReceived(calm, msg, PEX_MIN_GAP_MS)).toEqual({ peers: [v4(9)] });
    expect(pexReceived(calm, Buffer.from('garbage'), PEX_MIN_GAP_MS * 2)).toMatchObject({
      code: 'ERR_BAD_EXTENSION',
    });
  });
});
