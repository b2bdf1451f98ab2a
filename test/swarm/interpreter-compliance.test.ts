import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CloseCode } from '../../src/core/errors.js';
import { nodeHasher, systemClock, systemTimers } from '../../src/net/system.js';
import { TcpLinks } from '../../src/net/tcp-links.js';
import { createTorrent } from '../../src/node/create-torrent.js';
import { HashedBlockStore } from '../../src/node/fs-block-store.js';
import { SimNetwork } from '../../src/sim/network.js';
import { SimPeer } from '../../src/sim/sim-peer.js';
import { FsStore } from '../../src/storage/fs-store.js';
import { CommandInterpreter } from '../../src/swarm/interpreter.js';
import { TorrentCore } from '../../src/swarm/torrent-core.js';
import { fullHave, makeData, makeNode, type Node, Pipe, rng } from '../support/core-pipe.js';

/**
 * One compliance suite for the three drivers of the one command interpreter: real TCP (TcpLinks
 * and files on disk), the simulated network (SimNetwork and simulated peers) and the in-memory
 * test pipe. Each implements the same Transport and BlockStore; the same cases must hold on each.
 */

const PL = 32 * 1024;
const PIECES = 12;
const LENGTH = PIECES * PL - 5000;
const { data, hashes } = makeData(LENGTH, PL);

interface Env {
  /** The cores of the peers, in the order asked for. */
  cores: TorrentCore[];
  /** Drives the network until `done()` (bounded in events or time). */
  until(done: () => boolean): Promise<void>;
  /** Link closes each peer's transport carried out (the core's `close` commands). */
  closes: CloseCode[][];
  /** Piece bytes each peer's transport sent. */
  uploaded: number[];
  teardown(): Promise<void>;
}

interface PeerSpec {
  seed: boolean;
  /** Serves corrupt blocks. */
  corrupt?: boolean;
}

interface Harness {
  name: string;
  /** Peers as specified; each later one dials every earlier one. */
  setup(peers: PeerSpec[]): Promise<Env>;
}

const infoHash = createHash('sha1').update('compliance').digest();
const peerId = (i: number) => Buffer.from(`-CT0001-${String(i).padStart(12, '0')}`, 'latin1');
const coreOpts = (i: number, seed: boolean) => ({
  infoHash,
  peerId: peerId(i),
  pieceCount: PIECES,
  pieceLength: PL,
  length: LENGTH,
  pipeline: 8,
  have: seed ? fullHave(PIECES) : undefined,
});

const pipeHarness: Harness = {
  name: 'in-memory pipe',
  async setup(specs) {
    const pipe = new Pipe();
    const nodes: Node[] = specs.map((s, i) => {
      const n = makeNode(
        coreOpts(i, s.seed),
        s.seed ? Buffer.from(data) : Buffer.alloc(LENGTH),
        hashes,
        i + 1,
      );
      n.corrupt = s.corrupt;
      return n;
    });
    let link = 1;
    for (let j = 1; j < nodes.length; j++)
      for (let i = 0; i < j; i++) pipe.connect(nodes[j] as Node, nodes[i] as Node, link++, link++);
    return {
      cores: nodes.map((n) => n.core),
      async until(done) {
        for (let k = 0; k < 50 && !done(); k++) pipe.run(nodes, 2_000);
      },
      get closes() {
        return nodes.map((n) => n.closed.map((c) => c.code as CloseCode));
      },
      get uploaded() {
        return nodes.map((n) => n.uploaded);
      },
      async teardown() {},
    };
  },
};

