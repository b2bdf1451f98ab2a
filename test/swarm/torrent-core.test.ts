import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../src/core/bitfield.js';
import type { Command } from '../../src/swarm/commands.js';
import { MAX_VERIFYING_BYTES } from '../../src/swarm/downloads.js';
import { PiecePicker } from '../../src/swarm/picker.js';
import { MAX_PEER_REQUESTS, TorrentCore } from '../../src/swarm/torrent-core.js';
import { fullHave, makeData, makeNode, type Node, Pipe, rng } from '../support/core-pipe.js';

const infoHash = Buffer.alloc(20, 9);
const pid = (n: number) => Buffer.from(`-SS0001-${String(n).padStart(12, '0')}`);
const PL = 32 * 1024;

function swarm(
  length: number,
  leechers: number,
  opts: { strategy?: 'rarest-first' | 'random'; pipeline?: number } = {},
) {
  const { data, hashes, pieceCount } = makeData(length, PL);
  const base = {
    infoHash,
    pieceCount,
    pieceLength: PL,
    length,
    strategy: opts.strategy,
    pipeline: opts.pipeline,
  };
  const seed = makeNode(
    { ...base, peerId: pid(0), have: fullHave(pieceCount) },
    Buffer.from(data),
    hashes,
    1,
  );
  const peers = Array.from({ length: leechers }, (_, i) =>
    makeNode({ ...base, peerId: pid(i + 1) }, Buffer.alloc(length), hashes, i + 2),
  );
  return { data, seed, peers, pieceCount };
}

/** Connects every node to every other, runs the pipe until quiet, and checks every peer holds `data`. */
function meshToCompletion(seed: Node, peers: Node[], data: Uint8Array): void {
  const pipe = new Pipe();
  const all = [seed, ...peers];
  pipe.mesh(all);
  pipe.run(all);
  for (const p of peers) {
    expect(p.completed).toBe(true);
    expect(p.store.equals(data)).toBe(true);
  }
}

describe('TorrentCore back to back (in-memory pipe, real codec)', () => {
  for (const strategy of ['rarest-first', 'random'] as const) {
    it(`a leecher gets every piece from a seed (${strategy})`, () => {
      const { data, seed, peers } = swarm(300_000, 1, { strategy });
      const pipe = new Pipe();
      pipe.connect(peers[0]!, seed, 1, 1);
      pipe.run([seed, ...peers]);
      expect(peers[0]!.completed).toBe(true);
      expect(peers[0]!.store.equals(data)).toBe(true);
      // Both seeds now: the link is closed as not needed.
      expect(peers[0]!.closed.map((c) => c.code)).toContain('ERR_NOT_NEEDED');
    });
  }

  it('three leechers and a seed all complete, trading among themselves', () => {
    // A shallow pipeline, so the seed cannot hand everyone everything before they trade.
    const { data, seed, peers } = swarm(600_000, 3, { pipeline: 2 });
    meshToCompletion(seed, peers, data);
    // Leechers uploaded to each other, not only the seed to them.
    expect(peers.reduce((sum, p) => sum + p.uploaded, 0)).toBeGreaterThan(0);
  });

  it('bans a seed that serves corrupt data and completes from an honest one', () => {
    const { data, seed, peers, pieceCount } = swarm(200_000, 1);
    const base = { infoHash, pieceCount, pieceLength: PL, length: 200_000 };
    const liar = makeNode(
      { ...base, peerId: pid(66), have: fullHave(pieceCount) },
      Buffer.from(data),
      seed.hashes,
      99,
    );
    liar.corrupt = true;
    const pipe = new Pipe();
    pipe.connect(peers[0]!, liar, 1, 1);
    pipe.run([liar, peers[0]!], 20_000);
    expect(peers[0]!.closed.some((c) => c.code === 'ERR_HASH_MISMATCH')).toBe(true);
    expect(peers[0]!.core.banned.has(pid(66).toString('latin1'))).toBe(true);
    expect(peers[0]!.core.have.count).toBe(0);
    pipe.connect(peers[0]!, seed, 2, 2);
    pipe.run([seed, peers[0]!]);
    expect(peers[0]!.completed).toBe(true);
    expect(peers[0]!.store.equals(data)).toBe(true);
  });
});

