import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyRequest } from 'fastify';
import { httpStatus, isSwarmshareError, SwarmshareError, type TrackerErrorCode } from '../core/errors.js';
import { AddressSet } from '../core/ip.js';
import { RateLimiter } from '../core/rate-limit.js';
import {
  announceReply,
  failureReply,
  MAX_FULL_SCRAPE,
  parseAnnounce,
  scrapeReply,
  scrapeRequest,
} from '../tracker/announce.js';
import {
  type DeregisterBody,
  deregister,
  type GetPeersQuery,
  getPeers,
  type RegisterBody,
  register,
  type UpdateBody,
  update,
} from '../tracker/json-api.js';
import type { JsonOp } from '../tracker/json-log.js';
import { defaultLimits, type TrackerLimits } from '../tracker/limits.js';
import { availabilityLines, registeredLine } from '../tracker/log-format.js';
import { clientAddress } from '../tracker/proxy.js';
import { SwarmRegistry, type TrackerDeps } from '../tracker/registry.js';
import { buildSchemas } from '../tracker/schemas.js';
import { type MaybePromise, MemorySwarmStore, type SwarmStore } from '../tracker/swarm-store.js';
import { secureRandomBytes, systemClock, systemRng } from './system.js';
import { TrackerMetrics } from './tracker-metrics.js';
import { type RunningUdpTracker, startUdpTracker } from './udp-tracker-server.js';

/**
 * The tracker over HTTP: `buildTracker()` makes the app without listening (tests inject requests),
 * `startTracker()` listens and runs the expiry timer. The only tracker code that touches the network,
 * the clock and randomness.
 */

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
   * The JSON API's writes shared with other instances (net/redis-log.ts: startTracker makes it
   * from `storeUrl`): writes go through `submit`, reads wait for `sync`.
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

/** Methods our routes use (a path known under one of them answers 405 to the others). */
const ROUTE_METHODS = ['GET', 'POST'] as const;

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

function errorBody(code: TrackerErrorCode, message: string, details?: Readonly<Record<string, unknown>>) {
  return { error: { code, message, ...(details ?? {}) } };
}

function routeOf(url: string): 'announce' | 'scrape' | null {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  return path === '/announce' ? 'announce' : path === '/scrape' ? 'scrape' : null;
}

function queryOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? '' : url.slice(q + 1);
}

/** The tracker's limits: the defaults for its interval, with the given overrides. */
function trackerLimits(opts: TrackerOpts): TrackerLimits {
  return { ...defaultLimits(opts.interval ?? 30), ...(opts.limits ?? {}) };
}

