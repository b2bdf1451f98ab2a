import { DhtNode, type LookupResult, type Packet } from '../dht/dht-node.js';
import { nodeHasher } from '../net/system.js';
import { EventQueue } from './event-queue.js';

/**
 * The DHT (dht/dht-node.ts, the same code as `swarmshare dht`) on a simulated network: every node
 * its own address, packets delayed by a one-way latency with jitter, some lost, some nodes gone
 * (churn). Nodes join one after another through a bootstrap node; then lookups of random targets
 * from random nodes report their hops, queries and time. Deterministic: same options and seed,
 * same report.
 */

export interface DhtScenario {
  nodes: number;
  /** One-way latency, ms, and its jitter (uniform +-). */
  latencyMs: number;
  jitterMs: number;
  /** Share of packets lost, 0..1. */
  loss: number;
  /** Share of the nodes that leave (silently) once all have joined, before the lookups. */
  churn: number;
  /** get_peers lookups measured after joining. */
  lookups: number;
  seed: number;
}

export const DEFAULT_DHT_SCENARIO: DhtScenario = {
  nodes: 10_000,
  latencyMs: 50,
  jitterMs: 20,
  loss: 0.01,
  churn: 0.1,
  lookups: 200,
  seed: 1,
};

export interface DhtSimReport {
  scenario: DhtScenario;
  /** Routing table sizes after joining: min, mean, max. */
  table: { min: number; mean: number; max: number };
  /** Per lookup: steps to the closest node found, queries sent, virtual time. */
  hops: { p50: number; p90: number; max: number; mean: number };
  queries: { p50: number; p90: number; mean: number };
  timeMs: { p50: number; p90: number; max: number; mean: number };
  /** Lookups whose announced peer was found (each lookup's torrent is announced by one node first). */
  found: number;
  packets: number;
  virtualMs: number;
}

const pct = (sorted: number[], p: number) =>
  sorted.length === 0
    ? 0
    : (sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number);

export function runDhtSimulation(s: DhtScenario): DhtSimReport {
  let seed = s.seed >>> 0 || 1;
  const rand = () => {
    seed ^= seed << 13;
    seed >>>= 0;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    seed >>>= 0;
    return seed / 2 ** 32;
  };
  const randomBytes = (n: number) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(rand() * 256);
    return b;
  };
  const deps = { sha1: nodeHasher.sha1, randomBytes };
  const q = new EventQueue();
  let now = 0;
  let packets = 0;
  const byAddr = new Map<string, DhtNode>();
  const gone = new Set<string>();
  const active = new Set<string>();
  const addrOf = (i: number) => `${1 + ((i >>> 16) & 0x7f)}.${(i >>> 8) & 255}.${i & 255}.1`;

  const send = (from: string, out: readonly Packet[]) => {
    if (out.length > 0) active.add(from);
    for (const p of out) {
      packets++;
      if (rand() < s.loss) continue;
      const delay = Math.max(1, s.latencyMs + (rand() * 2 - 1) * s.jitterMs);
      q.push(now + delay, () => {
        const to = p.ip;
        if (gone.has(to)) return;
        const node = byAddr.get(to);
        if (node === undefined) return;
        send(to, node.receive(p.data, { ip: from, port: 6881 }, now));
      });
    }
  };
  /** Runs events until the queue is empty, ticking the nodes that have queries out every 500 ms. */
  const settle = (maxMs: number) => {
    const end = now + maxMs;
    let nextTick = now + 500;
    for (let i = 0; i < 50_000_000; i++) {
      const t = q.peekTime();
      if (t > nextTick || (t === Number.POSITIVE_INFINITY && active.size > 0)) {
        now = nextTick;
        nextTick += 500;
        for (const a of [...active]) {
          const n = byAddr.get(a) as DhtNode;
          if (n.pending === 0) active.delete(a);
          else send(a, n.tick(now));
        }
        if (now > end) break;
        continue;
      }
      if (t === Number.POSITIVE_INFINITY) break;
      now = t;
      const code = q.popCode();
      q.takeFn(code)();
    }
  };

  // Join: the first node is everyone's bootstrap; each newcomer looks itself up.
  const first = addrOf(0);
  byAddr.set(first, new DhtNode({}, deps, now));
  for (let i = 1; i < s.nodes; i++) {
    const a = addrOf(i);
    const n = new DhtNode({ bootstrap: [{ ip: first, port: 6881 }] }, deps, now);
    byAddr.set(a, n);
    send(a, n.bootstrap(now));
    // Joins overlap a little, as arrivals would: settle every 50 nodes.
    if (i % 50 === 0) settle(30_000);
  }
  settle(30_000);
  const sizes = [...byAddr.values()].map((n) => n.table.size).sort((x, y) => x - y);

  // Churn: some nodes go silent.
  const addrs = [...byAddr.keys()];
  for (const a of addrs) if (a !== first && rand() < s.churn) gone.add(a);
  const live = addrs.filter((a) => !gone.has(a));

  const hops: number[] = [];
  const queries: number[] = [];
  const times: number[] = [];
  let found = 0;
  for (let k = 0; k < s.lookups; k++) {
    const infoHash = randomBytes(20);
    const announcer = live[Math.floor(rand() * live.length)] as string;
    const finder = live[Math.floor(rand() * live.length)] as string;
    send(
      announcer,
      (byAddr.get(announcer) as DhtNode).getPeers(infoHash, now, () => {}, 7000),
    );
    settle(60_000);
    const t0 = now;
    let r: LookupResult | undefined;
    let doneAt = now;
    send(
      finder,
      (byAddr.get(finder) as DhtNode).getPeers(infoHash, now, (x) => {
        r = x;
        doneAt = now;
      }),
    );
    settle(60_000);
    if (r === undefined) continue;
    hops.push(r.hops);
    queries.push(r.queries);
    times.push(doneAt - t0);
    if (r.peers.some((p) => p.ip === announcer && p.port === 7000)) found++;
  }
  const sorted = (a: number[]) => [...a].sort((x, y) => x - y);
  const mean = (a: number[]) => (a.length === 0 ? 0 : a.reduce((x, y) => x + y, 0) / a.length);
  const h = sorted(hops);
  const qs = sorted(queries);
  const ts = sorted(times);
  return {
    scenario: s,
    table: { min: sizes[0] ?? 0, mean: mean(sizes), max: sizes[sizes.length - 1] ?? 0 },
    hops: { p50: pct(h, 50), p90: pct(h, 90), max: h[h.length - 1] ?? 0, mean: mean(h) },
    queries: { p50: pct(qs, 50), p90: pct(qs, 90), mean: mean(qs) },
    timeMs: { p50: pct(ts, 50), p90: pct(ts, 90), max: ts[ts.length - 1] ?? 0, mean: mean(ts) },
    found,
    packets,
    virtualMs: now,
  };
}
