import { Bitfield } from '../core/bitfield.js';
import { seededRandom } from '../core/rng.js';
import { bucketAvailability, type FeedPeer, MAX_GRID_PEERS, MAX_TRANSFERS } from '../dashboard/feed.js';
import { distributionLowerBound } from '../demo/lower-bound.js';
import type { Strategy } from '../swarm/picker.js';
import { type Command, type LinkId, TorrentCore } from '../swarm/torrent-core.js';
import { applyAnnounce } from '../tracker/announce.js';
import { defaultLimits } from '../tracker/limits.js';
import { SwarmRegistry } from '../tracker/registry.js';
import type { Message } from '../wire/messages.js';
import { EventQueue } from './event-queue.js';
import type { ReplayFrame, ReplayRecorder } from './replay.js';

/**
 * The swarm simulator: the real TorrentCore (picker, choker, request pipelining) in every peer and
 * the real tracker registry, on a simulated network under a virtual clock. See docs/simulator.md
 * for the network model and its simplifications.
 */

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

/** Bytes a control message occupies on the wire (length prefix + id + a few fields). */
const CONTROL_BYTES = 17;
/** Piece availability is sampled at least this often (virtual ms), and at every tenth of completions. */
const SAMPLE_MS = 5000;
/** Bytes of data per TCP packet (for loss). */
const MSS = 1460;
/** TCP's smallest retransmission timeout, ms. */
const MIN_RTO_MS = 200;
/** Peers a simulated tracker reply holds. */
const NUMWANT = 50;
/** (sender, receiver) positions as one number: sender * PAIR_KEY + receiver. */
const PAIR_KEY = 2 ** 22;
/**
 * The frequent events are integer codes, record or peer index x EVENT_KINDS + kind: a batch of
 * control messages, a piece, a peer's once-a-second tick, its announce.
 */
const EVENT_KINDS = 4;
/** Link ids a peer's end arrays hold at first (they double as needed). */
const INITIAL_ENDS = 32;
const CONTROL_EVENT = 0;
const PIECE_EVENT = 1;
const TICK_EVENT = 2;
const ANNOUNCE_EVENT = 3;
/** Peers and seeds in one scenario at most (each needs a position below PAIR_KEY). */
export const MAX_PEERS = PAIR_KEY;

interface SimPeer {
  n: number;
  core: TorrentCore;
  peerId: Uint8Array;
  peerIdKey: string;
  addr: string;
  upload: number;
  download: number;
  upBusy: number;
  downBusy: number;
  /**
   * Control messages this peer sent at one instant, still on their way: the first and last of
   * their records (-1: none), and when they arrive.
   */
  batchHead: number;
  batchTail: number;
  batchAt: number;
  /**
   * This peer's ends of its links, by link id, in arrays (one per field rather than an object per
   * link: a peer telling all its links of a piece then reads a few adjacent cache lines instead of
   * one object per link). Ids are small and reused (see `freeIds`): the core then finds a link's
   * state by index rather than through a hash table. The peer at the other end (undefined: no
   * link), its core, its id for this link, when the link was made (the oldest idle link makes room
   * first), and when the last piece sent over it arrives (later messages cannot overtake it: TCP
   * order).
   */
  endPeer: (SimPeer | undefined)[];
  endCore: (TorrentCore | undefined)[];
  endRemote: Int32Array;
  endSerial: Float64Array;
  endDataUntil: Float64Array;
  /** Link ids handed out so far: every link's id is below this. */
  nextId: LinkId;
  /**
   * Closed links' ids, oldest first, each reusable once nothing sent to it can still arrive
   * (`freeAt`): a message on its way to a closed link then finds no link, and is dropped.
   */
  freeIds: LinkId[];
  freeAt: number[];
  linkCount: number;
  joinedAt: number;
  doneAt: number | null;
  seed: boolean;
  gone: boolean;
  uploaded: number;
  /** Piece bytes that arrived. */
  downloaded: number;
  /** Position in `all`. */
  idx: number;
  /** uploaded / downloaded at the last replay frame (for its rates). */
  frameUp: number;
  frameDown: number;
  malicious: boolean;
  /** Pieces that received at least one block from a malicious peer (they will fail). */
  tainted: Set<number>;
}

