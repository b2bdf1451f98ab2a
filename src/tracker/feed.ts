import type { Bitfield } from '../core/bitfield.js';
import { displayPeerId } from '../core/ids.js';
import { compactIp, compactPort } from '../core/ip.js';
import type { PeerRecord, Swarm, SwarmRegistry } from '../tracker/registry.js';
import type { ThroughputSeries } from './throughput-history.js';

/**
 * What the dashboard shows, computed from the tracker's registry (read only, never changing it):
 * the swarm list, and for one swarm the peers x chunks grid, rates, who sends to whom, chunk
 * availability and throughput. Sizes are capped so a 10,000-peer swarm stays a small message.
 * Pure: time comes in as `now`.
 */

/** Peers shown in the grid at most (the rest are counted, not listed). */
export const MAX_GRID_PEERS = 200;
/** Columns of the availability chart at most: larger files are averaged into buckets. */
export const MAX_AVAILABILITY_COLUMNS = 400;
/** Sender -> receiver pairs listed at most (largest first). */
export const MAX_TRANSFERS = 100;
/** Swarms listed at most (largest first). */
export const MAX_SWARMS = 50;

export interface SwarmSummary {
  id: string;
  file: string | null;
  info_hash: string | null;
  size: number | null;
  pieces: number | null;
  seeds: number;
  leechers: number;
  downloaded: number;
}

export interface FeedPeer {
  id: string;
  address: string;
  source: 'json' | 'announce';
  complete: boolean;
  /** Chunks held, or null when unknown (a BitTorrent client). */
  have: number | null;
  /** BEP 3 bitfield (base64) of held chunks, sized to the file; null when unknown. */
  chunks: string | null;
  fetching: number[];
  uploaded: number;
  downloaded: number;
  /** Bytes/s since the previous report. */
  upRate: number;
  downRate: number;
}

export interface SwarmView {
  id: string;
  file: string | null;
  info_hash: string | null;
  size: number | null;
  pieces: number;
  totalPeers: number;
  peers: FeedPeer[];
  /** Peers holding each chunk (or the mean over a bucket of `availabilityBucket` chunks). */
  availability: number[];
  availabilityBucket: number;
  transfers: { from: string; to: string; bytes: number }[];
  /** Sum of the peers' download rates, bytes/s. */
  throughput: number;
  /** The swarm's throughput second by second, kept by the tracker (none in a replay). */
  history?: ThroughputSeries;
}

interface RateState {
  t: number;
  up: number;
  down: number;
  upRate: number;
  downRate: number;
}

/**
 * Copies per chunk as the chart's columns: at most MAX_AVAILABILITY_COLUMNS, larger files averaged
 * over buckets of chunks; `extra` copies (seeds whose chunks are not listed) added to each.
 */
export function bucketAvailability(
  counts: ArrayLike<number>,
  extra = 0,
): { availability: number[]; availabilityBucket: number } {
  const pieces = counts.length;
  const bucket = Math.max(1, Math.ceil(pieces / MAX_AVAILABILITY_COLUMNS));
  const availability: number[] = [];
  for (let i = 0; i < pieces; i += bucket) {
    let sum = 0;
    const end = Math.min(pieces, i + bucket);
    for (let k = i; k < end; k++) sum += counts[k] as number;
    availability.push(Math.round((sum / (end - i)) * 100) / 100 + extra);
  }
  return { availability, availabilityBucket: bucket };
}

const natural = (a: string, b: string) => a.localeCompare(b, 'en', { numeric: true });

export class Feed {
  readonly #reg: SwarmRegistry;
  readonly #rates = new WeakMap<PeerRecord, RateState>();

  constructor(reg: SwarmRegistry) {
    this.#reg = reg;
  }

  summaries(): SwarmSummary[] {
    return [...this.#reg.swarms.values()]
      .sort((a, b) => b.list.length - a.list.length)
      .slice(0, MAX_SWARMS)
      .map((s) => ({
        id: s.id,
        file: s.name,
        info_hash: s.infoHash,
        size: s.size,
        pieces: s.pieces,
        seeds: s.seeds,
        leechers: s.list.length - s.seeds,
        downloaded: s.downloaded,
      }));
  }

  #rate(p: PeerRecord, now: number): RateState {
    const up = p.stats?.uploaded ?? 0;
    const down = p.stats?.downloaded ?? 0;
    let r = this.#rates.get(p);
    if (r === undefined) {
      r = { t: now, up, down, upRate: 0, downRate: 0 };
      this.#rates.set(p, r);
      return r;
    }
    if (up !== r.up || down !== r.down) {
      const dt = Math.max(0.001, (now - r.t) / 1000);
      r.upRate = Math.max(0, (up - r.up) / dt);
      r.downRate = Math.max(0, (down - r.down) / dt);
      r.t = now;
      r.up = up;
      r.down = down;
    } else if (now - r.t > 3000) {
      // Nothing reported for a while: the peer is idle.
      r.upRate = 0;
      r.downRate = 0;
    }
    return r;
  }

