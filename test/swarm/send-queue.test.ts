import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../src/core/bitfield.js';
import { SERVE_WITHIN_MS } from '../../src/swarm/send-queue.js';
import { type Command, TorrentCore } from '../../src/swarm/torrent-core.js';

/** Requests held in the core until a paced uplink takes them (sendAhead; send-queue.ts). */

const PIECES = 8;
const PL = 64 * 1024;
const B = 16384;
const infoHash = Buffer.alloc(20, 0xbb);
const pid = (n: number) => Buffer.from(`-XX0001-${String(n).padStart(12, '0')}`);
const FAST = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0x04]);
const PLAIN = Buffer.alloc(8);

function seed(sendAhead?: number) {
  const have = new Bitfield(PIECES);
  for (let i = 0; i < PIECES; i++) have.set(i);
  const c = new TorrentCore(
    { infoHash, peerId: pid(0), pieceCount: PIECES, pieceLength: PL, length: PIECES * PL, have, sendAhead },
    () => 0.5,
  );
  return c;
}

/** A linked peer, interested and so unchoked (a slot is free). */
function link(c: TorrentCore, n: number, reserved = PLAIN) {
  c.addLink(n, false, 0);
  c.message(n, { type: 'handshake', reserved, infoHash, peerId: pid(n) }, 0);
  c.message(n, { type: 'interested' }, 0);
}

const reads = (cmds: Command[]) =>
  cmds
    .filter((c): c is Extract<Command, { type: 'read' }> => c.type === 'read')
    .map((c) => `${c.link}:${c.index}:${c.begin / B}`);
const pieces = (cmds: Command[]) =>
  cmds.filter((c) => c.type === 'send' && c.msg.type === 'piece').map((c) => (c as { link: number }).link);
const req = (index: number, block: number) => ({
  type: 'request' as const,
  index,
  begin: block * B,
  length: B,
});

