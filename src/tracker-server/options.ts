import type { FastifyInstance } from 'fastify';
import type { TrackerErrorCode } from '../core/errors.js';
import type { RateLimiter } from '../core/rate-limit.js';
import { secureRandomBytes, systemClock, systemRng } from '../net/system.js';
import type { JsonOp } from '../tracker/json-log.js';
import { defaultLimits, type TrackerLimits } from '../tracker/limits.js';
import type { SwarmRegistry, TrackerDeps } from '../tracker/registry.js';
import type { SwarmStore } from '../tracker/swarm-store.js';
import type { TrackerMetrics } from './metrics.js';

/** What a tracker is built from and what building one gives: options, handle, clock and defaults. */

export interface TrackerOpts {
  /** Announce interval in seconds (default 30); peers time out after twice that. */
  interval?: number;
  /** Overrides of individual limits (tests use small ones). */
  limits?: Partial<TrackerLimits>;
  /** Honour the `ip` a client states (announce `ip=`, JSON `ip`), default true; else the client's address is used. */
  trustIp?: boolean;
  /**
   * Reverse proxies we sit behind (addresses or CIDR ranges): for a request from one of them, the
   * client's address comes from `X-Forwarded-For` (tracker/proxy.ts), for the peer's address and
   * the rate limit. From anyone else the header is ignored.
   */
  trustProxy?: readonly string[];
  /** Where the original's log lines go (`Peer registered: ...`); default: nowhere. */
  log?: (line: string) => void;
  /** Requests per second allowed per client address (burst: twice that); 0 turns the limit off. Default 200. */
  rateLimit?: number;
  /**
   * More routes over the same registry: the dashboard (dashboard/routes.ts) is added this way by
   * the layers above, so the server knows nothing of it.
   */
  routes?: TrackerRoutes;
  /**
   * Where announces and scrapes (HTTP and UDP) keep their swarms: by default this process's
   * registry; `redis://HOST:PORT[/DB]` shares them between every instance given the same URL,
   * and the JSON API's registry too (a log of its writes that every instance applies).
   */
  storeUrl?: string;
  /** The store itself, made by the caller (startTracker makes the Redis one from `storeUrl`). */
  store?: SwarmStore;
  /**
   * The JSON API's writes shared with other instances (tracker-server/redis-log.ts: startTracker
   * makes it from `storeUrl`): writes go through `submit`, reads wait for `sync`.
   */
  sharedJson?: (registry: SwarmRegistry) => SharedJsonApi;
}

/** An ordered log of JSON API writes that every instance applies (tracker/json-log.ts). */
export interface SharedJsonApi {
  /** Catches up with the log (startTracker calls it before listening). */
  start(): Promise<void>;
  submit(op: JsonOp): Promise<unknown>;
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** Adds routes to the tracker's app, reading (never changing) its registry. */
export type TrackerRoutes = (
  app: FastifyInstance,
  registry: SwarmRegistry,
  now: () => number,
  store: SwarmStore,
) => void;

/** Default per-address request rate: far above what a client needs (one announce per interval). */
export const DEFAULT_RATE_LIMIT = 200;
/** Pending connections the kernel queues for us (capped by net.core.somaxconn). */
export const LISTEN_BACKLOG = 4096;

export interface TrackerHandle {
  app: FastifyInstance;
  registry: SwarmRegistry;
  store: SwarmStore;
  counters: Record<string, number>;
  limiter: RateLimiter | null;
  metrics: TrackerMetrics;
  /** The JSON API's shared log, when the tracker runs with a shared store. */
  shared: SharedJsonApi | undefined;
}

export interface TrackerClockDeps extends TrackerDeps {
  now: () => number;
}

export function systemTrackerDeps(): TrackerClockDeps {
  return {
    now: () => systemClock.now(),
    random: systemRng,
    newKey: () => Buffer.from(secureRandomBytes(16)).toString('hex'),
  };
}

/** The tracker's limits: the defaults for its interval, with the given overrides. */
export function trackerLimits(opts: TrackerOpts): TrackerLimits {
  return { ...defaultLimits(opts.interval ?? 30), ...(opts.limits ?? {}) };
}

/** The JSON error body every route answers with: `{"error": {"code", "message", ...details}}`. */
export function errorBody(
  code: TrackerErrorCode,
  message: string,
  details?: Readonly<Record<string, unknown>>,
) {
  return { error: { code, message, ...(details ?? {}) } };
}

/** Requests answered, by route, and errors and refusals (`/stats`, and the UDP tracker's too). */
export function newCounters(): Record<string, number> {
  return {
    register: 0,
    get_peers: 0,
    update: 0,
    deregister: 0,
    announce: 0,
    scrape: 0,
    errors: 0,
    rate_limited: 0,
  };
}
