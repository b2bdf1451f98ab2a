import type { PeerAddress } from '../net/tracker-client.js';

/**
 * The peers a running peer knows of and its policy for dialling them: known addresses in turn
 * (round robin), never a banned one, not a rested one before its time, never ourselves.
 */

/** A peer whose link we closed for being useless is not dialled again for this long. */
export const REST_MS = 60_000;

export class PeerSet {
  readonly #known = new Map<string, PeerAddress>();
  readonly #banned = new Set<string>();
  /** Addresses whose useless link we closed to make room: not dialled again before the time. */
  readonly #resting = new Map<string, number>();

  learn(p: PeerAddress): void {
    this.#known.set(`${p.ip}:${p.port}`, p);
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
  toDial(room: number, busy: (addr: string) => boolean, self: (p: PeerAddress) => boolean, now: number) {
    const out: { addr: string; p: PeerAddress }[] = [];
    for (const [addr, p] of [...this.#known]) {
      if (out.length >= room) break;
      if (busy(addr) || this.#banned.has(addr)) continue;
      const rest = this.#resting.get(addr);
      if (rest !== undefined) {
        if (rest > now) continue;
        this.#resting.delete(addr);
      }
      if (self(p)) continue;
      this.#known.delete(addr);
      this.#known.set(addr, p);
      out.push({ addr, p });
    }
    return out;
  }
}
