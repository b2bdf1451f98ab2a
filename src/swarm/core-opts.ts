import type { Bitfield } from '../core/bitfield.js';
import { BLOCK_LENGTH } from '../wire/messages.js';
import { PEX_INTERVAL_MS } from './pex.js';
import type { Strategy } from './picker.js';

/** The torrent core's options, their defaults, and its link timers. */

/**
 * Requests we keep outstanding per peer: 128 x 16 KiB = 2 MiB in flight, for a fast link (on
 * loopback 64 was ~7% slower, 16 ~28%). A rate-capped swarm wants far fewer (opts.pipeline):
 * the cap makes requests queue at the sender, and a deep queue only delays every piece.
 */
export const DEFAULT_PIPELINE = 128;
/** Regular unchoke slots (plus one optimistic). */
export const DEFAULT_UPLOAD_SLOTS = 4;
/** A link that completes no handshake in this time is closed. */
export const HANDSHAKE_TIMEOUT_MS = 20_000;
/** A link silent this long is closed (BEP 3 peers send a keep-alive every ~2 minutes). */
export const IDLE_TIMEOUT_MS = 180_000;
/** We send a keep-alive after this much silence of our own. */
export const KEEPALIVE_MS = 90_000;

export interface CoreOpts {
  infoHash: Uint8Array;
  peerId: Uint8Array;
  pieceCount: number;
  pieceLength: number;
  length: number;
  strategy?: Strategy;
  pipeline?: number;
  uploadSlots?: number;
  /** Super-seeding (BEP 16) while we are a seed: super-seed.ts. */
  superSeed?: boolean;
  /**
   * Assemble block bytes into pieces (default). A simulator that moves no real bytes turns it off:
   * `verify` then carries no data, and the driver says whether the piece is good.
   */
  assemble?: boolean;
  /** The info dictionary's bytes, served to peers that ask for it (BEP 9); none in the simulator. */
  metadata?: Uint8Array;
  /** Speak the fast extension (BEP 6) with peers whose handshake says they do (default true; the driver's handshake sets the bit). */
  fast?: boolean;
  /** SHA-1, for the allowed-fast sets we give (BEP 6); without it we give none. */
  sha1?: (data: Uint8Array) => Uint8Array;
  /** A private torrent (BEP 27): no peer exchange. */
  private?: boolean;
  /** The port we listen on, told to peers in the extension handshake (`p`), so PEX can name us. */
  listenPort?: number;
  /** One PEX message per link per this long (default PEX_INTERVAL_MS, a minute; tests shorten it). */
  pexIntervalMs?: number;
  /** Verified pieces we start with (a seed: all; a resumed download: some). */
  have?: Bitfield;
  /**
   * The pieces we want (file selection: those touching a wanted file); default all. The rest are
   * never requested; done (`complete`) means every wanted piece is verified.
   */
  wanted?: Bitfield;
  /**
   * Bytes per request: 16 KiB (the default) on the wire. The simulator may move a whole piece as
   * one block; requests up to this length are then accepted too.
   */
  blockLength?: number;
  /**
   * Links the link table has room for at first (default 32; it doubles past that). A driver that
   * caps its connections (the simulator) passes the cap, so a large swarm of small tables wastes
   * no slots.
   */
  linkSlots?: number;
  /**
   * Blocks handed to the driver ahead of the wire at most (send-queue.ts); the rest of the
   * requests we accepted wait in the core, where a cancel still takes them back. Default
   * unbounded (every request read at once). A driver that sets it calls `blockSent` as each
   * piece message leaves (or is dropped).
   */
  sendAhead?: number;
}

/** The options with their defaults filled in. */
export type ResolvedCoreOpts = Required<
  Omit<CoreOpts, 'have' | 'wanted' | 'linkSlots' | 'metadata' | 'listenPort' | 'sha1'>
>;

export function resolveCoreOpts(opts: CoreOpts): ResolvedCoreOpts {
  return {
    infoHash: opts.infoHash,
    peerId: opts.peerId,
    pieceCount: opts.pieceCount,
    pieceLength: opts.pieceLength,
    length: opts.length,
    strategy: opts.strategy ?? 'rarest-first',
    pipeline: opts.pipeline ?? DEFAULT_PIPELINE,
    assemble: opts.assemble ?? true,
    uploadSlots: opts.uploadSlots ?? DEFAULT_UPLOAD_SLOTS,
    superSeed: opts.superSeed ?? false,
    blockLength: opts.blockLength ?? BLOCK_LENGTH,
    private: opts.private ?? false,
    fast: opts.fast ?? true,
    pexIntervalMs: opts.pexIntervalMs ?? PEX_INTERVAL_MS,
    sendAhead: opts.sendAhead ?? Number.POSITIVE_INFINITY,
  };
}
