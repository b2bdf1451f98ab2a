import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/core/rate-limit.js';
import type { SwarmRegistry } from '../../src/tracker/registry.js';
import { MemorySwarmStore } from '../../src/tracker/swarm-store.js';
import {
  ANNOUNCE_LENGTH,
  CONNECTION_WINDOW_MS,
  handleUdpPacket,
  MAX_UDP_SCRAPE,
  type UdpContext,
} from '../../src/tracker/udp.js';
import { hashOf, testTracker } from '../support/tracker.js';

const secret = Buffer.from('test secret');
function ctx(limiter: RateLimiter | null = null): UdpContext & { registry: SwarmRegistry } {
  const t = testTracker({ interval: 60 });
  return {
    registry: t.registry,
    store: new MemorySwarmStore(t.registry),
    limits: t.registry.limits,
    mac: (d) => createHmac('sha256', secret).update(d).digest(),
    trustIp: false,
    limiter,
    defaultNumwant: 50,
  };
}

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const NOW = 1_700_000_000_000;

function connect(c: UdpContext, ip: string, tid = 0x01020304, now = NOW): Buffer {
  // <int64 0x41727101980><int32 action=0><int32 transaction_id>
  const reply = handleUdpPacket(
    c,
    hex(`0000041727101980 00000000 ${tid.toString(16).padStart(8, '0')}`),
    { ip, port: 9 },
    now,
  );
  expect(reply).not.toBeNull();
  const r = Buffer.from(reply as Uint8Array);
  expect(r.length).toBe(16);
  expect(r.readUInt32BE(0)).toBe(0);
  expect(r.readUInt32BE(4)).toBe(tid);
  return r.subarray(8, 16);
}

function announcePacket(
  cid: Buffer,
  o: { hash: Buffer; peer: number; port: number; left: number; event?: number; numwant?: number },
) {
  const b = Buffer.alloc(ANNOUNCE_LENGTH);
  cid.copy(b, 0);
  b.writeUInt32BE(1, 8);
  b.writeUInt32BE(0xaabbccdd, 12);
  o.hash.copy(b, 16);
  b.write(`-SS0001-${String(o.peer).padStart(12, '0')}`, 36, 'latin1');
  b.writeUInt32BE(0, 56);
  b.writeUInt32BE(0, 60);
  b.writeUInt32BE(0, 64);
  b.writeUInt32BE(o.left, 68);
  b.writeUInt32BE(o.event ?? 2, 80);
  b.writeUInt32BE(0x01020304, 84); // a stated ip, ignored unless trusted
  b.writeUInt32BE(7, 88);
  b.writeInt32BE(o.numwant ?? -1, 92);
  b.writeUInt16BE(o.port, 96);
  return b;
}

