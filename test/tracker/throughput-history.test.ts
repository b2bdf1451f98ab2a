import { describe, expect, it } from 'vitest';
import { HISTORY_SECONDS, ThroughputHistory } from '../../src/tracker/throughput-history.js';
import { post, testTracker } from '../support/tracker.js';

describe("a swarm's throughput history (what the tracker sends with a snapshot)", () => {
  it("counts reported bytes per second from a peer's first sight on, never carries a rate forward, keeps five minutes", async () => {
    const t = testTracker();
    const reg = await post(t, '/register', {
      peer_id: 'h1',
      port: 7001,
      files: { 'h.bin': { chunks: [], pieces: 8 } },
    });
    const key = (reg.json as { key: string }).key;
    const update = (downloaded: number) =>
      post(t, '/update', { peer_id: 'h1', key, file: 'h.bin', stats: { downloaded } });
    const h = new ThroughputHistory();
    const id = [...t.registry.swarms.keys()][0] as string;
    await update(5_000_000); // its past: not counted
    h.sample(t.registry, 1000);
    await update(6_000_000);
    h.sample(t.registry, 2000);
    h.sample(t.registry, 3000); // nothing reported: 0, not the last rate again
    await update(6_500_000);
    h.sample(t.registry, 3500); // half a second: 500 kB in 0.5 s
    expect(h.series(id).values).toEqual([0, 1_000_000, 0, 1_000_000]);
    for (let i = 0; i < HISTORY_SECONDS + 10; i++) h.sample(t.registry, 4000 + i * 1000);
    expect(h.series(id).values).toHaveLength(HISTORY_SECONDS);
    expect(h.series('nope').values).toEqual([]);
  });
});
