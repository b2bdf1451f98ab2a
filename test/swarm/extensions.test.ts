import bencode from 'bencode';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  answerMetadata,
  extensionHandshake,
  MAX_EXTENSION_HANDSHAKE,
  MAX_METADATA_REQUEST,
  METADATA_PIECE,
  OUR_EXTENSIONS,
  readExtensionHandshake,
} from '../../src/swarm/extensions.js';
import { MAX_METADATA_SIZE, MetadataFetch } from '../../src/swarm/metadata.js';

/** BEP 10 handshakes and BEP 9 metadata answers, pure. */

const metadata = Buffer.alloc(METADATA_PIECE * 2 + 100, 7);
const dec = (p: Uint8Array) => bencode.decode(Buffer.from(p)) as Record<string, any>;

describe('extension protocol (BEP 10) and metadata exchange (BEP 9)', () => {
  const ours = { metadata, reqq: 512, pex: true, listenPort: 6881, yourIp: Uint8Array.from([10, 0, 0, 7]) };
  it('our handshake names ut_metadata, ut_pex, the metadata size, our client, port, request queue and your IP', () => {
    const m = extensionHandshake(ours);
    expect(m).toMatchObject({ type: 'extended', ext: 0 });
    const d = dec((m as { payload: Uint8Array }).payload);
    expect(d.m.ut_metadata).toBe(OUR_EXTENSIONS.ut_metadata);
    expect(d.metadata_size).toBe(metadata.length);
    expect(d.reqq).toBe(512);
    expect(d.m.ut_pex).toBe(OUR_EXTENSIONS.ut_pex);
    expect(d.p).toBe(6881);
    expect([...d.yourip]).toEqual([10, 0, 0, 7]);
    expect(Buffer.from(d.v).toString()).toMatch(/^swarmshare/);
    // No metadata, no PEX (a private torrent), no port, no address: none of them said.
    const bare = dec(
      (
        extensionHandshake({ metadata: null, reqq: 1, pex: false, listenPort: null, yourIp: null }) as {
          payload: Uint8Array;
        }
      ).payload,
    );
    expect(bare.metadata_size).toBeUndefined();
    expect(bare.m.ut_pex).toBeUndefined();
    expect(bare.p).toBeUndefined();
    expect(bare.yourip).toBeUndefined();
  });

  it('reads a peer handshake’s ids, size and port; absent or unusable fields read as none; garbage is refused', () => {
    expect(
      readExtensionHandshake(
        bencode.encode({ m: { ut_metadata: 9, ut_pex: 1 }, metadata_size: 77, p: 51413 }),
      ),
    ).toEqual({ utMetadata: 9, utPex: 1, metadataSize: 77, listenPort: 51413 });
    const none = { utMetadata: 0, utPex: 0, metadataSize: null, listenPort: null };
    expect(readExtensionHandshake(bencode.encode({ m: {} }))).toEqual(none);
    expect(readExtensionHandshake(bencode.encode({ m: { ut_metadata: 300, ut_pex: -1 }, p: 70000 }))).toEqual(
      none,
    );
    expect(readExtensionHandshake(Buffer.from('not bencode'))).toMatch(/not a bencoded dictionary/);
    expect(readExtensionHandshake(bencode.encode([1, 2]))).toMatch(/not a bencoded dictionary/);
    expect(readExtensionHandshake(new Uint8Array(MAX_EXTENSION_HANDSHAKE + 1))).toMatch(/over 65536/);
  });

  it('answers a request with the piece (its last one short), out of range with a reject', () => {
    const ask = (piece: number) => answerMetadata(bencode.encode({ msg_type: 0, piece }), metadata, 9);
    const last = ask(2) as { ext: number; payload: Uint8Array };
    expect(last.ext).toBe(9);
    const head = bencode.encode({ msg_type: 1, piece: 2, total_size: metadata.length });
    expect(Buffer.from(last.payload.subarray(0, head.length)).equals(Buffer.from(head))).toBe(true);
    expect(last.payload.length - head.length).toBe(100);
    expect(dec((ask(3) as { payload: Uint8Array }).payload)).toMatchObject({ msg_type: 2, piece: 3 });
    expect(
      dec(
        (answerMetadata(bencode.encode({ msg_type: 0, piece: 0 }), null, 9) as { payload: Uint8Array })
          .payload,
      ),
    ).toMatchObject({ msg_type: 2 });
    // Nothing to answer: no id to answer to, not a request.
    expect(answerMetadata(bencode.encode({ msg_type: 0, piece: 0 }), metadata, 0)).toBeNull();
    expect(answerMetadata(bencode.encode({ msg_type: 1, piece: 0 }), metadata, 9)).toBeNull();
    // Refused (the link closes): unreadable, oversized.
    expect(answerMetadata(Buffer.from('zz'), metadata, 9)).toMatch(/not a bencoded dictionary/);
    expect(answerMetadata(new Uint8Array(MAX_METADATA_REQUEST + 1), metadata, 9)).toMatch(/over 1024/);
  });

  it('any payload: no throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), (p) => {
        readExtensionHandshake(p);
        answerMetadata(p, metadata, 5);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('fetching metadata from a peer (BEP 9)', () => {
  const piece = (i: number, data: Uint8Array, total: number) =>
    Buffer.concat([bencode.encode({ msg_type: 1, piece: i, total_size: total }), data]);

  it('asks for each 16 KiB piece in turn and hands back the whole', () => {
    const info = Buffer.alloc(METADATA_PIECE + 500, 1);
    const f = new MetadataFetch(7, info.length);
    expect(dec((f.start() as { payload: Uint8Array }).payload)).toEqual({ msg_type: 0, piece: 0 });
    const next = f.receive(piece(0, info.subarray(0, METADATA_PIECE), info.length));
    expect(next.kind).toBe('send');
    expect(dec((next as { msg: { payload: Uint8Array } }).msg.payload)).toEqual({ msg_type: 0, piece: 1 });
    const done = f.receive(piece(1, info.subarray(METADATA_PIECE), info.length));
    expect(done.kind).toBe('done');
    expect(Buffer.from((done as { info: Uint8Array }).info).equals(info)).toBe(true);
  });

  it('fails on a reject, a piece not asked for, a piece of the wrong size, garbage', () => {
    const f = () => new MetadataFetch(7, 100);
    expect(f().receive(bencode.encode({ msg_type: 2, piece: 0 })).kind).toBe('fail');
    expect(f().receive(piece(1, Buffer.alloc(100), 100)).kind).toBe('fail');
    expect(f().receive(piece(0, Buffer.alloc(99), 100)).kind).toBe('fail');
    expect(f().receive(Buffer.from('xx')).kind).toBe('fail');
  });

  it('refuses a peer without ut_metadata, without a size, or announcing more than the cap', () => {
    expect(MetadataFetch.refuse(0, 100)).toMatch(/does not serve metadata/);
    expect(MetadataFetch.refuse(3, undefined)).toMatch(/no metadata_size/);
    expect(MetadataFetch.refuse(3, MAX_METADATA_SIZE + 1)).toMatch(/over/);
    expect(MetadataFetch.refuse(3, 1000)).toBeNull();
  });

  it('any message: no throw', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 500 }), (p) => {
        new MetadataFetch(3, 300).receive(p);
      }),
      { numRuns: 1000 },
    );
  });
});
