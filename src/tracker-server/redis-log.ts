import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { SwarmshareError } from '../core/errors.js';
import {
  applyOp,
  type JsonOp,
  type OpResult,
  type RegistrySnapshot,
  restoreSnapshot,
  snapshotOf,
  unwrap,
} from '../tracker/json-log.js';
import type { SwarmRegistry } from '../tracker/registry.js';

/**
 * The JSON API's registry shared by tracker instances through Redis (tracker/json-log.ts says how):
 * writes are appended to one stream, every instance tails it and applies each entry to its own
 * registry in order; a writer answers its client once its own instance has applied the entry (so
 * the reply is the one every instance computed). A read first waits until this instance has
 * applied everything appended before it (one round trip): a peer registered at one instance is
 * at once given by any other. Layout (docs/deploy.md):
 *
 *   <prefix>j:seq    counter   sequence number of the last entry
 *   <prefix>j:log    stream    entries: s (sequence number), o (the operation, JSON)
 *   <prefix>j:snap   string    a snapshot: sequence number, stream id and registry state (JSON)
 *
 * An instance starts from the snapshot and replays the stream after it. Any instance writes a new
 * snapshot every `snapshotMs` and trims the stream up to it. A gap in the sequence (the stream
 * trimmed past us while we were cut off, or Redis restarted empty) makes an instance reload from
 * the snapshot (or from nothing): its registry then equals what Redis holds. Peers that Redis
 * forgot get ERR_UNKNOWN_PEER and register again, as after a tracker restart.
 */

const APPEND_LUA = `
local seq = redis.call('INCR', KEYS[1])
redis.call('XADD', KEYS[2], '*', 's', seq, 'o', ARGV[1])
return seq
`;

/** Stores a snapshot unless a newer one is there; trims the stream up to it. 1 when stored. */
const SNAPSHOT_LUA = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local seq = tonumber(string.match(cur, '^(%d+) '))
  if seq and seq >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2] .. ' ' .. ARGV[3])
