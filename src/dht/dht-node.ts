import { type PeerAddress, parseIp } from '../core/ip.js';
import { RateLimiter } from '../core/rate-limit.js';
import {
  decodeKrpc,
  encodeError,
  encodeQuery,
  encodeResponse,
  KRPC_ERRORS,
  type NodeId,
  type NodeInfo,
  type Query,
  type Response,
} from './krpc.js';
import { Lookup } from './lookup.js';
import { PeerStore } from './peer-store.js';
import { K, type RoutingNode, RoutingTable } from './routing-table.js';

/**
 * One Mainline DHT node (BEP 5), sans I/O: packets in (`receive`), packets out (what every method
 * returns), time in (`now`), randomness and SHA-1 handed in. It answers ping, find_node,
 * get_peers and announce_peer; runs iterative lookups (find_node to bootstrap and refresh,
 * get_peers to find a torrent's peers, then announce_peer to the closest nodes with their
 * tokens); keeps its routing table, tokens and peer store. The UDP socket is net/dht-udp.ts's.
 */

/** A query unanswered this long has failed. */
export const QUERY_TIMEOUT_MS = 2_000;
/** A lookup stops waiting for a query unanswered this long and asks another node (the answer still counts). */
export const SLOW_MS = 1_000;
/** Queries of ours waiting for an answer at most (more wait for room). */
export const MAX_PENDING = 256;
/** A node with an empty routing table bootstraps again this often. */
export const REBOOTSTRAP_MS = 10_000;
/** Our token secret changes this often; a token is good for two periods (BEP 5: ~10 minutes). */
export const TOKEN_ROTATE_MS = 5 * 60_000;
/** Queries per second one address may send us (burst twice that); past it, ignored. */
export const QUERIES_PER_SECOND = 20;
/** Peers one get_peers answer carries at most (keeps answers small: never an amplifier). */
export const MAX_VALUES_SENT = 32;

export interface Packet {
  ip: string;
  port: number;
  data: Uint8Array;
}

export interface DhtDeps {
  sha1(data: Uint8Array): Uint8Array;
  randomBytes(n: number): Uint8Array;
}

export interface LookupResult {
  peers: PeerAddress[];
  /** Queries sent, and the steps from the starting nodes to the closest node found. */
  queries: number;
  hops: number;
  /** The closest nodes that answered, with the tokens they gave (for announce_peer). */
  closest: (NodeInfo & { token?: Uint8Array })[];
}

interface Pending {
  to: { ip: string; port: number };
  id: NodeId | null;
  sentAt: number;
  onAnswer(r: Response): void;
  onFail(): void;
  /** Called once when the query has gone SLOW_MS unanswered (a lookup moves on). */
  onSlow?(): void;
}

export interface DhtNodeOpts {
  /** Our node id (default: random). */
  id?: NodeId;
  /** Nodes to start from (host must be an IP literal). */
  bootstrap?: readonly { ip: string; port: number }[];
  /** Queries per second one address may send us (default QUERIES_PER_SECOND; null: no limit, for benchmarks). */
  queriesPerSecond?: number | null;
}

export class DhtNode {
  readonly id: NodeId;
  readonly table: RoutingTable;
  readonly store = new PeerStore();
  readonly #deps: DhtDeps;
  readonly #bootstrap: { ip: string; port: number }[];
  readonly #pending = new Map<string, Pending>();
  readonly #limiter: RateLimiter | null;
  #secrets: [Uint8Array, Uint8Array];
  #rotatedAt: number;
  #tid = 0;
  #bootstrappedAt = Number.NEGATIVE_INFINITY;
  /** The time of the event being handled (queries sent from callbacks are stamped with it). */
  #now: number;
  /** Counters, for the curious (and `swarmshare dht`'s status line). */
  readonly stats = { queriesIn: 0, answered: 0, dropped: 0, malformed: 0, queriesOut: 0, timeouts: 0 };

  constructor(opts: DhtNodeOpts, deps: DhtDeps, now: number) {
    this.#deps = deps;
    this.id = opts.id ?? deps.randomBytes(20);
    this.table = new RoutingTable(this.id, K, now);
    this.#bootstrap = [...(opts.bootstrap ?? [])];
    this.#limiter =
      opts.queriesPerSecond === null ? null : new RateLimiter(opts.queriesPerSecond ?? QUERIES_PER_SECOND);
    this.#secrets = [deps.randomBytes(16), deps.randomBytes(16)];
    this.#rotatedAt = now;
    this.#now = now;
    this.#tid = (deps.randomBytes(2)[0] as number) << 8;
  }

  /** Our queries waiting for an answer. */
  get pending(): number {
    return this.#pending.size;
  }

  // ---- tokens --------------------------------------------------------------------------

