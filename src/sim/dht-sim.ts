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
  const sim = new DhtSim(s);
  sim.joinAll();
  const sizes = sim.tableSizes();
  const live = sim.churn();
  const lookups: LookupMeasure[] = [];
  for (let k = 0; k < s.lookups; k++) {
    const m = sim.lookup(live);
    if (m !== null) lookups.push(m);
  }
  return sim.report(sizes, lookups);
}

/** One lookup measured: hops, queries, virtual time, and whether the announced peer was found. */
interface LookupMeasure {
  hops: number;
  queries: number;
  timeMs: number;
  found: boolean;
}

const sorted = (a: number[]) => [...a].sort((x, y) => x - y);
const mean = (a: number[]) => (a.length === 0 ? 0 : a.reduce((x, y) => x + y, 0) / a.length);

/** The DHT's nodes on a simulated network: latency with jitter, loss, a virtual clock. */
class DhtSim {
  #seed: number;
  readonly deps: { sha1: (d: Uint8Array) => Uint8Array; randomBytes: (n: number) => Uint8Array };
  readonly q = new EventQueue();
  now = 0;
  packets = 0;
  readonly byAddr = new Map<string, DhtNode>();
  readonly gone = new Set<string>();
  readonly active = new Set<string>();
  readonly first = addrOf(0);

  constructor(readonly s: DhtScenario) {
    this.#seed = s.seed >>> 0 || 1;
    this.deps = { sha1: nodeHasher.sha1, randomBytes: (n) => this.randomBytes(n) };
  }

  /** xorshift32: the same scenario and seed give the same run. */
  rand(): number {
    let seed = this.#seed;
    seed ^= seed << 13;
    seed >>>= 0;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    seed >>>= 0;
    this.#seed = seed;
    return seed / 2 ** 32;
  }

  randomBytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.rand() * 256);
    return b;
  }

  node(addr: string): DhtNode {
    return this.byAddr.get(addr) as DhtNode;
  }

  /** Packets from `from`, each lost or delivered after the latency (and answered at once). */
  send(from: string, out: readonly Packet[]): void {
    const s = this.s;
    if (out.length > 0) this.active.add(from);
    for (const p of out) {
      this.packets++;
      if (this.rand() < s.loss) continue;
      const delay = Math.max(1, s.latencyMs + (this.rand() * 2 - 1) * s.jitterMs);
      this.q.push(this.now + delay, () => {
        const to = p.ip;
        if (this.gone.has(to)) return;
        const node = this.byAddr.get(to);
        if (node === undefined) return;
        this.send(to, node.receive(p.data, { ip: from, port: 6881 }, this.now));
      });
    }
  }

  /** Runs events until the queue is empty, ticking the nodes that have queries out every 500 ms. */
  settle(maxMs: number): void {
    const { q, active } = this;
    const end = this.now + maxMs;
    let nextTick = this.now + 500;
    for (let i = 0; i < 50_000_000; i++) {
      const t = q.peekTime();
      if (t > nextTick || (t === Number.POSITIVE_INFINITY && active.size > 0)) {
        this.now = nextTick;
        nextTick += 500;
        for (const a of [...active]) {
          const n = this.node(a);
          if (n.pending === 0) active.delete(a);
          else this.send(a, n.tick(this.now));
        }
        if (this.now > end) break;
        continue;
      }
      if (t === Number.POSITIVE_INFINITY) break;
      this.now = t;
      const code = q.popCode();
      q.takeFn(code)();
    }
  }

  /** Join: the first node is everyone's bootstrap; each newcomer looks itself up. */
  joinAll(): void {
    this.byAddr.set(this.first, new DhtNode({}, this.deps, this.now));
    for (let i = 1; i < this.s.nodes; i++) {
      const a = addrOf(i);
      const n = new DhtNode({ bootstrap: [{ ip: this.first, port: 6881 }] }, this.deps, this.now);
      this.byAddr.set(a, n);
      this.send(a, n.bootstrap(this.now));
      // Joins overlap a little, as arrivals would: settle every 50 nodes.
      if (i % 50 === 0) this.settle(30_000);
    }
    this.settle(30_000);
  }

  tableSizes(): number[] {
    return sorted([...this.byAddr.values()].map((n) => n.table.size));
  }

  /** Churn: some nodes go silent. Returns the live ones. */
  churn(): string[] {
    const addrs = [...this.byAddr.keys()];
    for (const a of addrs) if (a !== this.first && this.rand() < this.s.churn) this.gone.add(a);
    return addrs.filter((a) => !this.gone.has(a));
  }

  /** One node announces a new torrent; another looks it up. Null when the lookup never ended. */
  lookup(live: string[]): LookupMeasure | null {
    const infoHash = this.randomBytes(20);
    const announcer = live[Math.floor(this.rand() * live.length)] as string;
    const finder = live[Math.floor(this.rand() * live.length)] as string;
    this.send(
      announcer,
      this.node(announcer).getPeers(infoHash, this.now, () => {}, 7000),
    );
    this.settle(60_000);
    const t0 = this.now;
    let r: LookupResult | undefined;
    let doneAt = this.now;
    this.send(
      finder,
      this.node(finder).getPeers(infoHash, this.now, (x) => {
        r = x;
        doneAt = this.now;
      }),
    );
    this.settle(60_000);
    const got = r as LookupResult | undefined;
    if (got === undefined) return null;
    return {
      hops: got.hops,
      queries: got.queries,
      timeMs: doneAt - t0,
      found: got.peers.some((p) => p.ip === announcer && p.port === 7000),
    };
  }

  report(sizes: number[], lookups: LookupMeasure[]): DhtSimReport {
    const h = sorted(lookups.map((l) => l.hops));
    const qs = sorted(lookups.map((l) => l.queries));
    const ts = sorted(lookups.map((l) => l.timeMs));
    return {
      scenario: this.s,
      table: { min: sizes[0] ?? 0, mean: mean(sizes), max: sizes[sizes.length - 1] ?? 0 },
      hops: { p50: pct(h, 50), p90: pct(h, 90), max: h[h.length - 1] ?? 0, mean: mean(h) },
      queries: { p50: pct(qs, 50), p90: pct(qs, 90), mean: mean(qs) },
      timeMs: { p50: pct(ts, 50), p90: pct(ts, 90), max: ts[ts.length - 1] ?? 0, mean: mean(ts) },
      found: lookups.filter((l) => l.found).length,
      packets: this.packets,
      virtualMs: this.now,
    };
  }
}

const addrOf = (i: number) => `${1 + ((i >>> 16) & 0x7f)}.${(i >>> 8) & 255}.${i & 255}.1`;
