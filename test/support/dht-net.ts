import { createHash } from 'node:crypto';
import { DhtNode, type Packet } from '../../src/dht/dht-node.js';

/**
 * An in-memory network of DHT nodes: packets go through a queue, in order, at a hand-driven time;
 * a packet to an address nobody holds (or one `loss` drops) is lost, and its query times out on a
 * tick. Deterministic: the randomness is a seeded xorshift.
 */
export class MemDht {
  readonly nodes = new Map<string, DhtNode>();
  readonly #queue: { from: string; p: Packet }[] = [];
  now = 1_000_000;
  #seed: number;
  readonly loss: number;
  delivered = 0;

  constructor(seed = 1, loss = 0) {
    this.#seed = seed;
    this.loss = loss;
  }

  random = (n: number): Uint8Array => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      let x = this.#seed;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.#seed = x >>> 0;
      out[i] = this.#seed & 0xff;
    }
    return out;
  };

  deps = {
    sha1: (d: Uint8Array) => createHash('sha1').update(d).digest(),
    randomBytes: (n: number) => this.random(n),
  };

  add(ip: string, port: number, bootstrap: { ip: string; port: number }[]): DhtNode {
    const n = new DhtNode({ bootstrap }, this.deps, this.now);
    this.nodes.set(`${ip}:${port}`, n);
    return n;
  }

  send(from: string, packets: Packet[]): void {
    for (const p of packets) this.#queue.push({ from, p });
  }

  /** Delivers queued packets (and what they cause) until none is left, at most `max`. */
  run(max = 1_000_000): void {
    for (let i = 0; i < max && this.#queue.length > 0; i++) {
      const { from, p } = this.#queue.shift() as { from: string; p: Packet };
      const to = this.nodes.get(`${p.ip}:${p.port}`);
      if (to === undefined || (this.loss > 0 && (this.random(1)[0] as number) / 256 < this.loss)) continue;
      this.delivered++;
      const [ip, port] = from.split(':') as [string, string];
      this.send(`${p.ip}:${p.port}`, to.receive(p.data, { ip, port: Number(port) }, this.now));
    }
  }

  /** Time passes by `ms`; every node ticks; what follows is delivered. */
  advance(ms: number): void {
    this.now += ms;
    for (const [addr, n] of this.nodes) this.send(addr, n.tick(this.now));
    this.run();
  }
}
