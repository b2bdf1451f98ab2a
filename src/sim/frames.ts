import { bucketAvailability, type FeedPeer, MAX_GRID_PEERS, MAX_TRANSFERS } from '../tracker/feed.js';
import type { ReplayFrame } from './replay.js';
import { PAIR_KEY, type Scenario } from './scenario.js';
import type { SimPeer } from './sim-peer.js';

/** Replay frames of a simulation: the swarm at a virtual time, in the dashboard feed's shape and caps. */

export const simPeerName = (s: Scenario, p: SimPeer) =>
  p.seed ? `seed${p.n - s.peers + 1}` : `peer${p.n + 1}`;

export class FrameMaker {
  readonly #s: Scenario;
  #lastFrameMs = 0;

  constructor(s: Scenario) {
    this.#s = s;
  }

  /**
   * The swarm at `timeMs` (no event after it has run yet). `pairBytes`: bytes each pair moved
   * since the last frame (cleared here); `copies`: each piece's copies among live peers.
   */
  frame(
    timeMs: number,
    all: SimPeer[],
    pairBytes: Map<number, number>,
    copies: Uint32Array,
    done: number,
  ): ReplayFrame {
    const s = this.#s;
    const nameOf = (p: SimPeer) => simPeerName(s, p);
    const F = s.pieces * s.pieceSize;
    const dt = Math.max(0.001, (timeMs - this.#lastFrameMs) / 1000);
    this.#lastFrameMs = timeMs;
    const live = all.filter((p) => !p.gone);
    let seeds = 0;
    let throughput = 0;
    const rates = new Map<SimPeer, { up: number; down: number }>();
    for (const p of live) {
      if (p.core.complete) seeds++;
      const r = { up: (p.uploaded - p.frameUp) / dt, down: (p.downloaded - p.frameDown) / dt };
      p.frameUp = p.uploaded;
      p.frameDown = p.downloaded;
      throughput += r.down;
      rates.set(p, r);
    }
    const peers: FeedPeer[] = live.slice(0, MAX_GRID_PEERS).map((p) => {
      const r = rates.get(p) as { up: number; down: number };
      return {
        id: nameOf(p),
        address: `${p.addr}:6881`,
        source: 'json',
        complete: p.core.complete,
        have: p.core.have.count,
        chunks: Buffer.from(p.core.have.bytes).toString('base64'),
        fetching: [...p.core.picker.active.keys()].slice(0, 64),
        uploaded: p.uploaded,
        downloaded: p.downloaded,
        upRate: r.up,
        downRate: r.down,
      };
    });
    const transfers = [...pairBytes]
      .sort((a, b) => b[1] - a[1] || a[0] - b[0])
      .slice(0, MAX_TRANSFERS)
      .map(([key, bytes]) => ({
        from: nameOf(all[Math.floor(key / PAIR_KEY)] as SimPeer),
        to: nameOf(all[key % PAIR_KEY] as SimPeer),
        bytes,
      }));
    pairBytes.clear();
    const file = `simulation (${s.peers} peers, seed ${s.seed})`;
    return {
      timeMs,
      swarms: [
        {
          id: 'simulation',
          file,
          info_hash: null,
          size: F,
          pieces: s.pieces,
          seeds,
          leechers: live.length - seeds,
          downloaded: done,
        },
      ],
      view: {
        id: 'simulation',
        file,
        info_hash: null,
        size: F,
        pieces: s.pieces,
        totalPeers: live.length,
        peers,
        ...bucketAvailability(copies),
        transfers,
        throughput,
      },
    };
  }
}
