import { Bitfield } from '../core/bitfield.js';
import { SwarmshareError } from '../core/errors.js';
import { displayPeerId, type InfoHashHex } from '../core/ids.js';
import { compactAddress, type ParsedIp } from '../core/ip.js';
import type { TrackerLimits } from './limits.js';
import { type ChunkSetInput, type Client, PeerRecord, type Swarm } from './records.js';

/**
 * The swarm registry: which peers share which file and which chunks each holds.
 * Pure bookkeeping: time comes in as `now` (ms), randomness through `deps.random`, no I/O.
 * Both the JSON API and /announce read and write the same swarms (docs/tracker.md).
 * Invariants are in src/tracker/STATE.md.
 */

export interface TrackerDeps {
  /** Uniform in [0, 1): picks which peers a reply returns. */
  random: () => number;
  /** A fresh unguessable secret for a registering peer. */
  newKey: () => string;
}

export {
  type ChunkSetInput,
  type Client,
  PeerRecord,
  type PeerSource,
  type PeerStats,
  type Swarm,
} from './records.js';

export interface RegistryEvents {
  onPeerRegistered?(client: Client, files: Record<string, number[]>): void;
  onPeerDropped?(peerId: string, reason: 'deregistered' | 'expired' | 'stopped'): void;
}

export class SwarmRegistry {
  readonly limits: TrackerLimits;
  readonly deps: TrackerDeps;
  readonly events: RegistryEvents;
  readonly swarms = new Map<string, Swarm>();
  readonly clients = new Map<string, Client>();
  /** File name -> swarms carrying that name (a name-only swarm and any info-hash swarms). */
  readonly byName = new Map<string, Set<Swarm>>();
  #peerCount = 0;
  #epochMs: number | null = null;

  constructor(limits: TrackerLimits, deps: TrackerDeps, events: RegistryEvents = {}) {
    this.limits = limits;
    this.deps = deps;
    this.events = events;
  }

  get peerCount(): number {
    return this.#peerCount;
  }

  // ---- swarms -------------------------------------------------------------

  swarmById(id: string): Swarm | undefined {
    return this.swarms.get(id);
  }

  /** The swarm for an info hash, created when `create` is set. */
  infoHashSwarm(infoHash: InfoHashHex, create: boolean, now: number): Swarm | undefined {
    const id = infoHash.toLowerCase();
    const s = this.swarms.get(id);
    if (s !== undefined || !create) return s;
    return this.#createSwarm(id, id, null, now);
  }

  nameSwarm(name: string, create: boolean, now: number): Swarm | undefined {
    const id = `name:${name}`;
    const s = this.swarms.get(id);
    if (s !== undefined || !create) return s;
    return this.#createSwarm(id, null, name, now);
  }

  /**
   * Resolves a file reference for reading: a 40-hex info hash, or a name. A name means the
   * name-only swarm of that name when there is one, else the one info-hash swarm carrying that
   * name; two info-hash swarms with the same name are never guessed between (ERR_AMBIGUOUS_FILE).
   */
  resolve(ref: string): Swarm {
    if (/^[0-9a-fA-F]{40}$/.test(ref)) {
      const s = this.swarms.get(ref.toLowerCase());
      if (s === undefined) throw new SwarmshareError('ERR_UNKNOWN_FILE', `no swarm for info hash ${ref}`);
      return s;
    }
    const named = this.swarms.get(`name:${ref}`);
    if (named !== undefined) return named;
    const candidates = this.byName.get(ref);
    if (candidates === undefined || candidates.size === 0) {
      throw new SwarmshareError('ERR_UNKNOWN_FILE', `no swarm for file '${ref}'`);
    }
    if (candidates.size > 1) {
      const hashes = [...candidates].map((c) => c.infoHash);
      throw new SwarmshareError(
        'ERR_AMBIGUOUS_FILE',
        `${candidates.size} different files are named '${ref}': address one by its info hash`,
        { info_hashes: hashes },
      );
    }
    return [...candidates][0] as Swarm;
  }

