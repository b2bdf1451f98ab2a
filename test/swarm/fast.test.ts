import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../src/core/bitfield.js';
import { ALLOWED_FAST_K, allowedFastSet } from '../../src/swarm/fast.js';
import { type Command, TorrentCore } from '../../src/swarm/torrent-core.js';
import type { Message } from '../../src/wire/messages.js';

/** The fast extension (BEP 6), on the pure core: messages in, commands out. */

const sha1 = (b: Uint8Array) => createHash('sha1').update(b).digest();
const infoHash = Buffer.alloc(20, 0xaa);
const PIECES = 64;
const PL = 32 * 1024;
const FAST = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0x04]);
const PLAIN = Buffer.alloc(8);
const pid = (n: number) => Buffer.from(`-XX0001-${String(n).padStart(12, '0')}`);

/** A core holding every piece (`true`), none, or every piece but the last ('almost': a peer, not a seed). */
function core(have: boolean | 'almost', uploadSlots = 4) {
  const bits = new Bitfield(PIECES);
  if (have !== false) for (let i = 0; i < (have === 'almost' ? PIECES - 1 : PIECES); i++) bits.set(i);
  return new TorrentCore(
    {
      infoHash,
      peerId: pid(0),
      pieceCount: PIECES,
      pieceLength: PL,
      length: PIECES * PL,
      have: bits,
      sha1,
      uploadSlots,
    },
    rng(),
  );
}

/** A small deterministic random sequence (the choker's optimistic pick moves with it). */
function rng(): () => number {
  let x = 12345;
  return () => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    return x / 2 ** 31;
  };
}

const sent = (cmds: Command[], link: number) =>
  cmds
    .filter((c): c is Extract<Command, { type: 'send' }> => c.type === 'send' && c.link === link)
    .map((c) => c.msg);
const types = (msgs: Message[]) => msgs.map((m) => m.type);
const hs = (reserved: Buffer, n: number) => ({
  type: 'handshake' as const,
  reserved,
  infoHash,
  peerId: pid(n),
});

