import { type AnnounceOutcome, type AnnounceRequest, applyAnnounce, type SwarmCounts } from './announce.js';

export type { AnnounceOutcome, SwarmCounts } from './announce.js';

import type { SwarmRegistry } from './registry.js';

/**
 * Where the BitTorrent side of the tracker keeps its swarms (announce and scrape, over HTTP and
 * UDP): in this process (`MemorySwarmStore`, over the registry) or shared by several tracker
 * instances (`RedisSwarmStore`, tracker-server/redis-store.ts). The handlers speak to this interface only. A
 * store may answer at once (memory) or later (a network round trip): callers take both.
 */

export type MaybePromise<T> = T | Promise<T>;

/** An announce peer as a shared store keeps it: its id (raw, latin1), compact address, seed flag. */
export interface AnnouncedPeer {
  peerId: string;
  compact: string;
  seed: boolean;
}

export interface SwarmStore {
  /** `kind` names the store in messages and metrics: 'memory' or 'redis'. */
  readonly kind: 'memory' | 'redis';
  /**
   * Applies one announce (the SwarmshareError codes of applyAnnounce for a refused one: a wrong
   * key, a full swarm, too many swarms) and picks up to `numwant` other peers, of `family` only
   * when given (a UDP reply carries one family).
   */
  announce(
    a: AnnounceRequest,
    numwant: number,
    family: 4 | 6 | undefined,
    now: number,
  ): MaybePromise<AnnounceOutcome>;
  /** Counts of the swarms named by info hash (hex); unknown ones are absent. `null`: every swarm, up to `max`. */
  scrape(infoHashes: readonly string[] | null, max: number): MaybePromise<Map<string, SwarmCounts>>;
  /** Totals for metrics and health. */
  totals(): MaybePromise<{ swarms: number; peers: number; seeders: number }>;
  /**
   * Up to `max` peers of one swarm (info hash, hex), for the dashboard: only a store that keeps
   * announce peers outside the registry has it (the registry shows its own).
   */
  peers?(infoHashHex: string, max: number): Promise<AnnouncedPeer[]>;
  /** Expires silent peers of swarms nobody announces to (a shared store; the registry has its own sweep). */
  sweep?(now: number): Promise<number>;
  /** Where each round trip's time goes (the tracker's metrics set it). */
  observe?: (op: 'announce' | 'scrape' | 'totals' | 'sweep', seconds: number) => void;
  close?(): Promise<void>;
}

/** The swarms of this process: the registry (also the JSON API's and the dashboard's). */
export class MemorySwarmStore implements SwarmStore {
  readonly kind = 'memory';
  readonly #reg: SwarmRegistry;

  constructor(reg: SwarmRegistry) {
    this.#reg = reg;
  }

  announce(a: AnnounceRequest, numwant: number, family: 4 | 6 | undefined, now: number): AnnounceOutcome {
    const reg = this.#reg;
    const r = applyAnnounce(reg, a, now);
    const s = r.swarm;
    if (s === undefined) return { complete: 0, incomplete: 0, downloaded: 0, peers: [] };
    const peers = a.event === 'stopped' ? [] : reg.sample(s, numwant, a.peerId, family);
    return {
      complete: s.seeds,
      incomplete: s.list.length - s.seeds,
      downloaded: s.downloaded,
      peers,
    };
  }

  scrape(infoHashes: readonly string[] | null, max: number): Map<string, SwarmCounts> {
    const out = new Map<string, SwarmCounts>();
    const counts = (s: { seeds: number; list: unknown[]; downloaded: number; name: string | null }) => {
      const c: SwarmCounts = {
        complete: s.seeds,
        incomplete: s.list.length - s.seeds,
        downloaded: s.downloaded,
      };
      if (s.name !== null) c.name = s.name;
      return c;
    };
    if (infoHashes === null) {
      for (const s of this.#reg.swarms.values()) {
        if (out.size >= max) break;
        if (s.infoHash !== null) out.set(s.infoHash, counts(s));
      }
    } else {
      for (const h of infoHashes) {
        const s = this.#reg.swarmById(h);
        if (s !== undefined) out.set(h, counts(s));
      }
    }
    return out;
  }

  /** Drops silent peers (the tracker's sweep does this on a timer). */
  expire(now: number): number {
    return this.#reg.expire(now);
  }

  totals() {
    let seeders = 0;
    for (const s of this.#reg.swarms.values()) seeders += s.seeds;
    return { swarms: this.#reg.swarms.size, peers: this.#reg.peerCount, seeders };
  }
}