const simHarness: Harness = {
  name: 'simulated network',
  async setup(specs) {
    const zero = new Uint8Array(PL);
    const net = new SimNetwork({ latencyMs: 5, loss: 0, maxConnections: 10 }, rng(3), zero, infoHash, null);
    const closes: CloseCode[][] = specs.map(() => []);
    const peers = specs.map((s, i) => {
      const p = new SimPeer(
        {
          n: i,
          seed: s.seed,
          malicious: s.corrupt === true,
          peerId: peerId(i),
          addr: `10.0.0.${i + 1}`,
          upload: 50 * 1024 * 1024,
          download: Number.POSITIVE_INFINITY,
          idx: i,
          joinedAt: 0,
        },
        { ...coreOpts(i, s.seed), assemble: false },
        rng(i + 1),
        net,
        zero,
        { onPieceVerified: () => {}, complete: () => {} },
      );
      // Watch the transport's closes without changing what it does.
      const close = p.close.bind(p);
      p.close = (link, code, reason) => {
        closes[i]?.push(code);
        close(link, code, reason);
      };
      return p;
    });
    for (let j = 1; j < peers.length; j++)
      for (let i = 0; i < j; i++) net.connect(peers[j] as SimPeer, peers[i] as SimPeer);
    return {
      cores: peers.map((p) => p.core),
      async until(done) {
        net.runUntil(done, 1_000_000);
      },
      closes,
      get uploaded() {
        return peers.map((p) => p.uploaded);
      },
      async teardown() {},
    };
  },
};

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const tcpHarness: Harness = {
  name: 'real TCP and files',
  async setup(specs) {
    const root = await mkdtemp(join(tmpdir(), 'ss-compliance-'));
    dirs.push(root);
    await writeFile(join(root, 'f.bin'), data);
    const { meta } = await createTorrent(join(root, 'f.bin'), { pieceLength: PL });
    const closes: CloseCode[][] = specs.map(() => []);
    const uploaded = specs.map(() => 0);
    const stores: FsStore[] = [];
    const ends = await Promise.all(
      specs.map(async (s, i) => {
        const dir = join(root, `p${i}`);
        if (s.seed) {
          await rm(dir, { recursive: true, force: true });
          await mkdir(dir, { recursive: true });
          await writeFile(join(dir, 'f.bin'), data);
        }
        const store = await FsStore.open(meta, dir, s.seed ? 'seed' : 'download');
        stores.push(store);
        const core = new TorrentCore({ ...coreOpts(i, s.seed), infoHash: meta.infoHash }, rng(i + 1));
        const blocks = new HashedBlockStore(store, meta, nodeHasher);
        // A corrupt peer's blocks are garbage (its reads, not its files).
        const read = blocks.read.bind(blocks);
        if (s.corrupt)
          blocks.read = async (index, begin, length) => (await read(index, begin, length)).fill(0xee);
        let interp: CommandInterpreter | undefined;
        const tcp = new TcpLinks(
          {
            host: '127.0.0.1',
            infoHash: meta.infoHash,
            peerId: peerId(i),
            upBucket: null,
            downBucket: null,
            clock: systemClock,
            timers: systemTimers,
          },
          {
            message: (id, m) => interp?.run(core.message(id, m, systemClock.now())),
            wireError: (id) => {
              core.removeLink(id);
              tcp.drop(id);
            },
            closedByCore: (_id, _l, code) => closes[i]?.push(code),
            gone: (id) => core.removeLink(id),
            accept: () => true,
            incoming: (id) => interp?.run(core.addLink(id, false, systemClock.now())),
            uploaded: (n) => {
              uploaded[i] = (uploaded[i] as number) + n;
            },
          },
        );
        interp = new CommandInterpreter(core, { transport: tcp, store: blocks, clock: systemClock });
        const port = await tcp.listen(0, () => {});
        return { core, tcp, interp, port };
      }),
    );
    for (let j = 1; j < ends.length; j++) {
      for (let i = 0; i < j; i++) {
        const from = ends[j] as (typeof ends)[number];
        const to = ends[i] as (typeof ends)[number];
        const dial = from.tcp.dial('127.0.0.1', to.port, 5_000);
        await dial.connected;
        from.interp.run(from.core.addLink(dial.attach(`127.0.0.1:${to.port}`), true, systemClock.now()));
      }
    }
    return {
      cores: ends.map((e) => e.core),
      async until(done) {
        const deadline = Date.now() + 15_000;
        while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      },
      closes,
      uploaded,
      async teardown() {
        for (const e of ends) await e.tcp.closeAll();
        for (const s of stores) await s.close();
      },
    };
  },
};

for (const h of [pipeHarness, simHarness, tcpHarness]) {
  describe(`the command interpreter's drivers comply: ${h.name}`, () => {
    it('a seed serves an empty peer to completion; each block is sent (and counted) once', async () => {
      const env = await h.setup([{ seed: true }, { seed: false }]);
      const [seed, leech] = env.cores as [TorrentCore, TorrentCore];
      await env.until(() => leech.complete);
      expect(leech.complete).toBe(true);
      expect(leech.have.count).toBe(PIECES);
      expect(env.uploaded[0]).toBe(LENGTH);
      expect(env.uploaded[1]).toBe(0);
      // Once complete, both are seeds: the link closes on both sides, harmlessly.
      await env.until(() => seed.links.size === 0 && leech.links.size === 0);
      expect(seed.links.size + leech.links.size).toBe(0);
      expect(env.closes.flat().every((c) => c === 'ERR_NOT_NEEDED')).toBe(true);
      await env.teardown();
    });

    it('a peer serving corrupt data is closed with ERR_HASH_MISMATCH and banned; the honest seed completes the peer', async () => {
      const env = await h.setup([{ seed: true, corrupt: true }, { seed: true }, { seed: false }]);
      const [, , leech] = env.cores as [TorrentCore, TorrentCore, TorrentCore];
      await env.until(() => leech.complete);
      expect(leech.complete).toBe(true);
      expect(env.closes[2]).toContain('ERR_HASH_MISMATCH');
      expect(leech.banned.has(peerId(0).toString('latin1'))).toBe(true);
      expect(leech.banned.has(peerId(1).toString('latin1'))).toBe(false);
      await env.teardown();
    });

    it('two seeds part at once: each side closes with ERR_NOT_NEEDED and forgets the link', async () => {
      const env = await h.setup([{ seed: true }, { seed: true }]);
      const [a, b] = env.cores as [TorrentCore, TorrentCore];
      await env.until(() => a.links.size === 0 && b.links.size === 0);
      expect(a.links.size + b.links.size).toBe(0);
      expect(env.closes.flat().length).toBeGreaterThan(0);
      expect(env.closes.flat().every((c) => c === 'ERR_NOT_NEEDED')).toBe(true);
      expect(env.uploaded).toEqual([0, 0]);
      await env.teardown();
    });
  });
}