export interface SimReport {
  scenario: Scenario;
  /** Milliseconds from each honest peer's arrival to its completion (null: never). */
  completionMs: (number | null)[];
  distribution: { min: number; p50: number; p90: number; p99: number; max: number; mean: number } | null;
  /** Virtual time when the last peer completed, ms. */
  lastCompletionMs: number | null;
  lowerBoundMs: number | null;
  ratioToBound: number | null;
  /** Bytes the initial seeds uploaded, over the file size. */
  originLoad: number;
  /** Bytes uploaded over (capacity x time) for all peers, up to the last completion. */
  uploadUtilization: number;
  /** Samples of piece availability: copies of the rarest and mean piece among live peers. */
  availability: { timeMs: number; min: number; mean: number; completed: number }[];
  events: number;
  wallMs: number;
  peakRssBytes: number;
  /** Virtual time reached, ms. */
  virtualMs: number;
  /** True when maxWallMs ran out before the swarm completed. */
  stoppedByWall: boolean;
  /** Pieces that failed their hash (data from malicious peers). */
  failedPieces: number;
  /** Honest peers that left before completing. */
  departedIncomplete: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

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
  return null;
}

export function runSimulation(
  s: Scenario,
  onProgress?: (done: number, total: number, timeMs: number) => void,
  recorder?: ReplayRecorder,
): SimReport {
  const problem = scenarioProblem(s);
  if (problem !== null) throw new RangeError(`scenario: ${problem}`);
  const wall0 = performance.now();
  const rng = seededRandom(s.seed);
  const queue = new EventQueue();
  const F = s.pieces * s.pieceSize;
  const length = F;
  const infoHash = new Uint8Array(20).fill(0x5a);
  const infoHashKey = Buffer.from(infoHash).toString('latin1');
  const registry = new SwarmRegistry(
    { ...defaultLimits(s.interval), maxPeersPerSwarm: 10_000_000 },
    { random: rng, newKey: () => 'k' },
  );
  /** Peers by their BEP 23 compact address (what the registry's records hold). */
  const byCompact = new Map<string, SimPeer>();
  const all: SimPeer[] = [];
  const blockSize = s.blockSize ?? s.pieceSize;
  const loss = s.loss ?? 0;
  /** Retransmission timeout: twice the round trip, at least TCP's 200 ms. */
  const rto = Math.max(MIN_RTO_MS, 4 * s.latencyMs);
  /** A Poisson draw (Knuth's method; the means here are small). */
  const poisson = (mean: number): number => {
    const limit = Math.exp(-mean);
    let k = 0;
    let p = rng();
    while (p > limit && k < 10_000) {
      k++;
      p *= rng();
    }
    return k;
  };
  const pipeline = s.pipeline ?? Math.max(1, Math.round((256 * 1024) / blockSize));
  const zero = new Uint8Array(blockSize);
  let now = 0;
  let events = 0;
  let done = 0;
  let departed = 0;
  let failedPieces = 0;
  let peakRss = process.memoryUsage().rss;
  const availability: SimReport['availability'] = [];
  /** Replay only: bytes sent per (sender, receiver) since the last frame. */
  const pairBytes = recorder === undefined ? null : new Map<number, number>();
  let lastFrameMs = 0;
  /** Copies of each piece among the live peers (seeds and malicious peers claim all). */
  const copies = new Uint32Array(s.pieces);
  const weights = s.capacity.reduce((a, c) => a + c.share, 0);

  const classFor = (n: number): CapacityClass => {
    // Deterministic assignment by position: the first share of peers in class 0, and so on.
    let acc = 0;
    const x = (n + 0.5) / s.peers;
    for (const c of s.capacity) {
      acc += c.share / weights;
      if (x <= acc) return c;
    }
    return s.capacity[s.capacity.length - 1] as CapacityClass;
  };

  const fullHave = () => {
    const b = new Bitfield(s.pieces);
    for (let i = 0; i < s.pieces; i++) b.set(i);
    return b;
  };

  const maliciousCount = Math.round((s.malicious ?? 0) * s.peers);

  function makePeer(n: number, seed: boolean): SimPeer {
    const isMalicious = !seed && n < maliciousCount;
    const peerId = new Uint8Array(20);
    Buffer.from(`-SM0001-${String(n).padStart(12, '0')}`, 'latin1').copy(peerId);
    const cls = seed
      ? { share: 1, upload: s.seedUpload ?? (s.capacity[0] as CapacityClass).upload }
      : classFor(n);
    const p: SimPeer = {
      n,
      core: new TorrentCore(
        {
          infoHash,
          peerId,
          pieceCount: s.pieces,
          pieceLength: s.pieceSize,
          length,
          strategy: s.strategy,
          assemble: false,
          pipeline: pipeline,
          uploadSlots: s.uploadSlots,
          superSeed: seed && s.superSeed,
          blockLength: blockSize,
          // Links never outnumber the connection cap here.
          linkSlots: s.maxConnections,
          // A malicious peer claims every piece (and serves garbage).
          have: seed || isMalicious ? fullHave() : undefined,
        },
        rng,
        { onPieceVerified: (i) => (copies[i] = (copies[i] as number) + 1) },
      ),
      peerId,
      peerIdKey: Buffer.from(peerId).toString('latin1'),
      addr: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
      upload: cls.upload,
      download: cls.download ?? Number.POSITIVE_INFINITY,
      upBusy: 0,
      downBusy: 0,
      batchHead: -1,
      batchTail: -1,
      batchAt: -1,
      endPeer: [],
      endCore: [],
      endRemote: new Int32Array(INITIAL_ENDS),
      endSerial: new Float64Array(INITIAL_ENDS),
      endDataUntil: new Float64Array(INITIAL_ENDS),
      nextId: 1,
      freeIds: [],
      freeAt: [],
      linkCount: 0,
      joinedAt: now,
      doneAt: null,
      seed,
      gone: false,
      uploaded: 0,
      downloaded: 0,
      idx: all.length,
      frameUp: 0,
      frameDown: 0,
      malicious: isMalicious,
      tainted: new Set(),
    };
    byCompact.set(
      String.fromCharCode(10, (n >> 16) & 255, (n >> 8) & 255, n & 255, 6881 >> 8, 6881 & 255),
      p,
    );
    all.push(p);
    if (p.core.have.count > 0) for (let i = 0; i < s.pieces; i++) copies[i] = (copies[i] as number) + 1;
    return p;
  }

  // Messages on their way, one record each in a pool of parallel arrays (no object or closure
  // per message but the message itself): the receiver, its core and link id, the sender, the
  // message ('handshake' for one: made on arrival) and the next record of the same batch.
  let recLink = new Int32Array(1024);
  let recNext = new Int32Array(1024);
  const recPeer: SimPeer[] = [];
  const recCore: TorrentCore[] = [];
  const recFrom: SimPeer[] = [];
  const recMsg: (Message | 'handshake' | undefined)[] = [];
  let recFree = -1;
  let recUsed = 0;

  function record(from: SimPeer, link: LinkId, m: Message | 'handshake'): number {
    let r = recFree;
    if (r !== -1) recFree = recNext[r] as number;
    else {
      r = recUsed++;
      if (r === recLink.length) {
        // Codes are 31-bit: record x EVENT_KINDS must fit.
        if (r * 2 * EVENT_KINDS > 2 ** 31) throw new RangeError('simulator: too many messages in flight');
        recLink = grown(recLink, r * 2);
        recNext = grown(recNext, r * 2);
      }
    }
    recLink[r] = from.endRemote[link] as number;
    recNext[r] = -1;
    recPeer[r] = from.endPeer[link] as SimPeer;
    recCore[r] = from.endCore[link] as TorrentCore;
    recFrom[r] = from;
    recMsg[r] = m;
    return r;
  }

  function release(r: number): void {
    recMsg[r] = undefined;
    recNext[r] = recFree;
    recFree = r;
  }

  function deliver(from: SimPeer, link: LinkId, m: Message | 'handshake'): void {
    const to = from.endPeer[link];
    if (to === undefined) return;
    const until = from.endDataUntil;
    let at: number;
    if (m === 'handshake' || m.type !== 'piece') {
      // Control messages sent at one instant all arrive together: one event for the lot (the
      // haves a verified piece sends to every connection are most of a large swarm's messages).
      at = now + s.latencyMs + (CONTROL_BYTES * 1000) / from.upload;
      // A lost packet: resent after a retransmission timeout, and the link waits for it.
      if (loss > 0 && rng() < loss) {
        at += rto;
        until[link] = Math.max(until[link] as number, at);
      }
      // A connection delivers in order: a message sent behind a piece arrives after it.
      const behindData = (until[link] as number) > at;
      if (behindData) at = until[link] as number;
      const r = record(from, link, m);
      if (!behindData) {
        // A batch arriving at `at` is still on its way (anything sent once it has arrived arrives
        // later), so its records are live.
        if (from.batchHead !== -1 && from.batchAt === at) {
          recNext[from.batchTail] = r;
          from.batchTail = r;
          return;
        }
        from.batchHead = r;
        from.batchTail = r;
        from.batchAt = at;
      }
      queue.pushCode(at, r * EVENT_KINDS + CONTROL_EVENT);
      return;
    }
    {
      const bytes = m.block.length + 13;
      // Lost packets (a Poisson draw for the piece's packets): each is sent again and costs the
      // receiver a round trip (a fast retransmit). Congestion control is not modelled.
      const lost = loss > 0 ? poisson(Math.ceil(bytes / MSS) * loss) : 0;
      const depart = Math.max(now, from.upBusy) + ((bytes + lost * MSS) * 1000) / from.upload;
      from.upBusy = depart;
      from.uploaded += m.block.length;
      const arrive = Math.max(depart + s.latencyMs + lost * 2 * s.latencyMs, until[link] as number);
      at = Number.isFinite(to.download)
        ? Math.max(arrive, to.downBusy) + (bytes * 1000) / to.download
        : arrive;
      if (Number.isFinite(to.download)) to.downBusy = at;
      until[link] = at;
    }
    queue.pushCode(at, record(from, link, m) * EVENT_KINDS + PIECE_EVENT);
  }

  /**
   * A batch of control messages arrives: each goes to its receiver's core. A link closed meanwhile
   * is unknown to the core (its id is not reused yet): it drops the message.
   */
  function arriveControl(head: number): void {
    for (let r = head; r !== -1; ) {
      const next = recNext[r] as number;
      const msg = recMsg[r] as Message | 'handshake';
      const core = recCore[r] as TorrentCore;
      const to = recPeer[r] as SimPeer;
      const link = recLink[r] as LinkId;
      const from = msg === 'handshake' ? (recFrom[r] as SimPeer) : undefined;
      release(r);
      const cmds = core.message(
        link,
        from !== undefined
          ? { type: 'handshake', reserved: zero.subarray(0, 8), infoHash, peerId: from.peerId }
          : (msg as Message),
        now,
      );
      if (cmds.length > 0) run(to, cmds);
      r = next;
    }
  }

  function arrivePiece(r: number): void {
    const from = recFrom[r] as SimPeer;
    const to = recPeer[r] as SimPeer;
    const remote = recLink[r] as LinkId;
    const m = recMsg[r] as Message & { type: 'piece' };
    release(r);
    if (to.endPeer[remote] === undefined) return;
    to.downloaded += m.block.length;
    if (pairBytes !== null) {
      const key = from.idx * PAIR_KEY + to.idx;
      pairBytes.set(key, (pairBytes.get(key) ?? 0) + m.block.length);
    }
    if (from.malicious) to.tainted.add(m.index);
    run(to, to.core.message(remote, m, now));
  }

  let serials = 0;

  function close(p: SimPeer, link: LinkId): void {
    const other = p.endPeer[link] as SimPeer;
    p.endPeer[link] = undefined;
    p.endCore[link] = undefined;
    p.freeIds.push(link);
    // What the other side sent arrives by its data or a retransmitted control message, whichever is later.
    const otherUntil = other.endDataUntil[p.endRemote[link] as number] as number;
    p.freeAt.push(Math.max(otherUntil, now + s.latencyMs + rto) + 1);
    p.linkCount--;
    p.core.removeLink(link);
  }

  function unlink(p: SimPeer, link: LinkId): void {
    const other = p.endPeer[link];
    if (other === undefined) return;
    const remote = p.endRemote[link] as number;
    close(p, link);
    if (other.endPeer[remote] === p && other.endRemote[remote] === link) close(other, remote);
  }

  /** A free id at `p`: the oldest closed link's once nothing can arrive on it, else the next (from 1). */
  function takeId(p: SimPeer): LinkId {
    if (p.freeIds.length > 0 && (p.freeAt[0] as number) <= now) {
      p.freeAt.shift();
      return p.freeIds.shift() as LinkId;
    }
    const id = p.nextId++;
    if (id >= p.endRemote.length) {
      const cap = p.endRemote.length * 2;
      p.endRemote = grown(p.endRemote, cap);
      p.endSerial = grown(p.endSerial, cap);
      p.endDataUntil = grown(p.endDataUntil, cap);
    }
    return id;
  }

  /** A new end at `p` toward `peer` (its remote id set once the other end exists). */
  function openEnd(p: SimPeer, peer: SimPeer): LinkId {
    const id = takeId(p);
    p.endPeer[id] = peer;
    p.endCore[id] = peer.core;
    p.endRemote[id] = 0;
    p.endSerial[id] = serials++;
    p.endDataUntil[id] = 0;
    p.linkCount++;
    return id;
  }

  function run(p: SimPeer, cmds: Command[]): void {
    for (const c of cmds) {
      switch (c.type) {
        case 'handshake':
          deliver(p, c.link, 'handshake');
          break;
        case 'send':
          deliver(p, c.link, c.msg);
          break;
        case 'close':
          unlink(p, c.link);
          break;
        case 'read':
          run(p, p.core.readDone(c.link, c.index, c.begin, zero.subarray(0, c.length), now));
          break;
        case 'verify': {
          // A piece any block of which came from a malicious peer fails its hash.
          const ok = !p.tainted.delete(c.index);
          if (!ok) failedPieces++;
          run(p, p.core.verifyDone(c.index, ok, now));
          break;
        }
        case 'complete':
          if (!p.seed && p.doneAt === null) {
            p.doneAt = now;
            done++;
            if (s.leaveOnComplete) queue.push(now, () => leave(p));
          }
          break;
        case 'exchangeDone':
          break;
      }
    }
  }

  /**
   * At the connection limit, a link over which neither side wants anything is dropped to make room:
   * without this, empty peers that only know each other fill their slots and wait forever.
   */
  function makeRoom(p: SimPeer): boolean {
    if (p.linkCount < s.maxConnections) return true;
    let oldest = 0;
    for (let id = 1; id < p.nextId; id++) {
      if (
        p.endPeer[id] === undefined ||
        (oldest !== 0 && (p.endSerial[id] as number) > (p.endSerial[oldest] as number))
      )
        continue;
      if (!p.core.linkWanted(id)) oldest = id;
    }
    if (oldest === 0) return false;
    unlink(p, oldest);
    return true;
  }

  function connect(a: SimPeer, b: SimPeer): void {
    if (a === b || a.gone || b.gone) return;
    for (let id = 1; id < a.nextId; id++) if (a.endPeer[id] === b) return;
    if (!makeRoom(a) || !makeRoom(b)) return;
    const ea = openEnd(a, b);
    const eb = openEnd(b, a);
    a.endRemote[ea] = eb;
    b.endRemote[eb] = ea;
    run(a, a.core.addLink(ea, true, now));
    run(b, b.core.addLink(eb, false, now));
  }

  function announce(p: SimPeer, event: 'started' | 'stopped' | 'empty'): void {
    const left = p.core.complete ? 0 : length - p.core.have.count * s.pieceSize;
    const a = {
      infoHash: infoHashKey,
      peerId: p.peerIdKey,
      port: 6881,
      uploaded: p.uploaded,
      downloaded: 0,
      left,
      event,
      numwant: NUMWANT,
      compact: true,
      noPeerId: true,
      key: null,
      ip: p.addr,
    } as const;
    const r = applyAnnounce(registry, a, now);
    if (event === 'stopped' || r.swarm === undefined) return;
    for (const rec of registry.sample(r.swarm, NUMWANT, p.peerIdKey)) {
      if (p.linkCount >= s.maxConnections) break;
      const other = byCompact.get(rec.compact);
      if (other !== undefined) connect(p, other);
    }
  }

  function leave(p: SimPeer): void {
    if (p.gone) return;
    const h = p.core.have;
    for (let i = 0; i < s.pieces; i++) if (h.has(i)) copies[i] = (copies[i] as number) - 1;
    if (!p.seed && !p.malicious && p.doneAt === null) departed++;
    for (let id = 1; id < p.nextId; id++) if (p.endPeer[id] !== undefined) unlink(p, id);
    announce(p, 'stopped');
    p.gone = true;
  }

  function join(p: SimPeer): void {
    p.joinedAt = now;
    announce(p, 'started');
    if (s.meanStaySeconds !== undefined && !p.seed) {
      queue.push(now + -Math.log(1 - rng()) * s.meanStaySeconds * 1000, () => leave(p));
    }
    queue.pushCode(now + 1000 * rng(), p.idx * EVENT_KINDS + TICK_EVENT);
    queue.pushCode(now + s.interval * 1000, p.idx * EVENT_KINDS + ANNOUNCE_EVENT);
  }

  function tick(p: SimPeer): void {
    if (p.gone) return;
    run(p, p.core.tick(now));
    queue.pushCode(now + 1000, p.idx * EVENT_KINDS + TICK_EVENT);
  }

  function reannounce(p: SimPeer): void {
    if (p.gone) return;
    announce(p, 'empty');
    queue.pushCode(now + s.interval * 1000, p.idx * EVENT_KINDS + ANNOUNCE_EVENT);
  }

  const nameOf = (p: SimPeer) => (p.seed ? `seed${p.n - s.peers + 1}` : `peer${p.n + 1}`);

  /** The swarm at `timeMs` (no event after it has run yet), in the live feed's shape and caps. */
  function frame(timeMs: number): ReplayFrame {
    const dt = Math.max(0.001, (timeMs - lastFrameMs) / 1000);
    lastFrameMs = timeMs;
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
    const transfers = [...(pairBytes as Map<number, number>)]
      .sort((a, b) => b[1] - a[1] || a[0] - b[0])
      .slice(0, MAX_TRANSFERS)
      .map(([key, bytes]) => ({
        from: nameOf(all[Math.floor(key / PAIR_KEY)] as SimPeer),
        to: nameOf(all[key % PAIR_KEY] as SimPeer),
        bytes,
      }));
    pairBytes?.clear();
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

  // Seeds first, then the peers as the arrival process says.
  for (let i = 0; i < s.seeds; i++) join(makePeer(s.peers + i, true));
  let arrival = 0;
  for (let i = 0; i < s.peers; i++) {
    if (s.arrival.kind === 'poisson') arrival += (-Math.log(1 - rng()) / s.arrival.perSecond) * 1000;
    const n = i;
    queue.push(arrival, () => join(makePeer(n, false)));
  }
  if (s.seedsLeaveAtMs !== undefined) {
    queue.push(s.seedsLeaveAtMs, () => {
      for (const p of all) if (p.seed) leave(p);
    });
  }
  const sampleEvery = Math.max(1, Math.floor(s.peers / 10));
  let nextSample = 0;
  let nextSampleTime = 0;
  let lastProgress = 0;
  let stoppedByWall = false;
  const honest = s.peers - maliciousCount;
  let nextFrameAt = 0;
  while (queue.size > 0 && done + departed < honest) {
    const t = queue.peekTime();
    if (t > s.maxTimeMs) break;
    // Replay frames show the swarm as it was at each frame time, before later events.
    while (recorder !== undefined && t > nextFrameAt) {
      recorder.add(frame(nextFrameAt));
      nextFrameAt += recorder.everyMs;
    }
    if (s.maxWallMs !== undefined && (events & 0xfff) === 0 && performance.now() - wall0 > s.maxWallMs) {
      stoppedByWall = true;
      break;
    }
    now = t;
    const code = queue.popCode();
    if (code < 0) queue.takeFn(code)();
    else {
      const x = Math.floor(code / EVENT_KINDS);
      switch (code % EVENT_KINDS) {
        case CONTROL_EVENT:
          arriveControl(x);
          break;
        case PIECE_EVENT:
          arrivePiece(x);
          break;
        case TICK_EVENT:
          tick(all[x] as SimPeer);
          break;
        default:
          reannounce(all[x] as SimPeer);
      }
    }
    events++;
    if (done >= nextSample || now >= nextSampleTime) {
      if (done >= nextSample) nextSample += sampleEvery;
      nextSampleTime = now + SAMPLE_MS;
      availability.push(sampleAvailability(copies, now, done));
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
    }
    if (onProgress && (events & 0xffff) === 0 && done !== lastProgress) {
      lastProgress = done;
      onProgress(done, s.peers, now);
    }
  }
  availability.push(sampleAvailability(copies, now, done));
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
  onProgress?.(done, s.peers, now);
  recorder?.add(frame(now));

  const leechers = all.filter((p) => !p.seed && !p.malicious);
  const completionMs = leechers.map((p) => (p.doneAt === null ? null : p.doneAt - p.joinedAt));
  const times = completionMs.filter((x): x is number => x !== null).sort((a, b) => a - b);
  const lastCompletion = leechers.reduce<number | null>(
    (m, p) => (p.doneAt === null ? m : Math.max(m ?? 0, p.doneAt)),
    null,
  );
  const seedUpload = all.filter((p) => p.seed).reduce((a, p) => a + p.upload, 0);
  const dmin = Math.min(...leechers.map((p) => p.download));
  const bound = distributionLowerBound(
    F,
    seedUpload,
    leechers.map((p) => p.upload),
    dmin,
  );
  const boundMs = bound === null ? null : bound * 1000;
  const capacity = all.reduce((a, p) => a + p.upload, 0);
  const uploadedAll = all.reduce((a, p) => a + p.uploaded, 0);
  return {
    scenario: s,
    completionMs,
    distribution:
      times.length === 0
        ? null
        : {
            min: times[0] as number,
            p50: percentile(times, 50),
            p90: percentile(times, 90),
            p99: percentile(times, 99),
            max: times[times.length - 1] as number,
            mean: times.reduce((a, b) => a + b, 0) / times.length,
          },
    lastCompletionMs: done === honest ? lastCompletion : null,
    lowerBoundMs: boundMs,
    ratioToBound: done === honest && lastCompletion !== null && boundMs ? lastCompletion / boundMs : null,
    failedPieces,
    departedIncomplete: departed,
    originLoad: all.filter((p) => p.seed).reduce((a, p) => a + p.uploaded, 0) / F,
    uploadUtilization: lastCompletion ? uploadedAll / ((capacity * lastCompletion) / 1000) : 0,
    availability,
    events,
    wallMs: performance.now() - wall0,
    peakRssBytes: peakRss,
    virtualMs: now,
    stoppedByWall,
  };
}

/** A copy of `a` with room for `length` entries. */
function grown<T extends Int32Array | Float64Array>(a: T, length: number): T {
  const b = new (a.constructor as new (n: number) => T)(length);
  b.set(a);
  return b;
}

function sampleAvailability(copies: Uint32Array, timeMs: number, completed: number) {
  const pieces = copies.length;
  let min = Number.POSITIVE_INFINITY;
  let sum = 0;
  for (const c of copies) {
    if (c < min) min = c;
    sum += c;
  }
  return { timeMs, min: pieces === 0 ? 0 : min, mean: pieces === 0 ? 0 : sum / pieces, completed };
}
