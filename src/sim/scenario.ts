import type { Strategy } from '../swarm/picker.js';

/**
 * A simulation's scenario: the swarm, the network and the run's limits, with defaults and the
 * check that every field is in range. See docs/simulator.md.
 */

/** (sender, receiver) positions as one number in the replay's traffic counts: sender * PAIR_KEY + receiver. */
export const PAIR_KEY = 2 ** 22;
/** Peers and seeds in one scenario at most (each needs a position below PAIR_KEY). */
export const MAX_PEERS = PAIR_KEY;

export interface CapacityClass {
  /** Share of the peers in this class (the shares are normalised). */
  share: number;
  /** Upload capacity, bytes/s. */
  upload: number;
  /** Download capacity, bytes/s (default: unlimited). */
  download?: number;
}

export interface Scenario {
  /** Peers that arrive empty. */
  peers: number;
  /** Seeds present from the start. */
  seeds: number;
  pieces: number;
  pieceSize: number;
  /**
   * Bytes per request: the piece size by default (piece-level transfers, what makes 100,000 peers
   * affordable), or 16 KiB for wire-level blocks; a multiple of 16 KiB.
   */
  blockSize?: number;
  strategy: Extract<Strategy, 'rarest-first' | 'random'>;
  /** Capacity classes for the peers (one class: everyone alike). */
  capacity: CapacityClass[];
  /** The seeds' upload, bytes/s (default: the first class's). */
  seedUpload?: number;
  /** One-way latency between any two peers, ms. */
  latencyMs: number;
  /**
   * Packet loss, 0..1 (default 0): a lost packet is sent again (TCP): a control message waits a
   * retransmission timeout, a piece one round trip per lost packet and its uplink the resend.
   */
  loss?: number;
  /** All at once, or a Poisson process of this many arrivals per second. */
  arrival: { kind: 'flash' } | { kind: 'poisson'; perSecond: number };
  /** A peer leaves as soon as it completes. */
  leaveOnComplete: boolean;
  /** The seeds leave at this virtual time (ms); never by default. */
  seedsLeaveAtMs?: number;
  /** Share of the arriving peers (0..1) that serve corrupt data. */
  malicious?: number;
  /**
   * Share of the arriving peers (0..1) that stream the file: each reads it from the start, the
   * next 16 MiB of pieces ahead of its read position (the first it lacks) asked for first, as a
   * `get --serve` reader does (node/file-stream.ts).
   */
  streamers?: number;
  /** Peers leave at random (before or after completing): mean stay in seconds (exponential). */
  meanStaySeconds?: number;
  /** Connections per peer at most. */
  maxConnections: number;
  /**
   * Requests outstanding per connection: by default a piece's worth of 256 KiB (1 request of a
   * whole piece, 16 of 16 KiB). Capacity-capped links want few: a deep queue at the sender only
   * delays every piece (docs/simulator.md).
   */
  pipeline?: number;
  /** Regular unchoke slots per peer (plus one optimistic). */
  uploadSlots: number;
  /**
   * Peers speak the fast extension (BEP 6), as the real peer does by default: have all/none,
   * rejects, allowed-fast sets for newcomers, a seed's suggestions. Default true; false: plain BEP 3.
   */
  fast?: boolean;
  /** The initial seeds super-seed (BEP 16). */
  superSeed: boolean;
  /** Tracker announce interval, s. */
  interval: number;
  /** RNG seed: the same scenario and seed give the same run, event for event. */
  seed: number;
  /** Give up at this virtual time, ms. */
  maxTimeMs: number;
  /** Stop after this much real time, ms (a benchmark's budget); the report says how far it got. */
  maxWallMs?: number;
}

export const DEFAULT_SCENARIO: Scenario = {
  peers: 100,
  seeds: 1,
  pieces: 200,
  pieceSize: 256 * 1024,
  strategy: 'rarest-first',
  capacity: [{ share: 1, upload: 1024 * 1024 }],
  latencyMs: 20,
  arrival: { kind: 'flash' },
  leaveOnComplete: false,
  maxConnections: 20,
  uploadSlots: 4,
  superSeed: false,
  interval: 30,
  seed: 1,
  maxTimeMs: 24 * 3600 * 1000,
};

/** Why a scenario cannot run (a field out of range), or null. */
export function scenarioProblem(s: Scenario): string | null {
  const positiveInt = (v: number) => Number.isInteger(v) && v > 0;
  if (!positiveInt(s.peers)) return `peers must be a positive integer, not ${s.peers}`;
  if (s.peers + s.seeds > MAX_PEERS) return `peers and seeds must be ${MAX_PEERS} at most`;
  if (!Number.isInteger(s.seeds) || s.seeds < 0) return `seeds must be an integer >= 0, not ${s.seeds}`;
  if (!positiveInt(s.pieces) || s.pieces > 65_535) return `pieces must be 1..65535, not ${s.pieces}`;
  if (!positiveInt(s.pieceSize) || s.pieceSize % 16384 !== 0)
    return `pieceSize must be a positive multiple of 16 KiB, not ${s.pieceSize}`;
  if (s.blockSize !== undefined && (!positiveInt(s.blockSize) || s.blockSize % 16384 !== 0))
    return `blockSize must be a positive multiple of 16 KiB, not ${s.blockSize}`;
  if (s.pipeline !== undefined && !positiveInt(s.pipeline))
    return `pipeline must be a positive integer, not ${s.pipeline}`;
  if (!positiveInt(s.maxConnections)) return `maxConnections must be a positive integer`;
  if (!positiveInt(s.uploadSlots)) return `uploadSlots must be a positive integer`;
  if (!Array.isArray(s.capacity) || s.capacity.length === 0) return 'capacity needs at least one class';
  for (const c of s.capacity)
    if (!(c.share > 0) || !(c.upload > 0) || (c.download !== undefined && !(c.download > 0)))
      return 'every capacity class needs a positive share and upload (and download, if given)';
  if (s.seedUpload !== undefined && !(s.seedUpload > 0)) return 'seedUpload must be positive';
  if (!(s.latencyMs >= 0)) return 'latencyMs must be >= 0';
  if (s.loss !== undefined && !(s.loss >= 0 && s.loss < 1)) return 'loss must be in [0, 1)';
  if (!(s.interval > 0)) return 'interval must be positive';
  if (s.arrival.kind === 'poisson' && !(s.arrival.perSecond > 0))
    return 'a Poisson arrival rate must be positive';
  if (s.malicious !== undefined && !(s.malicious >= 0 && s.malicious < 1))
    return 'malicious must be in [0, 1)';
  if (s.meanStaySeconds !== undefined && !(s.meanStaySeconds > 0)) return 'meanStaySeconds must be positive';
  if (s.streamers !== undefined && !(s.streamers >= 0 && s.streamers <= 1))
    return 'streamers must be in [0, 1]';
  return null;
}

/** The capacity class of the peer at position `n` (deterministic: the first share of peers in class 0, ...). */
export function capacityClass(s: Scenario, n: number): CapacityClass {
  const weights = s.capacity.reduce((a, c) => a + c.share, 0);
  let acc = 0;
  const x = (n + 0.5) / s.peers;
  for (const c of s.capacity) {
    acc += c.share / weights;
    if (x <= acc) return c;
  }
  return s.capacity[s.capacity.length - 1] as CapacityClass;
}
