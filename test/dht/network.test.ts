import { describe, expect, it } from 'vitest';
import type { LookupResult } from '../../src/dht/dht-node.js';
import { MemDht } from '../support/dht-net.js';

/** Lookups on an in-memory network of hundreds of nodes: bootstrap, announce, find. */

function network(n: number, seed: number, loss = 0) {
  const net = new MemDht(seed, loss);
  const addr = (i: number) => ({ ip: `10.${(i >> 8) & 255}.${i & 255}.1`, port: 6881 });
  const boot = addr(0);
  net.add(boot.ip, boot.port, []);
  for (let i = 1; i < n; i++) {
    const a = addr(i);
    const node = net.add(a.ip, a.port, [boot]);
    net.send(`${a.ip}:${a.port}`, node.bootstrap(net.now));
    net.run();
    // Lost packets time out; a few ticks let every lookup end.
    if (loss > 0) for (let k = 0; k < 3; k++) net.advance(2_100);
  }
  return { net, addr };
}

describe('DHT lookups on an in-memory network', () => {
  it('300 nodes: every node learns its neighbourhood; a peer announced by one is found by another in a few hops', () => {
    const { net, addr } = network(300, 7);
    const sizes = [...net.nodes.values()].map((n) => n.table.size);
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(8);
    const infoHash = Buffer.alloc(20, 0x5a);
    const a = addr(5);
    const announcer = net.nodes.get(`${a.ip}:${a.port}`)!;
    let announced: LookupResult | undefined;
    net.send(
      `${a.ip}:${a.port}`,
      announcer.getPeers(infoHash, net.now, (r) => (announced = r), 7000),
    );
    net.run();
    expect(announced).toBeDefined();
    expect(announced!.closest.length).toBe(8);
    // The closest nodes hold the announce.
    const holders = [...net.nodes.values()].filter((n) => n.store.peers > 0).length;
    expect(holders).toBeGreaterThanOrEqual(6);
    const f = addr(250);
    const finder = net.nodes.get(`${f.ip}:${f.port}`)!;
    let found: LookupResult | undefined;
    net.send(
      `${f.ip}:${f.port}`,
      finder.getPeers(infoHash, net.now, (r) => (found = r)),
    );
    net.run();
    expect(found!.peers).toContainEqual({ ip: a.ip, port: 7000 });
    expect(found!.hops).toBeLessThanOrEqual(6);
    expect(found!.queries).toBeLessThan(60);
  });

  it('with 10% of packets lost, lookups still end (timeouts) and still find the peer', () => {
    const { net, addr } = network(150, 11, 0.1);
    const infoHash = Buffer.alloc(20, 0x33);
    const a = addr(3);
    let done = false;
    net.send(
      `${a.ip}:${a.port}`,
      net.nodes.get(`${a.ip}:${a.port}`)!.getPeers(infoHash, net.now, () => (done = true), 7100),
    );
    net.run();
    for (let k = 0; k < 10 && !done; k++) net.advance(2_100);
    expect(done).toBe(true);
    const f = addr(120);
    let found: LookupResult | undefined;
    net.send(
      `${f.ip}:${f.port}`,
      net.nodes.get(`${f.ip}:${f.port}`)!.getPeers(infoHash, net.now, (r) => (found = r)),
    );
    net.run();
    for (let k = 0; k < 10 && found === undefined; k++) net.advance(2_100);
    expect(found).toBeDefined();
    expect(found!.peers).toContainEqual({ ip: a.ip, port: 7100 });
  });
});
