import { sameBytes } from '../core/deps.js';
import { parseIp } from '../core/ip.js';
import type { NodeId, NodeInfo } from './krpc.js';

/**
 * The DHT routing table (BEP 5): nodes by their distance from us, in buckets of at most K. Bucket
 * i holds the nodes whose ids share exactly i leading bits with ours (the split-as-you-go table of
 * the BEP, flattened: only the buckets near our id ever fill). A node is good while it answered
 * within GOOD_MS, questionable after, bad after MAX_FAILURES unanswered queries in a row. A full
 * bucket takes a newcomer only in place of a bad node, or after a questionable one fails a ping.
 * One node per IP address (loopback exempt: tests run many nodes on one machine), so one host
 * cannot fill the table with made-up ids. Pure: time comes in.
 */

export const K = 8;
/** A node that answered within this is good; after it, questionable (BEP 5: 15 minutes). */
export const GOOD_MS = 15 * 60_000;
/** Unanswered queries in a row that make a node bad. */
export const MAX_FAILURES = 2;
/** A bucket not changed for this long is refreshed (a lookup of a random id in its range). */
export const REFRESH_MS = 15 * 60_000;

export interface RoutingNode extends NodeInfo {
  /** Last answer from it (or query from it), ms. */
  lastSeen: number;
  /** Queries it left unanswered in a row. */
  failures: number;
}

/** Leading bits `a` and `b` share (160 when equal). */
export function commonPrefix(a: NodeId, b: NodeId): number {
  for (let i = 0; i < 20; i++) {
    const x = (a[i] as number) ^ (b[i] as number);
    if (x !== 0) return i * 8 + Math.clz32(x) - 24;
  }
  return 160;
}

/** Negative when `a` is closer to `target` than `b` (XOR metric), 0 when as close. */
export function compareDistance(a: NodeId, b: NodeId, target: NodeId): number {
  for (let i = 0; i < 20; i++) {
    const da = (a[i] as number) ^ (target[i] as number);
    const db = (b[i] as number) ^ (target[i] as number);
    if (da !== db) return da - db;
  }
  return 0;
}

const isLoopback = (ip: string) => {
  const p = parseIp(ip);
  return (
    p !== null && (p.family === 4 ? p.bytes[0] === 127 : p.bytes.every((b, i) => b === (i === 15 ? 1 : 0)))
  );
};

export class RoutingTable {
  readonly self: NodeId;
  readonly k: number;
  readonly #buckets: RoutingNode[][] = Array.from({ length: 160 }, () => []);
  readonly #changed: number[] = new Array<number>(160).fill(0);
  readonly #byIp = new Map<string, RoutingNode>();

  constructor(self: NodeId, k = K, now = 0) {
    this.self = self;
    this.k = k;
    this.#changed.fill(now);
  }

  get size(): number {
    let n = 0;
    for (const b of this.#buckets) n += b.length;
    return n;
  }

  /** Every node, nearest buckets first. */
  all(): RoutingNode[] {
    const out: RoutingNode[] = [];
    for (let i = 159; i >= 0; i--) out.push(...(this.#buckets[i] as RoutingNode[]));
    return out;
  }

  #bucketOf(id: NodeId): number {
    return Math.min(159, commonPrefix(this.self, id));
  }

  /**
   * A node answered us (or queried us, `responded` false: it is added only where there is room).
   * Returns a questionable node the caller should ping (then `failed` if it stays silent) when the
   * newcomer found its bucket full, else null.
   */
  seen(n: NodeInfo, now: number, responded = true): RoutingNode | null {
    if (commonPrefix(this.self, n.id) === 160 || n.port < 1 || n.port > 65535) return null;
    const i = this.#bucketOf(n.id);
    const bucket = this.#buckets[i] as RoutingNode[];
    const known = bucket.find((x) => sameBytes(x.id, n.id));
    if (known !== undefined) {
      // Someone else claiming a known id (another address) is ignored: ids do not move.
      if (known.ip !== n.ip || known.port !== n.port) return null;
      if (responded) {
        known.lastSeen = now;
        known.failures = 0;
      }
      return null;
    }
    if (!isLoopback(n.ip) && this.#byIp.has(n.ip)) return null;
    const node: RoutingNode = {
      id: Uint8Array.from(n.id),
      ip: n.ip,
      port: n.port,
      lastSeen: now,
      failures: 0,
    };
    if (bucket.length < this.k) {
      this.#add(i, node, now);
      return null;
    }
    if (!responded) return null;
    const bad = bucket.findIndex((x) => x.failures >= MAX_FAILURES);
    if (bad !== -1) {
      this.#remove(i, bad);
      this.#add(i, node, now);
      return null;
    }
    let oldest: RoutingNode | null = null;
    for (const x of bucket)
      if (now - x.lastSeen > GOOD_MS && (oldest === null || x.lastSeen < oldest.lastSeen)) oldest = x;
    return oldest;
  }

  #add(i: number, node: RoutingNode, now: number): void {
    (this.#buckets[i] as RoutingNode[]).push(node);
    this.#byIp.set(node.ip, node);
    this.#changed[i] = now;
  }

  #remove(i: number, at: number): void {
    const [gone] = (this.#buckets[i] as RoutingNode[]).splice(at, 1);
    if (gone !== undefined && this.#byIp.get(gone.ip) === gone) this.#byIp.delete(gone.ip);
  }

  /** A query to the node went unanswered; a bad node leaves at once when its bucket has others waiting. */
  failed(id: NodeId): void {
    const i = this.#bucketOf(id);
    const bucket = this.#buckets[i] as RoutingNode[];
    const at = bucket.findIndex((x) => sameBytes(x.id, id));
    if (at === -1) return;
    const n = bucket[at] as RoutingNode;
    n.failures++;
    if (n.failures >= MAX_FAILURES + 2) this.#remove(i, at);
  }

  /** The `n` known nodes closest to `target` (bad ones last, then left out). */
  closest(target: NodeId, n = this.k): RoutingNode[] {
    const good: RoutingNode[] = [];
    for (const b of this.#buckets) for (const x of b) if (x.failures < MAX_FAILURES) good.push(x);
    good.sort((a, b) => compareDistance(a.id, b.id, target));
    return good.slice(0, n);
  }

  /**
   * Buckets untouched for REFRESH_MS (up to the deepest one in use, plus one), each with a random
   * id in its range to look up; their change times are reset.
   */
  stale(now: number, random: (n: number) => Uint8Array): NodeId[] {
    let deepest = 0;
    for (let i = 0; i < 160; i++) if ((this.#buckets[i] as RoutingNode[]).length > 0) deepest = i;
    const out: NodeId[] = [];
    for (let i = 0; i <= Math.min(159, deepest + 1); i++) {
      if (now - (this.#changed[i] as number) < REFRESH_MS) continue;
      this.#changed[i] = now;
      out.push(idInBucket(this.self, i, random(20)));
    }
    return out;
  }
}

/** A random id sharing exactly `i` leading bits with `self`. */
export function idInBucket(self: NodeId, i: number, rand: Uint8Array): NodeId {
  const id = Uint8Array.from(rand.subarray(0, 20));
  for (let bit = 0; bit <= i && bit < 160; bit++) {
    const byte = bit >>> 3;
    const mask = 0x80 >>> (bit & 7);
    const want = ((self[byte] as number) & mask) !== 0;
    // The first i bits copy ours; bit i differs.
    const on = bit < i ? want : !want;
    id[byte] = on ? (id[byte] as number) | mask : (id[byte] as number) & ~mask;
  }
  return id;
}
