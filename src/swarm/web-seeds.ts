import type { Link, LinkId } from './link.js';
import type { PieceSet } from './picker.js';

/**
 * Web seeds (BEP 19) in the picker's terms: each is a link whose peer has every piece and never
 * chokes (its driver, node/web-seed.ts, turns requests into HTTP range requests). What it is
 * asked for is narrowed so that the swarm is preferred and the origin offloaded: only pieces no
 * linked peer has, unless the peers are too slow to keep the download going (together under
 * WEB_SEED_MIN_PEER_RATE over the last WEB_SEED_WINDOW_MS), when it is asked for anything it has.
 * Pure: links and times in, a piece set out.
 */

/** The peers' rate is measured over this long. */
export const WEB_SEED_WINDOW_MS = 5000;
/**
 * Below this rate from peers (bytes/s, all together) a web seed is asked for any piece: the swarm
 * is not keeping the download going (none linked yet, all choking us, or all slow).
 */
export const WEB_SEED_MIN_PEER_RATE = 64 * 1024;

export class WebSeedPolicy {
  /** The links that are web seeds. */
  readonly links = new Set<LinkId>();
  /** Peers are too slow: web seeds are asked for anything (true until the peers show a rate). */
  fallback = true;
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
    return { has: (i) => offer.has(i) && (availability[i] ?? 0) <= seeds };
  }

  /** A second's measurement: the bytes peers (not web seeds) have sent us, and whether that is enough. */
  tick(now: number, links: ReadonlyMap<LinkId, Link>): void {
    for (const id of this.links) if (!links.has(id)) this.links.delete(id);
    let bytes = 0;
    for (const l of links.values()) if (!this.links.has(l.id)) bytes += l.downloaded;
    this.#samples.push({ at: now, bytes });
    while (this.#samples.length > 2 && now - (this.#samples[1]?.at ?? now) >= WEB_SEED_WINDOW_MS)
      this.#samples.shift();
    const first = this.#samples[0] as { at: number; bytes: number };
    const dt = (now - first.at) / 1000;
    // Links that closed take their bytes with them: a drop is no rate.
    const rate = dt > 0 ? Math.max(0, bytes - first.bytes) / dt : 0;
    this.fallback = dt < WEB_SEED_WINDOW_MS / 2000 ? this.fallback : rate < WEB_SEED_MIN_PEER_RATE;
  }
}