  view(swarmId: string, now: number): SwarmView | null {
    const s: Swarm | undefined = this.#reg.swarms.get(swarmId);
    if (s === undefined) return null;
    const pieces = s.pieces ?? 0;
    const sorted = [...s.list].sort((a, b) => natural(displayPeerId(a.peerId), displayPeerId(b.peerId)));
    let throughput = 0;
    const rates = new Map<PeerRecord, RateState>();
    for (const p of s.list) {
      const r = this.#rate(p, now);
      rates.set(p, r);
      throughput += r.downRate;
    }
    const peers: FeedPeer[] = sorted.slice(0, MAX_GRID_PEERS).map((p) => {
      const r = rates.get(p) as RateState;
      let chunks: string | null = null;
      if (p.chunks !== null) {
        const b = p.chunks.length === pieces ? p.chunks : p.chunks.resized(pieces);
        chunks = Buffer.from(b.bytes).toString('base64');
      }
      return {
        id: displayPeerId(p.peerId),
        address: `${p.ip}:${p.port}`,
        source: p.source,
        complete: p.complete,
        have: p.chunks?.count ?? (p.complete ? pieces : null),
        chunks,
        fetching: p.stats?.fetching ?? [],
        uploaded: p.stats?.uploaded ?? 0,
        downloaded: p.stats?.downloaded ?? 0,
        upRate: r.upRate,
        downRate: r.downRate,
      };
    });
    return {
      id: s.id,
      file: s.name,
      info_hash: s.infoHash,
      size: s.size,
      pieces,
      totalPeers: s.list.length,
      peers,
      ...this.#availability(s, pieces),
      transfers: this.#transfers(s),
      throughput,
    };
  }

  #availability(s: Swarm, pieces: number): { availability: number[]; availabilityBucket: number } {
    const counts = new Uint32Array(pieces);
    let seedsUnknown = 0;
    for (const p of s.list) {
      if (p.chunks === null) {
        if (p.complete) seedsUnknown++;
        continue;
      }
      const b: Bitfield = p.chunks;
      for (let i = 0; i < Math.min(pieces, b.length); i++)
        if (b.has(i)) counts[i] = (counts[i] as number) + 1;
    }
    return bucketAvailability(counts, seedsUnknown);
  }

  #transfers(s: Swarm): { from: string; to: string; bytes: number }[] {
    const byWire = new Map<string, string>();
    for (const c of this.#reg.clients.values()) if (c.wireId !== null) byWire.set(c.wireId, c.peerId);
    const edges: { from: string; to: string; bytes: number }[] = [];
    for (const p of s.list) {
      if (p.stats === null) continue;
      for (const [wire, bytes] of Object.entries(p.stats.from)) {
        if (bytes > 0)
          edges.push({ from: byWire.get(wire) ?? wire.slice(0, 12), to: displayPeerId(p.peerId), bytes });
      }
    }
    return edges.sort((a, b) => b.bytes - a.bytes).slice(0, MAX_TRANSFERS);
  }
}

// ---- swarms whose announce peers live in a shared store ------------------------------------

/** Counts and peers of one swarm as a shared store (Redis) holds its announce peers. */
export interface AnnouncedSwarm {
  complete: number;
  incomplete: number;
  downloaded: number;
  peers: { peerId: string; compact: string; seed: boolean }[];
}

/**
 * The swarm list with the shared store's swarms added: a swarm in both (JSON peers here, announce
 * peers there) is one row with both counts; the largest first, MAX_SWARMS at most.
 */
export function withAnnouncedSwarms(
  own: SwarmSummary[],
  announced: ReadonlyMap<string, { complete: number; incomplete: number; downloaded: number }>,
): SwarmSummary[] {
  const rows = new Map(own.map((s) => [s.id, { ...s }]));
  for (const [hex, c] of announced) {
    const row = rows.get(hex);
    if (row !== undefined) {
      row.seeds += c.complete;
      row.leechers += c.incomplete;
      row.downloaded += c.downloaded;
    } else {
      rows.set(hex, {
        id: hex,
        file: null,
        info_hash: hex,
        size: null,
        pieces: null,
        seeds: c.complete,
        leechers: c.incomplete,
        downloaded: c.downloaded,
      });
    }
  }
  return [...rows.values()]
    .sort((a, b) => b.seeds + b.leechers - (a.seeds + a.leechers))
    .slice(0, MAX_SWARMS);
}

/** One swarm's view with the shared store's announce peers added (chunks unknown, as for any announce peer). */
export function withAnnouncedPeers(view: SwarmView | null, hex: string, a: AnnouncedSwarm): SwarmView {
  const v: SwarmView = view ?? {
    id: hex,
    file: null,
    info_hash: hex,
    size: null,
    pieces: 0,
    totalPeers: 0,
    peers: [],
    availability: [],
    availabilityBucket: 1,
    transfers: [],
    throughput: 0,
  };
  const known = new Set(v.peers.map((p) => p.id));
  const added: FeedPeer[] = [];
  for (const p of a.peers) {
    const id = displayPeerId(p.peerId);
    if (known.has(id)) continue;
    added.push({
      id,
      address: `${compactIp(p.compact)}:${compactPort(p.compact)}`,
      source: 'announce',
      complete: p.seed,
      have: p.seed && v.pieces > 0 ? v.pieces : null,
      chunks: null,
      fetching: [],
      uploaded: 0,
      downloaded: 0,
      upRate: 0,
      downRate: 0,
    });
  }
  added.sort((x, y) => natural(x.id, y.id));
  return {
    ...v,
    totalPeers: v.totalPeers + a.complete + a.incomplete,
    peers: [...v.peers, ...added].slice(0, MAX_GRID_PEERS),
  };
}
