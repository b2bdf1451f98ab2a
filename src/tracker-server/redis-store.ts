import { Redis } from 'ioredis';
import { SwarmshareError } from '../core/errors.js';
import { latin1ToHex } from '../core/ids.js';
import { compactAddress, parseIp } from '../core/ip.js';
import type { AnnounceRequest } from '../tracker/announce.js';
import type { TrackerLimits } from '../tracker/limits.js';
import type { AnnouncedPeer, AnnounceOutcome, SwarmCounts, SwarmStore } from '../tracker/swarm-store.js';
import { redisUrlProblem, shownRedisUrl } from './redis-url.js';

export { redisUrlProblem } from './redis-url.js';

/**
 * Swarms in Redis, shared by every tracker instance that points at it (`tracker --store
 * redis://...`). One Lua script per announce does everything in one round trip, atomically:
 * expire the swarm's silent peers, check the peer's key, add, update or remove it, keep the
 * seeder/leecher/downloaded counts exact, and pick the peers to return. Layout (docs/deploy.md):
 *
 *   ss:p:<hex>  hash    peer id -> state (s seed, l leecher, u unknown) . key length . key . compact address
 *   ss:t:<hex>  zset    peer id -> last announce, ms (expiry)
 *   ss:c:<hex>  hash    seeders, leechers, downloaded
 *   ss:swarms   zset    info hash (hex) -> last announce, ms (scrape-all, the sweep, totals)
 *   ss:totals   hash    peers, seeders (metrics)
 *
 * When Redis does not answer within `commandTimeoutMs` or is unreachable, a request fails at once
 * with ERR_STORE_UNAVAILABLE (no queue builds up); the client reconnects by itself.
 */

/** Silent peers one announce or one sweep step removes at most (the rest go next time). */
const EXPIRE_BATCH = 256;

/**
 * A swarm of at least this many peers is answered from a sample this instance took at most
 * SAMPLE_MS ago (the script then updates the peer and the counts, and samples nothing): sampling
 * is a third of the script's time, and a random sample of a large swarm a second old is as good a
 * list as a fresh one. Smaller swarms are sampled at every announce (a new peer shows at once).
 */
export const SAMPLE_CACHE_MIN_PEERS = 1000;
export const SAMPLE_MS = 1000;
/** Addresses a cached sample holds (replies take a random window of numwant of them). */
export const SAMPLE_SIZE = 200;

interface Sample {
  at: number;
  /** Compact addresses, 6 or 18 bytes each (latin1). */
  peers: string[];
}

/** Removes a swarm's peers last seen before `cutoff`; drops the swarm when it empties. */
const EXPIRE_LUA = `
-- Removes peer sid (its record rec) and its share of the counts.
local function drop(peers, seen, stats, totals, sid, rec)
  if string.sub(rec, 1, 1) == 's' then
    redis.call('HINCRBY', stats, 'seeders', -1)
    redis.call('HINCRBY', totals, 'seeders', -1)
  else
    redis.call('HINCRBY', stats, 'leechers', -1)
  end
  redis.call('HINCRBY', totals, 'peers', -1)
  redis.call('HDEL', peers, sid)
  redis.call('ZREM', seen, sid)
end
-- A swarm with no peer left goes (its counts too, as in memory). 1 when it went.
local function dropIfEmpty(peers, seen, stats, swarms, h)
  if redis.call('HLEN', peers) > 0 then return 0 end
  redis.call('DEL', stats, seen)
  redis.call('ZREM', swarms, h)
  return 1
end
local function expire(peers, seen, stats, swarms, totals, cutoff, h)
  local stale = redis.call('ZRANGEBYSCORE', seen, '-inf', cutoff, 'LIMIT', 0, ${EXPIRE_BATCH})
  for _, sid in ipairs(stale) do
    local rec = redis.call('HGET', peers, sid)
    if rec then drop(peers, seen, stats, totals, sid, rec) else redis.call('ZREM', seen, sid) end
  end
  if #stale == 0 then return 0 end
  return dropIfEmpty(peers, seen, stats, swarms, h)
end
`;

