import type { IncomingMessage } from 'node:http';
import type { FastifyRequest } from 'fastify';
import { AddressSet } from '../core/ip.js';
import { RateLimiter } from '../core/rate-limit.js';
import { registeredLine } from '../tracker/log-format.js';
import { clientAddress } from '../tracker/proxy.js';
import { SwarmRegistry } from '../tracker/registry.js';
import { MemorySwarmStore, type SwarmStore } from '../tracker/swarm-store.js';
import { createApp } from './app.js';
import { type BencodedContext, bencodedRoute, fastPath } from './bencoded.js';
import { TrackerMetrics } from './metrics.js';
import {
  DEFAULT_RATE_LIMIT,
  LISTEN_BACKLOG,
  newCounters,
  type SharedJsonApi,
  systemTrackerDeps,
  type TrackerClockDeps,
  type TrackerHandle,
  type TrackerOpts,
  trackerLimits,
} from './options.js';
import { countResponses, registerBencodedRoutes, registerJsonApi, registerOperations } from './routes.js';
import { type RunningUdpTracker, startUdpTracker } from './udp-server.js';

export * from './options.js';

/**
 * The tracker over HTTP: `buildTracker()` makes the app without listening (tests inject requests),
 * `startTracker()` listens and runs the expiry timer. The only tracker code that touches the network,
 * the clock and randomness (with the UDP server, udp-server.ts, and the Redis store and log).
 */

/** The registry of the original's JSON API, telling the log who registers and who leaves. */
function newRegistry(opts: TrackerOpts, deps: TrackerClockDeps): SwarmRegistry {
  const log = opts.log;
  return new SwarmRegistry(trackerLimits(opts), deps, {
    onPeerRegistered: log ? (c, files) => log(registeredLine(c.peerId, c.ip.text, c.port, files)) : undefined,
    onPeerDropped: log ? (id, reason) => log(`Peer ${id} left the tracker (${reason})`) : undefined,
  });
}

/** The client's address of a request: the socket's, or behind a trusted proxy the one it forwards. */
function clientAddressOf(opts: TrackerOpts): (req: IncomingMessage) => string {
  const proxies = opts.trustProxy?.length ? new AddressSet(opts.trustProxy) : null;
  return (req) =>
    clientAddress(req.socket.remoteAddress ?? '0.0.0.0', req.headers['x-forwarded-for'], proxies);
}

function newLimiter(opts: TrackerOpts): RateLimiter | null {
  const rate = opts.rateLimit ?? DEFAULT_RATE_LIMIT;
  return rate > 0 ? new RateLimiter(rate) : null;
}

export function buildTracker(
  opts: TrackerOpts = {},
  deps: TrackerClockDeps = systemTrackerDeps(),
): TrackerHandle {
  const registry = newRegistry(opts, deps);
  const limits = registry.limits;
  const counters = newCounters();
  /** The BitTorrent side's swarms: this process's registry, or a store shared by several instances. */
  const store: SwarmStore = opts.store ?? new MemorySwarmStore(registry);
  const metrics = new TrackerMetrics(store);
  store.observe = (op, seconds) => metrics.storeSeconds.labels(op).observe(seconds);
  const clientOf = clientAddressOf(opts);
  const remoteIp = (req: FastifyRequest): string => clientOf(req.raw);
  const limiter = newLimiter(opts);
  const bencoded: BencodedContext = {
    limits,
    trustIp: opts.trustIp ?? true,
    store,
    metrics,
    counters,
    limiter,
    now: deps.now,
    log: opts.log,
    clientOf,
  };
  const route = bencodedRoute(bencoded);
  const app = createApp(limits, fastPath(bencoded, route), counters, opts.log);
  const shared = opts.sharedJson?.(registry);
  countResponses(app, metrics);
  // In a plugin after the OpenAPI one (createApp), so that the document lists them: routes added
  // before it loads are missing from it.
  app.register(async (scoped) => {
    registerJsonApi(scoped, { registry, shared, counters, deps, log: opts.log, remoteIp });
    registerBencodedRoutes(scoped, route, remoteIp);
    opts.routes?.(scoped, registry, deps.now, store);
    registerOperations(scoped, registry, metrics, counters);
  });
  return { app, registry, store, counters, limiter, metrics, shared };
}

export interface RunningTracker extends TrackerHandle {
  url: string;
  port: number;
  /** The UDP tracker's port (BEP 15), when one runs. */
  udpPort: number | null;
  /** Its announce URL (`udp://host:port/announce`), when one runs. */
  udpUrl: string | null;
  close(): Promise<void>;
}

