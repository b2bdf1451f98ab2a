import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Decoder } from '../../src/wire/decoder.js';
import { encode, encodeHandshake } from '../../src/wire/encode.js';
import type { Message } from '../../src/wire/messages.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// Fixtures: the BEP 3 layouts written out by hand.
const fixtures: [Message, string][] = [
  [{ type: 'keepAlive' }, '00000000'],
  [{ type: 'choke' }, '00000001 00'],
  [{ type: 'unchoke' }, '00000001 01'],
  [{ type: 'interested' }, '00000001 02'],
  [{ type: 'notInterested' }, '00000001 03'],
  [{ type: 'have', index: 0x01020304 }, '00000005 04 01020304'],
  [{ type: 'bitfield', bitfield: hex('c0ff01') }, '00000004 05 c0ff01'],
  [{ type: 'request', index: 1, begin: 0x4000, length: 0x4000 }, '0000000d 06 00000001 00004000 00004000'],
  [{ type: 'piece', index: 2, begin: 0, block: hex('deadbeef') }, '0000000d 07 00000002 00000000 deadbeef'],
  [{ type: 'cancel', index: 1, begin: 0x4000, length: 0x4000 }, '0000000d 08 00000001 00004000 00004000'],
  [{ type: 'port', port: 6881 }, '00000003 09 1ae1'],
];

const norm = (m: unknown) =>
  JSON.parse(
    JSON.stringify(m, (_k, v) =>
      v instanceof Uint8Array || (v && v.type === 'Buffer') ? Buffer.from(v.data ?? v).toString('hex') : v,
    ),
  );

describe('wire codec fixtures', () => {
  for (const [m, bytes] of fixtures) {
    it(`${m.type} encodes to ${bytes} and decodes back`, () => {
      expect(encode(m).toString('hex')).toBe(hex(bytes).toString('hex'));
      const d = new Decoder({ handshake: false });
      const r = d.push(hex(bytes));
      expect(r.error).toBeUndefined();
      expect(norm(r.messages)).toEqual(norm([m]));
    });
  }

  it('handshake: 19, "BitTorrent protocol", reserved, info_hash, peer_id', () => {
    const infoHash = Buffer.alloc(20, 0xaa);
    const peerId = Buffer.from('-SS0001-123456789012');
    const b = encodeHandshake({ reserved: Buffer.alloc(8), infoHash, peerId });
    expect(b.subarray(0, 20).toString('latin1')).toBe('\x13BitTorrent protocol');
    expect(b.length).toBe(68);
    const r = new Decoder().push(b);
    expect(r.messages).toHaveLength(1);
    const h = r.messages[0] as { infoHash: Uint8Array; peerId: Uint8Array };
    expect(Buffer.from(h.infoHash).equals(infoHash)).toBe(true);
    expect(Buffer.from(h.peerId).equals(peerId)).toBe(true);
  });

  it('rejects a non-BitTorrent first byte at once (an encrypted handshake attempt)', () => {
    const r = new Decoder().push(Buffer.from([0x8f, 1, 2]));
    expect(r.error?.code).toBe('ERR_BAD_HANDSHAKE');
  });

  it('rejects a length prefix of 2^32-1 before buffering it', () => {
    const d = new Decoder({ handshake: false });
    const r = d.push(hex('ffffffff 07'));
    expect(r.error).toMatchObject({ code: 'ERR_MESSAGE_TOO_LARGE', received: 0xffffffff });
    expect(d.buffered).toBe(0);
  });

  it('rejects wrong fixed lengths with what it expected', () => {
    const r = new Decoder({ handshake: false }).push(hex('00000002 04 01'));
    expect(r.error).toMatchObject({ code: 'ERR_BAD_MESSAGE_LENGTH', received: 2, expected: 5 });
  });

  it('skips unknown message ids', () => {
    const r = new Decoder({ handshake: false }).push(hex('00000003 15 0000 00000001 01'));
    expect(r.messages).toEqual([{ type: 'unknown', id: 0x15, length: 2 }, { type: 'unchoke' }]);
  });

  it('decodes BEP 10 extended messages: <len><20><ext id><payload>; one without its id is refused', () => {
    const r = new Decoder({ handshake: false }).push(hex('00000004 14 00 6465'));
    expect(norm(r.messages)).toEqual(norm([{ type: 'extended', ext: 0, payload: Buffer.from('de') }]));
    expect(encode({ type: 'extended', ext: 3, payload: Buffer.from('xy') }).toString('hex')).toBe(
      '0000000414037879',
    );
    const bad = new Decoder({ handshake: false }).push(hex('00000001 14'));
    expect(bad.error).toMatchObject({ code: 'ERR_BAD_MESSAGE_LENGTH', received: 1, expected: 2 });
  });
});

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const arbMessage: fc.Arbitrary<Message> = fc.oneof(
  fc.constant<Message>({ type: 'keepAlive' }),
  fc.constantFrom<Message>(
    { type: 'choke' },
    { type: 'unchoke' },
    { type: 'interested' },
    { type: 'notInterested' },
  ),
  u32.map<Message>((index) => ({ type: 'have', index })),
  fc
    .uint8Array({ minLength: 0, maxLength: 64 })
    .map<Message>((b) => ({ type: 'bitfield', bitfield: Buffer.from(b) })),
  fc
    .tuple(u32, u32, u32)
    .map<Message>(([index, begin, length]) => ({ type: 'request', index, begin, length })),
  fc
    .tuple(u32, u32, u32)
    .map<Message>(([index, begin, length]) => ({ type: 'cancel', index, begin, length })),
  fc
    .tuple(u32, u32, fc.uint8Array({ maxLength: 300 }))
    .map<Message>(([index, begin, b]) => ({ type: 'piece', index, begin, block: Buffer.from(b) })),
  fc.integer({ min: 0, max: 65535 }).map<Message>((port) => ({ type: 'port', port })),
  fc
    .tuple(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 300 }))
    .map<Message>(([ext, p]) => ({ type: 'extended', ext, payload: Buffer.from(p) })),
);

