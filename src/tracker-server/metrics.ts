import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { SwarmStore } from '../tracker/swarm-store.js';

/**
 * The tracker's Prometheus metrics (`GET /metrics`, text format): requests by endpoint, protocol
 * and status, announce latency, rate-limited requests, and the registry's swarms, peers, seeders
 * and leechers (read when scraped). One set per tracker instance.
 */
export class TrackerMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'endpoint' | 'protocol' | 'status'>;
  readonly announceSeconds: Histogram<'protocol'>;
  readonly rateLimited: Counter<'protocol'>;
  readonly storeErrors: Counter;
  readonly storeSeconds: Histogram<'op'>;
  /** Request counters by label set, made once (the announce paths count every request). */
  readonly #counters = new Map<string, { inc(): void }>();

  readonly #announce: Record<'http' | 'udp', { observe(seconds: number): void }>;

  constructor(store: SwarmStore) {
    const registers = [this.registry];
    this.requests = new Counter({
      name: 'swarmshare_tracker_requests_total',
      help: 'Requests answered, by endpoint, protocol (http, udp) and status (HTTP status; udp: ok, error)',
      labelNames: ['endpoint', 'protocol', 'status'],
      registers,
    });
    this.announceSeconds = new Histogram({
      name: 'swarmshare_tracker_announce_duration_seconds',
      help: 'Time to handle an announce (parse, registry, reply), by protocol',
      labelNames: ['protocol'],
      buckets: [0.00001, 0.00003, 0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1],
      registers,
    });
    this.rateLimited = new Counter({
      name: 'swarmshare_tracker_rate_limited_total',
      help: 'Requests refused (HTTP 429) or packets dropped (UDP) for being over the per-address rate',
      labelNames: ['protocol'],
      registers,
    });
    const gauge = (name: string, help: string, read: () => Promise<number>) =>
      new Gauge({
        name,
        help,
        registers,
        async collect() {
          try {
            this.set(await read());
          } catch {
            // The store is unreachable: the gauge keeps its last value (store errors say why).
          }
        },
      });
    this.#announce = {
      http: this.announceSeconds.labels('http'),
      udp: this.announceSeconds.labels('udp'),
    };
    this.storeErrors = new Counter({
      name: 'swarmshare_tracker_store_errors_total',
      help: 'Announces and scrapes refused because the shared store (Redis) was unreachable or slow',
      registers,
    });
    this.storeSeconds = new Histogram({
      name: 'swarmshare_tracker_store_duration_seconds',
      help: 'Round trips to the shared store (Redis), by operation',
      labelNames: ['op'],
      buckets: [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1],
      registers,
    });
    // The totals are read once per scrape of /metrics (a store may need a round trip for them).
    let pending: Promise<{ swarms: number; peers: number; seeders: number }> | null = null;
    const totals = async () => {
      pending ??= Promise.resolve(store.totals()).finally(() => {
        setTimeout(() => {
          pending = null;
        }, 0);
      });
      return pending;
    };
    gauge('swarmshare_tracker_swarms', 'Swarms the tracker holds', async () => (await totals()).swarms);
    gauge('swarmshare_tracker_peers', 'Peers in all swarms', async () => (await totals()).peers);
    gauge('swarmshare_tracker_seeders', 'Peers holding the whole file', async () => (await totals()).seeders);
    gauge('swarmshare_tracker_leechers', 'Peers still downloading', async () => {
      const t = await totals();
      return t.peers - t.seeders;
    });
  }

  /** Counts one request (the labelled counter is made on first use, then reused). */
  request(endpoint: string, protocol: 'http' | 'udp', status: string): void {
    const key = `${endpoint} ${protocol} ${status}`;
    let c = this.#counters.get(key);
    if (c === undefined) {
      c = this.requests.labels(endpoint, protocol, status);
      this.#counters.set(key, c);
    }
    c.inc();
  }

  /** One announce's handling time, from `t0` (performance.now()). */
  announced(protocol: 'http' | 'udp', t0: number): void {
    this.#announce[protocol].observe((performance.now() - t0) / 1000);
  }
}
