import type { Bitfield } from '../core/bitfield.js';
import type { Rng, Timers } from '../core/deps.js';
import type { PeerLinks } from '../net/tcp-links.js';
import type { JsonTrackerClient, PeerAddress } from '../net/tracker-client.js';
import type { LinkId } from '../swarm/link.js';
import { EXCHANGE_TIMEOUT_MS, exchangeLoop } from './exchange.js';

/** What the exchanges read of their peer and tell it. */
export interface ExchangesHost {
  readonly tcp: PeerLinks;
  readonly stopped: boolean;
  readonly complete: boolean;
  readonly have: Bitfield;
  readonly pieceCount: number;
  readonly timers: Timers;
  readonly rng: Rng;
  banned(addr: string): boolean;
  sleep(ms: number): Promise<void>;
  /** A link of ours for an exchange: the core asks it for `chunks` only. */
  linked(id: LinkId, chunks: number[]): void;
  trackerFailed(url: string, message: string, retryInMs?: number): void;
  requesting(chunks: number[], name: string, addr: string): void;
}

/**
 * The original design's exchanges on a running peer (exchange.ts has the loop): one link per
 * exchange, closed when the core says its chunks are in, when the link goes, or when nothing
 * arrives for EXCHANGE_TIMEOUT_MS.
 */
export class Exchanges {
  /** Ends each running exchange, by its link. */
  readonly #end = new Map<LinkId, () => void>();
  /** Restarts each running exchange's timeout, by its link. */
  readonly #progress = new Map<LinkId, () => void>();

  constructor(readonly host: ExchangesHost) {}

  /** The exchange over `link` is over (its chunks are in, or the link went). */
  ended(link: LinkId): void {
    this.#end.get(link)?.();
  }

  /** Data arrived over `link`. */
  progressed(link: LinkId): void {
    this.#progress.get(link)?.();
  }

  /** Runs exchanges until the peer is complete or stopped. */
  run(tracker: JsonTrackerClient, maxChunks: number): Promise<void> {
    const h = this.host;
    return exchangeLoop(
      {
        get stopped() {
          return h.stopped;
        },
        get complete() {
          return h.complete;
        },
        get have() {
          return h.have;
        },
        pieceCount: h.pieceCount,
        banned: (addr) => h.banned(addr),
        exchange: (p, chunks) => this.exchange(p, chunks),
        sleep: (ms) => h.sleep(ms),
        trackerFailed: (url, message, retryInMs) => h.trackerFailed(url, message, retryInMs),
        requesting: (chunks, name, addr) => h.requesting(chunks, name, addr),
      },
      tracker,
      maxChunks,
      h.rng,
    );
  }

  /** Connects to `p`, fetches `chunks` over that one link, closes it. Resolves when over, whatever happened. */
  exchange(p: PeerAddress, chunks: number[]): Promise<void> {
    const h = this.host;
    return new Promise((resolve) => {
      let link: LinkId | undefined;
      let settled = false;
      let cancelTimer = () => {};
      const finish = () => {
        if (settled) return;
        settled = true;
        cancelTimer();
        if (link !== undefined) {
          this.#end.delete(link);
          this.#progress.delete(link);
          h.tcp.drop(link);
        }
        resolve();
      };
      // Abandoned when nothing arrives for EXCHANGE_TIMEOUT_MS (a dead or stalled peer), however
      // long a slow but steady exchange takes.
      const progress = () => {
        cancelTimer();
        cancelTimer = h.timers.after(EXCHANGE_TIMEOUT_MS, finish);
      };
      progress();
      const dial = h.tcp.dial(p.ip, p.port);
      dial.connected.then(() => {
        if (h.stopped || settled) return dial.abort();
        link = dial.attach(`${p.ip}:${p.port}`);
        this.#end.set(link, finish);
        this.#progress.set(link, progress);
        h.linked(link, chunks);
      }, finish);
    });
  }
}
