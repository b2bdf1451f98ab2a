import type { PeerAddress } from '../core/ip.js';

/**
 * The peers announced to us (announce_peer), by info hash, each until it expires. Bounded: at most
 * MAX_TORRENTS info hashes (a new one past that replaces the oldest) and MAX_PEERS_PER_TORRENT
 * peers each (a new one past that replaces the oldest), so announces from many addresses or for
 * many made-up torrents cost a fixed amount of memory.
 */

/** An announced peer is kept this long (clients re-announce every 15 to 30 minutes). */
export const PEER_TTL_MS = 30 * 60_000;
export const MAX_TORRENTS = 2_000;
export const MAX_PEERS_PER_TORRENT = 200;

export class PeerStore {
  readonly #torrents = new Map<string, Map<string, { p: PeerAddress; until: number }>>();

  get torrents(): number {
    return this.#torrents.size;
  }

  get peers(): number {
    let n = 0;
    for (const t of this.#torrents.values()) n += t.size;
    return n;
  }

  add(infoHash: Uint8Array, p: PeerAddress, now: number): void {
    const key = Buffer.from(infoHash).toString('hex');
    let t = this.#torrents.get(key);
    if (t === undefined) {
      if (this.#torrents.size >= MAX_TORRENTS)
        this.#torrents.delete(this.#torrents.keys().next().value as string);
      t = new Map();
      this.#torrents.set(key, t);
    }
    const a = `${p.ip}:${p.port}`;
    t.delete(a);
    if (t.size >= MAX_PEERS_PER_TORRENT) t.delete(t.keys().next().value as string);
    t.set(a, { p: { ip: p.ip, port: p.port }, until: now + PEER_TTL_MS });
  }

  /** Up to `n` live peers of the torrent, from a random starting point. */
  get(infoHash: Uint8Array, n: number, now: number, random: (n: number) => Uint8Array): PeerAddress[] {
    const t = this.#torrents.get(Buffer.from(infoHash).toString('hex'));
    if (t === undefined) return [];
    const live = [...t.values()].filter((e) => e.until > now);
    if (live.length <= n) return live.map((e) => e.p);
    const r = random(4);
    const start = (((r[0] as number) << 8) | (r[1] as number)) % live.length;
    const out: PeerAddress[] = [];
    for (let i = 0; i < n; i++) out.push((live[(start + i) % live.length] as { p: PeerAddress }).p);
    return out;
  }

  expire(now: number): void {
    for (const [k, t] of this.#torrents) {
      for (const [a, e] of t) if (e.until <= now) t.delete(a);
      if (t.size === 0) this.#torrents.delete(k);
    }
  }
}