describe('fast extension (BEP 6)', () => {
  it('computes the allowed-fast set as the BEP’s example says', () => {
    // BEP 6: 1313 pieces, 80.4.4.200, info hash of 0xaa bytes.
    expect(allowedFastSet('80.4.4.200', infoHash, 1313, 7, sha1)).toEqual([
      1059, 431, 808, 1217, 287, 376, 1188,
    ]);
    expect(allowedFastSet('80.4.4.200', infoHash, 1313, 9, sha1)).toEqual([
      1059, 431, 808, 1217, 287, 376, 1188, 353, 508,
    ]);
    // The last octet does not matter (a /24 gets one set); IPv6 gets none; a tiny torrent all its pieces.
    expect(allowedFastSet('80.4.4.1', infoHash, 1313, 7, sha1)).toEqual(
      allowedFastSet('80.4.4.200', infoHash, 1313, 7, sha1),
    );
    expect(allowedFastSet('2001:db8::1', infoHash, 1313, 7, sha1)).toEqual([]);
    expect(allowedFastSet('80.4.4.200', infoHash, 3, 10, sha1).sort()).toEqual([0, 1, 2]);
  });

  it('a seed says have all to a fast peer, a bitfield to a plain one; an empty peer says have none', () => {
    const seed = core(true);
    seed.addLink(1, false, 0, undefined, { ip: '80.4.4.200' });
    expect(types(sent(seed.message(1, hs(FAST, 1), 0), 1))).toEqual(['haveAll']);
    seed.addLink(2, false, 0, undefined, { ip: '80.4.5.200' });
    expect(types(sent(seed.message(2, hs(PLAIN, 2), 0), 2))).toEqual(['bitfield']);
    const empty = core(false);
    empty.addLink(1, true, 0, undefined, { ip: '10.0.0.1', listenPort: 6881 });
    expect(types(sent(empty.message(1, hs(FAST, 1), 0), 1))).toEqual(['haveNone']);
    // A plain peer that sends a fast message breaks the protocol.
    const c = seed.message(2, { type: 'haveNone' }, 1);
    expect(c).toContainEqual(expect.objectContaining({ type: 'close', code: 'ERR_PROTOCOL' }));
  });

  it('a newcomer gets its allowed-fast set; while choked it is served those pieces and rejected the rest', () => {
    // A peer that is not a seed gives allowed-fast pieces (a seed does not: its upload is the swarm's scarcest).
    const seed = core('almost');
    seed.addLink(1, false, 0, undefined, { ip: '80.4.4.200' });
    seed.message(1, hs(FAST, 1), 0);
    const allowed = sent(seed.message(1, { type: 'haveNone' }, 1), 1);
    const expected = allowedFastSet('80.4.4.200', infoHash, PIECES, ALLOWED_FAST_K, sha1).filter(
      (i) => i !== PIECES - 1,
    );
    expect(expected.length).toBeGreaterThan(5);
    expect(allowed).toEqual(expected.map((index) => ({ type: 'allowedFast', index })));
    const inSet = expected[0] as number;
    const outside = [...Array(PIECES).keys()].find((i) => !expected.includes(i)) as number;
    // Not interested, so still choked: an allowed piece is read and sent, another rejected.
    expect(seed.message(1, { type: 'request', index: inSet, begin: 0, length: 16384 }, 2)).toEqual([
      { type: 'read', link: 1, index: inSet, begin: 0, length: 16384 },
    ]);
    expect(sent(seed.readDone(1, inSet, 0, Buffer.alloc(16384), 3), 1)).toMatchObject([
      { type: 'piece', index: inSet },
    ]);
    expect(sent(seed.message(1, { type: 'request', index: outside, begin: 0, length: 16384 }, 4), 1)).toEqual(
      [{ type: 'reject', index: outside, begin: 0, length: 16384 }],
    );
  });

  it('a choked newcomer asks for its allowed-fast pieces only; a reject sends the block back to the picker', () => {
    const me = core(false);
    me.addLink(1, true, 0, undefined, { ip: '10.0.0.1', listenPort: 6881 });
    me.message(1, hs(FAST, 1), 0);
    expect(types(sent(me.message(1, { type: 'haveAll' }, 1), 1))).toEqual(['interested']);
    const reqs = sent(me.message(1, { type: 'allowedFast', index: 5 }, 2), 1);
    expect(reqs.length).toBe(2);
    expect(reqs.every((m) => m.type === 'request' && m.index === 5)).toBe(true);
    // A reject of one: it goes back (and no other link is there to take it); the other stays asked.
    expect(me.message(1, { type: 'reject', index: 5, begin: 0, length: 16384 }, 3)).toEqual([]);
    expect(me.linkStats(1)?.outstanding).toBe(1);
    // Unchoked: the pipeline fills from every piece, the rejected block included.
    const more = sent(me.message(1, { type: 'unchoke' }, 4), 1);
    expect(more.length).toBeGreaterThan(10);
    expect(more).toContainEqual({ type: 'request', index: 5, begin: 0, length: 16384 });
    // A choke from a fast peer keeps our requests (it rejects what it will not serve).
    me.message(1, { type: 'choke' }, 5);
    expect(me.linkStats(1)?.outstanding).toBe(more.length + 1);
  });

  it('a choking peer rejects the requests it had accepted, except allowed-fast ones', () => {
    const seed = core('almost', 1);
    const cmds: Command[] = [];
    for (const n of [1, 2, 3]) {
      seed.addLink(n, false, 0, undefined, { ip: `10.0.${n}.1` });
      seed.message(n, hs(FAST, n), 0);
      seed.message(n, { type: 'bitfield', bitfield: new Bitfield(PIECES).bytes }, 0);
      seed.message(n, { type: 'interested' }, 0);
    }
    // The unchoked peers ask for blocks the seed has not read yet.
    const unchoked = [1, 2, 3].filter((n) => seed.linkStats(n)?.amChoking === false);
    expect(unchoked.length).toBeGreaterThan(0);
    for (const n of unchoked)
      for (let i = 0; i < 3; i++)
        seed.message(n, { type: 'request', index: 40 + i, begin: 0, length: 16384 }, 1);
    // Choking rounds until one of them is choked.
    let choked: number | undefined;
    for (let t = 10_001; t < 200_000 && choked === undefined; t += 10_000) {
      const out = seed.tick(t);
      cmds.push(...out);
      choked = unchoked.find((n) => sent(out, n).some((m) => m.type === 'choke'));
    }
    expect(choked).toBeDefined();
    const rejects = sent(cmds, choked as number).filter((m) => m.type === 'reject');
    const allowed = new Set(allowedFastSet(`10.0.${choked}.1`, infoHash, PIECES, ALLOWED_FAST_K, sha1));
    expect(rejects.map((m) => (m as { index: number }).index).sort()).toEqual(
      [40, 41, 42].filter((i) => !allowed.has(i)),
    );
  });
});

