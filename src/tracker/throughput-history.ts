import type { PeerRecord } from './records.js';
import type { SwarmRegistry } from './registry.js';

/**
 * Each swarm's throughput, second by second, for the last HISTORY_SECONDS: what its peers report
 * having downloaded (their /update totals), summed, per second of the tracker's clock. Kept by
 * the tracker, so a page opened late shows what moved, and a swarm where nothing moves reads 0
 * (a rate is never carried forward: a second with no reported bytes is a zero). Pure: the caller
 * samples it every second with `now`.
 */

/** Seconds of history kept and sent: five minutes. */
export const HISTORY_SECONDS = 300;

/** The series sent with a snapshot: `values[i]` is bytes/s in the second ending at `endMs - (n-1-i)*1000`. */
export interface ThroughputSeries {
  everyMs: number;
  endMs: number;
  values: number[];
}

interface SwarmSeries {
  values: number[];
  endMs: number;
}

export class ThroughputHistory {
  readonly #series = new Map<string, SwarmSeries>();
  readonly #last = new WeakMap<PeerRecord, number>();
  #lastSample: number | null = null;

  /** Adds one point per swarm: the bytes its peers reported since the last sample, per second. */
  sample(reg: SwarmRegistry, now: number): void {
    const dt = this.#lastSample === null ? 1 : Math.max(0.001, (now - this.#lastSample) / 1000);
    this.#lastSample = now;
    for (const [id, s] of reg.swarms) {
      let bytes = 0;
      for (const p of s.list) {
        const down = p.stats?.downloaded ?? 0;
        const before = this.#last.get(p);
        this.#last.set(p, down);
        // A peer seen for the first time brings its past with it: counted from now on.
        if (before !== undefined && down > before) bytes += down - before;
      }
      let ser = this.#series.get(id);
      if (ser === undefined) {
        ser = { values: [], endMs: now };
        this.#series.set(id, ser);
      }
      ser.values.push(bytes / dt);
      if (ser.values.length > HISTORY_SECONDS) ser.values.shift();
      ser.endMs = now;
    }
    for (const id of this.#series.keys()) if (!reg.swarms.has(id)) this.#series.delete(id);
  }

  series(swarmId: string): ThroughputSeries {
    const s = this.#series.get(swarmId);
    return { everyMs: 1000, endMs: s?.endMs ?? 0, values: s === undefined ? [] : [...s.values] };
  }
}
