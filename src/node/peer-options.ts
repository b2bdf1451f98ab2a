import type { Bitfield } from '../core/bitfield.js';
import type { Clock, Hasher, Rng, Timers } from '../core/deps.js';
import type { PeerAddress } from '../core/ip.js';
import type { Metainfo } from '../core/metainfo.js';
import type { Pacer } from '../core/token-bucket.js';
import type { SharedListener } from '../net/shared-listener.js';
import type { PeerLinks, TcpLinksHandlers, TcpLinksOpts } from '../net/tcp-links.js';
import type { UdpTrackerSocket } from '../net/udp-tracker-socket.js';
import type { StoreMode } from '../storage/fs-store.js';
import type { PieceStore } from '../storage/piece-store.js';
import type { Strategy } from '../swarm/picker.js';
import type { EncryptionMode } from '../wire/mse.js';

/** A running peer's options, collaborators, limits and events (peer-node.ts). */

export interface PeerNodeOpts {
  meta: Metainfo;
  /** The folder that holds (seed) or receives (download) the torrent's name. */
  dir: string;
  mode: StoreMode;
  /** Address to bind and announce (default 127.0.0.1). */
  host?: string;
  /** TCP port (0 picks a free one). */
  port?: number;
  /** Tracker URLs (default: the torrent's). */
  trackers?: string[];
  /** Peers to dial directly (IP literals), beside or instead of trackers. */
  peers?: { ip: string; port: number }[];
  strategy?: Strategy;
  /** Connections at most, in and out. */
  maxConnections?: number;
  /** Connections from one IP address at most. */
  maxPerIp?: number;
  /** Name used with the JSON tracker API (default: the peer id). */
  name?: string;
  peerId?: Uint8Array;
  /** The original design's way instead of BitTorrent's (exchange.ts). */
  exchange?: { maxChunks: number };
  /** Upload cap in bytes/s (token bucket); none by default. */
  uploadRate?: number;
  /** Download cap in bytes/s (reading pauses when over it); none by default. */
  downloadRate?: number;
  /** Regular unchoke slots (default 4; the demo unchokes everyone, as the original served all). */
  uploadSlots?: number;
  /** Requests kept outstanding per peer (default DEFAULT_PIPELINE). */
  pipeline?: number;
  /** Super-seed (BEP 16) while complete: offer each peer a few pieces at a time. */
  superSeed?: boolean;
  /** A UDP tracker's first retransmission timeout, ms (BEP 15: 15 s; tests shorten it). */
  udpRetransmitMs?: number;
  /**
   * File selection: the indexes of files not to download (never created; done means every other
   * file verified). Pieces they share with wanted files are fetched whole (docs/peer.md).
   */
  unwantedFiles?: readonly number[];
  /** File priorities by index: 2 high, 1 normal (default), 0 low; high pieces are picked first. */
  filePriorities?: readonly number[];
  /**
   * Encrypted connections (MSE/PE): `prefer` (default) dials encrypted first and plain when that
   * fails, and accepts both; `require` only RC4 both ways; `disable` plain only. With a shared
   * listener, incoming connections follow the listener's setting.
   */
  encryption?: EncryptionMode;
  /** The socket UDP trackers are asked from, shared by a session's torrents (default: one per tracker). */
  udpSocket?: UdpTrackerSocket;
  /** The shortest announce interval taken from a tracker, ms (default MIN_ANNOUNCE_INTERVAL_MS). */
  minAnnounceIntervalMs?: number;
  /** One PEX message per link per this long, ms (default a minute; tests shorten it). */
  pexIntervalMs?: number;
  /**
   * The Mainline DHT (BEP 5), already bound (net/dht-udp.ts): the torrent's peers are searched
   * there and we are announced there, at once and then every `dhtIntervalMs`. Never used for a
   * private torrent.
   */
  dht?: PeerDht;
  /** Web seeds (BEP 19) to fetch from, instead of the torrent's `url-list` (none: `[]`). */
  webSeeds?: readonly string[];
  /** DHT announce period, ms (default DHT_INTERVAL_MS; a download searches at least every DHT_SEARCH_MS). */
  dhtIntervalMs?: number;
  /**
   * A listener shared by the torrents of a session (net/shared-listener.ts): incoming links for
   * this torrent come from it, and `port` is ignored.
   */
  listener?: SharedListener;
  /**
   * The pieces known to be verified on disk (resume data whose files' sizes and mtimes still
   * match): taken as they are, without reading and hashing the files again.
   */
  trustedHave?: Bitfield;
  /** A connection cap shared with other torrents (a session's): how many more may open now. */
  sharedConnections?: { room(): number };
  /** Token buckets shared with other torrents (a session's global limits), used instead of the rates. */
  upBucket?: Pacer;
  downBucket?: Pacer;
}

