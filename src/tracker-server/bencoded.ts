import type { IncomingMessage, ServerResponse } from 'node:http';
import { SwarmshareError } from '../core/errors.js';
import type { RateLimiter } from '../core/rate-limit.js';
import {
  announceReply,
  failureReply,
  MAX_FULL_SCRAPE,
  parseAnnounce,
  scrapeReply,
  scrapeRequest,
} from '../tracker/announce.js';
import type { TrackerLimits } from '../tracker/limits.js';
import type { MaybePromise, SwarmStore } from '../tracker/swarm-store.js';
import type { TrackerMetrics } from './metrics.js';

/**
 * The BitTorrent side of the HTTP tracker: /announce and /scrape as bencoded replies (failures as
 * `failure reason`), and the fast path that answers them over real sockets before the framework
 * routes the request (no body, no JSON schema: the hot path of a busy tracker). The rate limit
 * is checked there too, for every request.
 */

export interface BencodedContext {
  limits: TrackerLimits;
  trustIp: boolean;
  store: SwarmStore;
  metrics: TrackerMetrics;
  counters: Record<string, number>;
  limiter: RateLimiter | null;
  now: () => number;
  log: ((line: string) => void) | undefined;
  /** The client's address: the socket's, or behind a trusted proxy the one it forwards. */
  clientOf: (req: IncomingMessage) => string;
}

export type BencodedRoute = (name: 'announce' | 'scrape', url: string, ip: string) => MaybePromise<Buffer>;

export function routeOf(url: string): 'announce' | 'scrape' | null {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  return path === '/announce' ? 'announce' : path === '/scrape' ? 'scrape' : null;
}

function queryOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? '' : url.slice(q + 1);
}

const count = (c: BencodedContext, name: string) => {
  c.counters[name] = (c.counters[name] ?? 0) + 1;
};

/** /announce and /scrape: the pure handlers, bencoded bytes out, failures as `failure reason`. */
export function bencodedRoute(c: BencodedContext): BencodedRoute {
  const { limits, store, metrics } = c;
  return (name, url, ip) => {
    count(c, name);
    metrics.request(name === 'announce' ? '/announce' : '/scrape', 'http', '200');
    const t0 = performance.now();
    const done = (body: Uint8Array) => {
      if (name === 'announce') metrics.announced('http', t0);
      return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    };
    const failed = (e: unknown) => {
      if (!(e instanceof SwarmshareError)) throw e;
      count(c, 'errors');
      if (e.code === 'ERR_STORE_UNAVAILABLE') metrics.storeErrors.inc();
      return done(failureReply(e.message));
    };
    try {
      let body: MaybePromise<Uint8Array>;
      if (name === 'announce') {
        const a = parseAnnounce(queryOf(url), ip, limits.defaultNumwant, c.trustIp);
        const o = store.announce(a, Math.min(a.numwant, limits.maxNumwant), undefined, c.now());
        body =
          o instanceof Promise ? o.then((x) => announceReply(limits, a, x)) : announceReply(limits, a, o);
      } else {
        const asked = scrapeRequest(queryOf(url), limits.maxScrapeHashes);
        const s = store.scrape(asked, MAX_FULL_SCRAPE);
        body = s instanceof Promise ? s.then((x) => scrapeReply(asked, x)) : scrapeReply(asked, s);
      }
      return body instanceof Promise ? body.then(done, failed) : done(body);
    } catch (e) {
      return failed(e);
    }
  };
}

/** Answers 429 (and true) when `ip` is over its rate. */
function limited(c: BencodedContext, ip: string, url: string, res: ServerResponse): boolean {
  if (c.limiter === null || c.limiter.allow(ip, c.now())) return false;
  count(c, 'rate_limited');
  c.metrics.rateLimited.inc({ protocol: 'http' });
  const bencoded = routeOf(url) !== null;
  const body = bencoded
    ? Buffer.from(failureReply('rate limited: too many requests from your address'))
    : Buffer.from(
        JSON.stringify({
          error: { code: 'ERR_RATE_LIMITED', message: 'too many requests from your address' },
        }),
      );
  res.writeHead(429, {
    'content-type': bencoded ? 'text/plain' : 'application/json; charset=utf-8',
    'content-length': body.length,
    'retry-after': '1',
  });
  res.end(body);
  return true;
}

/**
 * Over real sockets: the rate limit for every request, then GET /announce and /scrape answered
 * here. True when the request was answered; false hands it to the framework (app.inject() reaches
 * the same handlers through the framework's routes).
 */
export function fastPath(
  c: BencodedContext,
  route: BencodedRoute,
): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const url = req.url ?? '';
    const ip = c.clientOf(req);
    if (limited(c, ip, url, res)) return true;
    const name = routeOf(url);
    if (name === null || req.method !== 'GET') return false;
    let body: MaybePromise<Buffer>;
    try {
      body = route(name, url, ip);
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
        c.log?.(`tracker: internal error: ${e.stack ?? e.message}`);
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end();
      });
    return true;
  };
}
