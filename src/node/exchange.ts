import type { Bitfield } from '../core/bitfield.js';
import type { Rng } from '../core/deps.js';
import type { JsonTrackerClient, PeerAddress } from '../net/tracker-client.js';

/**
 * The original design's way to download instead of BitTorrent's: ask the tracker (JSON API) for
 * the swarm's chunk maps, pick a random peer that holds chunks we need, fetch up to `maxChunks`
 * of them over one connection, report to the tracker, repeat.
 */

/** An exchange that gives nothing for this long is abandoned (the peer may have died). */
export const EXCHANGE_TIMEOUT_MS = 15_000;
/** Pause before asking the tracker again when no peer has a chunk we need. */
export const EXCHANGE_IDLE_MS = 300;
/** Pause before asking the tracker again after it failed. */
export const EXCHANGE_RETRY_MS = 2_000;

export interface ExchangeHost {
  readonly stopped: boolean;
  readonly complete: boolean;
  readonly have: Bitfield;
  readonly pieceCount: number;
  /** An address we will not dial (a peer that broke the protocol). */
  banned(addr: string): boolean;
  /** Fetches `chunks` from `p` over one link; resolves when over, whatever happened. */
  exchange(p: PeerAddress, chunks: number[]): Promise<void>;
  sleep(ms: number): Promise<void>;
  trackerFailed(url: string, message: string, retryInMs: number): void;
  requesting(chunks: number[], name: string, addr: string): void;
}

/** The chunks `p` holds that we lack, by its reported bitfield. */
function chunksOf(p: { bitfield: Uint8Array | null }, have: Bitfield, pieceCount: number): number[] {
  const chunks: number[] = [];
  if (p.bitfield !== null) {
    for (let i = 0; i < pieceCount; i++) {
      if (!have.has(i) && ((p.bitfield[i >> 3] ?? 0) & (0x80 >> (i & 7))) !== 0) chunks.push(i);
    }
  }
  return chunks;
}

/** One exchange at a time with a random peer that has what we need, until complete or stopped. */
export async function exchangeLoop(
  host: ExchangeHost,
  tracker: JsonTrackerClient,
  maxChunks: number,
  rand: Rng,
): Promise<void> {
  while (!host.stopped && !host.complete) {
    let peers: Awaited<ReturnType<JsonTrackerClient['swarmPeers']>>;
    try {
      await tracker.report(host.have);
      peers = await tracker.swarmPeers();
    } catch (e) {
      host.trackerFailed(tracker.url, (e as Error).message, EXCHANGE_RETRY_MS);
      await host.sleep(EXCHANGE_RETRY_MS);
      continue;
    }
    const offers = peers
      .map((p) => ({ p, chunks: chunksOf(p, host.have, host.pieceCount) }))
      .filter((o) => o.chunks.length > 0 && !host.banned(`${o.p.ip}:${o.p.port}`));
    if (offers.length === 0) {
      await host.sleep(EXCHANGE_IDLE_MS);
      continue;
    }
    const pick = offers[Math.floor(rand() * offers.length)] as (typeof offers)[number];
    // Up to maxChunks of the chunks it has that we need, drawn at random (peers that all start
    // from the origin then fetch different chunks and can trade them), in index order.
    const pool = pick.chunks.slice();
    for (let i = pool.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [pool[i], pool[j]] = [pool[j] as number, pool[i] as number];
    }
    const chunks = pool.slice(0, maxChunks).sort((a, b) => a - b);
    host.requesting(chunks, pick.p.name, `${pick.p.ip}:${pick.p.port}`);
    await host.exchange(pick.p, chunks);
  }
  if (!host.stopped) await tracker.report(host.have).catch(() => {});
}
