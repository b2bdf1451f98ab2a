import { usablePeerAddress } from '../core/ip.js';
import type { PeerAddress } from '../net/tracker-client.js';

/**
 * The peers a running peer knows of, from every source (trackers now; PEX and the DHT as they
 * come: all through `learn`, so one set of checks and one cap apply), and its policy for dialling
 * them: known addresses in turn (round robin), never a banned one, not a rested one before its
 * time, never ourselves.
 */

/** A peer whose link we closed for being useless is not dialled again for this long. */
export const REST_MS = 60_000;
/**
 * Peers known per torrent at most (libtorrent keeps up to 3,000): enough to keep 60 connections
 * busy through churn, small enough that a source flooding us with addresses costs little.
 */
export const MAX_KNOWN_PEERS = 2_000;

interface Known {
  p: PeerAddress;
  /** Dialled at least once. */
  tried: boolean;
}

export class PeerSet {
  readonly #known = new Map<string, Known>();
  readonly #banned = new Set<string>();
  /** Addresses whose useless link we closed to make room: not dialled again before the time. */
  readonly #resting = new Map<string, number>();
  readonly #self: (p: PeerAddress) => boolean;
  readonly #max: number;
  /** Addresses refused by `learn` (unusable, ourselves, or past the cap), for the curious. */
  refused = 0;

  constructor(self: (p: PeerAddress) => boolean = () => false, max = MAX_KNOWN_PEERS) {
    this.#self = self;
    this.#max = max;
  }

  get size(): number {
    return this.#known.size;
  }

  /**
   * A peer from any source. Unusable addresses (port 0, unspecified, broadcast, multicast, host
   * names) and ourselves are refused; one known already is kept as it is. When the set is full,
   * the new peer takes the place of the longest-known peer already dialled (it had its chance);
   * when none has been, the new one is refused (those we know are as good, and came first).
   */
  learn(peer: PeerAddress): boolean {
    const ip = usablePeerAddress(peer.ip, peer.port);
    if (ip === null) return this.#refuse();
    const p = { ip, port: peer.port };
    const addr = `${ip}:${p.port}`;
    if (this.#known.has(addr)) return true;
    if (this.#self(p)) return this.#refuse();
    if (this.#known.size >= this.#max) {
      let victim: string | undefined;
      for (const [a, k] of this.#known)
        if (k.tried) {
          victim = a;
          break;
        }
      if (victim === undefined) return this.#refuse();
      this.#known.delete(victim);
    }
    this.#known.set(addr, { p, tried: false });
    return true;
  }

  #refuse(): false {
    this.refused++;
    return false;
  }

  ban(addr: string): void {
    this.#banned.add(addr);
  }

  banned(addr: string): boolean {
    return this.#banned.has(addr);
  }

  rest(addr: string, now: number): void {
    this.#resting.set(addr, now + REST_MS);
  }

  /** Whether a known peer could be dialled if we had room (not linked, dialling, or banned). */
  anyCandidate(busy: (addr: string) => boolean): boolean {
    for (const addr of this.#known.keys()) if (!busy(addr) && !this.#banned.has(addr)) return true;
    return false;
  }

  /**
   * The peers to dial now, at most `room`, in turn: a peer returned goes to the back, so the next
   * free slot tries someone else. (A peer we are linked to by its incoming connection is not
   * recognised by its listening address; always dialling the first known one could keep a slot
   * cycling on that peer.)
   */
  toDial(room: number, busy: (addr: string) => boolean, now: number): { addr: string; p: PeerAddress }[] {
    const out: { addr: string; p: PeerAddress }[] = [];
    for (const [addr, k] of [...this.#known]) {
      if (out.length >= room) break;
      if (busy(addr) || this.#banned.has(addr)) continue;
      const rest = this.#resting.get(addr);
      if (rest !== undefined) {
        if (rest > now) continue;
        this.#resting.delete(addr);
      }
      this.#known.delete(addr);
      k.tried = true;
      this.#known.set(addr, k);
      out.push({ addr, p: k.p });
    }
    return out;
  }
}