redis.call('XTRIM', KEYS[2], 'MINID', ARGV[2])
return 1
`;

interface ScriptedRedis extends Redis {
  ssAppend(seqKey: string, logKey: string, op: string): Promise<number>;
  ssSnapshot(snapKey: string, logKey: string, seq: number, id: string, state: string): Promise<number>;
}

export interface RedisLogOpts {
  url: string;
  registry: SwarmRegistry;
  /** Key prefix (default `ss:`), as the announce store's. */
  prefix?: string;
  /** A write or read barrier not done in this time fails with ERR_STORE_UNAVAILABLE; default 2000 ms. */
  timeoutMs?: number;
  /** How often a snapshot is written (and the stream trimmed); default 30 s. */
  snapshotMs?: number;
  log?: (line: string) => void;
}

/** Entries read from the stream per call at most. */
const READ_BATCH = 1000;

/** Reconnect after 0.2, 0.4, ... up to 2 s. */
const retryStrategy = (times: number) => Math.min(100 * 2 ** Math.min(times, 5), 2000);

interface Waiter {
  seq: number;
  /** Waits for a reload of the log too (Redis lost its data). */
  afterReset: boolean;
  resolve: () => void;
}

export class RedisJsonLog {
  readonly #o: RedisLogOpts;
  readonly #r: ScriptedRedis;
  /** The tailing connection (a blocking read holds its connection). */
  readonly #tail: Redis;
  readonly #keys: { seq: string; log: string; snap: string };
  readonly #origin = randomBytes(6).toString('hex');
  #next = 0;
  /** Sequence number and stream id of the last entry applied here. */
  #seq = 0;
  #streamId = '0';
  #closed = false;
  #snapshotSeq = 0;
  /** Our writes waiting for their entry to be applied here, and the results of those applied. */
  readonly #pending = new Set<string>();
  readonly #results = new Map<string, OpResult>();
  readonly #waiters: Waiter[] = [];
  #resetWanted = false;
  #loop: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | null = null;

  constructor(o: RedisLogOpts) {
    this.#o = o;
    const p = o.prefix ?? 'ss:';
    this.#keys = { seq: `${p}j:seq`, log: `${p}j:log`, snap: `${p}j:snap` };
    this.#r = new Redis(o.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: o.timeoutMs ?? 2000,
      connectTimeout: 2000,
      retryStrategy,
    }) as ScriptedRedis;
    this.#r.on('error', () => {});
    this.#r.defineCommand('ssAppend', { numberOfKeys: 2, lua: APPEND_LUA });
    this.#r.defineCommand('ssSnapshot', { numberOfKeys: 2, lua: SNAPSHOT_LUA });
    this.#tail = new Redis(o.url, { maxRetriesPerRequest: 0, connectTimeout: 2000, retryStrategy });
    this.#tail.on('error', () => {});
  }

  /** Loads the snapshot and starts tailing the stream; resolves once caught up (or after `ms`). */
  async start(ms = 5000): Promise<void> {
    this.#loop = this.#tailLoop();
    const snapMs = this.#o.snapshotMs ?? 30_000;
    this.#timer = setInterval(() => {
      this.#writeSnapshot().catch(() => {});
    }, snapMs);
    this.#timer.unref();
    // Until connected, commands fail at once (no offline queue): wait for the connection first.
    // Unreachable, the tracker still starts (refusing shared requests until Redis answers).
    const t0 = Date.now();
    try {
      await whenReady(this.#r, ms);
      await this.sync(Math.max(0, ms - (Date.now() - t0)));
    } catch (e) {
      this.#o.log?.(`tracker: shared log: ${(e as Error).message} (retrying)`);
    }
  }

  /** Appends a write, waits until this instance applied it, and gives its reply (or throws its refusal). */
  async submit(op: JsonOp): Promise<unknown> {
    const id = `${this.#origin}:${this.#next++}`;
    this.#pending.add(id);
    let r: OpResult | undefined;
    try {
      let seq: number;
      try {
        seq = await this.#r.ssAppend(this.#keys.seq, this.#keys.log, JSON.stringify({ id, op }));
      } catch (e) {
        throw unavailable(e);
      }
      await this.#until(seq, this.#o.timeoutMs ?? 2000);
      r = this.#results.get(id);
    } finally {
      // Given up or answered: a result applied later is not kept.
      this.#pending.delete(id);
      this.#results.delete(id);
    }
    if (r === undefined) {
      // The log restarted under us (Redis lost its data) before our entry was read back.
      throw new SwarmshareError(
        'ERR_STORE_UNAVAILABLE',
        'tracker store unavailable: the shared log was reset',
      );
    }
    return unwrap(r);
  }

  /** Waits until everything appended so far (by any instance) is applied here. */
  async sync(ms = this.#o.timeoutMs ?? 2000): Promise<void> {
    let last: string | null;
    try {
      last = await this.#r.get(this.#keys.seq);
    } catch (e) {
      throw unavailable(e);
    }
    const n = Number(last ?? 0);
    if (n < this.#seq) {
      // Fewer entries than we applied: Redis lost its data. The tail loop starts again from what
      // Redis holds; we wait for that.
      this.#resetWanted = true;
      await this.#until(n, ms, true);
      return;
    }
    await this.#until(n, ms);
  }

  /** Sequence number of the last entry applied here. */
  get applied(): number {
    return this.#seq;
  }

  /** Resolves once entry `seq` is applied (`afterReset`: once the log was reloaded, too). */
  #until(seq: number, ms: number, afterReset = false): Promise<void> {
    if (this.#seq >= seq && !afterReset) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = {
        seq,
        afterReset,
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
      };
      const t = setTimeout(() => {
        const i = this.#waiters.indexOf(w);
        if (i !== -1) this.#waiters.splice(i, 1);
        reject(
          new SwarmshareError(
            'ERR_STORE_UNAVAILABLE',
            `tracker store unavailable: the shared log did not catch up in ${ms} ms`,
          ),
        );
      }, ms);
      this.#waiters.push(w);
    });
  }

  #wake(): void {
    for (let i = this.#waiters.length - 1; i >= 0; i--) {
      const w = this.#waiters[i] as Waiter;
      if (w.seq <= this.#seq && !w.afterReset) {
        this.#waiters.splice(i, 1);
        w.resolve();
      }
    }
  }

  async #tailLoop(): Promise<void> {
    let failures = 0;
    while (!this.#closed) {
      try {
        if (this.#resetWanted) {
          this.#resetWanted = false;
          await this.#reload(0);
          continue;
        }
        const res = (await this.#tail.xread(
          'COUNT',
          READ_BATCH,
          'BLOCK',
          500,
          'STREAMS',
          this.#keys.log,
          this.#streamId,
        )) as [string, [string, string[]][]][] | null;
        failures = 0;
        if (res === null) continue;
        for (const [id, fields] of res[0]?.[1] ?? []) {
          if (this.#closed) return;
          const seq = Number(fields[1]);
          if (seq !== this.#seq + 1) {
            await this.#reload(seq);
            break;
          }
          this.#apply(id, seq, fields[3] ?? '{}');
        }
        this.#wake();
      } catch (e) {
        if (this.#closed) return;
        if (failures++ === 0) this.#o.log?.(`tracker: shared log: ${(e as Error).message} (retrying)`);
        await new Promise((r) => setTimeout(r, Math.min(100 * 2 ** Math.min(failures, 4), 1000)));
      }
    }
  }

  #apply(streamId: string, seq: number, text: string): void {
    let entry: { id: string; op: JsonOp } | null = null;
    try {
      entry = JSON.parse(text) as { id: string; op: JsonOp };
    } catch {
      // Not ours to read (every instance skips it alike).
    }
    if (entry !== null && typeof entry.op === 'object' && entry.op !== null) {
      let r: OpResult;
      try {
        r = applyOp(this.#o.registry, entry.op);
      } catch (e) {
        // Not an operation we wrote (ours are checked by the routes' schemas before they are
        // appended): every instance skips it alike, and the log moves on.
        this.#o.log?.(`tracker: shared log: entry ${seq} skipped: ${(e as Error).message}`);
        r = { ok: false, code: 'ERR_INTERNAL', message: 'internal error' };
      }
      if (typeof entry.id === 'string' && this.#pending.has(entry.id)) this.#results.set(entry.id, r);
    }
    this.#seq = seq;
    this.#streamId = streamId;
  }

  /**
   * A gap in the sequence (`seen` is not the next one): start again from the snapshot, or from an
   * empty registry and the stream's beginning when the snapshot is gone or too new for the stream.
   */
  async #reload(seen: number): Promise<void> {
    this.#o.log?.(`tracker: shared log: expected entry ${this.#seq + 1}, found ${seen}: reloading`);
    const reg = this.#o.registry;
    for (const c of [...reg.clients.values()]) reg.dropClient(c, 'deregistered');
    reg.epochMs = null;
    this.#seq = 0;
    this.#streamId = '0';
    const text = await this.#r.get(this.#keys.snap);
    const m = text === null ? null : /^(\d+) (\S+) ([\s\S]*)$/.exec(text);
    if (m !== null) {
      try {
        restoreSnapshot(reg, JSON.parse(m[3] as string) as RegistrySnapshot);
        this.#seq = Number(m[1]);
        this.#streamId = m[2] as string;
      } catch (e) {
        this.#o.log?.(`tracker: shared log: snapshot unusable (${(e as Error).message}); replaying the log`);
        for (const c of [...reg.clients.values()]) reg.dropClient(c, 'deregistered');
      }
    }
    // Waiters go on waiting for their sequence number in the log as it now is: a write whose
    // entry was lost finds another's result under its number (submit reports the reset) or
    // times out; a read waits for what was appended before it.
    for (const w of this.#waiters) w.afterReset = false;
    this.#wake();
  }

  async #writeSnapshot(): Promise<void> {
    if (this.#seq === this.#snapshotSeq || this.#seq === 0) return;
    const seq = this.#seq;
    const state = JSON.stringify(snapshotOf(this.#o.registry));
    await this.#r.ssSnapshot(this.#keys.snap, this.#keys.log, seq, this.#streamId, state);
    this.#snapshotSeq = seq;
  }

  /** Writes a snapshot now (tests; the timer does it otherwise). */
  snapshot(): Promise<void> {
    return this.#writeSnapshot();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#tail.disconnect();
    this.#r.disconnect();
    await this.#loop.catch(() => {});
  }
}

function whenReady(r: Redis, ms: number): Promise<void> {
  if (r.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      r.off('ready', ok);
      reject(new Error(`Redis not reachable in ${ms} ms`));
    }, ms);
    const ok = () => {
      clearTimeout(t);
      resolve();
    };
    r.once('ready', ok);
  });
}

function unavailable(e: unknown): SwarmshareError {
  return new SwarmshareError('ERR_STORE_UNAVAILABLE', `tracker store unavailable: ${(e as Error).message}`);
}
