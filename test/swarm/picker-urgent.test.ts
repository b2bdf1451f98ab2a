import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../src/core/bitfield.js';
import { PiecePicker } from '../../src/swarm/picker.js';
import { rng } from '../support/core-pipe.js';

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
