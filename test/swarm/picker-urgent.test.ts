import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../src/core/bitfield.js';
import { PREEMPT_KEEP } from '../../src/swarm/downloads.js';
import { PiecePicker } from '../../src/swarm/picker.js';
import { type Command, MAX_UNEXPECTED_BLOCKS, TorrentCore } from '../../src/swarm/torrent-core.js';
import { fullHave, rng } from '../support/core-pipe.js';

/** Deadlines in the picker (streaming): urgent pieces first, late ones asked twice, the rest rarest-first. */
describe('the picker with urgent pieces', () => {
  const PL = 32 * 1024;
  const make = (wanted?: Bitfield) =>
    new PiecePicker(
      { pieceCount: 40, pieceLength: PL, length: 40 * PL, strategy: 'rarest-first', rng: rng(3) },
      undefined,
      wanted,
    );
  const full = () => {
    const b = new Bitfield(40);
    for (let i = 0; i < 40; i++) b.set(i);
    return b;
  };
  const never = () => false;

  it('asks for urgent pieces first, in their order; without them, rarest-first as before', () => {
    const p = make();
    const peer = full();
    // Piece 30 is the rarest: with no deadline it comes first.
    for (let i = 0; i < 40; i++)
      if (i !== 30) {
        p.addHave(i);
        p.addHave(i);
      }
    p.addHave(30);
    expect(p.pick(1, peer, 2, never)[0]?.index).toBe(30);
    p.setUrgent([12, 13, 14]);
    const r = p.pick(2, peer, 6, never);
    // Two 16 KiB blocks per piece: 12, then 13, then 14.
    expect(r.map((b) => b.index)).toEqual([12, 12, 13, 13, 14, 14]);
  });

  it('urgent pieces whose blocks are all out are not asked again; the next link gets the next ones; verified pieces leave the list', () => {
    const p = make();
    const peer = full();
    p.setUrgent([5, 6, 7, 8]);
    expect(p.pick(1, peer, 4, never).map((b) => b.index)).toEqual([5, 5, 6, 6]);
    expect(p.pick(2, peer, 4, never).map((b) => b.index)).toEqual([7, 7, 8, 8]);
    for (const begin of [0, 16384]) p.received(5, begin, 1);
    p.verified(5);
    expect(p.urgent).toEqual([6, 7, 8]);
  });

  it('never picks a piece outside the wanted set, urgent or not; done means every wanted piece', () => {
    const wanted = new Bitfield(40);
    for (let i = 10; i < 14; i++) wanted.set(i);
    const p = make(wanted);
    const peer = full();
    p.setUrgent([2, 11]);
    const asked = new Set<number>();
    for (let link = 1; link < 10; link++) for (const b of p.pick(link, peer, 40, never)) asked.add(b.index);
    expect([...asked].sort((a, b) => a - b)).toEqual([10, 11, 12, 13]);
    expect(p.wantedCount).toBe(4);
    for (const i of [10, 11, 12, 13]) p.verified(i);
    expect(p.complete).toBe(true);
    expect(p.have.complete).toBe(false);
  });

  it('file priorities: high pieces before normal, normal before low; by strategy within each', () => {
    const p = make();
    const peer = full();
    const pri = new Uint8Array(40).fill(1);
    for (const i of [30, 31]) pri[i] = 2;
    for (let i = 0; i < 20; i++) pri[i] = 0;
    p.setPriorities(pri);
    const order: number[] = [];
    for (let link = 1; link <= 40; link++) {
      const r = p.pick(link, peer, 2, never);
      if (r.length === 0) break;
      order.push(r[0]?.index as number);
    }
    expect(order.slice(0, 2).sort()).toEqual([30, 31]);
    // Then the normal pieces (20-39 but 30, 31), and only then the low ones (0-19).
    expect(order.slice(2, 20).every((i) => i >= 20)).toBe(true);
    expect(order.slice(20).every((i) => i < 20)).toBe(true);
    expect(new Set(order).size).toBe(40);
  });
});

