import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DhtNode, QUERIES_PER_SECOND } from '../../src/dht/dht-node.js';
import { decodeKrpc, encodeQuery } from '../../src/dht/krpc.js';
import { MAX_PEERS_PER_TORRENT, MAX_TORRENTS, PeerStore } from '../../src/dht/peer-store.js';
import { commonPrefix, compareDistance, K, RoutingTable } from '../../src/dht/routing-table.js';

/** A DHT node under bad input: malformed packets, floods, bad tokens, poisoning; answers stay small. */

const sha1 = (d: Uint8Array) => createHash('sha1').update(d).digest();
let seed = 99;
const randomBytes = (n: number) => {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    out[i] = seed & 0xff;
  }
  return out;
};
const T = 5_000_000;
const node = () => new DhtNode({}, { sha1, randomBytes }, T);
const id = (n: number) => Buffer.alloc(20, n);
const t = Buffer.from('tt');

describe('a DHT node under bad input', () => {
  it('any bytes: no throw; no answer to what has no transaction id; an answer never larger than 8x the packet', () => {
    const d = node();
    const valid = fc
      .tuple(
        fc.constantFrom(0, 1, 2),
        fc.uint8Array({ minLength: 1, maxLength: 4 }),
        fc.integer({ min: 0, max: 255 }),
      )
      .map(([kind, tid, n]) =>
        Buffer.from(
          encodeQuery(
            tid,
            kind === 0
              ? { q: 'ping', id: id(n) }
              : kind === 1
                ? { q: 'find_node', id: id(n), target: id(n ^ 1) }
                : { q: 'get_peers', id: id(n), infoHash: id(n ^ 2) },
          ),
        ),
      );
    // Noise; well-formed queries; the same with bytes changed or cut off; and queries whose
    // transaction id key is renamed (`1:t` -> `1:u`, still sorted), which must get no answer.
    const packet = fc.oneof(
      fc.uint8Array({ maxLength: 3000 }).map((p) => ({ p: Buffer.from(p), noTid: false })),
      valid.map((p) => ({ p, noTid: false })),
      fc
        .tuple(
          valid,
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
          fc.nat(),
        )
        .map(([p, flips, cut]) => {
          const b = Buffer.from(p);
          for (const [at, v] of flips) b[at % b.length] = v;
          return { p: b.subarray(0, Math.max(1, b.length - (cut % 8))), noTid: false };
        }),
      valid.map((p) => ({
        p: Buffer.from(p.toString('latin1').replace('1:t', '1:u'), 'latin1'),
        noTid: true,
      })),
    );
    let answered = 0;
    fc.assert(
      // A new source address a run, so the per-address rate limit does not hide the answers.
      fc.property(packet, fc.integer({ min: 1, max: 65535 }), ({ p, noTid }, port) => {
        const out = d.receive(p, { ip: `10.9.${port >> 8}.${port & 255}`, port }, T);
        if (noTid) expect(out).toEqual([]);
        for (const o of out) expect(o.data.length).toBeLessThanOrEqual(8 * p.length);
        answered += out.length;
      }),
      { numRuns: 2000 },
    );
    // The well-formed queries (a quarter of the runs, and some mutated ones) are answered.
    expect(answered).toBeGreaterThan(300);
  });

  it('answers to well-formed queries stay under 512 bytes and 8x the query (no amplification)', () => {
    const d = node();
    // Fill its table and its peer store for one torrent to the brim.
    for (let i = 1; i < 200; i++)
      d.table.seen({ id: randomBytes(20), ip: `10.1.${i}.1`, port: 6881 }, T, true);
    for (let i = 0; i < 300; i++) d.store.add(id(7), { ip: `10.2.${i >> 8}.${i & 255}`, port: 7000 }, T);
    const queries = [
      encodeQuery(t, { q: 'ping', id: id(1) }),
      encodeQuery(t, { q: 'find_node', id: id(1), target: id(9) }),
      encodeQuery(t, { q: 'get_peers', id: id(1), infoHash: id(7) }),
      encodeQuery(t, { q: 'get_peers', id: id(1), infoHash: id(8) }),
    ];
    queries.forEach((q, i) => {
      const [a] = d.receive(q, { ip: `10.3.0.${i + 1}`, port: 6881 }, T);
      expect(a).toBeDefined();
      expect(a!.data.length).toBeLessThanOrEqual(512);
      expect(a!.data.length).toBeLessThanOrEqual(8 * q.length);
    });
  });

  it('a flood from one address is cut at its rate; others are still answered', () => {
    const d = node();
    const q = encodeQuery(t, { q: 'ping', id: id(1) });
    let answered = 0;
    for (let i = 0; i < 500; i++) answered += d.receive(q, { ip: '10.4.4.4', port: 6881 }, T).length;
    expect(answered).toBeLessThanOrEqual(2 * QUERIES_PER_SECOND + 1);
    expect(d.stats.dropped).toBeGreaterThan(400);
    expect(d.receive(q, { ip: '10.5.5.5', port: 6881 }, T)).toHaveLength(1);
  });

  it('announce_peer needs the token we gave that address; a wrong, foreign or expired one is refused', () => {
    const d = node();
    const from = { ip: '10.6.6.6', port: 6881 };
    const [gp] = d.receive(encodeQuery(t, { q: 'get_peers', id: id(2), infoHash: id(3) }), from, T);
    const token = (decodeKrpc(gp!.data) as { r: { token: Uint8Array } }).r.token;
    const announce = (tok: Uint8Array, ip = from.ip, now = T) =>
      decodeKrpc(
        d.receive(
          encodeQuery(t, {
            q: 'announce_peer',
            id: id(2),
            infoHash: id(3),
            port: 7777,
            token: tok,
            impliedPort: false,
          }),
          { ip, port: 6881 },
          now,
        )[0]!.data,
      );
    expect(announce(Buffer.from('nottoken'))).toMatchObject({ y: 'e', code: 203 });
    expect(announce(token, '10.7.7.7')).toMatchObject({ y: 'e', code: 203 });
    expect(announce(token)).toMatchObject({ y: 'r' });
    expect(d.store.get(id(3), 10, T, randomBytes)).toEqual([{ ip: from.ip, port: 7777 }]);
    // Two rotations later (over 10 minutes) the token is stale.
    d.tick(T + 5 * 60_000 + 1);
    d.tick(T + 10 * 60_000 + 2);
    expect(announce(token, from.ip, T + 10 * 60_000 + 3)).toMatchObject({ y: 'e', code: 203 });
  });

  it('routing table: buckets of at most K, never ourselves, one node per address, closest sorted by distance', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.integer({ min: 1, max: 40 })), {
          maxLength: 400,
        }),
        fc.uint8Array({ minLength: 20, maxLength: 20 }),
        (entries, target) => {
          const self = id(0x42);
          const rt = new RoutingTable(self, K, T);
          rt.seen({ id: self, ip: '10.0.0.1', port: 1 }, T);
          for (const [nid, host] of entries) rt.seen({ id: nid, ip: `10.8.0.${host}`, port: 6881 }, T);
          const all = rt.all();
          expect(all.every((n) => commonPrefix(n.id, self) < 160)).toBe(true);
          expect(new Set(all.map((n) => n.ip)).size).toBe(all.length);
          const byBucket = new Map<number, number>();
          for (const n of all)
            byBucket.set(commonPrefix(n.id, self), (byBucket.get(commonPrefix(n.id, self)) ?? 0) + 1);
          for (const c of byBucket.values()) expect(c).toBeLessThanOrEqual(K);
          const c = rt.closest(target, K);
          for (let i = 1; i < c.length; i++)
            expect(compareDistance(c[i - 1]!.id, c[i]!.id, target)).toBeLessThanOrEqual(0);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a known id claimed from another address does not move the node (spoofing)', () => {
    const rt = new RoutingTable(id(1), K, T);
    rt.seen({ id: id(9), ip: '10.0.0.9', port: 6881 }, T);
    rt.seen({ id: id(9), ip: '10.6.6.6', port: 6666 }, T + 1);
    expect(rt.all().map((n) => `${n.ip}:${n.port}`)).toEqual(['10.0.0.9:6881']);
  });

  it('peer store stays bounded whatever is announced', () => {
    const s = new PeerStore();
    for (let i = 0; i < MAX_TORRENTS + 50; i++)
      s.add(
        Buffer.alloc(20)
          .fill(i & 255, 0, 1)
          .fill(i >> 8, 1, 2),
        { ip: '10.0.0.1', port: 1 },
        T,
      );
    expect(s.torrents).toBe(MAX_TORRENTS);
    for (let i = 0; i < 1000; i++) s.add(id(1), { ip: `10.1.${i >> 8}.${i & 255}`, port: 1 }, T);
    expect(s.get(id(1), 10_000, T, randomBytes).length).toBe(MAX_PEERS_PER_TORRENT);
  });
});