describe('TorrentCore blame for pieces that fail with several senders', () => {
  it('bans only the peer whose blocks differ, never the honest co-sender', () => {
    const { data, hashes, pieceCount } = makeData(400_000, PL);
    // A shallow pipeline, so both seeds get asked for blocks of the same pieces.
    const base = { infoHash, pieceCount, pieceLength: PL, length: 400_000, pipeline: 2 };
    const seed = makeNode(
      { ...base, peerId: pid(0), have: fullHave(pieceCount) },
      Buffer.from(data),
      hashes,
      1,
    );
    const liar = makeNode(
      { ...base, peerId: pid(66), have: fullHave(pieceCount) },
      Buffer.from(data),
      hashes,
      99,
    );
    liar.corrupt = true;
    const leech = makeNode({ ...base, peerId: pid(1) }, Buffer.alloc(400_000), hashes, 2);
    const pipe = new Pipe();
    pipe.connect(leech, seed, 1, 1);
    pipe.connect(leech, liar, 2, 2);
    pipe.run([seed, liar, leech]);
    expect(leech.closed.some((c) => c.link === 2 && c.code === 'ERR_HASH_MISMATCH')).toBe(true);
    expect(leech.completed).toBe(true);
    expect(leech.store.equals(data)).toBe(true);
    expect(leech.core.banned.has(pid(66).toString('latin1'))).toBe(true);
    expect(leech.core.banned.has(pid(0).toString('latin1'))).toBe(false);
  });
});

describe('TorrentCore scripted events', () => {
  const mk = (have?: Bitfield) =>
    new TorrentCore(
      { infoHash, peerId: pid(0), pieceCount: 10, pieceLength: PL, length: 10 * PL - 100, have },
      rng(3),
    );
  const hs = (id = 5) => ({
    type: 'handshake' as const,
    reserved: Buffer.alloc(8),
    infoHash,
    peerId: pid(id),
  });

  it('closes on a handshake for another torrent, and on connecting to itself', () => {
    const c = mk();
    c.addLink(1, true, 0);
    expect(c.message(1, { ...hs(), infoHash: Buffer.alloc(20, 1) }, 0)).toEqual([
      expect.objectContaining({ type: 'close', code: 'ERR_WRONG_INFO_HASH' }),
    ]);
    c.addLink(2, true, 0);
    expect(c.message(2, hs(0), 0)[0]).toMatchObject({ type: 'close', code: 'ERR_SELF_CONNECTION' });
  });

  it('closes on a bitfield of the wrong length or with spare bits set, and on have out of range', () => {
    const c = mk();
    c.addLink(1, true, 0);
    c.message(1, hs(), 0);
    expect(c.message(1, { type: 'bitfield', bitfield: Buffer.alloc(3) }, 0)[0]).toMatchObject({
      code: 'ERR_BAD_BITFIELD',
    });
    c.addLink(2, true, 0);
    c.message(2, hs(6), 0);
    expect(c.message(2, { type: 'bitfield', bitfield: Buffer.from([0, 0x01]) }, 0)[0]).toMatchObject({
      code: 'ERR_BAD_BITFIELD',
    });
    c.addLink(3, true, 0);
    c.message(3, hs(7), 0);
    expect(c.message(3, { type: 'have', index: 10 }, 0)[0]).toMatchObject({ code: 'ERR_BAD_HAVE' });
  });

  it('ignores requests while choked or for pieces it lacks; closes on bad requests and floods', () => {
    const have = new Bitfield(10);
    have.set(0);
    const c = mk(have);
    c.addLink(1, false, 0);
    c.message(1, hs(), 0);
    expect(c.message(1, { type: 'request', index: 0, begin: 0, length: 16384 }, 0)).toEqual([]); // choked
    expect(c.message(1, { type: 'interested' }, 0)).toEqual([
      { type: 'send', link: 1, msg: { type: 'unchoke' } },
    ]);
    expect(c.message(1, { type: 'request', index: 0, begin: 0, length: 16384 }, 0)).toEqual([
      { type: 'read', link: 1, index: 0, begin: 0, length: 16384 },
    ]);
    expect(c.message(1, { type: 'request', index: 1, begin: 0, length: 16384 }, 0)).toEqual([]); // not held
    expect(c.message(1, { type: 'request', index: 0, begin: 0, length: 32768 }, 0)[0]).toMatchObject({
      code: 'ERR_BAD_REQUEST',
    });
    c.addLink(2, false, 0);
    c.message(2, hs(8), 0);
    c.message(2, { type: 'interested' }, 0);
    expect(c.message(2, { type: 'request', index: 0, begin: PL, length: 16384 }, 0)[0]).toMatchObject({
      code: 'ERR_BAD_REQUEST',
    });
  });

  it('closes a link that floods requests past the queue limit', () => {
    const big = 256 * 1024;
    const n = 40;
    const have = new Bitfield(n);
    for (let i = 0; i < n; i++) have.set(i);
    const c = new TorrentCore(
      { infoHash, peerId: pid(0), pieceCount: n, pieceLength: big, length: n * big, have },
      rng(3),
    );
    c.addLink(1, false, 0);
    c.message(1, hs(), 0);
    c.message(1, { type: 'interested' }, 0);
    let closedAt = -1;
    for (let i = 0; i < n * 16 && closedAt < 0; i++) {
      const cmds = c.message(
        1,
        { type: 'request', index: Math.floor(i / 16), begin: (i % 16) * 16384, length: 16384 },
        0,
      );
      if (cmds.some((x) => x.type === 'close' && x.code === 'ERR_REQUEST_FLOOD')) closedAt = i;
    }
    expect(closedAt).toBe(MAX_PEER_REQUESTS);
  });

  it('ignores a piece nobody asked for, and drops a peer that keeps sending them', () => {
    const c = mk();
    c.addLink(1, true, 0);
    c.message(1, hs(), 0);
    expect(c.message(1, { type: 'piece', index: 0, begin: 0, block: Buffer.alloc(16384) }, 0)).toEqual([]);
    let closed = false;
    for (let i = 0; i < 100 && !closed; i++) {
      closed = c
        .message(1, { type: 'piece', index: 0, begin: 0, block: Buffer.alloc(16384) }, 0)
        .some((x) => x.type === 'close');
    }
    expect(closed).toBe(true);
  });

  it('times out a link that never completes its handshake, and a silent one', () => {
    const c = mk();
    c.addLink(1, true, 0);
    expect(c.tick(25_000).some((x) => x.type === 'close' && x.code === 'ERR_TIMEOUT')).toBe(true);
    c.addLink(2, true, 30_000);
    c.message(2, hs(), 30_000);
    expect(c.tick(100_000).some((x) => x.type === 'close')).toBe(false);
    expect(c.tick(250_000).some((x) => x.type === 'close' && x.code === 'ERR_TIMEOUT')).toBe(true);
  });
});

