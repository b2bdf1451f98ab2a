import { createHash } from 'node:crypto';
import { Bitfield } from '../../src/core/bitfield.js';
import { type BlockStore, CommandInterpreter, type Transport } from '../../src/swarm/interpreter.js';
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
  /** Exchange links that said they had given what they could. */
  exchangesDone: LinkId[];
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
    exchangesDone: [],
    uploaded: 0,
  };
}

/**
 * Wires cores together in memory: each link's messages go through the real encoder and decoder,
 * each node's commands through the one interpreter (the pipe is its transport, the node's buffer
 * its store). Runs until quiet (bounded).
 */
export class Pipe {
  queue: { to: Node; link: LinkId; bytes: Buffer }[] = [];
  ends = new Map<Node, Map<LinkId, { peer: Node; peerLink: LinkId; decoder: Decoder }>>();
  now = 0;

  readonly #interps = new Map<Node, CommandInterpreter>();

  /** `n`'s interpreter over this pipe: the pipe is its transport, its buffer its store. */
  interp(n: Node): CommandInterpreter {
    const known = this.#interps.get(n);
    if (known !== undefined) return known;
    const core = n.core;
    const pipe = this;
    const transport: Transport = {
      handshake(link) {
        const end = pipe.ends.get(n)?.get(link);
        if (end)
          pipe.queue.push({
            to: end.peer,
            link: end.peerLink,
            bytes: encodeHandshake({
              reserved: Buffer.alloc(8),
              infoHash: core.opts.infoHash,
              peerId: core.opts.peerId,
            }),
          });
      },
      send(link, msg) {
        if (msg.type === 'piece') n.uploaded += msg.block.length;
        const end = pipe.ends.get(n)?.get(link);
        if (end) pipe.queue.push({ to: end.peer, link: end.peerLink, bytes: encode(msg) });
      },
      close(link, code) {
        n.closed.push({ link, code });
        const end = pipe.ends.get(n)?.get(link);
        if (end) {
          pipe.ends.get(n)?.delete(link);
          pipe.ends.get(end.peer)?.delete(end.peerLink);
          end.peer.core.removeLink(end.peerLink);
        }
      },
    };
    const store: BlockStore = {
      read(index, begin, length) {
        const off = index * n.pieceLength + begin;
        const block = Buffer.from(n.store.subarray(off, off + length));
        if (n.corrupt) block.fill(0xee);
        return block;
      },
      verify(index, data) {
        const ok = createHash('sha1')
          .update(data)
          .digest()
          .equals(n.hashes[index] as Buffer);
        if (ok) Buffer.from(data).copy(n.store, index * n.pieceLength);
        return ok;
      },
    };
    const interp = new CommandInterpreter(core, {
      transport,
      store,
      clock: { now: () => pipe.now },
      hooks: { complete: () => (n.completed = true), exchangeDone: (link) => n.exchangesDone.push(link) },
    });
    this.#interps.set(n, interp);
    return interp;
  }

  /** `wantedA`/`wantedB`: open the link as an exchange on that side (only those pieces fetched). */
  connect(a: Node, b: Node, linkA: LinkId, linkB: LinkId, wantedA?: number[], wantedB?: number[]): void {
    if (!this.ends.has(a)) this.ends.set(a, new Map());
    if (!this.ends.has(b)) this.ends.set(b, new Map());
    this.ends.get(a)?.set(linkA, { peer: b, peerLink: linkB, decoder: new Decoder() });
    this.ends.get(b)?.set(linkB, { peer: a, peerLink: linkA, decoder: new Decoder() });
    this.interp(a).run(a.core.addLink(linkA, true, this.now, wantedA));
    this.interp(b).run(b.core.addLink(linkB, false, this.now, wantedB));
  }

  /** Connects every node to every other one. */
  mesh(nodes: Node[]): void {
    let link = 1;
    for (let i = 0; i < nodes.length; i++) {
      for (let j = i + 1; j < nodes.length; j++)
        this.connect(nodes[j] as Node, nodes[i] as Node, link++, link++);
    }
  }

  /** Carries out `cmds` of node `n` (commands a test got from its core directly). */
  apply(n: Node, cmds: Command[]): void {
    this.interp(n).run(cmds);
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
          this.interp(n).run(cmds);
        }
        if (!any && this.queue.length === 0) break;
        continue;
      }
      const end = this.ends.get(item.to)?.get(item.link);
      if (end === undefined) continue;
      const r = end.decoder.push(item.bytes);
      for (const m of r.messages) this.interp(item.to).run(item.to.core.message(item.link, m, this.now));
      if (steps % tickEvery === 0) {
        this.now += 100;
        for (const n of nodes) this.interp(n).tick();
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
