import { readFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import type {} from '@fastify/swagger';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { isInfoHashHex } from '../core/ids.js';
import {
  Feed,
  MAX_GRID_PEERS,
  MAX_SWARMS,
  type SwarmSummary,
  type SwarmView,
  withAnnouncedPeers,
  withAnnouncedSwarms,
} from '../tracker/feed.js';
import type { SwarmRegistry } from '../tracker/registry.js';
import type { SwarmStore } from '../tracker/swarm-store.js';
import { ThroughputHistory } from '../tracker/throughput-history.js';

/**
 * The dashboard over HTTP: the page and its assets (served from the package, no CDN), the JSON
 * behind it, and a Server-Sent Events feed pushing a snapshot every FEED_INTERVAL_MS.
 */

/** How often the live feed pushes a snapshot: 2 per second, whatever the swarm's size. */
export const FEED_INTERVAL_MS = 500;
/** Live feed connections at most; more get 429. */
export const MAX_FEED_CLIENTS = 64;

/** A page's files: URL path -> [file under public/, content type]. */
export type AssetTable = Record<string, readonly [file: string, type: string]>;

const JS = 'text/javascript; charset=utf-8';
/** The piece grid's script and style, shared by the dashboard and the daemon's web UI. */
export const GRID_ASSETS: AssetTable = {
  '/shared/grid.js': ['shared/grid.js', JS],
  '/shared/grid.css': ['shared/grid.css', 'text/css; charset=utf-8'],
};

const DASHBOARD_ASSETS: AssetTable = {
  '/': ['dashboard/index.html', 'text/html; charset=utf-8'],
  '/dashboard/app.js': ['dashboard/app.js', JS],
  '/dashboard/style.css': ['dashboard/style.css', 'text/css; charset=utf-8'],
  ...GRID_ASSETS,
};

/** Serves a page's files from the package's public/ folder (read once, no CDN). */
export function registerAssets(app: FastifyInstance, table: AssetTable): void {
  const base = new URL('../../public/', import.meta.url);
  for (const [path, [file, type]] of Object.entries(table)) {
    const body = readFileSync(new URL(file, base));
    app.get(path, { schema: { hide: true } }, async (_req, reply) => reply.type(type).send(body));
  }
}

const swarmParam = {
  type: 'object',
  properties: {
    swarm: { type: 'string', maxLength: 300, description: 'swarm id: an info hash, or name:<file>' },
  },
  additionalProperties: false,
} as const;

/** Takes the response over for Server-Sent Events: headers sent, the raw stream returned. */
export function openEventStream(reply: FastifyReply): ServerResponse {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache',
    connection: 'keep-alive',
  });
  return res;
}

/** The page and its script and style (the live tracker and `swarmshare replay` serve the same). */
export function registerDashboardAssets(app: FastifyInstance): void {
  registerAssets(app, DASHBOARD_ASSETS);
}

export function registerDashboard(
  app: FastifyInstance,
  registry: SwarmRegistry,
  now: () => number,
  store?: SwarmStore,
): void {
  const feed = new Feed(registry);
  // The swarms' throughput second by second, for pages opened late (tracker/throughput-history.ts).
  const history = new ThroughputHistory();
  const sampler = setInterval(() => history.sample(registry, now()), 1000);
  sampler.unref();
  app.addHook('onClose', async () => clearInterval(sampler));
  let clients = 0;
  registerDashboardAssets(app);
  // A shared store (Redis) keeps the announce peers out of the registry: the dashboard adds them.
  // Unreachable, the dashboard shows what the registry has.
  const shared = store?.peers !== undefined ? store : null;
  const summaries = async (): Promise<SwarmSummary[]> => {
    const own = feed.summaries();
    if (shared === null) return own;
    try {
      return withAnnouncedSwarms(own, await shared.scrape(null, MAX_SWARMS));
    } catch {
      return own;
    }
  };
  const view = async (id: string): Promise<SwarmView | null> => {
    const local = feed.view(id, now());
    const own = local === null ? null : { ...local, history: history.series(local.id) };
    if (shared === null || !isInfoHashHex(id)) return own;
    try {
      const hex = id.toLowerCase();
      const counts = (await shared.scrape([hex], 1)).get(hex);
      if (counts === undefined) return own;
      const peers = await (shared.peers as NonNullable<SwarmStore['peers']>)(hex, MAX_GRID_PEERS);
      return withAnnouncedPeers(own, hex, { ...counts, peers });
    } catch {
      return own;
    }
  };

  app.get(
    '/api/swarms',
    {
      schema: {
        description: 'The swarms the tracker knows (largest first, at most 50).',
        tags: ['dashboard'],
      },
    },
    async () => ({ swarms: await summaries() }),
  );

  app.get(
    '/api/swarm',
    {
      schema: {
        description:
          'One swarm: peers x chunks (at most 200 peers), rates, transfers, availability, throughput.',
        tags: ['dashboard'],
        querystring: { ...swarmParam, required: ['swarm'] },
      },
    },
    async (req, reply) => {
      const v = await view((req.query as { swarm: string }).swarm);
      if (v === null)
        return reply.status(404).send({ error: { code: 'ERR_UNKNOWN_FILE', message: 'no such swarm' } });
      return v;
    },
  );

  app.get(
    '/events',
    {
      schema: {
        description: `Server-Sent Events: every ${FEED_INTERVAL_MS} ms a "snapshot" event with {swarms, view} (view: /api/swarm for ?swarm=).`,
        tags: ['dashboard'],
        querystring: swarmParam,
      },
    },
    (req, reply) => {
      if (clients >= MAX_FEED_CLIENTS) {
        reply
          .status(429)
          .send({ error: { code: 'ERR_RATE_LIMITED', message: 'too many live feed connections' } });
        return;
      }
      clients++;
      const swarm = (req.query as { swarm?: string }).swarm;
      const res = openEventStream(reply);
      let busy = false;
      const push = async () => {
        if (busy) return;
        busy = true;
        try {
          const data = { swarms: await summaries(), view: swarm ? await view(swarm) : null };
          if (!res.destroyed) res.write(`event: snapshot\ndata: ${JSON.stringify(data)}\n\n`);
        } finally {
          busy = false;
        }
      };
      const tick = () => {
        push().catch(() => {});
      };
      tick();
      const timer = setInterval(tick, FEED_INTERVAL_MS);
      const end = () => {
        clearInterval(timer);
        clients--;
      };
      req.raw.once('close', end);
    },
  );
}
