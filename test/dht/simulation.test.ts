import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_DHT_SCENARIO, runDhtSimulation } from '../../src/sim/dht-sim.js';
import { start } from '../support/proc.js';

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

  it('swarmshare simulate-dht prints the lookups and writes the report', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ss-dhtsim-'));
    try {
      const report = join(dir, 'r.json');
      const p = start('node', [
        'dist/cli/main.js',
        'simulate-dht',
        '--nodes',
        '300',
        '--lookups',
        '5',
        '--seed',
        '9',
        '--report',
        report,
      ]);
      expect(await p.exited, p.output()).toBe(0);
      expect(p.output()).toMatch(/Lookups: 5; hops p50 \d+/);
      const r = JSON.parse(await readFile(report, 'utf8'));
      expect(r.scenario).toMatchObject({ nodes: 300, lookups: 5, seed: 9 });
      expect(r.found).toBeGreaterThanOrEqual(3);
      const bad = start('node', ['dist/cli/main.js', 'simulate-dht', '--churn', '1.5']);
      expect(await bad.exited).not.toBe(0);
      expect(bad.output()).toMatch(/--churn.*invalid/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