describe('TorrentCore link table and have suppression', () => {
  const mk = (linkSlots?: number) =>
    new TorrentCore(
      {
        infoHash,
        peerId: pid(0),
        pieceCount: 10,
        pieceLength: PL,
        length: 10 * PL - 100,
        assemble: false,
        blockLength: PL,
        linkSlots,
      },
      rng(4),
    );
  const hs = (id: number) => ({
    type: 'handshake' as const,
    reserved: Buffer.alloc(8),
    infoHash,
    peerId: pid(id),
  });
  const sentTo = (cmds: { type: string; link?: number; msg?: { type: string } }[], type: string) =>
    cmds.filter((c) => c.type === 'send' && c.msg?.type === type).map((c) => c.link);

  it('tells of a verified piece every peer but a seed and a peer that holds it and has been interested in us', () => {
    const c = mk();
    for (const link of [1, 2, 3, 4, 5, 6]) {
      c.addLink(link, true, 0);
      c.message(link, hs(link), 0);
    }
    // Link 1 has piece 0 only and lets us fetch it; 2 and 3 hold it too, 2 is interested in us;
    // 4 holds nothing; 5 is a seed; 6 holds it and was interested in us, no longer.
    expect(sentTo(c.message(1, { type: 'have', index: 0 }, 0), 'interested')).toEqual([1]);
    c.message(2, { type: 'have', index: 0 }, 0);
    c.message(2, { type: 'interested' }, 0);
    c.message(3, { type: 'have', index: 0 }, 0);
    c.message(5, { type: 'bitfield', bitfield: Buffer.from([0xff, 0xc0]) }, 0);
    c.message(6, { type: 'have', index: 0 }, 0);
    c.message(6, { type: 'interested' }, 0);
    c.message(6, { type: 'notInterested' }, 0);
    const req = c
      .message(1, { type: 'unchoke' }, 1)
      .find((x) => x.type === 'send' && x.msg.type === 'request');
    expect(req).toMatchObject({ link: 1, msg: { type: 'request', index: 0, begin: 0, length: PL } });
    const got = c.message(1, { type: 'piece', index: 0, begin: 0, block: Buffer.alloc(PL) }, 2);
    expect(got).toContainEqual(expect.objectContaining({ type: 'verify', index: 0 }));
    expect(sentTo(c.verifyDone(0, true, 3), 'have').sort()).toEqual([1, 3, 4]);
  });

  it.each([
    ['the default table', undefined],
    ['a table of one slot at first', 1],
  ])(
    'keeps each link apart in its slot: more links than the first table holds, ids reused (%s)',
    (_, slots) => {
      const c = mk(slots);
      for (let link = 1; link <= 40; link++) {
        c.addLink(link, false, 0);
        c.message(link, hs(100 + link), 0);
        c.message(link, { type: 'have', index: link % 10 }, 0);
      }
      expect(c.links.size).toBe(40);
      for (let link = 1; link <= 40; link++)
        expect(c.linkStats(link)).toMatchObject({ pieces: 1, amInterested: true });
      expect([...c.picker.availability]).toEqual(Array(10).fill(4));
      for (let link = 1; link <= 10; link++) c.removeLink(link);
      expect([...c.picker.availability]).toEqual(Array(10).fill(3));
      // A reused id is a new link: nothing of the old one's pieces or interest.
      c.addLink(5, true, 1);
      expect(c.linkStats(5)).toMatchObject({ pieces: 0, amInterested: false, handshaken: false });
      c.message(5, hs(500), 1);
      c.message(5, { type: 'have', index: 2 }, 1);
      expect(c.linkStats(5)).toMatchObject({ pieces: 1, amInterested: true });
      expect(c.picker.availability[2]).toBe(4);
    },
  );

  it('finds links with large ids too (a long-lived peer numbers its links past the direct index)', () => {
    const c = mk();
    c.addLink(100_000, true, 0);
    c.message(100_000, hs(7), 0);
    expect(sentTo(c.message(100_000, { type: 'have', index: 3 }, 0), 'interested')).toEqual([100_000]);
    expect(c.linkStats(100_000)).toMatchObject({ pieces: 1, amInterested: true });
    expect(c.linkWanted(100_000)).toBe(true);
    c.removeLink(100_000);
    expect(c.linkStats(100_000)).toBeUndefined();
    expect(c.message(100_000, { type: 'have', index: 4 }, 0)).toEqual([]);
  });
});