describe('suggestions (BEP 6): a seed sends each piece once before any twice', () => {
  it('a seed suggests its least-sent pieces before it unchokes, and a new one as each is asked for', () => {
    const seed = core(true, 4);
    const suggested = new Map<number, number[]>();
    const take = (n: number, cmds: Command[]) => {
      const msgs = sent(cmds, n);
      for (const m of msgs) if (m.type === 'suggest') suggested.get(n)?.push(m.index);
      return msgs;
    };
    const peers = [1, 2, 3, 4];
    for (const n of peers) {
      suggested.set(n, []);
      seed.addLink(n, false, 0, undefined, { ip: `10.0.${n}.1` });
      seed.message(n, hs(FAST, n), 0);
      expect(types(take(n, seed.message(n, { type: 'haveNone' }, 0)))).toEqual([]); // no allowed-fast set from a seed
      // Interested: unchoked at once (a slot is free), the suggestions first.
      expect(types(take(n, seed.message(n, { type: 'interested' }, 0)))).toEqual([
        'suggest',
        'suggest',
        'unchoke',
      ]);
    }
    // Each peer asks for its oldest open suggestion, round after round: every piece goes out once.
    const asked: number[] = [];
    for (let round = 0; asked.length < PIECES; round++) {
      expect(round).toBeLessThan(PIECES);
      for (const n of peers) {
        const index = suggested.get(n)?.shift() as number;
        asked.push(index);
        const out = seed.message(n, { type: 'request', index, begin: 0, length: 16384 }, 1 + round);
        expect(out.at(-1)).toEqual({ type: 'read', link: n, index, begin: 0, length: 16384 });
        expect(types(take(n, out.slice(0, -1)))).toEqual(['suggest']);
      }
    }
    expect(asked.length).toBe(PIECES);
    expect(new Set(asked).size).toBe(PIECES);
    // A peer that has a suggested piece from elsewhere (its have) gets another suggestion instead.
    const open = suggested.get(1)?.[0] as number;
    expect(open).toBeDefined();
    const next = sent(seed.message(1, { type: 'have', index: open }, 100), 1);
    expect(next).toHaveLength(1);
    expect(next[0]).toMatchObject({ type: 'suggest' });
    expect((next[0] as { index: number }).index).not.toBe(open);
  });

  it('a peer asks for a suggested piece first; suggestions of pieces it holds are ignored', () => {
    const me = core('almost');
    me.addLink(1, true, 0, undefined, { ip: '10.0.0.1', listenPort: 6881 });
    me.message(1, hs(FAST, 1), 0);
    me.message(1, { type: 'haveAll' }, 1);
    // We hold 0..62 and lack 63: a suggestion of 5 is nothing to us.
    expect(me.message(1, { type: 'suggest', index: 5 }, 2)).toEqual([]);
    const reqs = sent(me.message(1, { type: 'unchoke' }, 3), 1);
    expect(reqs.every((m) => m.type === 'request' && m.index === PIECES - 1)).toBe(true);

    const empty = core(false);
    empty.addLink(1, true, 0, undefined, { ip: '10.0.0.1', listenPort: 6881 });
    empty.message(1, hs(FAST, 1), 0);
    empty.message(1, { type: 'haveAll' }, 1);
    expect(empty.message(1, { type: 'suggest', index: 37 }, 2)).toEqual([]); // choked: nothing to ask yet
    expect(empty.message(1, { type: 'suggest', index: 9 }, 2)).toEqual([]);
    const first = sent(empty.message(1, { type: 'unchoke' }, 3), 1);
    // Both suggested pieces (2 blocks each) come first, in the order suggested; then rarest-first.
    expect(first.slice(0, 4)).toEqual([
      { type: 'request', index: 37, begin: 0, length: 16384 },
      { type: 'request', index: 37, begin: 16384, length: 16384 },
      { type: 'request', index: 9, begin: 0, length: 16384 },
      { type: 'request', index: 9, begin: 16384, length: 16384 },
    ]);
    expect(first.length).toBeGreaterThan(4);
    // A suggestion out of range is ignored, not an offence.
    expect(empty.message(1, { type: 'suggest', index: PIECES + 5 }, 4)).toEqual([]);
  });
});

