import type { CloseCode } from '../core/errors.js';
import type { Driver } from '../swarm/interpreter.js';
import type { LinkId } from '../swarm/link.js';
import { type CoreOpts, TorrentCore } from '../swarm/torrent-core.js';
import type { Message } from '../wire/messages.js';

/**
 * A simulated peer: the real TorrentCore, driven through the one command interpreter
 * (`runCommands`, swarm/interpreter.ts) with this peer as its driver: the simulated network is
 * its transport, and its store moves no bytes (a piece is good unless a block of it came from a
 * malicious peer).
 */

/** What a simulated peer's links go through (sim/network.ts). */
export interface SimLinks {
  deliver(from: SimPeer, link: LinkId, m: Message | 'handshake'): void;
  unlink(p: SimPeer, link: LinkId): void;
  now(): number;
}

/** Link ids a peer's end arrays hold at first (they double as needed). */
const INITIAL_ENDS = 32;

export interface SimPeerSpec {
  n: number;
  seed: boolean;
  malicious: boolean;
  peerId: Uint8Array;
  addr: string;
  upload: number;
  download: number;
  /** Position in the simulation's list of peers. */
  idx: number;
  joinedAt: number;
}

export class SimPeer implements Driver {
  readonly n: number;
  readonly core: TorrentCore;
  readonly #net: SimLinks;
  readonly #onComplete: () => void;
  readonly #zero: Uint8Array;
  readonly peerId: Uint8Array;
  readonly peerIdKey: string;
  readonly addr: string;
  /**
   * The address other peers see for the fast extension's allowed-fast set: each peer in its own
   * /24, as in a swarm spread over the internet (`addr` puts 256 peers in one).
   */
  readonly ip: string;
  readonly upload: number;
  readonly download: number;
  upBusy = 0;
  downBusy = 0;
  /**
   * Control messages this peer sent at one instant, still on their way: the first and last of
   * their records (-1: none), and when they arrive.
   */
  batchHead = -1;
  batchTail = -1;
  batchAt = -1;
  /**
   * This peer's ends of its links, by link id, in arrays (one per field rather than an object per
   * link: a peer telling all its links of a piece then reads a few adjacent cache lines instead of
   * one object per link). Ids are small and reused (see `freeIds`): the core then finds a link's
   * state by index rather than through a hash table. The peer at the other end (undefined: no
   * link), its core, its id for this link, when the link was made (the oldest idle link makes room
   * first), and when the last piece sent over it arrives (later messages cannot overtake it: TCP
   * order).
   */
  endPeer: (SimPeer | undefined)[] = [];
  endCore: (TorrentCore | undefined)[] = [];
  endRemote = new Int32Array(INITIAL_ENDS);
  endSerial = new Float64Array(INITIAL_ENDS);
  endDataUntil = new Float64Array(INITIAL_ENDS);
  /** Link ids handed out so far: every link's id is below this. */
  nextId: LinkId = 1;
  /**
   * Closed links' ids, oldest first, each reusable once nothing sent to it can still arrive
   * (`freeAt`): a message on its way to a closed link then finds no link, and is dropped.
   */
  freeIds: LinkId[] = [];
  freeAt: number[] = [];
  linkCount = 0;
  joinedAt: number;
  doneAt: number | null = null;
  readonly seed: boolean;
  /** A seed's piece sends in order (a piece's first block read): what the seed spent its upload on. */
  readonly sends: { index: number; at: number }[] | null;
  gone = false;
  uploaded = 0;
  /** Piece bytes that arrived. */
  downloaded = 0;
  /** Position in the simulation's list of peers. */
  readonly idx: number;
  /** uploaded / downloaded at the last replay frame (for its rates). */
  frameUp = 0;
  frameDown = 0;
  readonly malicious: boolean;
  /** Pieces that received at least one block from a malicious peer (they will fail). */
  readonly tainted = new Set<number>();
  /** Pieces that failed their hash here. */
  failedPieces = 0;
  /** When the peer's first piece verified (null: none yet). */
  firstPieceAt: number | null = null;
  /** It streams the file (scenario `streamers`), and the first piece its reader lacks. */
  streams = false;
  streamAt = 0;

  constructor(
    spec: SimPeerSpec,
    core: Omit<CoreOpts, 'peerId'>,
    rng: () => number,
    net: SimLinks,
    zero: Uint8Array,
    hooks: { onPieceVerified(i: number): void; complete(): void },
  ) {
    this.n = spec.n;
    this.seed = spec.seed;
    this.sends = spec.seed ? [] : null;
    this.malicious = spec.malicious;
    this.peerId = spec.peerId;
    this.peerIdKey = Buffer.from(spec.peerId).toString('latin1');
    this.addr = spec.addr;
    this.ip = `${spec.n & 255}.${(spec.n >> 8) & 255}.${(spec.n >> 16) & 255}.1`;
    this.upload = spec.upload;
    this.download = spec.download;
    this.idx = spec.idx;
    this.joinedAt = spec.joinedAt;
    this.#net = net;
    this.#zero = zero;
    this.core = new TorrentCore({ ...core, peerId: spec.peerId }, rng, {
      onPieceVerified: hooks.onPieceVerified,
    });
    this.#onComplete = hooks.complete;
  }

  now(): number {
    return this.#net.now();
  }

  complete(): void {
    this.#onComplete();
  }

  handshake(link: LinkId): void {
    this.#net.deliver(this, link, 'handshake');
  }

  send(link: LinkId, msg: Message): void {
    this.#net.deliver(this, link, msg);
  }

  close(link: LinkId, _code: CloseCode, _reason: string): void {
    this.#net.unlink(this, link);
  }

  read(index: number, begin: number, length: number): Uint8Array {
    if (begin === 0) this.sends?.push({ index, at: this.now() });
    return this.#zero.subarray(0, length);
  }

  /** A piece any block of which came from a malicious peer fails its hash. */
  verify(index: number): boolean {
    const ok = !this.tainted.delete(index);
    if (!ok) this.failedPieces++;
    return ok;
  }
}
