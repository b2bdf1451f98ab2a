import type { Link, LinkId } from './link.js';
import type { PieceSet } from './picker.js';

/**
 * Web seeds (BEP 19) in the picker's terms: each is a link whose peer has every piece and never
 * chokes (its driver, node/web-seed.ts, turns requests into HTTP range requests). What it is
 * asked for is narrowed so that the swarm is preferred and the origin offloaded:
 * - only pieces no linked peer has;
 * - of those, with peers of our own kind linked (the same client, so fetching from the same web
 *   seeds by the same rule), only the pieces this peer "owns": each piece is owned by one of them
 *   and us by rendezvous hashing of peer ids and piece index, so each piece is taken from the
 *   origin by one downloader and passed on (without it, the last pieces were fetched by all);
 * - with peers linked, about one piece at a time (WEB_SEED_SHARED_BYTES);
 * - when none of that leaves the web seeds anything to do and the peers are too slow to keep the
 *   download going (together under WEB_SEED_MIN_PEER_RATE over the last WEB_SEED_WINDOW_MS),
 *   anything they have.
 * Pure: links and times in, a piece set out.
 */

/** The peers' rate is measured over this long. */
export const WEB_SEED_WINDOW_MS = 5000;
/**
 * Below this rate from peers (bytes/s, all together) a web seed is asked for any piece: the swarm
 * is not keeping the download going (none linked yet, all choking us, or all slow).
 */
export const WEB_SEED_MIN_PEER_RATE = 64 * 1024;

/**
 * Requests kept outstanding on a web seed's link: 1,024 blocks (16 MiB), enough for its HTTP
 * connections to each hold a long range (a peer's pipeline of 128, 2 MiB, left a loopback origin
 * idle between ranges: 0.3x curl's speed).
 */
export const WEB_SEED_PIPELINE = 1024;
/** With peers linked, a web seed's requests outstanding at most: about one piece (at least 16 blocks). */
export const WEB_SEED_SHARED_BYTES = 256 * 1024;

export class WebSeedPolicy {
  /** The links that are web seeds. */
  readonly links = new Set<LinkId>();
  /** Peers are too slow and no piece is only on web seeds: web seeds are asked for anything. */
  fallback = false;
  /** No other source will come (the torrent names no tracker, no DHT, no peer): web seeds alone. */
  only = false;
  /** Our peer id (latin1), and the prefix that names peers of our own kind. */
  self = '';
  kin = '';
  /** The pieces we own among our kin linked now (null: no kin linked), and for which set of ids. */
  #owned: Uint8Array | null = null;
  #ownedFor = '';
  #peerSeenAt: number | null = null;

  /**
   * The web seeds are alone: no peer linked, and none expected (`only`) or none for
   * WEB_SEED_WINDOW_MS (a torrent's first seconds count as seeing peers: its trackers will name
   * some). Alone, a web seed is given a deep pipeline and read in order.
   */
  alone(now: number, links: ReadonlyMap<LinkId, Link>): boolean {
    if (links.size > this.links.size) {
      this.#peerSeenAt = now;
      return false;
    }
    this.#peerSeenAt ??= now;
    return this.only || now - this.#peerSeenAt >= WEB_SEED_WINDOW_MS;
  }
  #samples: { at: number; bytes: number }[] = [];

  get count(): number {
    return this.links.size;
  }

  /**
   * What `l`, a web seed, may be asked for: every piece it has while peers are too slow, else
   * only pieces that no linked peer has (their availability counts the web seeds alone).
   */
  offer(l: Link, availability: Uint16Array): PieceSet {
    if (this.fallback) return l.offer;
    const seeds = this.links.size;
    const offer = l.offer;
    const owned = this.#owned;
    if (owned === null) return { has: (i) => offer.has(i) && (availability[i] ?? 0) <= seeds };
    return {
      has: (i) =>
        offer.has(i) &&
        (availability[i] ?? 0) <= seeds &&
        ((owned[i >>> 3] as number) & (0x80 >>> (i & 7))) !== 0,
    };
  }

  /**
   * Which pieces are ours to take from web seeds, among our kin linked now: piece i goes to the
   * id with the lowest hash of (id, i). Recomputed when the set of kin changes.
   */
  own(links: ReadonlyMap<LinkId, Link>, pieceCount: number): void {
    if (links.size === this.#ownedLinks) return;
    this.#ownedLinks = links.size;
    this.#own(links, pieceCount);
  }
  #ownedLinks = -1;

  #own(links: ReadonlyMap<LinkId, Link>, pieceCount: number): void {
    const ids = [this.self];
    for (const l of links.values())
      if (!this.links.has(l.id) && l.peerId !== null && this.kin !== '' && l.peerId.startsWith(this.kin))
        ids.push(l.peerId);
    const key = ids.slice(1).sort().join('\n');
    if (key === this.#ownedFor) return;
    this.#ownedFor = key;
    if (ids.length === 1) {
      this.#owned = null;
      return;
    }
    const seeds = ids.map(fnv1a);
    const mine = seeds[0] as number;
    const owned = new Uint8Array(Math.ceil(pieceCount / 8));
    for (let i = 0; i < pieceCount; i++) {
      const rank = mix(mine, i);
      let ours = true;
      for (let k = 1; k < seeds.length && ours; k++) if (mix(seeds[k] as number, i) < rank) ours = false;
      if (ours) owned[i >>> 3] = (owned[i >>> 3] as number) | (0x80 >>> (i & 7));
    }
    this.#owned = owned;
  }

  /**
   * A second's measurement: the bytes peers (not web seeds) have sent us, and whether that is
   * enough. Web seeds busy with pieces only they have are not also given others.
   */
  tick(now: number, links: ReadonlyMap<LinkId, Link>, pieceCount: number): void {
    for (const id of this.links) if (!links.has(id)) this.links.delete(id);
    this.#own(links, pieceCount);
    let bytes = 0;
    for (const l of links.values()) if (!this.links.has(l.id)) bytes += l.downloaded;
    this.#samples.push({ at: now, bytes });
    while (this.#samples.length > 2 && now - (this.#samples[1]?.at ?? now) >= WEB_SEED_WINDOW_MS)
      this.#samples.shift();
    const first = this.#samples[0] as { at: number; bytes: number };
    const dt = (now - first.at) / 1000;
    // Links that closed take their bytes with them: a drop is no rate.
    const rate = dt > 0 ? Math.max(0, bytes - first.bytes) / dt : 0;
    let busy = false;
    for (const id of this.links) if ((links.get(id)?.outstanding.size ?? 0) > 0) busy = true;
    if (dt >= WEB_SEED_WINDOW_MS / 2000)
      this.fallback = rate < WEB_SEED_MIN_PEER_RATE && (!busy || this.fallback);
  }
}

/** FNV-1a of a string's char codes (peer ids are latin1). */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A piece's rank for a peer: its id's hash and the index, mixed (murmur3's finaliser). */
function mix(seed: number, i: number): number {
  let h = (seed ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