export function buildTracker(
  opts: TrackerOpts = {},
  deps: TrackerClockDeps = systemTrackerDeps(),
): TrackerHandle {
  const limits = trackerLimits(opts);
  const log = opts.log;
  const trustIp = opts.trustIp ?? true;
  const proxies = opts.trustProxy?.length ? new AddressSet(opts.trustProxy) : null;
  /** The client's address: the socket's, or behind a trusted proxy the one it forwards. */
  const clientOf = (req: IncomingMessage): string =>
    clientAddress(req.socket.remoteAddress ?? '0.0.0.0', req.headers['x-forwarded-for'], proxies);
  const remoteIp = (req: FastifyRequest): string => clientOf(req.raw);
  const registry = new SwarmRegistry(limits, deps, {
    onPeerRegistered: log ? (c, files) => log(registeredLine(c.peerId, c.ip.text, c.port, files)) : undefined,
    onPeerDropped: log ? (id, reason) => log(`Peer ${id} left the tracker (${reason})`) : undefined,
  });
  const counters: Record<string, number> = {
    register: 0,
    get_peers: 0,
    update: 0,
    deregister: 0,
    announce: 0,
    scrape: 0,
    errors: 0,
    rate_limited: 0,
  };
  const schemas = buildSchemas(limits);
  /** The BitTorrent side's swarms: this process's registry, or a store shared by several instances. */
  const store: SwarmStore = opts.store ?? new MemorySwarmStore(registry);
  const metrics = new TrackerMetrics(store);
  store.observe = (op, seconds) => metrics.storeSeconds.labels(op).observe(seconds);

  /** /announce and /scrape: the pure handlers, bencoded bytes out, failures as `failure reason`. */
  const bencodedRoute = (name: 'announce' | 'scrape', url: string, ip: string): MaybePromise<Buffer> => {
    counters[name] = (counters[name] ?? 0) + 1;
    metrics.request(name === 'announce' ? '/announce' : '/scrape', 'http', '200');
    const t0 = performance.now();
    const done = (body: Uint8Array) => {
      if (name === 'announce') metrics.announced('http', t0);
      return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    };
    const failed = (e: unknown) => {
      if (!(e instanceof SwarmshareError)) throw e;
      counters.errors = (counters.errors ?? 0) + 1;
      if (e.code === 'ERR_STORE_UNAVAILABLE') metrics.storeErrors.inc();
      return done(failureReply(e.message));
    };
    try {
      let body: MaybePromise<Uint8Array>;
      if (name === 'announce') {
        const a = parseAnnounce(queryOf(url), ip, limits.defaultNumwant, trustIp);
        const o = store.announce(a, Math.min(a.numwant, limits.maxNumwant), undefined, deps.now());
        body =
          o instanceof Promise ? o.then((x) => announceReply(limits, a, x)) : announceReply(limits, a, o);
      } else {
        const asked = scrapeRequest(queryOf(url), limits.maxScrapeHashes);
        const c = store.scrape(asked, MAX_FULL_SCRAPE);
        body = c instanceof Promise ? c.then((x) => scrapeReply(asked, x)) : scrapeReply(asked, c);
      }
      return body instanceof Promise ? body.then(done, failed) : done(body);
    } catch (e) {
      return failed(e);
    }
  };

  /**
   * Over real sockets, GET /announce and /scrape skip the framework's routing (they have no body
   * or JSON schema to check, and they are the hot path); app.inject() reaches the same handlers
   * through the routes below.
   */
  const limiter =
    (opts.rateLimit ?? DEFAULT_RATE_LIMIT) > 0 ? new RateLimiter(opts.rateLimit ?? DEFAULT_RATE_LIMIT) : null;
  /** Answers 429 (and true) when `ip` is over its rate. */
  const limited = (ip: string, url: string, res: ServerResponse): boolean => {
    if (limiter === null || limiter.allow(ip, deps.now())) return false;
    counters.rate_limited = (counters.rate_limited ?? 0) + 1;
    metrics.rateLimited.inc({ protocol: 'http' });
    const bencodedRoute = routeOf(url) !== null;
    const body = bencodedRoute
      ? Buffer.from(failureReply('rate limited: too many requests from your address'))
      : Buffer.from(
          JSON.stringify({
            error: { code: 'ERR_RATE_LIMITED', message: 'too many requests from your address' },
          }),
        );
    res.writeHead(429, {
      'content-type': bencodedRoute ? 'text/plain' : 'application/json; charset=utf-8',
      'content-length': body.length,
      'retry-after': '1',
    });
    res.end(body);
    return true;
  };

  const fastPath = (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = req.url ?? '';
    const ip = clientOf(req);
    if (limited(ip, url, res)) return true;
    const name = routeOf(url);
    if (name === null || req.method !== 'GET') return false;
    let body: MaybePromise<Buffer>;
    try {
      body = bencodedRoute(name, url, ip);
    } catch {
      return false; // let the framework answer (and log) the unexpected
    }
    const send = (b: Buffer) => {
      res.writeHead(200, {
        'content-type': 'text/plain',
        'content-length': b.length,
        'cache-control': 'no-cache',
      });
      res.end(b);
    };
    if (!(body instanceof Promise)) send(body);
    else
      body.then(send, (e: Error) => {
        log?.(`tracker: internal error: ${e.stack ?? e.message}`);
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end();
      });
    return true;
  };

  const app = Fastify({
    logger: false,
    serverFactory: (handler) => {
      const server = createServer((req, res) => {
        if (!fastPath(req, res)) handler(req, res);
      });
      // What the framework sets on a server it makes itself: clients keep connections across announces.
      server.keepAliveTimeout = 72_000;
      return server;
    },
    bodyLimit: limits.maxBodyBytes,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
    return503OnClosing: false,
    // Live feed (SSE) connections stay open: closing the tracker ends them.
    forceCloseConnections: true,
  });

  app.register(swagger, {
    openapi: {
      info: {
        title: 'swarmshare tracker',
        version: '0.1.0',
        description:
          "The original project's JSON API (register, get_peers, update, deregister), the dashboard's JSON and live feed, health and stats. The BitTorrent API (/announce, /scrape) is bencoded: see docs/tracker.md.",
      },
    },
  });
  app.register(swaggerUi, { routePrefix: '/docs' });

  app.setErrorHandler((err: FastifyError, _req, reply) => {
    counters.errors = (counters.errors ?? 0) + 1;
    if (isSwarmshareError(err)) {
      return reply.status(httpStatus(err.code)).send(errorBody(err.code, err.message, err.details));
    }
    if (err.validation) {
      return reply.status(400).send(errorBody('ERR_VALIDATION', err.message));
    }
    const status = err.statusCode ?? 500;
    if (status === 413)
      return reply
        .status(413)
        .send(errorBody('ERR_BODY_TOO_LARGE', `body larger than ${limits.maxBodyBytes} bytes`));
    if (status === 415) {
      return reply
        .status(415)
        .send(errorBody('ERR_UNSUPPORTED_MEDIA_TYPE', 'send the body as application/json'));
    }
    if (status >= 400 && status < 500) {
      const code: TrackerErrorCode = err.code?.startsWith('FST_ERR_CTP') ? 'ERR_BAD_JSON' : 'ERR_BAD_PARAM';
      return reply.status(status).send(errorBody(code, err.message));
    }
    log?.(`tracker: internal error: ${err.stack ?? err.message}`);
    return reply.status(500).send(errorBody('ERR_INTERNAL', 'internal error'));
  });

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?')[0] as string;
    // A path we serve, asked with another method: 405 and the methods it takes.
    const allowed = ROUTE_METHODS.filter((method) => app.hasRoute({ method, url: path }));
    if (allowed.length > 0) {
      reply
        .status(405)
        .header('allow', allowed.join(', '))
        .send(
          errorBody('ERR_METHOD_NOT_ALLOWED', `${path} takes ${allowed.join(' or ')}, not ${req.method}`),
        );
      return;
    }
    reply.status(404).send(errorBody('ERR_NOT_FOUND', `no route ${req.method} ${path}`));
  });

  const shared = opts.sharedJson?.(registry);
  app.post('/register', { schema: { body: schemas.register } }, async (req) => {
    counters.register = (counters.register ?? 0) + 1;
    const body = req.body as RegisterBody;
    if (shared === undefined) return register(registry, body, remoteIp(req), deps.now());
    return shared.submit({ t: 'register', body, remote: remoteIp(req), now: deps.now(), key: deps.newKey() });
  });

  app.get('/get_peers', { schema: { querystring: schemas.getPeers } }, async (req) => {
    counters.get_peers = (counters.get_peers ?? 0) + 1;
    const raw = req.query as Record<string, string>;
    const q: GetPeersQuery = { file: raw.file as string };
    if (raw.exclude !== undefined) q.exclude = raw.exclude;
    if (raw.numwant !== undefined) q.numwant = Number(raw.numwant);
    if (raw.format !== undefined) q.format = raw.format as 'list' | 'bitfield';
    await shared?.sync();
    return getPeers(registry, q, {
      onAvailability: log
        ? (s, peers, excluded) => log(availabilityLines(s, peers, excluded).join('\n'))
        : undefined,
    });
  });

  app.post('/update', { schema: { body: schemas.update } }, async (req) => {
    counters.update = (counters.update ?? 0) + 1;
    const body = req.body as UpdateBody;
    if (shared === undefined) return update(registry, body, remoteIp(req), deps.now());
    return shared.submit({ t: 'update', body, remote: remoteIp(req), now: deps.now() });
  });

  app.post('/deregister', { schema: { body: schemas.deregister } }, async (req) => {
    counters.deregister = (counters.deregister ?? 0) + 1;
    const body = req.body as DeregisterBody;
    return shared === undefined ? deregister(registry, body) : shared.submit({ t: 'deregister', body });
  });

  for (const name of ['announce', 'scrape'] as const) {
    app.get(`/${name}`, async (req, reply) =>
      reply
        .type('text/plain')
        .header('cache-control', 'no-cache')
        .send(bencodedRoute(name, req.url, remoteIp(req))),
    );
  }

  opts.routes?.(app, registry, deps.now, store);

  // Every request the framework answers, by route and status (/announce and /scrape over real
  // sockets are counted where they are answered, before the framework).
  app.addHook('onResponse', async (req, reply) => {
    const endpoint = req.routeOptions.url ?? 'unknown';
    if (endpoint === '/announce' || endpoint === '/scrape') return;
    metrics.request(endpoint, 'http', String(reply.statusCode));
  });

  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) =>
    reply.type(metrics.registry.contentType).send(await metrics.registry.metrics()),
  );

  app.get('/health', async () => ({ status: 'ok', peers: registry.peerCount, swarms: registry.swarms.size }));

  app.get('/stats', async () => {
    const swarms = [...registry.swarms.values()]
      .sort((a, b) => b.list.length - a.list.length)
      .slice(0, 100)
      .map((s) => ({
        file: s.name,
        info_hash: s.infoHash,
        pieces: s.pieces,
        size: s.size,
        seeds: s.seeds,
        leechers: s.list.length - s.seeds,
        downloaded: s.downloaded,
      }));
    return {
      peers: registry.peerCount,
      clients: registry.clients.size,
      swarm_count: registry.swarms.size,
      swarms,
      requests: { ...counters },
    };
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

/** Builds the tracker, listens on host:port (0 picks a free port) and drops silent peers on a timer. */
export async function startTracker(
  listen: { host?: string; port?: number; udpPort?: number | 'same' | null },
  opts: TrackerOpts = {},
  deps: TrackerClockDeps = systemTrackerDeps(),
): Promise<RunningTracker> {
  // The Redis client is loaded only for a tracker that uses it (it costs every other command ~30 MB).
  const redisStore =
    opts.store !== undefined || opts.storeUrl === undefined
      ? undefined
      : new (await import('./redis-store.js')).RedisSwarmStore({
          url: opts.storeUrl,
          limits: trackerLimits(opts),
          log: opts.log,
        });
  // Connected before the first request when Redis is up (else it reconnects by itself, and
  // requests are refused meanwhile).
  await redisStore?.ready().catch(() => {});
  const store = opts.store ?? redisStore;
  const Log = opts.storeUrl === undefined ? null : (await import('./redis-log.js')).RedisJsonLog;
  const url = opts.storeUrl;
  const sharedJson =
    opts.sharedJson ??
    (Log === null || url === undefined
      ? undefined
      : (registry: SwarmRegistry) => new Log({ url, registry, log: opts.log }));
  const handle = buildTracker({ ...opts, store, sharedJson }, deps);
  try {
    await handle.shared?.start();
  } catch (e) {
    await handle.shared?.close();
    await handle.store.close?.();
    throw e;
  }
  const host = listen.host ?? '127.0.0.1';
  // A deep accept queue: a thousand peers connecting at once must not wait out SYN retries.
  try {
    await handle.app.listen({ host, port: listen.port ?? 8000, backlog: LISTEN_BACKLOG });
  } catch (e) {
    await handle.shared?.close();
    await handle.store.close?.();
    throw e;
  }
  const addr = handle.app.server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : (listen.port ?? 8000);
  let udp: RunningUdpTracker | null = null;
  if (listen.udpPort !== undefined && listen.udpPort !== null) {
    try {
      udp = await startUdpTracker({
        host,
        port: listen.udpPort === 'same' ? port : listen.udpPort,
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
    } catch (e) {
      await handle.app.close();
      await handle.shared?.close();
      await handle.store.close?.();
      throw new Error(
        `cannot listen for UDP on ${host}:${listen.udpPort === 'same' ? port : listen.udpPort}: ${(e as Error).message}`,
      );
    }
  }
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
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    ...handle,
    url: `http://${shownHost}:${port}`,
    port,
    udpPort: udp?.port ?? null,
    udpUrl: udp === null ? null : `udp://${shownHost}:${udp.port}/announce`,
    async close() {
      clearInterval(timer);
      await udp?.close();
      await handle.app.close();
      await handle.shared?.close();
      await handle.store.close?.();
    },
  };
}