describe('UDP tracker protocol (BEP 15)', () => {
  it('connect: a 16-byte reply echoing the transaction id, a connection id bound to the address', () => {
    const c = ctx();
    const a = connect(c, '127.0.0.2');
    expect(connect(c, '127.0.0.2')).toEqual(a);
    expect(connect(c, '127.0.0.3')).not.toEqual(a);
    // A new window makes a new id; the old one is still accepted in the next window, not after.
    expect(connect(c, '127.0.0.2', 1, NOW + CONNECTION_WINDOW_MS)).not.toEqual(a);
  });

  it('announce: counts, interval, and the other peers in 6-byte form', () => {
    const c = ctx();
    const H = hashOf(3);
    const cid1 = connect(c, '127.0.0.2');
    const first = Buffer.from(
      handleUdpPacket(
        c,
        announcePacket(cid1, { hash: H, peer: 1, port: 6881, left: 0 }),
        { ip: '127.0.0.2', port: 9 },
        NOW,
      ) as Uint8Array,
    );
    expect(first.readUInt32BE(0)).toBe(1);
    expect(first.readUInt32BE(4)).toBe(0xaabbccdd);
    expect(first.readUInt32BE(8)).toBe(60);
    expect(first.length).toBe(20);
    const cid2 = connect(c, '127.0.0.3');
    const second = Buffer.from(
      handleUdpPacket(
        c,
        announcePacket(cid2, { hash: H, peer: 2, port: 6882, left: 100 }),
        { ip: '127.0.0.3', port: 9 },
        NOW + 1000,
      ) as Uint8Array,
    );
    // leechers 1 (us), seeders 1, and the seed at 127.0.0.2:6881 (its stated ip ignored).
    expect(second.readUInt32BE(12)).toBe(1);
    expect(second.readUInt32BE(16)).toBe(1);
    expect(second.subarray(20).toString('hex')).toBe('7f0000021ae1');
    // The same swarm over HTTP: the registry is shared.
    expect(c.registry.swarmById(H.toString('hex'))?.list.length).toBe(2);
  });

  it('scrape: seeders, completed, leechers per hash, at most 74', () => {
    const c = ctx();
    const H = hashOf(4);
    const cid = connect(c, '127.0.0.2');
    handleUdpPacket(
      c,
      announcePacket(cid, { hash: H, peer: 1, port: 6881, left: 0 }),
      { ip: '127.0.0.2', port: 9 },
      NOW,
    );
    const req = Buffer.alloc(16 + 20 * 80);
    cid.copy(req, 0);
    req.writeUInt32BE(2, 8);
    req.writeUInt32BE(5, 12);
    for (let i = 0; i < 80; i++) hashOf(4 + i).copy(req, 16 + 20 * i);
    const r = Buffer.from(handleUdpPacket(c, req, { ip: '127.0.0.2', port: 9 }, NOW) as Uint8Array);
    expect(r.readUInt32BE(0)).toBe(2);
    expect(r.length).toBe(8 + 12 * MAX_UDP_SCRAPE);
    expect([r.readUInt32BE(8), r.readUInt32BE(12), r.readUInt32BE(16)]).toEqual([1, 0, 0]);
    expect(r.readUInt32BE(20)).toBe(0);
  });

  it('a wrong, foreign or expired connection id gets a short error, never more than the request', () => {
    const c = ctx();
    const H = hashOf(5);
    const cid = connect(c, '127.0.0.2');
    const bad = announcePacket(Buffer.alloc(8, 7), { hash: H, peer: 1, port: 1, left: 0 });
    const foreign = announcePacket(cid, { hash: H, peer: 1, port: 1, left: 0 });
    for (const [packet, ip, now] of [
      [bad, '127.0.0.2', NOW],
      [foreign, '127.0.0.9', NOW],
      [foreign, '127.0.0.2', NOW + 2 * CONNECTION_WINDOW_MS + 1],
    ] as const) {
      const r = Buffer.from(handleUdpPacket(c, packet, { ip, port: 9 }, now) as Uint8Array);
      expect(r.readUInt32BE(0)).toBe(3);
      expect(r.toString('utf8', 8)).toContain('connection id');
      expect(r.length).toBeLessThanOrEqual(packet.length);
    }
    // Still accepted in the next window.
    const ok = Buffer.from(
      handleUdpPacket(c, foreign, { ip: '127.0.0.2', port: 9 }, NOW + CONNECTION_WINDOW_MS) as Uint8Array,
    );
    expect(ok.readUInt32BE(0)).toBe(1);
  });

  it('a port of 0 or an unknown event is an error reply, not a crash', () => {
    const c = ctx();
    const cid = connect(c, '127.0.0.2');
    const r = Buffer.from(
      handleUdpPacket(
        c,
        announcePacket(cid, { hash: hashOf(6), peer: 1, port: 0, left: 0 }),
        { ip: '127.0.0.2', port: 9 },
        NOW,
      ) as Uint8Array,
    );
    expect(r.readUInt32BE(0)).toBe(3);
    const e = Buffer.from(
      handleUdpPacket(
        c,
        announcePacket(cid, { hash: hashOf(6), peer: 1, port: 1, left: 0, event: 9 }),
        { ip: '127.0.0.2', port: 9 },
        NOW,
      ) as Uint8Array,
    );
    expect(e.toString('utf8', 8)).toContain('unknown event');
  });

  it('short packets, a connect without the protocol id and unknown actions are dropped', () => {
    const c = ctx();
    expect(handleUdpPacket(c, hex('00'), { ip: '127.0.0.2', port: 9 }, NOW)).toBeNull();
    expect(
      handleUdpPacket(c, hex('0000000000000000 00000000 00000001'), { ip: '127.0.0.2', port: 9 }, NOW),
    ).toBeNull();
    expect(
      handleUdpPacket(c, hex('0000041727101980 00000009 00000001'), { ip: '127.0.0.2', port: 9 }, NOW),
    ).toBeNull();
    // An announce shorter than 98 bytes.
    expect(handleUdpPacket(c, Buffer.alloc(60), { ip: '127.0.0.2', port: 9 }, NOW)).toBeNull();
  });

  it('drops packets past a sender’s rate', () => {
    const c = ctx(new RateLimiter(2, 4));
    let answered = 0;
    for (let i = 0; i < 20; i++)
      if (
        handleUdpPacket(c, hex('0000041727101980 00000000 00000001'), { ip: '127.0.0.2', port: 9 }, NOW) !==
        null
      )
        answered++;
    expect(answered).toBe(4);
  });

  it('any bytes: no throw, and no answer larger than the request without a valid connection id', () => {
    const c = ctx();
    // Packets of every shape: pure noise, and noise under a header that reaches each action
    // (connect with and without the protocol id, announce and scrape with a made-up connection id),
    // so the answers the property speaks of are really produced and checked.
    const packet = fc.oneof(
      fc.uint8Array({ minLength: 0, maxLength: 2100 }),
      fc
        .tuple(
          fc.boolean(),
          fc.constantFrom(0, 1, 2, 3),
          fc.uint8Array({ minLength: 8, maxLength: 8 }),
          fc.uint8Array({ minLength: 4, maxLength: 4 }),
          fc.uint8Array({ minLength: 0, maxLength: 2000 }),
        )
        .map(([magic, action, cid, tid, body]) => {
          const b = Buffer.concat([Buffer.alloc(16), body]);
          if (magic) hex('0000041727101980').copy(b, 0);
          else Buffer.from(cid).copy(b, 0);
          b.writeUInt32BE(action, 8);
          Buffer.from(tid).copy(b, 12);
          return new Uint8Array(b);
        }),
    );
    let answered = 0;
    fc.assert(
      fc.property(packet, fc.constantFrom('127.0.0.2', '::1', '10.1.1.1'), (bytes, ip) => {
        // The in-memory store answers at once.
        const r = handleUdpPacket(c, bytes, { ip, port: 9 }, NOW) as Uint8Array | null;
        if (r === null) return;
        answered++;
        expect(r.length).toBeLessThanOrEqual(Math.max(16, bytes.length));
      }),
      { numRuns: 2000 },
    );
    // A good share of the runs are answered (connects, and refusals of announces and scrapes long
    // enough to be read); pure noise never is.
    expect(answered).toBeGreaterThan(50);
  });
});