type Listen = { host?: string; port?: number; udpPort?: number | 'same' | null };

/** Builds the tracker, listens on host:port (0 picks a free port) and drops silent peers on a timer. */
export async function startTracker(
  listen: Listen,
  opts: TrackerOpts = {},
  deps: TrackerClockDeps = systemTrackerDeps(),
): Promise<RunningTracker> {
  const handle = buildTracker({ ...opts, ...(await sharedStores(opts)) }, deps);
  const release = async () => {
    await handle.shared?.close();
    await handle.store.close?.();
  };
  const host = listen.host ?? '127.0.0.1';
  let port: number;
  try {
    await handle.shared?.start();
    port = await listenHttp(handle, host, listen.port ?? 8000);
  } catch (e) {
    await release();
    throw e;
  }
  let udp: RunningUdpTracker | null = null;
  if (listen.udpPort !== undefined && listen.udpPort !== null) {
    const udpPort = listen.udpPort === 'same' ? port : listen.udpPort;
    try {
      udp = await listenUdp(handle, host, udpPort, opts, deps);
    } catch (e) {
      await handle.app.close();
      await release();
      throw new Error(`cannot listen for UDP on ${host}:${udpPort}: ${(e as Error).message}`);
    }
  }
  const stopSweep = startSweep(handle, deps);
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    ...handle,
    url: `http://${shownHost}:${port}`,
    port,
    udpPort: udp?.port ?? null,
    udpUrl: udp === null ? null : `udp://${shownHost}:${udp.port}/announce`,
    async close() {
      stopSweep();
      await udp?.close();
      await handle.app.close();
      await release();
    },
  };
}

/**
 * With `storeUrl`, the Redis store for the swarms and the Redis log for the JSON API (loaded only
 * for a tracker that uses them: the client costs every other command ~30 MB).
 */
async function sharedStores(
  opts: TrackerOpts,
): Promise<{ store?: SwarmStore; sharedJson?: (registry: SwarmRegistry) => SharedJsonApi }> {
  const url = opts.storeUrl;
  const redisStore =
    opts.store !== undefined || url === undefined
      ? undefined
      : new (await import('./redis-store.js')).RedisSwarmStore({
          url,
          limits: trackerLimits(opts),
          log: opts.log,
        });
  // Connected before the first request when Redis is up (else it reconnects by itself, and
  // requests are refused meanwhile).
  await redisStore?.ready().catch(() => {});
  const Log = url === undefined ? null : (await import('./redis-log.js')).RedisJsonLog;
  const sharedJson =
    opts.sharedJson ??
    (Log === null || url === undefined
      ? undefined
      : (registry: SwarmRegistry) => new Log({ url, registry, log: opts.log }));
  return { store: opts.store ?? redisStore, sharedJson };
}

/** Listens with a deep accept queue (a thousand peers connecting at once must not wait out SYN retries). */
async function listenHttp(handle: TrackerHandle, host: string, port: number): Promise<number> {
  await handle.app.listen({ host, port, backlog: LISTEN_BACKLOG });
  const addr = handle.app.server.address();
  return typeof addr === 'object' && addr !== null ? addr.port : port;
}

function listenUdp(
  handle: TrackerHandle,
  host: string,
  port: number,
  opts: TrackerOpts,
  deps: TrackerClockDeps,
): Promise<RunningUdpTracker> {
  return startUdpTracker({
    host,
    port,
    store: handle.store,
    limits: handle.registry.limits,
    trustIp: opts.trustIp ?? true,
    limiter: handle.limiter,
    defaultNumwant: handle.registry.limits.defaultNumwant,
    now: deps.now,
    counters: handle.counters,
    metrics: handle.metrics,
    log: opts.log,
  });
}

/** Drops silent peers, swarms and rate-limit entries on a timer; returns its stop. */
function startSweep(handle: TrackerHandle, deps: TrackerClockDeps): () => void {
  const sweepMs = Math.max(1000, Math.floor(handle.registry.limits.peerTimeoutMs / 4));
  const timer = setInterval(() => {
    // Shared, the expiry is an entry of the log too, so every instance drops the same peers.
    if (handle.shared === undefined) handle.registry.expire(deps.now());
    else if (handle.registry.clients.size > 0)
      handle.shared.submit({ t: 'expire', now: deps.now() }).catch(() => {});
    handle.store.sweep?.(deps.now()).catch(() => {});
    handle.limiter?.sweep(deps.now());
  }, sweepMs);
  timer.unref();
  return () => clearInterval(timer);
}