describe('a seed and a peer that want nothing of each other', () => {
  it('a seed closes a link 10 s after the peer lost interest; a peer never interested yet, or interested, stays', () => {
    const seed = core(true);
    for (const n of [1, 2, 3]) {
      seed.addLink(n, false, 0, undefined, { ip: `10.0.${n}.1` });
      seed.message(n, hs(FAST, n), 0);
      seed.message(n, { type: 'haveNone' }, 0);
    }
    // 1 downloads; 2 has said nothing yet (a client still checking its files); 3 was interested, then not.
    seed.message(1, { type: 'interested' }, 0);
    seed.message(3, { type: 'interested' }, 0);
    seed.message(3, { type: 'notInterested' }, 500);
    const closes = (cmds: Command[]) => cmds.filter((c) => c.type === 'close');
    expect(closes(seed.tick(1_000))).toEqual([]);
    expect(closes(seed.tick(9_000))).toEqual([]);
    // The first tick found us seeding at 1 s: 3 goes at 11 s, 2 and 1 stay.
    expect(closes(seed.tick(11_500))).toEqual([expect.objectContaining({ link: 3, code: 'ERR_NOT_NEEDED' })]);
    expect(seed.linkStats(3)).toBeUndefined();
    expect(closes(seed.tick(40_000))).toEqual([]);
    // Link 1 loses interest at 41 s: closed 10 s later, not before.
    seed.message(1, { type: 'notInterested' }, 41_000);
    expect(closes(seed.tick(50_000))).toEqual([]);
    expect(closes(seed.tick(51_500))).toEqual([expect.objectContaining({ link: 1, code: 'ERR_NOT_NEEDED' })]);
    expect(seed.linkStats(2)).toBeDefined();
  });
});

describe('suggestions lapse with a choke', () => {
  it('a peer the seed chokes gets fresh suggestions with its next unchoke', () => {
    const seed = core(true, 4);
    seed.addLink(1, false, 0, undefined, { ip: '10.0.1.1' });
    seed.message(1, hs(FAST, 1), 0);
    seed.message(1, { type: 'haveNone' }, 0);
    expect(types(sent(seed.message(1, { type: 'interested' }, 0), 1))).toEqual([
      'suggest',
      'suggest',
      'unchoke',
    ]);
    // It loses interest: the next round (a tick later) chokes it.
    seed.message(1, { type: 'notInterested' }, 1_000);
    expect(types(sent(seed.tick(4_000), 1))).toContain('choke');
    // Interested again: unchoked at once, with two suggestions again (the old ones lapsed).
    const again = sent(seed.message(1, { type: 'interested' }, 5_000), 1);
    expect(types(again)).toEqual(['suggest', 'suggest', 'unchoke']);
  });
});