describe('wire codec properties', () => {
  it('decode(encode(m)) equals m', () => {
    fc.assert(
      fc.property(arbMessage, (m) => {
        const r = new Decoder({ handshake: false }).push(encode(m));
        expect(r.error).toBeUndefined();
        expect(norm(r.messages)).toEqual(norm([m]));
      }),
    );
  });

  it('any split of a stream decodes to the same messages', () => {
    fc.assert(
      fc.property(
        fc.array(arbMessage, { maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 30 }),
        (msgs, cuts) => {
          const stream = Buffer.concat(msgs.map(encode));
          const points = [...new Set(cuts.map((c) => (stream.length === 0 ? 0 : c % stream.length)))].sort(
            (a, b) => a - b,
          );
          const d = new Decoder({ handshake: false });
          const out: unknown[] = [];
          let prev = 0;
          for (const p of [...points, stream.length]) {
            const r = d.push(stream.subarray(prev, p));
            expect(r.error).toBeUndefined();
            out.push(...r.messages);
            prev = p;
          }
          expect(norm(out)).toEqual(norm(msgs));
          expect(d.buffered).toBe(0);
        },
      ),
    );
  });

  it('random bytes never throw out of the decoder and never buffer past the limit', () => {
    // A small limit, so the streams below really reach it: length prefixes around it (under, at,
    // over), bodies that do and do not match them, cut at random points; and pure noise.
    const max = 64;
    const framed = fc
      .array(fc.tuple(fc.nat(max + 16), fc.uint8Array({ maxLength: max + 16 })), { maxLength: 12 })
      .map((frames) =>
        Buffer.concat(
          frames.flatMap(([len, body]) => {
            const prefix = Buffer.alloc(4);
            prefix.writeUInt32BE(len);
            return [prefix, body];
          }),
        ),
      );
    const stream = fc.oneof(
      fc.uint8Array({ maxLength: 2000 }).map((b) => Buffer.from(b)),
      framed,
    );
    let checked = 0;
    let nearLimit = 0;
    let refused = 0;
    fc.assert(
      fc.property(fc.boolean(), stream, fc.array(fc.nat(), { maxLength: 20 }), (hs, bytes, cuts) => {
        const d = new Decoder({ handshake: hs, maxMessageLength: max });
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        let prev = 0;
        for (const p of [...points, bytes.length]) {
          const r = d.push(bytes.subarray(prev, p));
          prev = p;
          if (r.error) {
            refused++;
            break;
          }
          checked++;
          if (d.buffered > max / 2) nearLimit++;
          expect(d.buffered).toBeLessThanOrEqual(max + 4);
        }
      }),
      { numRuns: 1000 },
    );
    // The property was exercised where it matters: streams held close to the limit, and streams
    // refused for going past it.
    expect(checked).toBeGreaterThan(500);
    expect(nearLimit).toBeGreaterThan(20);
    expect(refused).toBeGreaterThan(100);
  });

  it('mutated valid streams never throw', () => {
    fc.assert(
      fc.property(
        fc.array(arbMessage, { minLength: 1, maxLength: 10 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }),
        (msgs, flips) => {
          const stream = Buffer.concat(msgs.map(encode));
          for (const [at, v] of flips) stream[at % stream.length] = v;
          const d = new Decoder({ handshake: false });
          expect(() => d.push(stream)).not.toThrow();
        },
      ),
      { numRuns: 500 },
    );
  });
});