/** The DHT as a peer uses it: a lookup of a torrent's peers that announces us at `announcePort`. */
export interface PeerDht {
  getPeers(infoHash: Uint8Array, announcePort?: number): Promise<{ peers: PeerAddress[] }>;
}

/** A seed re-announces to the DHT this often (BEP 5 clients: 15 to 30 minutes). */
export const DHT_INTERVAL_MS = 15 * 60_000;
/** A download searches the DHT for more peers at least this often. */
export const DHT_SEARCH_MS = 60_000;

/** What a peer is given rather than reaching for. */
export interface PeerNodeDeps {
  clock: Clock;
  timers: Timers;
  rng: Rng;
  hasher: Hasher;
  /** Random bytes (peer ids, tracker keys). */
  randomBytes(n: number): Uint8Array;
  /** The torrent's links (real TCP: net/tcp-links.ts). */
  links(opts: TcpLinksOpts, handlers: TcpLinksHandlers): PeerLinks;
  /** Opens the torrent's storage in `dir`. */
  openStore(
    meta: Metainfo,
    dir: string,
    mode: StoreMode,
    o?: { unwanted?: ReadonlySet<number> },
  ): Promise<PieceStore & StoreInfo>;
}

/** What the driver reads of a store beyond PieceStore. */
export interface StoreInfo {
  readonly finalPath: string;
  /** The file is under its final name (a finished download). */
  readonly finished: boolean;
}

/** Default cap on open connections. */
export const MAX_CONNECTIONS = 60;
/** Default cap on connections from one address (local swarms put many peers on one address). */
export const MAX_PER_IP = 20;
/** Attempting a TCP connection gives up after this. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** The driver's clock tick. */
export const TICK_MS = 1_000;
/** A link is not judged useless before it has been open this long (its handshake and bitfield). */
export const SETTLE_MS = 3_000;
/**
 * Blocks read ahead of the wire when the uplink is paced (256 KiB: an eighth of a second at
 * 2 MiB/s; enough reads in flight to keep a fast uplink busy). The rest of the requests we
 * accepted wait in the core, where a cancel takes them back (swarm/send-queue.ts).
 */
export const PACED_SEND_AHEAD = 16;

/**
 * The core's sendAhead: PACED_SEND_AHEAD when the uplink is paced (a cap of ours or the
 * session's; requests then wait in the core, and the links say when each piece has gone), else
 * none (every request read at once).
 */
export function sendAheadFor(o: PeerNodeOpts): number | undefined {
  return o.upBucket !== undefined || o.uploadRate !== undefined ? PACED_SEND_AHEAD : undefined;
}

export interface PeerNodeEvents {
  piece: [index: number, have: number, total: number];
  'piece-failed': [index: number];
  block: [bytes: number];
  upload: [bytes: number];
  complete: [];
  error: [err: Error];
  /** A tracker answered with `peers`, or failed with `error` and is tried again in `retryInMs`. */
  tracker: [url: string, peers: number, error?: string, retryInMs?: number];
  /** A web seed (BEP 19) backs off, is no longer asked for a file, or is dropped: why. */
  'web-seed': [message: string];
  'peer-closed': [addr: string, code: string, reason: string];
  /** A dial that failed in its encrypted handshake (MSE/PE). */
  'dial-failed': [addr: string, reason: string];
  /** A DHT lookup found `found` peers, `learned` of them new and usable. */
  dht: [found: number, learned: number];
  /** A peer told us of `told` peers (PEX), `learned` of them new and usable. */
  pex: [told: number, learned: number];
  /** An exchange starts: which chunks we ask of whom. */
  requesting: [chunks: number[], peer: string, addr: string];
}
