import type { Bitfield } from '../core/bitfield.js';
import type { InfoHashHex } from '../core/ids.js';
import { compactIp, compactPort, type ParsedIp } from '../core/ip.js';

/** What the registry holds: a peer in a swarm, a swarm, a JSON API client, and what they report. */

export type PeerSource = 'json' | 'announce';

/**
 * One peer in one swarm. Kept small (a tracker holds 100,000s): the address lives only in its compact
 * form, and ip, port, family and source are derived from it.
 */
export class PeerRecord {
  /** JSON peer_id, or the 20 raw announce bytes as a latin1 string. */
  readonly peerId: string;
  /** BEP 23 / BEP 7 compact address and port as latin1 (6 or 18 characters). */
  compact: string;
  /** Chunks held (JSON peers); null for a peer that only announced (unknown). */
  chunks: Bitfield | null;
  /** From announce `left`: -1 unknown, 0 nothing left, 1 something left. */
  leftState: number;
  complete = false;
  key: string | null;
  /** Last heard from, in whole seconds since the registry's epoch (stays a small integer). */
  seen: number;
  /** Position in its swarm's `list` (swap-remove). */
  slot = 0;
  readonly isJson: boolean;
  /** What a JSON peer last reported of its transfers (for the dashboard); null for others. */
  stats: PeerStats | null = null;

  constructor(peerId: string, compact: string, key: string | null, seen: number, isJson: boolean) {
    this.peerId = peerId;
    this.compact = compact;
    this.chunks = null;
    this.leftState = -1;
    this.key = key;
    this.seen = seen;
    this.isJson = isJson;
  }

  get source(): PeerSource {
    return this.isJson ? 'json' : 'announce';
  }

  get family(): 4 | 6 {
    return this.compact.length === 6 ? 4 : 6;
  }

  get port(): number {
    return compactPort(this.compact);
  }

  get ip(): string {
    return compactIp(this.compact);
  }
}

export interface Swarm {
  /** The info hash (hex) or `name:<file name>` for a file known only by name. */
  readonly id: string;
  readonly infoHash: InfoHashHex | null;
  name: string | null;
  /** Number of chunks: declared by a peer, or inferred (1 + the highest index seen) while undeclared. */
  pieces: number | null;
  piecesDeclared: boolean;
  /** File size in bytes when a peer stated it. */
  size: number | null;
  readonly peers: Map<string, PeerRecord>;
  readonly list: PeerRecord[];
  seeds: number;
  /** Completed downloads (event=completed, or a JSON peer reaching every chunk). */
  downloaded: number;
  readonly createdAt: number;
}

/** Transfer figures a JSON peer reports with /update (all optional, for the dashboard). */
export interface PeerStats {
  /** Bytes uploaded and downloaded in this swarm since the peer started. */
  uploaded: number;
  downloaded: number;
  /** Chunks being fetched right now. */
  fetching: number[];
  /** Bytes received from each peer, keyed by that peer's wire peer id (40 hex). */
  from: Record<string, number>;
}

/** A registered JSON API client: one identity across every swarm it is in. */
export interface Client {
  readonly peerId: string;
  /** Its BitTorrent wire peer id (40 hex), when it said: maps transfer reports to peers. */
  wireId: string | null;
  key: string;
  ip: ParsedIp;
  port: number;
  lastSeen: number;
  readonly swarms: Set<Swarm>;
}

/** A chunk set as the JSON API carries it: indices, or a base64 bitfield with its piece count. */
export interface ChunkSetInput {
  chunks?: number[] | undefined;
  bitfield?: string | undefined;
  pieces?: number | undefined;
  size?: number | undefined;
  name?: string | undefined;
  infoHash?: InfoHashHex | undefined;
}
