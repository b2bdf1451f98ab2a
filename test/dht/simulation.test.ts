import { describe, expect, it } from 'vitest';
import { DEFAULT_DHT_SCENARIO, runDhtSimulation } from '../../src/sim/dht-sim.js';

/** The DHT on the simulated network: deterministic, and lookups that find what was announced. */

describe('DHT simulation', () => {
  it('same scenario and seed, same report; lookups end in a few hops and find the announced peer', () => {
    const s = { ...DEFAULT_DHT_SCENARIO, nodes: 500, lookups: 20, seed: 3 };
    const a = runDhtSimulation(s);
    const b = runDhtSimulation(s);
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    expect(a.hops.max).toBeLessThanOrEqual(8);
    expect(a.hops.p50).toBeGreaterThanOrEqual(1);
    expect(a.found).toBeGreaterThanOrEqual(16);
    expect(a.table.mean).toBeGreaterThan(8);
    // Another seed, another run.
    expect(JSON.stringify(runDhtSimulation({ ...s, seed: 4 }))).not.toBe(JSON.stringify(a));
  }, 60_000);
});
