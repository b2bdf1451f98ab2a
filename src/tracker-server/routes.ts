import type { FastifyInstance, FastifyRequest } from 'fastify';
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
import { availabilityLines } from '../tracker/log-format.js';
import type { SwarmRegistry } from '../tracker/registry.js';
import { buildSchemas } from '../tracker/schemas.js';
import type { BencodedRoute } from './bencoded.js';
import type { TrackerMetrics } from './metrics.js';
import type { SharedJsonApi, TrackerClockDeps } from './options.js';

/** The tracker's routes: the original's JSON API, the BitTorrent API through the framework, and operations. */

export interface JsonApiContext {
  registry: SwarmRegistry;
  shared: SharedJsonApi | undefined;
  counters: Record<string, number>;
  deps: TrackerClockDeps;
  log: ((line: string) => void) | undefined;
  remoteIp: (req: FastifyRequest) => string;
}

const count = (counters: Record<string, number>, name: string) => {
  counters[name] = (counters[name] ?? 0) + 1;
};

/** POST /register, GET /get_peers, POST /update, POST /deregister: here, or through the shared log. */
export function registerJsonApi(app: FastifyInstance, c: JsonApiContext): void {
  const { registry, shared, counters, deps, log, remoteIp } = c;
  const schemas = buildSchemas(registry.limits);
  app.post('/register', { schema: { body: schemas.register } }, async (req) => {
    count(counters, 'register');
    const body = req.body as RegisterBody;
    if (shared === undefined) return register(registry, body, remoteIp(req), deps.now());
    return shared.submit({ t: 'register', body, remote: remoteIp(req), now: deps.now(), key: deps.newKey() });
  });

  app.get('/get_peers', { schema: { querystring: schemas.getPeers } }, async (req) => {
    count(counters, 'get_peers');
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
    count(counters, 'update');
    const body = req.body as UpdateBody;
    if (shared === undefined) return update(registry, body, remoteIp(req), deps.now());
    return shared.submit({ t: 'update', body, remote: remoteIp(req), now: deps.now() });
  });

  app.post('/deregister', { schema: { body: schemas.deregister } }, async (req) => {
    count(counters, 'deregister');
    const body = req.body as DeregisterBody;
    return shared === undefined ? deregister(registry, body) : shared.submit({ t: 'deregister', body });
  });
}

/** GET /announce and /scrape through the framework (app.inject(); real sockets take the fast path). */
export function registerBencodedRoutes(
  app: FastifyInstance,
  route: BencodedRoute,
  remoteIp: (req: FastifyRequest) => string,
): void {
  for (const name of ['announce', 'scrape'] as const) {
    app.get(`/${name}`, async (req, reply) =>
      reply
        .type('text/plain')
        .header('cache-control', 'no-cache')
        .send(route(name, req.url, remoteIp(req))),
    );
  }
}

/**
 * Every request the framework answers, by route and status (/announce and /scrape over real
 * sockets are counted where they are answered, before the framework). On the root app, so that
 * unknown paths count too.
 */
export function countResponses(app: FastifyInstance, metrics: TrackerMetrics): void {
  app.addHook('onResponse', async (req, reply) => {
    const endpoint = req.routeOptions.url ?? 'unknown';
    if (endpoint === '/announce' || endpoint === '/scrape') return;
    metrics.request(endpoint, 'http', String(reply.statusCode));
  });
}

/** /metrics, /health and /stats. */
export function registerOperations(
  app: FastifyInstance,
  registry: SwarmRegistry,
  metrics: TrackerMetrics,
  counters: Record<string, number>,
): void {
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
}