describe('send queue: requests wait in the core until the uplink takes them', () => {
  it('unpaced (the default): every request is read at once', () => {
    const c = seed();
    link(c, 1);
    expect(reads(c.message(1, req(0, 0), 1))).toEqual(['1:0:0']);
    expect(reads(c.message(1, req(0, 1), 1))).toEqual(['1:0:1']);
    expect(pieces(c.readDone(1, 0, 0, Buffer.alloc(B), 2))).toEqual([1]);
  });

  it('paced: one block out at a time, in the order asked, across links; a cancel takes a waiting one back', () => {
    const c = seed(1);
    link(c, 1);
    link(c, 2);
    expect(reads(c.message(1, req(0, 0), 1))).toEqual(['1:0:0']);
    expect(reads(c.message(2, req(3, 0), 1))).toEqual([]);
    expect(reads(c.message(1, req(0, 1), 1))).toEqual([]);
    expect(reads(c.message(2, req(3, 1), 1))).toEqual([]);
    // The read comes back: the block is sent, nothing more is read until it has left.
    const sent = c.readDone(1, 0, 0, Buffer.alloc(B), 2);
    expect(pieces(sent)).toEqual([1]);
    expect(reads(sent)).toEqual([]);
    expect(reads(c.blockSent(3))).toEqual(['2:3:0']);
    // Link 1 cancels its waiting request: it is never read.
    expect(c.message(1, { type: 'cancel', index: 0, begin: B, length: B }, 3)).toEqual([]);
    expect(pieces(c.readDone(2, 3, 0, Buffer.alloc(B), 4))).toEqual([2]);
    expect(reads(c.blockSent(5))).toEqual(['2:3:1']);
    // A block cancelled after its read went out is not sent, and its turn passes on.
    c.message(1, req(5, 0), 6);
    c.message(2, { type: 'cancel', index: 3, begin: B, length: B }, 6);
    const after = c.readDone(2, 3, B, Buffer.alloc(B), 7);
    expect(pieces(after)).toEqual([]);
    expect(reads(after)).toEqual(['1:5:0']);
  });

  it('paced: a link that goes takes its waiting requests with it; a fast peer we choke hears rejects', () => {
    const c = seed(1);
    link(c, 1);
    link(c, 2, FAST);
    c.message(2, { type: 'haveNone' }, 0);
    c.message(1, req(0, 0), 1);
    c.message(1, req(0, 1), 1);
    c.message(2, req(1, 0), 1);
    c.removeLink(1);
    // The read out for link 1 comes back to nothing; link 2's request is next.
    expect(reads(c.readDone(1, 0, 0, Buffer.alloc(B), 2))).toEqual(['2:1:0']);
    expect(pieces(c.readDone(2, 1, 0, Buffer.alloc(B), 3))).toEqual([2]);
    c.message(2, req(1, 1), 4);
    expect(reads(c.blockSent(4))).toEqual(['2:1:1']);
    c.message(2, req(1, 2), 4);
    // Choked (a round that prefers others is not needed: removing interest and a round does it).
    c.message(2, { type: 'notInterested' }, 5);
    const round = c.tick(20_000);
    expect(round).toContainEqual({ type: 'send', link: 2, msg: { type: 'choke' } });
    expect(round).toContainEqual({
      type: 'send',
      link: 2,
      msg: { type: 'reject', index: 1, begin: 2 * B, length: B },
    });
    // The block already read is not sent to a peer we choke.
    expect(pieces(c.readDone(2, 1, B, Buffer.alloc(B), 20_001))).toEqual([]);
  });

  it('paced: a rare piece is read first, common ones in the order asked; one that waited 10 s goes next', () => {
    const c = seed(1);
    for (const n of [1, 2, 3, 4]) link(c, n);
    // Pieces 0-3 are common (three peers hold them), piece 5 is rare (one holds it).
    for (const n of [2, 3, 4]) for (const i of [0, 1, 2, 3]) c.message(n, { type: 'have', index: i }, 0);
    c.message(4, { type: 'have', index: 5 }, 0);
    expect(reads(c.message(1, req(6, 0), 1))).toEqual(['1:6:0']);
    c.message(1, req(7, 0), 1); // held by none of our peers: rare
    c.message(2, req(4, 0), 1); // held by none either, asked later
    c.message(3, req(5, 0), 1); // one copy
    expect(reads(c.blockSent(2))).toEqual(['1:7:0']);
    expect(reads(c.blockSent(3))).toEqual(['2:4:0']);
    expect(reads(c.blockSent(4))).toEqual(['3:5:0']);
    // Common pieces (more than RARE_COPIES copies) keep their order, whatever their counts: 0
    // and 1 have four copies, 6 three.
    link(c, 5);
    for (const i of [0, 1, 2, 3]) c.message(5, { type: 'have', index: i }, 4);
    for (const n of [2, 3, 4]) c.message(n, { type: 'have', index: 6 }, 4);
    c.message(1, req(0, 0), 5);
    c.message(1, req(6, 1), 5);
    c.message(1, req(1, 0), 5);
    expect(reads(c.blockSent(6))).toEqual(['1:0:0']);
    expect(reads(c.blockSent(7))).toEqual(['1:6:1']);
    // A request that has waited SERVE_WITHIN_MS is read before a rare one.
    c.message(1, req(7, 1), 8);
    expect(reads(c.blockSent(5 + SERVE_WITHIN_MS))).toEqual(['1:1:0']);
    expect(reads(c.blockSent(6 + SERVE_WITHIN_MS))).toEqual(['1:7:1']);
  });

  it('a fast peer hears a reject for each cancel of a request not yet sent (BEP 6), a plain one nothing', () => {
    const c = seed(1);
    link(c, 1, FAST);
    c.message(1, { type: 'haveNone' }, 0);
    link(c, 2);
    c.message(1, req(0, 0), 1);
    c.message(1, req(0, 1), 1);
    c.message(2, req(1, 0), 1);
    expect(c.message(1, { type: 'cancel', index: 0, begin: B, length: B }, 2)).toEqual([
      { type: 'send', link: 1, msg: { type: 'reject', index: 0, begin: B, length: B } },
    ]);
    expect(c.message(2, { type: 'cancel', index: 1, begin: 0, length: B }, 2)).toEqual([]);
    // Sent already: the piece is the answer, no reject.
    expect(pieces(c.readDone(1, 0, 0, Buffer.alloc(B), 3))).toEqual([1]);
    expect(c.message(1, { type: 'cancel', index: 0, begin: 0, length: B }, 3)).toEqual([]);
  });

  it('a peer announcing a piece few hold is asked for it beyond the pipeline, unless what we asked there is rare too', () => {
    // A leecher: pieces of two blocks, a pipeline of two blocks per link.
    const c = new TorrentCore(
      { infoHash, peerId: pid(0), pieceCount: 16, pieceLength: 2 * B, length: 16 * 2 * B, pipeline: 2 },
      () => 0.5,
    );
    const bits = (...idx: number[]) => {
      const b = new Bitfield(16);
      for (const i of idx) b.set(i);
      return { type: 'bitfield' as const, bitfield: b.bytes };
    };
    const asked = (cmds: Command[], n: number) =>
      cmds
        .filter((x) => x.type === 'send' && x.link === n && x.msg.type === 'request')
        .map((x) => {
          const m = (x as { msg: { index: number; begin: number } }).msg;
          return `${m.index}:${m.begin / B}`;
        });
    for (const n of [1, 2, 3]) {
      c.addLink(n, true, 0);
      c.message(n, { type: 'handshake', reserved: PLAIN, infoHash, peerId: pid(n) }, 0);
    }
    c.message(1, bits(0, 1, 2, 3), 0);
    c.message(2, bits(0, 1, 2, 3), 0);
    c.message(3, bits(11), 0);
    const first = asked(c.message(1, { type: 'unchoke' }, 1), 1);
    expect(first).toHaveLength(2); // the pipeline, one piece two copies of which are around
    // A piece only link 1 holds: asked at once, beyond the pipeline.
    expect(asked(c.message(1, { type: 'have', index: 9 }, 2), 1)).toEqual(['9:0', '9:1']);
    // Twice the pipeline outstanding: the next rare piece waits.
    expect(asked(c.message(1, { type: 'have', index: 10 }, 3), 1)).toEqual([]);
    // A common piece announced waits for room as before.
    c.message(2, { type: 'have', index: 12 }, 3);
    c.message(3, { type: 'have', index: 12 }, 3);
    expect(asked(c.message(1, { type: 'have', index: 12 }, 3), 1)).toEqual([]);
    // Link 3 holds piece 11 alone and we asked it for that: its next rare piece waits its turn
    // (a super-seed's two offers, both fetched from it, were sent twice).
    expect(asked(c.message(3, { type: 'unchoke' }, 4), 3)).toEqual(['11:0', '11:1']);
    expect(asked(c.message(3, { type: 'have', index: 13 }, 5), 3)).toEqual([]);
  });
});