const ANNOUNCE_LUA = `${EXPIRE_LUA}
local peers, seen, stats, swarms, totals = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
-- One packed argument (fewer, larger writes on the tracker's side): see announceArgs.
local now, cutoff, id, compact, state, event, key, numwant, family, maxPeers, maxSwarms, h, ids =
  struct.unpack('>ddBc0Bc0c1Bc0Bc0HBI4I4c40B', ARGV[1])
local wantIds = ids == 1
expire(peers, seen, stats, swarms, totals, cutoff, h)
local rec = redis.call('HGET', peers, id)
local old = nil
if rec then
  old = string.sub(rec, 1, 1)
  local klen = string.byte(rec, 2)
  if klen > 0 then
    local stored = string.sub(rec, 3, 2 + klen)
    if stored ~= key then return redis.error_reply('ERR_WRONG_KEY') end
  end
end
local function counts(extra)
  local c = redis.call('HMGET', stats, 'seeders', 'leechers', 'downloaded')
  local out = {tonumber(c[1]) or 0, tonumber(c[2]) or 0, tonumber(c[3]) or 0}
  for _, v in ipairs(extra) do table.insert(out, v) end
  return out
end
if event == 'stopped' then
  if rec then
    -- A client that stops right as it finishes never sends 'completed'.
    if old == 'l' and state == 's' then redis.call('HINCRBY', stats, 'downloaded', 1) end
    drop(peers, seen, stats, totals, id, rec)
    dropIfEmpty(peers, seen, stats, swarms, h)
  end
  return counts({})
end
if not rec then
  if redis.call('HLEN', peers) >= maxPeers then return redis.error_reply('ERR_SWARM_FULL') end
  if not redis.call('ZSCORE', swarms, h) and redis.call('ZCARD', swarms) >= maxSwarms then
    return redis.error_reply('ERR_TOO_MANY_SWARMS')
  end
  redis.call('HINCRBY', totals, 'peers', 1)
  if state == 's' then
    redis.call('HINCRBY', stats, 'seeders', 1)
    redis.call('HINCRBY', totals, 'seeders', 1)
  else
    redis.call('HINCRBY', stats, 'leechers', 1)
  end
  if state == 's' and event == 'completed' then redis.call('HINCRBY', stats, 'downloaded', 1) end
else
  if old ~= 's' and state == 's' then
    redis.call('HINCRBY', stats, 'seeders', 1)
    redis.call('HINCRBY', stats, 'leechers', -1)
    redis.call('HINCRBY', totals, 'seeders', 1)
    if old == 'l' then redis.call('HINCRBY', stats, 'downloaded', 1) end
  elseif old == 's' and state ~= 's' then
    redis.call('HINCRBY', stats, 'seeders', -1)
    redis.call('HINCRBY', stats, 'leechers', 1)
    redis.call('HINCRBY', totals, 'seeders', -1)
  end
end
redis.call('HSET', peers, id, state .. string.char(#key) .. key .. compact)
redis.call('ZADD', seen, now, id)
redis.call('ZADD', swarms, now, h)
-- The peers: with their ids (id, address, id, address, ...) when the reply needs them, else two
-- strings, the IPv4 and the IPv6 addresses each joined (one reply value each: cheaper both sides).
local got, v4, v6, n = {}, {}, {}, 0
if numwant > 0 then
  local cand = redis.call('HRANDFIELD', peers, numwant + 1, 'WITHVALUES')
  for i = 1, #cand, 2 do
    if cand[i] ~= id and n < numwant then
      local v = cand[i + 1]
      local c = string.sub(v, 3 + string.byte(v, 2))
      local six = #c == 6
      if family == 0 or (family == 4 and six) or (family == 6 and not six) then
        n = n + 1
        if wantIds then
          table.insert(got, cand[i])
          table.insert(got, c)
        elseif six then
          table.insert(v4, c)
        else
          table.insert(v6, c)
        end
      end
    end
  end
end
if wantIds then return counts(got) end
return counts({table.concat(v4), table.concat(v6)})
`;

/**
 * The announce script's one argument, packed for Lua's struct.unpack('>ddBc0Bc0c1Bc0Bc0HBI4I4c40B'):
 * now and the expiry cutoff (doubles), the peer id, compact address, event and key (each a length
 * byte and its bytes), the state (one character), numwant (16 bits), the family (8), the limits
 * (32 each), the info hash in hex (40 characters) and whether peer ids are wanted (8).
 */
