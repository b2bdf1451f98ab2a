import type { Bitfield } from '../core/bitfield.js';
import type { Cancel, Timers } from '../core/deps.js';
import {
  type AnnounceState,
  JsonTrackerClient,
  type PeerAddress,
  type TrackerClient,
} from '../net/tracker-client.js';

/**
 * A running peer's trackers: the announce loop of each (started, then every interval; failures
 * retried with backoff), the `completed` and `stopped` events, and the coalesced chunk-map reports
 * a swarmshare tracker's dashboard follows.
 */

/** First retry delay after a failed announce; doubles up to MAX_RETRY_MS. */
export const RETRY_MS = 2_000;
export const MAX_RETRY_MS = 60_000;
/**
 * The shortest announce interval we take from a tracker (a tracker asking for less gets this): a
 * tracker cannot pace us into a storm (at most one announce, and MAX_REDIRECTS + 1 requests, per
 * tracker in this time). Public trackers ask for 30 minutes; a local tracker one runs oneself may
 * be given a lower floor (`--min-announce-interval`).
 */
export const MIN_ANNOUNCE_INTERVAL_MS = 30_000;
/** New pieces reach a swarmshare tracker within this (updates coalesced). */
export const REPORT_MS = 500;
/** How long `stop` waits for the trackers' goodbye. */
export const STOP_ANNOUNCE_MS = 3_000;

export type AnnounceEvent = 'started' | 'completed' | 'stopped';

export interface AnnouncerHost {
  /** What we tell the trackers now. */
  state(event?: AnnounceEvent): AnnounceState;
  /** A tracker answered with these peers. */
  peers(url: string, peers: PeerAddress[]): void;
  /** A tracker failed; it is tried again in `retryInMs`. */
  failed(url: string, message: string, retryInMs: number): void;
  /** Our pieces, for a swarmshare tracker's chunk map. */
  have(): Bitfield;
}

export class Announcer {
  readonly trackers: readonly TrackerClient[];
  /** The tiers (BEP 12), each in the order it is tried: the tracker that last answered first. */
  readonly tiers: TrackerClient[][];
  readonly #host: AnnouncerHost;
  readonly #timers: Timers;
  readonly #floorMs: number;
  readonly #pending = new Set<Cancel>();
  #reportPending = false;
  #stopped = false;

  /**
   * `tiers`: each tier's trackers are shuffled (with `rng`), as BEP 12 asks; every tier is
   * announced to (so a dead tier never stops a download), each through one of its trackers.
   */
  constructor(
    tiers: TrackerClient[][],
    host: AnnouncerHost,
    timers: Timers,
    rng: () => number,
    minIntervalMs = MIN_ANNOUNCE_INTERVAL_MS,
  ) {
    this.tiers = tiers.filter((t) => t.length > 0).map((t) => shuffled(t, rng));
    this.trackers = this.tiers.flat();
    this.#host = host;
    this.#timers = timers;
    this.#floorMs = minIntervalMs;
  }

  /** The swarmshare trackers (JSON API) among ours. */
  get json(): JsonTrackerClient[] {
    return this.trackers.filter((t): t is JsonTrackerClient => t instanceof JsonTrackerClient);
  }

  start(): void {
    for (const tier of this.tiers) this.#loop(tier, 'started', RETRY_MS);
  }

  async #once(t: TrackerClient, event?: AnnounceEvent): Promise<number> {
    const r = await t.announce(this.#host.state(event));
    this.#host.peers(t.url, r.peers);
    return r.interval;
  }

  /**
   * One announce of a tier: its trackers in order until one answers (it moves to the front, as
   * BEP 12 says); when none does, the tier is tried again later, backing off.
   */
  #loop(tier: TrackerClient[], event: 'started' | undefined, backoff: number): void {
    if (this.#stopped) return;
    const attempt = (k: number): void => {
      const t = tier[k] as TrackerClient;
      this.#once(t, event).then(
        (interval) => {
          tier.splice(k, 1);
          tier.unshift(t);
          this.later(
            () => this.#loop(tier, undefined, RETRY_MS),
            Math.max(this.#floorMs, interval * 1000, 1000),
          );
        },
        (e: Error) => {
          if (this.#stopped) return;
          if (k + 1 < tier.length) {
            // The next tracker of the tier, at once (0: "trying another of its tier").
            this.#host.failed(t.url, e.message, 0);
            attempt(k + 1);
            return;
          }
          this.#host.failed(t.url, e.message, backoff);
          // Keep trading with the peers we know; try the tier again, backing off.
          this.later(() => this.#loop(tier, event, Math.min(backoff * 2, MAX_RETRY_MS)), backoff);
        },
      );
    };
    attempt(0);
  }

  /** Runs `fn` after `ms` unless stopped first. */
  later(fn: () => void, ms: number): void {
    const cancel = this.#timers.after(ms, () => {
      this.#pending.delete(cancel);
      fn();
    });
    this.#pending.add(cancel);
  }

  /** `completed` to each tier's current tracker. */
  completed(): void {
    for (const tier of this.tiers) this.#once(tier[0] as TrackerClient, 'completed').catch(() => {});
  }

  /**
   * Tells swarmshare trackers about new pieces within REPORT_MS (coalesced), so their view (and
   * dashboard) follows the download closely without an update per piece.
   */
  reportSoon(): void {
    if (this.#reportPending || this.#stopped) return;
    const json = this.json;
    if (json.length === 0) return;
    this.#reportPending = true;
    this.later(() => {
      this.#reportPending = false;
      for (const t of json) t.report(this.#host.have()).catch(() => {});
    }, REPORT_MS);
  }

  /** No more announces or timers; nothing said to the trackers. */
  halt(): void {
    this.#stopped = true;
    for (const cancel of this.#pending) cancel();
    this.#pending.clear();
  }

  /** Halts, and lets go of the trackers' resources (UDP sockets); nothing said to the trackers. */
  close(): void {
    this.halt();
    this.#release();
  }

  #release(): void {
    for (const t of this.trackers) t.close?.();
  }

  /** Halts, then says `stopped` to every tracker (waiting STOP_ANNOUNCE_MS at most). */
  async stop(): Promise<void> {
    this.halt();
    let cancel: Cancel = () => {};
    await Promise.race([
      Promise.allSettled(this.tiers.map((tier) => this.#once(tier[0] as TrackerClient, 'stopped'))),
      new Promise<void>((r) => {
        cancel = this.#timers.after(STOP_ANNOUNCE_MS, r);
      }),
    ]);
    cancel();
    this.#release();
  }
}

/** A copy of `a` in random order (Fisher-Yates). */
function shuffled<T>(a: readonly T[], rng: () => number): T[] {
  const out = a.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
