import { describe, expect, it } from 'vitest';
import { Bitfield } from '../../src/core/bitfield.js';
import type { AnnounceResult, AnnounceState, TrackerClient } from '../../src/net/tracker-client.js';
import { Announcer } from '../../src/node/announcer.js';

/** BEP 12 tiers in the announcer, with trackers and timers that the test drives. */

class FakeTracker implements TrackerClient {
  calls: (string | undefined)[] = [];
  constructor(
    readonly url: string,
    public up: boolean,
  ) {}
  async announce(s: AnnounceState): Promise<AnnounceResult> {
    this.calls.push(s.event);
    if (!this.up) throw new Error(`${this.url} down`);
    return { interval: 60, peers: [{ ip: '10.0.0.1', port: 1 }] };
  }
}

function harness(tiers: FakeTracker[][]) {
  const due: { ms: number; fn: () => void }[] = [];
  const failures: [string, number][] = [];
  const answered: string[] = [];
  const timers = {
    after: (ms: number, fn: () => void) => {
      const t = { ms, fn };
      due.push(t);
      return () => {
        const i = due.indexOf(t);
        if (i !== -1) due.splice(i, 1);
      };
    },
    every: () => () => {},
  };
  const a = new Announcer(
    tiers,
    {
      state: (event) => ({ uploaded: 0, downloaded: 0, left: 1, have: new Bitfield(1), event }),
      peers: (url) => answered.push(url),
      failed: (url, _m, retry) => failures.push([url, retry]),
      have: () => new Bitfield(1),
    },
    timers,
    () => 0.999,
    30_000,
  );
  const settle = () => new Promise((r) => setTimeout(r, 5));
  const fire = async () => {
    const batch = due.splice(0);
    for (const t of batch) t.fn();
    await settle();
  };
  return { a, due, failures, answered, settle, fire };
}

describe('announce-list tiers (BEP 12)', () => {
  it('tries a tier’s trackers in turn; the one that answers moves to the front and is used next', async () => {
    const [a1, a2, b1] = [
      new FakeTracker('a1', false),
      new FakeTracker('a2', true),
      new FakeTracker('b1', true),
    ];
    const h = harness([[a1, a2], [b1]]);
    h.a.start();
    await h.settle();
    // Every tier is announced to: tier a through its second tracker (the first failed), tier b.
    expect(h.answered.sort()).toEqual(['a2', 'b1']);
    expect(h.failures).toEqual([['a1', 0]]);
    expect(h.a.tiers[0]?.map((t) => t.url)).toEqual(['a2', 'a1']);
    // The next announce of tier a goes to a2 first, after the floor (the trackers asked 60 s).
    expect(h.due.map((d) => d.ms)).toEqual([60_000, 60_000]);
    await h.fire();
    expect(a1.calls).toHaveLength(1);
    expect(a2.calls).toEqual(['started', undefined]);
  });

  it('a dead tier backs off on its own while the others carry on', async () => {
    const [a1, a2, b1] = [
      new FakeTracker('a1', false),
      new FakeTracker('a2', false),
      new FakeTracker('b1', true),
    ];
    const h = harness([[a1, a2], [b1]]);
    h.a.start();
    await h.settle();
    expect(h.answered).toEqual(['b1']);
    expect(h.failures).toEqual([
      ['a1', 0],
      ['a2', 2_000],
    ]);
    expect(h.due.map((d) => d.ms).sort((x, y) => x - y)).toEqual([2_000, 60_000]);
    h.failures.length = 0;
    // The retry of the dead tier: both fail again; the next wait doubles.
    const retry = h.due.find((d) => d.ms === 2_000);
    h.due.splice(h.due.indexOf(retry as (typeof h.due)[number]), 1);
    retry?.fn();
    await h.settle();
    expect(h.failures).toEqual([
      ['a1', 0],
      ['a2', 4_000],
    ]);
  });

  it('sends completed and stopped to each tier’s current tracker only', async () => {
    const [a1, a2, b1] = [
      new FakeTracker('a1', true),
      new FakeTracker('a2', true),
      new FakeTracker('b1', true),
    ];
    const h = harness([[a1, a2], [b1]]);
    h.a.start();
    await h.settle();
    h.a.completed();
    await h.a.stop();
    const current = h.a.tiers[0]?.[0] as FakeTracker;
    const other = current === a1 ? a2 : a1;
    expect(current.calls).toEqual(['started', 'completed', 'stopped']);
    expect(other.calls).toEqual([]);
    expect(b1.calls).toEqual(['started', 'completed', 'stopped']);
  });
});