export function announceArgs(a: {
  now: number;
  cutoff: number;
  id: string;
  compact: string;
  state: string;
  event: string;
  key: string;
  numwant: number;
  family: number;
  maxPeers: number;
  maxSwarms: number;
  hex: string;
  wantIds: boolean;
}): Buffer {
  const str = (s: string) => {
    const b = Buffer.from(s, 'latin1');
    return Buffer.concat([Buffer.from([b.length]), b]);
  };
  const head = Buffer.alloc(16);
  head.writeDoubleBE(a.now, 0);
  head.writeDoubleBE(a.cutoff, 8);
  const tail = Buffer.alloc(11);
  tail.writeUInt16BE(Math.min(0xffff, a.numwant), 0);
  tail.writeUInt8(a.family, 2);
  tail.writeUInt32BE(Math.min(0xffffffff, a.maxPeers), 3);
  tail.writeUInt32BE(Math.min(0xffffffff, a.maxSwarms), 7);
  return Buffer.concat([
    head,
    str(a.id),
    str(a.compact),
    Buffer.from(a.state, 'latin1'),
    str(a.event),
    str(a.key),
    tail,
    Buffer.from(a.hex, 'latin1'),
    Buffer.from([a.wantIds ? 1 : 0]),
  ]);
}

const SWEEP_LUA = `${EXPIRE_LUA}
return expire(KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], tonumber(ARGV[1]), ARGV[2])
`;

interface ScriptedRedis extends Redis {
  ssAnnounceBuffer(...args: (string | Buffer | number)[]): Promise<(number | Buffer)[]>;
  ssSweep(...args: (string | Buffer | number)[]): Promise<number>;
}

export interface RedisStoreOpts {
  /** `redis://HOST:PORT[/DB]`. */
  url: string;
  limits: TrackerLimits;
  /** A command not answered in this time fails (ERR_STORE_UNAVAILABLE); default 1000 ms. */
  commandTimeoutMs?: number;
  /** Key prefix (default `ss:`): several trackers may share one Redis under different prefixes. */
  prefix?: string;
  log?: (line: string) => void;
}

export class RedisSwarmStore implements SwarmStore {
  readonly kind = 'redis';
  readonly #r: ScriptedRedis;
  readonly #o: RedisStoreOpts;
  readonly #prefix: string;
  #sweepAt = 0;
  /** Recent samples of large swarms, by info hash (hex); at most one per swarm announced to. */
  readonly #samples = new Map<string, Sample>();
  observe?: (op: 'announce' | 'scrape' | 'totals' | 'sweep', seconds: number) => void;

