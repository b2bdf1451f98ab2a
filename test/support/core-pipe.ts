import { createHash } from 'node:crypto';
import { Bitfield } from '../../src/core/bitfield.js';
import { type Command, type CoreOpts, type LinkId, TorrentCore } from '../../src/swarm/torrent-core.js';
import { Decoder } from '../../src/wire/decoder.js';
import { encode, encodeHandshake } from '../../src/wire/encode.js';

/** Seeded RNG (LCG) for deterministic tests. */
export function rng(seed = 1): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    return s / 0x80000000;
  };
}

export function makeData(length: number, pieceLength: number) {
  const data = Buffer.alloc(length);
  for (let i = 0; i < length; i++) data[i] = (i * 7 + (i >> 9)) & 255;
  const hashes: Buffer[] = [];
  for (let o = 0; o < length; o += pieceLength)
    hashes.push(
      createHash('sha1')
        .update(data.subarray(o, o + pieceLength))
        .digest(),
    );
  return { data, hashes, pieceCount: hashes.length };
}

export interface Node {
  core: TorrentCore;
  store: Buffer;
  hashes: Buffer[];
  pieceLength: number;
  /** Corrupts what this node serves (a hostile seed). */
  corrupt?: boolean;
  closed: { link: LinkId; code: string }[];
  completed: boolean;
  /** Block bytes this node sent. */
  uploaded: number;
}

export function makeNode(
  opts: Omit<CoreOpts, 'have'> & { have?: Bitfield },
  store: Buffer,
  hashes: Buffer[],
  seed: number,
): Node {
  return {
    core: new TorrentCore(opts, rng(seed)),
    store,
    hashes,
    pieceLength: opts.pieceLength,
    closed: [],
    completed: false,
    uploaded: 0,
  };
}

/**
 * Wires cores together in memory: each link's messages go through the real encoder and decoder.
 * Runs until quiet (bounded).
 */
export class Pipe {
  queue: { to: Node; link: LinkId; bytes: Buffer }[] = [];
  ends = new Map<Node, Map<LinkId, { peer: Node; peerLink: LinkId; decoder: Decoder }>>();
  now = 0;

  /** `wantedA`/`wantedB`: open the link as an exchange on that side (only those pieces fetched). */
  connect(a: Node, b: Node, linkA: LinkId, linkB: LinkId, wantedA?: number[], wantedB?: number[]): void {
    if (!this.ends.has(a)) this.ends.set(a, new Map());
    if (!this.ends.has(b)) this.ends.set(b, new Map());
    this.ends.get(a)?.set(linkA, { peer: b, peerLink: linkB, decoder: new Decoder() });
    this.ends.get(b)?.set(linkB, { peer: a, peerLink: linkA, decoder: new Decoder() });
    this.apply(a, a.core.addLink(linkA, true, this.now, wantedA));
    this.apply(b, b.core.addLink(linkB, false, this.now, wantedB));
  }

  /** Connects every node to every other one. */
  mesh(nodes: Node[]): void {
    let link = 1;
    for (let i = 0; i < nodes.length; i++) {
      for (let j = i + 1; j < nodes.length; j++)
        this.connect(nodes[j] as Node, nodes[i] as Node, link++, link++);
    }
  }

  apply(n: Node, cmds: Command[]): void {
    for (const c of cmds) {
      const end = 'link' in c ? this.ends.get(n)?.get(c.link) : undefined;
      switch (c.type) {
        case 'handshake':
          if (end)
            this.queue.push({
              to: end.peer,
              link: end.peerLink,
              bytes: encodeHandshake({
                reserved: Buffer.alloc(8),
                infoHash: n.core.opts.infoHash,
                peerId: n.core.opts.peerId,
              }),
            });
          break;
        case 'send':
          if (c.msg.type === 'piece') n.uploaded += c.msg.block.length;
          if (end) this.queue.push({ to: end.peer, link: end.peerLink, bytes: encode(c.msg) });
          break;
        case 'close':
          n.closed.push({ link: c.link, code: c.code });
          if (end) {
            this.ends.get(n)?.delete(c.link);
            this.ends.get(end.peer)?.delete(end.peerLink);
            end.peer.core.removeLink(end.peerLink);
          }
          break;
        case 'read': {
          const off = c.index * n.pieceLength + c.begin;
          const block = Buffer.from(n.store.subarray(off, off + c.length));
          if (n.corrupt) block.fill(0xee);
          this.apply(n, n.core.readDone(c.link, c.index, c.begin, block, this.now));
          break;
        }
        case 'verify': {
          const ok = createHash('sha1')
            .update(c.data)
            .digest()
            .equals(n.hashes[c.index] as Buffer);
          if (ok) Buffer.from(c.data).copy(n.store, c.index * n.pieceLength);
          this.apply(n, n.core.verifyDone(c.index, ok, this.now));
          break;
        }
        case 'complete':
          n.completed = true;
          break;
      }
    }
  }

  /** Delivers queued bytes until nothing is left; ticks the clock every `tickEvery` deliveries. */
  run(nodes: Node[], maxSteps = 200_000, tickEvery = 500): number {
    let steps = 0;
    for (; steps < maxSteps; steps++) {
      const item = this.queue.shift();
      if (item === undefined) {
        // Quiet: let time pass so choking rounds and timeouts can act, a bounded number of times.
        this.now += 1000;
        let any = false;
        for (const n of nodes) {
          const cmds = n.core.tick(this.now);
          if (cmds.length > 0) any = true;
          this.apply(n, cmds);
        }
        if (!any && this.queue.length === 0) break;
        continue;
      }
      const end = this.ends.get(item.to)?.get(item.link);
      if (end === undefined) continue;
      const r = end.decoder.push(item.bytes);
      for (const m of r.messages) this.apply(item.to, item.to.core.message(item.link, m, this.now));
      if (steps % tickEvery === 0) {
        this.now += 100;
        for (const n of nodes) this.apply(n, n.core.tick(this.now));
      }
    }
    return steps;
  }
}

export function fullHave(n: number): Bitfield {
  const b = new Bitfield(n);
  for (let i = 0; i < n; i++) b.set(i);
  return b;
}