describe('PiecePicker', () => {
  const pk = (strategy: 'rarest-first' | 'random' = 'rarest-first') =>
    new PiecePicker({ pieceCount: 8, pieceLength: 32768, length: 8 * 32768, strategy, rng: rng(5) });
  const peerWith = (...idx: number[]) => Bitfield.fromIndices(8, idx);

  it('the byte-at-a-time scan picks exactly what the general per-piece path picks', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 70 }),
        fc.constantFrom('rarest-first' as const, 'random' as const),
        fc.array(fc.tuple(fc.nat(69), fc.nat(3)), { maxLength: 200 }),
        fc.nat(1000),
        (n, strategy, ops, seed) => {
          // Two pickers in the same state, same RNG; one sees the peer as a Bitfield (fast scan),
          // the other through a plain PieceSet (general path).
          const make = () =>
            new PiecePicker({
              pieceCount: n,
              pieceLength: 16384,
              length: n * 16384,
              strategy,
              rng: rng(seed),
            });
          const fast = make();
          const slow = make();
          const peer = new Bitfield(n);
          const avail = new Bitfield(n);
          for (const [i, kind] of ops) {
            const k = i % n;
            if (kind === 0) peer.set(k);
            else if (kind === 1) {
              fast.have.set(k);
              slow.have.set(k);
            } else if (kind === 2) {
              avail.set(k);
              fast.addHave(k);
              slow.addHave(k);
            }
          }
          const view = { has: (i: number) => peer.has(i) };
          for (let round = 0; round < 4; round++) {
            const a = fast.pick(1, peer, 3, () => false);
            const b = slow.pick(1, view, 3, () => false);
            expect(a).toEqual(b);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('picks the rarest piece first', () => {
    const p = pk();
    p.addAvailability(peerWith(0, 1, 2, 3, 4, 5, 6, 7));
    p.addAvailability(peerWith(0, 1, 2, 3, 4, 5, 7));
    p.addAvailability(peerWith(0, 1, 2, 3, 4, 5, 7));
    const reqs = p.pick(1, peerWith(0, 1, 2, 3, 4, 5, 6, 7), 2, () => false);
    expect(reqs.map((r) => r.index)).toEqual([6, 6]);
  });

  it('finishes a started piece before starting another', () => {
    const p = pk();
    p.addAvailability(peerWith(0, 1, 2, 3, 4, 5, 6, 7));
    const a = p.pick(1, peerWith(0, 1, 2, 3, 4, 5, 6, 7), 1, () => false);
    const b = p.pick(2, peerWith(0, 1, 2, 3, 4, 5, 6, 7), 1, () => false);
    expect(b[0]!.index).toBe(a[0]!.index);
    expect(b[0]!.begin).toBe(16384);
  });

  it('enters endgame: requests blocks outstanding elsewhere, and names whom to cancel', () => {
    const p = new PiecePicker({
      pieceCount: 1,
      pieceLength: 32768,
      length: 32768,
      strategy: 'rarest-first',
      rng: rng(1),
    });
    const all = Bitfield.fromIndices(1, [0]);
    expect(p.pick(1, all, 10, () => false)).toHaveLength(2);
    const dup = p.pick(2, all, 10, () => false);
    expect(dup).toHaveLength(2);
    const r = p.received(0, 0, 2);
    expect(r).toMatchObject({ status: 'new', cancel: [1] });
  });

  it('a released block is picked again; a failed piece starts over', () => {
    const p = pk('random');
    const all = peerWith(0, 1, 2, 3, 4, 5, 6, 7);
    const [first] = p.pick(1, all, 1, () => false);
    p.release(first!.index, first!.begin, 1);
    expect(p.active.size).toBe(0);
    const two = p.pick(1, all, 2, () => false);
    p.received(two[0]!.index, two[0]!.begin, 1);
    p.received(two[1]!.index, two[1]!.begin, 1);
    p.failed(two[0]!.index);
    expect(p.have.count).toBe(0);
    expect(p.pick(1, all, 16, () => false).length).toBe(16);
  });
});

describe('TorrentCore exchanges (the original design: a few chunks over one link)', () => {
  it('fetches only the wanted pieces over an exchange link, then says exchangeDone', () => {
    const { seed, peers } = swarm(10 * PL, 1);
    const leech = peers[0]!;
    const pipe = new Pipe();
    pipe.connect(leech, seed, 1, 1, [2, 5, 7], []);
    pipe.run([seed, leech], 5000);
    expect(leech.core.have.indices()).toEqual([2, 5, 7]);
    expect(leech.exchangesDone).toEqual([1]);
    expect(seed.exchangesDone).toEqual([]);
    // The serving side, opened with nothing wanted, never asked for anything.
    expect(seed.core.linkStats(1)?.downloaded ?? 0).toBe(0);
  });
});

describe('super-seeding (BEP 16)', () => {
  it('offers pieces a couple at a time instead of a bitfield, and the swarm still completes', () => {
    const { data, hashes, pieceCount } = makeData(20 * PL, PL);
    const base = { infoHash, pieceCount, pieceLength: PL, length: 20 * PL, pipeline: 4 };
    const seed = makeNode(
      { ...base, peerId: pid(0), have: fullHave(pieceCount), superSeed: true },
      Buffer.from(data),
      hashes,
      1,
    );
    const peers = [1, 2, 3].map((i) =>
      makeNode({ ...base, peerId: pid(i) }, Buffer.alloc(20 * PL), hashes, i + 1),
    );
    const first = seed.core.addLink(99, false, 0);
    expect(first).toEqual([{ type: 'handshake', link: 99 }]);
    const hello = seed.core.message(
      99,
      { type: 'handshake', reserved: Buffer.alloc(8), infoHash, peerId: pid(9) },
      0,
    );
    // A free upload slot: the newcomer is unchoked and offered two pieces (no bitfield).
    expect(hello.map((c) => (c.type === 'send' ? c.msg.type : c.type))).toEqual(['unchoke', 'have', 'have']);
    seed.core.removeLink(99);
    meshToCompletion(seed, peers, data);
  });

  it('offers only to peers it unchokes: with every slot taken a newcomer gets nothing until a choking round', () => {
    const { pieceCount } = makeData(20 * PL, PL);
    const core = new TorrentCore(
      {
        infoHash,
        peerId: pid(0),
        pieceCount,
        pieceLength: PL,
        length: 20 * PL,
        uploadSlots: 1,
        superSeed: true,
        have: fullHave(pieceCount),
      },
      rng(3),
    );
    const offers = (link: number) => {
      core.addLink(link, false, 0);
      const out = core.message(
        link,
        { type: 'handshake', reserved: Buffer.alloc(8), infoHash, peerId: pid(link) },
        0,
      );
      return out.flatMap((c) => (c.type === 'send' && c.msg.type === 'have' ? [c.msg.index] : []));
    };
    // One regular slot plus the optimistic one: two peers are unchoked and offered two pieces each,
    // all different; the third waits.
    const a = offers(1);
    const b = offers(2);
    expect(a).toHaveLength(2);
    expect(b).toHaveLength(2);
    expect(new Set([...a, ...b]).size).toBe(4);
    expect(offers(3)).toEqual([]);
    // A choking round later, whoever is unchoked holds offers, and nobody choked counts as one.
    const round = core.tick(10_000);
    const unchoked = round.flatMap((c) => (c.type === 'send' && c.msg.type === 'unchoke' ? [c.link] : []));
    for (const link of unchoked)
      expect(round.some((c) => c.type === 'send' && c.link === link && c.msg.type === 'have')).toBe(true);
  });
});

describe('TorrentCore: pieces waiting for their verdict', () => {
  it('asks for nothing more while MAX_VERIFYING_BYTES of pieces wait, and resumes at a verdict', () => {
    // 4 MiB pieces: 8 MiB of them is 2 waiting at once.
    const PL4 = 4 * 1024 * 1024;
    const pieces = 10;
    expect(Math.max(2, Math.floor(MAX_VERIFYING_BYTES / PL4))).toBe(2);
    const core = new TorrentCore(
      { infoHash, peerId: pid(1), pieceCount: pieces, pieceLength: PL4, length: PL4 * pieces },
      rng(3),
    );
    const requests = (cmds: Command[]) =>
      cmds.flatMap((c) => (c.type === 'send' && c.msg.type === 'request' ? [c.msg] : []));
    core.addLink(1, true, 0);
    core.message(1, { type: 'handshake', reserved: Buffer.alloc(8), infoHash, peerId: pid(2) }, 0);
    core.message(1, { type: 'bitfield', bitfield: fullHave(pieces).bytes.slice() }, 0);
    const pending = requests(core.message(1, { type: 'unchoke' }, 0));
    expect(pending.length).toBeGreaterThan(0);
    const verifies: number[] = [];
    // Answer every request at once; the driver never gives a verdict.
    for (let steps = 0; pending.length > 0 && steps < 10_000; steps++) {
      const r = pending.shift() as { index: number; begin: number; length: number };
      const out = core.message(
        1,
        { type: 'piece', index: r.index, begin: r.begin, block: new Uint8Array(r.length) },
        0,
      );
      pending.push(...requests(out));
      for (const c of out) if (c.type === 'verify') verifies.push(c.index);
    }
    // Two whole pieces handed over, then silence: no request is left unanswered, none is new.
    expect(verifies.length).toBe(2);
    expect(pending).toEqual([]);
    // A verdict (the driver says the piece is good) frees a place: requests start again.
    const after = requests(core.verifyDone(verifies[0] as number, true, 0));
    expect(after.length).toBeGreaterThan(0);
  });
});