  constructor(o: RedisStoreOpts) {
    const bad = redisUrlProblem(o.url);
    if (bad !== null) throw new Error(bad);
    this.#o = o;
    this.#prefix = o.prefix ?? 'ss:';
    let warned = false;
    this.#r = new Redis(o.url, {
      // Fail fast while disconnected: a refusal now beats a queue that answers too late.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: o.commandTimeoutMs ?? 1000,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
      lazyConnect: false,
    }) as ScriptedRedis;
    this.#r.on('error', (e: Error) => {
      if (!warned) o.log?.(`tracker: store ${shownRedisUrl(o.url)}: ${e.message} (reconnecting)`);
      warned = true;
    });
    this.#r.on('ready', () => {
      if (warned) o.log?.(`tracker: store ${shownRedisUrl(o.url)}: connected again`);
      warned = false;
    });
    this.#r.defineCommand('ssAnnounce', { numberOfKeys: 5, lua: ANNOUNCE_LUA });
    this.#r.defineCommand('ssSweep', { numberOfKeys: 5, lua: SWEEP_LUA });
  }

  /** Resolves once connected (rejects after `ms`). */
  ready(ms = 5000): Promise<void> {
    if (this.#r.status === 'ready') return Promise.resolve();
    return new Promise((resolve, reject) => {
      const t = setTimeout(
        () => reject(new Error(`store ${shownRedisUrl(this.#o.url)} not reachable in ${ms} ms`)),
        ms,
      );
      this.#r.once('ready', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  #keys(hex: string): string[] {
    const p = this.#prefix;
    return [`${p}p:${hex}`, `${p}t:${hex}`, `${p}c:${hex}`, `${p}swarms`, `${p}totals`];
  }

  async #timed<T>(op: 'announce' | 'scrape' | 'totals' | 'sweep', run: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      return await run();
    } catch (e) {
      const m = (e as Error).message;
      for (const code of ['ERR_WRONG_KEY', 'ERR_SWARM_FULL', 'ERR_TOO_MANY_SWARMS'] as const)
        if (m.includes(code)) throw new SwarmshareError(code, REFUSALS[code](this.#o.limits));
      throw new SwarmshareError('ERR_STORE_UNAVAILABLE', `tracker store unavailable: ${m}`);
    } finally {
      this.observe?.(op, (performance.now() - t0) / 1000);
    }
  }

  announce(
    a: AnnounceRequest,
    numwant: number,
    family: 4 | 6 | undefined,
    now: number,
  ): Promise<AnnounceOutcome> {
    const ip = parseIp(a.ip);
    if (ip === null) throw new SwarmshareError('ERR_BAD_IP', `'${a.ip}' is not an IPv4 or IPv6 address`);
    const hex = latin1ToHex(a.infoHash);
    const state = a.left === 0 ? 's' : a.left > 0 ? 'l' : 'u';
    // Only a non-compact reply with peer ids needs the ids (BEP 23 compact replies are the rule).
    const wantIds = !a.compact && !a.noPeerId;
    const limits = this.#o.limits;
    const compact = compactAddress(ip, a.port);
    // A large swarm's recent sample answers a compact announce; asking for a new one (of
    // SAMPLE_SIZE) when it is old.
    const cached = this.#samples.get(hex);
    const useCache =
      cached !== undefined && !wantIds && a.event !== 'stopped' && now - cached.at < SAMPLE_MS && numwant > 0;
    const refill = !useCache && cached !== undefined && !wantIds && a.event !== 'stopped';
    const asked =
      a.event === 'stopped' ? 0 : useCache ? 0 : refill ? Math.max(numwant, SAMPLE_SIZE) : numwant;
    return this.#timed('announce', async () => {
      const r = await this.#r.ssAnnounceBuffer(
        ...this.#keys(hex),
        announceArgs({
          now,
          cutoff: now - limits.peerTimeoutMs,
          id: a.peerId,
          compact,
          state,
          event: a.event,
          key: a.key ?? '',
          numwant: asked,
          family: family ?? 0,
          maxPeers: limits.maxPeersPerSwarm,
          maxSwarms: limits.maxSwarms,
          hex,
          wantIds,
        }),
      );
      const peers: AnnounceOutcome['peers'] = [];
      if (wantIds)
        for (let i = 3; i + 1 < r.length; i += 2)
          peers.push({
            peerId: (r[i] as Buffer).toString('latin1'),
            compact: (r[i + 1] as Buffer).toString('latin1'),
          });
      else if (r.length >= 5)
        for (const [at, size] of [
          [3, 6],
          [4, 18],
        ] as const) {
          const joined = (r[at] as Buffer).toString('latin1');
          for (let k = 0; k + size <= joined.length; k += size)
            peers.push({ peerId: '', compact: joined.slice(k, k + size) });
        }
      const counts = { complete: Number(r[0]), incomplete: Number(r[1]), downloaded: Number(r[2]) };
      if (counts.complete + counts.incomplete < SAMPLE_CACHE_MIN_PEERS || wantIds) {
        this.#samples.delete(hex);
        return { ...counts, peers };
      }
      if (useCache) return { ...counts, peers: fromSample(cached as Sample, compact, numwant, family) };
      if (a.event === 'stopped') return { ...counts, peers };
      // Large: keep this sample for the next announces (a first one took numwant; from the next,
      // SAMPLE_SIZE).
      const sample: Sample = { at: now, peers: peers.map((p) => p.compact) };
      if (family === undefined) this.#samples.set(hex, sample);
      return { ...counts, peers: fromSample(sample, compact, numwant, family) };
    });
  }

  scrape(infoHashes: readonly string[] | null, max: number): Promise<Map<string, SwarmCounts>> {
    return this.#timed('scrape', async () => {
      const hashes = infoHashes ?? (await this.#r.zrange(`${this.#prefix}swarms`, '0', String(max - 1)));
      const pipe = this.#r.pipeline();
      for (const h of hashes) pipe.hmget(`${this.#prefix}c:${h}`, 'seeders', 'leechers', 'downloaded');
      const res = (await pipe.exec()) ?? [];
      const out = new Map<string, SwarmCounts>();
      hashes.forEach((h, i) => {
        const [err, v] = res[i] ?? [null, null];
        if (err) throw err;
        const [s, l, d] = (v as (string | null)[]) ?? [];
        if (s === null && l === null && d === null) return;
        out.set(h, { complete: Number(s ?? 0), incomplete: Number(l ?? 0), downloaded: Number(d ?? 0) });
      });
      return out;
    });
  }

  totals(): Promise<{ swarms: number; peers: number; seeders: number }> {
    return this.#timed('totals', async () => {
      const [swarms, t] = await Promise.all([
        this.#r.zcard(`${this.#prefix}swarms`),
        this.#r.hmget(`${this.#prefix}totals`, 'peers', 'seeders'),
      ]);
      return { swarms, peers: Number(t[0] ?? 0), seeders: Number(t[1] ?? 0) };
    });
  }

  async peers(infoHashHex: string, max: number): Promise<AnnouncedPeer[]> {
    const key = `${this.#prefix}p:${infoHashHex}`;
    return this.#timed('scrape', async () => {
      // Every peer of a small swarm; a sample of a large one. Raw replies: peer ids are bytes.
      const n = await this.#r.hlen(key);
      const flat = (
        n <= max
          ? await this.#r.callBuffer('HGETALL', key)
          : await this.#r.callBuffer('HRANDFIELD', key, String(max), 'WITHVALUES')
      ) as Buffer[];
      const entries: [string, Buffer][] = [];
      for (let i = 0; i + 1 < flat.length; i += 2)
        entries.push([(flat[i] as Buffer).toString('latin1'), flat[i + 1] as Buffer]);
      return entries.map(([peerId, rec]) => ({
        peerId,
        seed: rec[0] === 0x73, // 's'
        compact: rec.subarray(2 + (rec[1] as number)).toString('latin1'),
      }));
    });
  }

  /**
   * Expires the peers of swarms nobody has announced to for a while (an announce expires its own
   * swarm): call every few seconds; any instance may, the work is idempotent.
   */
  async sweep(now: number): Promise<number> {
    if (now < this.#sweepAt) return 0;
    this.#sweepAt = now + 1000;
    // Samples of swarms no longer announced to here.
    for (const [h, s] of this.#samples) if (now - s.at > SAMPLE_MS) this.#samples.delete(h);
    const cutoff = now - this.#o.limits.peerTimeoutMs;
    return this.#timed('sweep', async () => {
      const idle = await this.#r.zrangebyscore(`${this.#prefix}swarms`, '-inf', cutoff, 'LIMIT', 0, 100);
      let dropped = 0;
      for (const h of idle) dropped += await this.#r.ssSweep(...this.#keys(h), cutoff, h);
      return dropped;
    });
  }

  async close(): Promise<void> {
    this.#r.disconnect();
  }
}

/** Up to `numwant` of a sample's addresses from a random start, never `self`, of `family` when given. */
function fromSample(
  s: Sample,
  self: string,
  numwant: number,
  family: 4 | 6 | undefined,
): AnnounceOutcome['peers'] {
  const n = s.peers.length;
  const out: AnnounceOutcome['peers'] = [];
  const start = n === 0 ? 0 : Math.floor(Math.random() * n);
  for (let k = 0; k < n && out.length < numwant; k++) {
    const c = s.peers[(start + k) % n] as string;
    if (c === self) continue;
    if (family !== undefined && (family === 4) !== (c.length === 6)) continue;
    out.push({ peerId: '', compact: c });
  }
  return out;
}

const REFUSALS = {
  ERR_WRONG_KEY: () => 'this peer_id is taken by a peer with another key',
  ERR_SWARM_FULL: (l: TrackerLimits) => `the swarm holds its maximum of ${l.maxPeersPerSwarm} peers`,
  ERR_TOO_MANY_SWARMS: (l: TrackerLimits) => `the tracker holds its maximum of ${l.maxSwarms} swarms`,
};