/** On the core: a reader's urgent piece does not wait behind a full pipeline of other requests. */
describe('urgent pieces preempt queued requests (the core)', () => {
  const sha1 = (b: Uint8Array) => createHash('sha1').update(b).digest();
  const infoHash = Buffer.alloc(20, 0xbb);
  const PIECES = 64;
  const PL = 64 * 1024;
  const pid = (n: number) => Buffer.from(`-XX0001-${String(n).padStart(12, '0')}`);
  const sent = (cmds: Command[]) =>
    cmds.filter((c): c is Extract<Command, { type: 'send' }> => c.type === 'send').map((c) => c.msg);

  function downloading(holdFirst = false) {
    const have = new Bitfield(PIECES);
    if (holdFirst) have.set(0);
    const core = new TorrentCore(
      {
        have,
        infoHash,
        peerId: pid(0),
        pieceCount: PIECES,
        pieceLength: PL,
        length: PIECES * PL,
        sha1,
        pipeline: 32,
      },
      rng(5),
    );
    core.addLink(1, true, 0, undefined, { ip: '10.0.0.1', listenPort: 6881 });
    core.message(1, { type: 'handshake', reserved: Buffer.alloc(8), infoHash, peerId: pid(1) }, 0);
    core.message(1, { type: 'bitfield', bitfield: fullHave(PIECES).bytes }, 1);
    const reqs = sent(core.message(1, { type: 'unchoke' }, 2)).filter((m) => m.type === 'request');
    return { core, reqs };
  }

  it('cancels all but the oldest few requests for other pieces, then asks for the urgent one', () => {
    const { core, reqs } = downloading();
    expect(reqs.length).toBe(32);
    const asked = new Set(reqs.map((r) => (r as { index: number }).index));
    const target = [...Array(PIECES).keys()].find((i) => i > 0 && !asked.has(i)) as number;
    const out = sent(core.setUrgent([target], 3));
    const cancels = out.filter((m) => m.type === 'cancel');
    const requests = out.filter((m) => m.type === 'request');
    expect(cancels.length).toBe(32 - PREEMPT_KEEP);
    // The oldest PREEMPT_KEEP stay asked; the cancelled are the newest.
    expect(cancels).toEqual(reqs.slice(PREEMPT_KEEP).map((r) => ({ ...(r as object), type: 'cancel' })));
    // The urgent piece's 4 blocks come first in what is asked next.
    expect(requests.slice(0, 4).every((m) => (m as { index: number }).index === target)).toBe(true);
    // Asked again with the same window: nothing more is cancelled.
    expect(sent(core.setUrgent([target], 4)).filter((m) => m.type === 'cancel')).toEqual([]);
  });

  it('blocks of cancelled requests that still come are not held against the peer', () => {
    // We hold piece 0: any block of it is one nobody asked for.
    const { core, reqs } = downloading(true);
    const asked = new Set(reqs.map((r) => (r as { index: number }).index));
    const target = [...Array(PIECES).keys()].find((i) => i > 0 && !asked.has(i)) as number;
    const cancelled = sent(core.setUrgent([target], 3)).filter((m) => m.type === 'cancel').length;
    expect(cancelled).toBe(32 - PREEMPT_KEEP);
    const unasked = (t: number) =>
      core
        .message(1, { type: 'piece', index: 0, begin: 0, block: Buffer.alloc(16384) }, t)
        .some((x) => x.type === 'close');
    // As many as we cancelled are forgiven, then the usual allowance, then the link closes.
    let closedAt = -1;
    for (let i = 0; i < cancelled + MAX_UNEXPECTED_BLOCKS + 5 && closedAt < 0; i++) {
      if (unasked(10 + i)) closedAt = i;
    }
    expect(closedAt).toBe(cancelled + MAX_UNEXPECTED_BLOCKS);
  });
});