  #createSwarm(id: string, infoHash: string | null, name: string | null, now: number): Swarm {
    if (this.swarms.size >= this.limits.maxSwarms) {
      throw new SwarmshareError(
        'ERR_TOO_MANY_SWARMS',
        `the tracker holds its maximum of ${this.limits.maxSwarms} swarms`,
      );
    }
    const s: Swarm = {
      id,
      infoHash,
      name: null,
      pieces: null,
      piecesDeclared: false,
      size: null,
      peers: new Map(),
      list: [],
      seeds: 0,
      downloaded: 0,
      createdAt: now,
    };
    this.swarms.set(id, s);
    if (name !== null) this.#setName(s, name);
    return s;
  }

  #setName(s: Swarm, name: string): void {
    if (s.name !== null) return;
    s.name = name;
    let set = this.byName.get(name);
    if (set === undefined) {
      set = new Set();
      this.byName.set(name, set);
    }
    set.add(s);
  }

  #dropSwarmIfEmpty(s: Swarm): void {
    if (s.list.length > 0) return;
    this.swarms.delete(s.id);
    if (s.name !== null) {
      const set = this.byName.get(s.name);
      set?.delete(s);
      if (set !== undefined && set.size === 0) this.byName.delete(s.name);
    }
  }

  // ---- peers within a swarm -----------------------------------------------

  /** Adds a peer (no chunks, left unknown) to a swarm. */
  addPeer(
    s: Swarm,
    peerId: string,
    compact: string,
    key: string | null,
    isJson: boolean,
    now: number,
  ): PeerRecord {
    if (s.list.length >= this.limits.maxPeersPerSwarm) {
      throw new SwarmshareError(
        'ERR_SWARM_FULL',
        `swarm ${s.id} holds its maximum of ${this.limits.maxPeersPerSwarm} peers`,
      );
    }
    const p = new PeerRecord(peerId, compact, key, this.seconds(now), isJson);
    p.slot = s.list.length;
    s.peers.set(peerId, p);
    s.list.push(p);
    this.#peerCount++;
    return p;
  }

  /** The time `seen` counts from (ms), null before the first call; a snapshot carries it (json-log.ts). */
  get epochMs(): number | null {
    return this.#epochMs;
  }

  set epochMs(ms: number | null) {
    this.#epochMs = ms;
  }

  /** `now` (ms) as whole seconds since the registry's first call: a small integer, cheap to store. */
  seconds(now: number): number {
    if (this.#epochMs === null) this.#epochMs = now;
    return Math.floor((now - this.#epochMs) / 1000);
  }

  touch(p: PeerRecord, now: number): void {
    p.seen = this.seconds(now);
  }

  removePeer(s: Swarm, p: PeerRecord): void {
    if (s.peers.get(p.peerId) !== p) return;
    s.peers.delete(p.peerId);
    const last = s.list.pop() as PeerRecord;
    if (last !== p) {
      s.list[p.slot] = last;
      last.slot = p.slot;
    }
    if (p.complete) s.seeds--;
    this.#peerCount--;
    this.#dropSwarmIfEmpty(s);
  }

  setAddress(p: PeerRecord, ip: ParsedIp, port: number): void {
    const compact = compactAddress(ip, port);
    if (p.compact !== compact) p.compact = compact;
  }

  /** Recomputes a peer's seed flag; counts a completed download when it turns complete. */
  #refreshComplete(s: Swarm, p: PeerRecord): boolean {
    const was = p.complete;
    const now =
      p.chunks !== null ? s.pieces !== null && s.pieces > 0 && p.chunks.count >= s.pieces : p.leftState === 0;
    if (now === was) return false;
    p.complete = now;
    s.seeds += now ? 1 : -1;
    return now;
  }

  /** After a snapshot set a swarm's peers directly (json-log.ts): its name, and its seeds counted. */
  settleRestored(s: Swarm, name: string | null): void {
    if (name !== null) this.#setName(s, name);
    for (const p of s.list) this.#refreshComplete(s, p);
  }

  /** Marks an announce peer's progress; true when it just became a seed. */
  setLeft(s: Swarm, p: PeerRecord, left: number): boolean {
    p.leftState = left < 0 ? -1 : left === 0 ? 0 : 1;
    return this.#refreshComplete(s, p);
  }

  /**
   * Sets a peer's chunk set from JSON input. Checks indices against the swarm's piece count,
   * declares or infers that count, and keeps every seed flag true to it.
   */
  setChunks(s: Swarm, p: PeerRecord, input: ChunkSetInput): boolean {
    const chunks = this.#parseChunkSet(s, input);
    // A peer that registers complete (an origin) did not download: only a leecher filling up counts.
    const wasLeecher = p.chunks !== null && !p.complete;
    p.chunks = chunks;
    if (input.size !== undefined && s.size === null) s.size = input.size;
    if (input.name !== undefined) this.#setName(s, input.name);
    const became = this.#refreshComplete(s, p);
    if (became && wasLeecher) s.downloaded++;
    return became;
  }

  #parseChunkSet(s: Swarm, input: ChunkSetInput): Bitfield {
    const max = this.limits.maxPieces;
    const declared = input.pieces;
    if (declared !== undefined) {
      if (!Number.isInteger(declared) || declared < 0 || declared > max) {
        throw new SwarmshareError('ERR_BAD_CHUNKS', `pieces must be an integer from 0 to ${max}`);
      }
      if (s.piecesDeclared && s.pieces !== declared) {
        throw new SwarmshareError(
          'ERR_BAD_CHUNKS',
          `this file has ${s.pieces} chunks; ${declared} were declared (a different file with the same name? address it by info hash)`,
        );
      }
    }
    const known = s.piecesDeclared ? s.pieces : (declared ?? null);
    let bf: Bitfield;
    if (input.bitfield !== undefined) {
      if (input.chunks !== undefined) {
        throw new SwarmshareError('ERR_BAD_CHUNKS', 'give either chunks or bitfield, not both');
      }
      if (known === null) {
        throw new SwarmshareError(
          'ERR_BAD_CHUNKS',
          'a bitfield needs pieces (the number of chunks in the file)',
        );
      }
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(input.bitfield)) {
        throw new SwarmshareError('ERR_BAD_CHUNKS', 'bitfield must be base64');
      }
      const bytes = new Uint8Array(Buffer.from(input.bitfield, 'base64'));
      if (bytes.length !== Bitfield.byteLength(known)) {
        throw new SwarmshareError(
          'ERR_BAD_CHUNKS',
          `bitfield has ${bytes.length} bytes; ${known} chunks need ${Bitfield.byteLength(known)}`,
        );
      }
      if (!Bitfield.spareBitsClear(bytes, known)) {
        throw new SwarmshareError('ERR_BAD_CHUNKS', 'bitfield has bits set past the last chunk');
      }
      bf = new Bitfield(known, bytes);
    } else {
      const list = input.chunks ?? [];
      let top = -1;
      for (const i of list) {
        if (!Number.isInteger(i) || i < 0 || i >= max) {
          throw new SwarmshareError(
            'ERR_BAD_CHUNKS',
            `chunk index ${i} is not an integer from 0 to ${max - 1}`,
          );
        }
        if (i > top) top = i;
      }
      if (known !== null && top >= known) {
        throw new SwarmshareError(
          'ERR_BAD_CHUNKS',
          `chunk index ${top} is out of range: the file has ${known} chunks`,
        );
      }
      const length = known ?? top + 1;
      bf = Bitfield.fromIndices(length, list);
    }
    if (declared !== undefined && !s.piecesDeclared) {
      const inferredTop = this.#highestHeld(s);
      if (inferredTop >= declared) {
        throw new SwarmshareError(
          'ERR_BAD_CHUNKS',
          `peers already hold chunk ${inferredTop}; the file cannot have ${declared}`,
        );
      }
      s.piecesDeclared = true;
      this.#setPieces(s, declared);
    } else if (!s.piecesDeclared && bf.length > (s.pieces ?? 0)) {
      this.#setPieces(s, bf.length);
    }
    return bf;
  }

  #highestHeld(s: Swarm): number {
    let top = -1;
    for (const p of s.list) if (p.chunks !== null && p.chunks.length - 1 > top) top = p.chunks.length - 1;
    return top;
  }

  /** Changing the piece count changes who is a seed: recount (rare, O(peers)). */
  #setPieces(s: Swarm, pieces: number): void {
    if (s.pieces === pieces) return;
    s.pieces = pieces;
    for (const p of s.list) this.#refreshComplete(s, p);
  }

  /**
   * Up to `numwant` peers of a swarm, chosen at random, never `excludeId`.
   * O(numwant): a random window of the swarm's list, so a 10,000-peer swarm costs what a small one does.
   */
  sample(s: Swarm, numwant: number, excludeId: string | null, family?: 4 | 6): PeerRecord[] {
    const n = s.list.length;
    const out: PeerRecord[] = [];
    if (n === 0 || numwant <= 0) return out;
    const start = Math.floor(this.deps.random() * n);
    // Walk the list from a random start with a random stride coprime to n: a uniform-looking
    // pick that visits every peer once at most, with no allocation of n.
    const stride = coprimeStride(n, this.deps.random());
    for (let k = 0, i = start; k < n && out.length < numwant; k++, i = (i + stride) % n) {
      const p = s.list[i] as PeerRecord;
      if (p.peerId === excludeId) continue;
      if (family !== undefined && (family === 4) !== (p.compact.length === 6)) continue;
      out.push(p);
    }
    return out;
  }

  // ---- clients (JSON API identities) ----------------------------------------

  /** Drops a client from every swarm. */
  dropClient(c: Client, reason: 'deregistered' | 'expired'): void {
    for (const s of c.swarms) {
      const p = s.peers.get(c.peerId);
      if (p?.isJson) this.removePeer(s, p);
    }
    c.swarms.clear();
    this.clients.delete(c.peerId);
    this.events.onPeerDropped?.(displayPeerId(c.peerId), reason);
  }

  /** Removes peers and clients not heard from since `now - peerTimeout`. Returns how many peers went. */
  expire(now: number): number {
    const cutoff = now - this.limits.peerTimeoutMs;
    const cutoffSec = this.seconds(now) - Math.ceil(this.limits.peerTimeoutMs / 1000);
    const before = this.#peerCount;
    for (const c of this.clients.values()) {
      if (c.lastSeen < cutoff) this.dropClient(c, 'expired');
    }
    for (const s of [...this.swarms.values()]) {
      for (let i = s.list.length - 1; i >= 0; i--) {
        const p = s.list[i] as PeerRecord;
        // JSON peers live and die with their client (above); announce peers on their own.
        if (!p.isJson && p.seen < cutoffSec) {
          this.removePeer(s, p);
          this.events.onPeerDropped?.(displayPeerId(p.peerId), 'expired');
        }
      }
    }
    return before - this.#peerCount;
  }
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

function coprimeStride(n: number, r: number): number {
  if (n <= 2) return 1;
  let stride = 1 + Math.floor(r * (n - 1));
  for (let tries = 0; tries < 64 && gcd(stride, n) !== 1; tries++) stride = stride + 1 >= n ? 1 : stride + 1;
  return gcd(stride, n) === 1 ? stride : 1;
}