  #token(ip: string, secret: Uint8Array): Uint8Array {
    const p = parseIp(ip);
    const b = new Uint8Array(secret.length + 16);
    b.set(secret);
    if (p !== null) b.set(p.bytes, secret.length);
    return this.#deps.sha1(b).subarray(0, 8);
  }

  #tokenOk(ip: string, token: Uint8Array): boolean {
    return this.#secrets.some((s) => Buffer.from(this.#token(ip, s)).equals(Buffer.from(token)));
  }

  // ---- packets in ------------------------------------------------------------------------

  /** A packet from `from`: the answers to send (for a query), and what our pending queries do next. */
  receive(data: Uint8Array, from: { ip: string; port: number }, now: number): Packet[] {
    this.#now = now;
    const out = this.#receive(data, from, now);
    return this.#later.length === 0 ? out : [...out, ...this.drain()];
  }

  #receive(data: Uint8Array, from: { ip: string; port: number }, now: number): Packet[] {
    const m = decodeKrpc(data);
    if ('error' in m) {
      this.stats.malformed++;
      // A query we cannot read gets an error only when it carried a transaction id and is small
      // (an error is ~40 bytes: never larger than what provoked it).
      if (m.t !== undefined && data.length >= 40 && (this.#limiter?.allow(from.ip, now) ?? true))
        return [
          this.#packet(
            from,
            encodeError(
              m.t,
              m.unknownMethod ? KRPC_ERRORS.methodUnknown : KRPC_ERRORS.protocol,
              m.error.slice(0, 60),
            ),
          ),
        ];
      return [];
    }
    if (m.y === 'q') {
      if (!(this.#limiter?.allow(from.ip, now) ?? true)) {
        this.stats.dropped++;
        return [];
      }
      this.stats.queriesIn++;
      if (!m.readOnly) this.table.seen({ id: m.query.id, ip: from.ip, port: from.port }, now, false);
      return [this.#packet(from, this.#answer(m.t, m.query, from, now))];
    }
    const key = Buffer.from(m.t).toString('hex');
    const p = this.#pending.get(key);
    if (p === undefined || p.to.ip !== from.ip || p.to.port !== from.port) return [];
    this.#pending.delete(key);
    if (m.y === 'e') {
      if (p.id !== null) this.table.failed(p.id);
      p.onFail();
      return [];
    }
    this.stats.answered++;
    const ping = this.table.seen({ id: m.r.id, ip: from.ip, port: from.port }, now, true);
    p.onAnswer(m.r);
    return ping === null
      ? []
      : this.#query(
          ping,
          { q: 'ping', id: this.id },
          now,
          () => {},
          () => {},
        );
  }

  #answer(t: Uint8Array, q: Query, from: { ip: string; port: number }, now: number): Uint8Array {
    switch (q.q) {
      case 'ping':
        return encodeResponse(t, { id: this.id });
      case 'find_node':
        return encodeResponse(t, { id: this.id, nodes: this.table.closest(q.target, K) });
      case 'get_peers': {
        const token = this.#token(from.ip, this.#secrets[0]);
        const values = this.store.get(q.infoHash, MAX_VALUES_SENT, now, this.#deps.randomBytes);
        if (values.length > 0) return encodeResponse(t, { id: this.id, values, token });
        return encodeResponse(t, { id: this.id, nodes: this.table.closest(q.infoHash, K), token });
      }
      case 'announce_peer': {
        if (!this.#tokenOk(from.ip, q.token)) return encodeError(t, KRPC_ERRORS.protocol, 'bad token');
        const port = q.impliedPort ? from.port : q.port;
        this.store.add(q.infoHash, { ip: from.ip, port }, now);
        return encodeResponse(t, { id: this.id });
      }
    }
  }

  // ---- packets out ----------------------------------------------------------------------

  #packet(to: { ip: string; port: number }, data: Uint8Array): Packet {
    return { ip: to.ip, port: to.port, data };
  }

  #query(
    to: { ip: string; port: number; id?: NodeId },
    query: Query,
    now: number,
    onAnswer: (r: Response) => void,
    onFail: () => void,
    onSlow?: () => void,
  ): Packet[] {
    if (this.#pending.size >= MAX_PENDING) {
      onFail();
      return [];
    }
    this.#tid = (this.#tid + 1) & 0xffff;
    const t = Uint8Array.from([this.#tid >>> 8, this.#tid & 0xff]);
    this.#pending.set(Buffer.from(t).toString('hex'), {
      to: { ip: to.ip, port: to.port },
      id: to.id ?? null,
      sentAt: now,
      onAnswer,
      onFail,
      onSlow,
    });
    this.stats.queriesOut++;
    return [this.#packet(to, encodeQuery(t, query))];
  }

  /** Timeouts, token rotation, bucket refresh. Call every few hundred ms. */
  tick(now: number): Packet[] {
    this.#now = now;
    const out: Packet[] = [];
    for (const [key, p] of this.#pending) {
      if (now - p.sentAt >= SLOW_MS && p.onSlow !== undefined) {
        const slow = p.onSlow;
        p.onSlow = undefined;
        slow();
      }
      if (now - p.sentAt < QUERY_TIMEOUT_MS) continue;
      this.#pending.delete(key);
      this.stats.timeouts++;
      if (p.id !== null) this.table.failed(p.id);
      p.onFail();
    }
    if (now - this.#rotatedAt >= TOKEN_ROTATE_MS) {
      this.#secrets = [this.#deps.randomBytes(16), this.#secrets[0]];
      this.#rotatedAt = now;
    }
    this.store.expire(now);
    this.#limiter?.sweep(now);
    // A node that knows nobody (its bootstrap was lost, or everyone left) tries again, now and then.
    if (this.table.size === 0 && this.#bootstrap.length > 0 && now - this.#bootstrappedAt >= REBOOTSTRAP_MS)
      out.push(...this.bootstrap(now));
    for (const target of this.table.stale(now, this.#deps.randomBytes))
      out.push(...this.lookup('find_node', target, now, () => {}));
    return [...out, ...this.drain()];
  }

  // ---- lookups --------------------------------------------------------------------------

  /**
   * Starts an iterative lookup of `target` from the closest nodes we know (or the bootstrap nodes
   * when we know none); `done` gets the result. Returns the first queries.
   */
  lookup(
    kind: 'find_node' | 'get_peers',
    target: NodeId,
    now: number,
    done: (r: LookupResult) => void,
  ): Packet[] {
    const known: NodeInfo[] = this.table.closest(target, K);
    const start = known.length > 0 ? known : this.#bootstrap.map((b) => ({ id: new Uint8Array(20), ...b }));
    const l = new Lookup(target, kind, start);
    let finished = false;
    const step = (at: number): Packet[] => {
      if (finished) return [];
      if (l.done) {
        finished = true;
        const closest = l.closest();
        done({
          peers: l.peers,
          queries: l.queries,
          hops: closest.reduce((a, c) => Math.max(a, c.hop), 0),
          closest: closest.map((c) => ({ ...c.node, token: c.token })),
        });
        return [];
      }
      const packets: Packet[] = [];
      for (const n of l.next()) {
        const q: Query =
          kind === 'find_node'
            ? { q: 'find_node', id: this.id, target }
            : { q: 'get_peers', id: this.id, infoHash: target };
        packets.push(
          ...this.#query(
            n,
            q,
            at,
            (r) => {
              l.answered(n, r, this.id);
              this.#later.push(...step(this.#now));
            },
            () => {
              l.failed(n);
              this.#later.push(...step(this.#now));
            },
            () => {
              l.slow(n);
              this.#later.push(...step(this.#now));
            },
          ),
        );
      }
      return packets;
    };
    return step(now);
  }

  /** Packets queued by callbacks (a lookup's next step after an answer or a timeout). */
  #later: Packet[] = [];

  /** What lookups want sent after the last `receive` or `tick` (drain after each). */
  drain(): Packet[] {
    const out = this.#later;
    this.#later = [];
    return out;
  }

  /** More nodes to start from (a bootstrap name resolved later). */
  addBootstrap(nodes: readonly { ip: string; port: number }[]): void {
    this.#bootstrap.push(...nodes);
  }

  /** Joins the network: a lookup of our own id through the bootstrap nodes. */
  bootstrap(now: number, done: (r: LookupResult) => void = () => {}): Packet[] {
    this.#bootstrappedAt = now;
    return this.lookup('find_node', this.id, now, done);
  }

  /**
   * Finds a torrent's peers (get_peers lookup) and, with `port`, announces us to the closest nodes
   * with the tokens they gave (`port` 0: implied, the packet's source port).
   */
  getPeers(
    infoHash: Uint8Array,
    now: number,
    done: (r: LookupResult) => void,
    announcePort?: number,
  ): Packet[] {
    return this.lookup('get_peers', infoHash, now, (r) => {
      // Peers announced to us count too (we may be one of the closest nodes ourselves).
      const seen = new Set(r.peers.map((p) => `${p.ip}:${p.port}`));
      for (const p of this.store.get(infoHash, MAX_VALUES_SENT, this.#now, this.#deps.randomBytes))
        if (!seen.has(`${p.ip}:${p.port}`)) r.peers.push(p);
      if (announcePort !== undefined) {
        for (const n of r.closest) {
          const token = n.token;
          if (token === undefined) continue;
          this.#later.push(
            ...this.#query(
              n,
              {
                q: 'announce_peer',
                id: this.id,
                infoHash,
                port: announcePort,
                token,
                impliedPort: announcePort === 0,
              },
              this.#now,
              () => {},
              () => {},
            ),
          );
        }
      }
      done(r);
    });
  }

  /** The nodes we know, for `--state`. */
  nodes(): RoutingNode[] {
    return this.table.all();
  }
}
