import { describe, expect, it } from 'vitest';
import { MAX_GRID_PEERS, withAnnouncedPeers, withAnnouncedSwarms } from '../../src/tracker/feed.js';

/** The dashboard's merge of a shared store's announce peers into what the registry shows. */

const compact = (a: number, port: number) =>
  Buffer.from([10, 0, 0, a, port >> 8, port & 255]).toString('latin1');

describe('dashboard: announce peers from a shared store', () => {
  it('one row per swarm: counts of a swarm in both are added; the largest first', () => {
    const own = [
      { id: 'name:x', file: 'x', info_hash: null, size: 10, pieces: 1, seeds: 1, leechers: 0, downloaded: 0 },
      {
        id: 'a'.repeat(40),
        file: 'y',
        info_hash: 'a'.repeat(40),
        size: 5,
        pieces: 1,
        seeds: 1,
        leechers: 1,
        downloaded: 2,
      },
    ];
    const rows = withAnnouncedSwarms(
      own,
      new Map([
        ['a'.repeat(40), { complete: 2, incomplete: 3, downloaded: 1 }],
        ['b'.repeat(40), { complete: 0, incomplete: 4, downloaded: 0 }],
      ]),
    );
    expect(rows.map((r) => [r.id, r.seeds, r.leechers, r.downloaded])).toEqual([
      ['a'.repeat(40), 3, 4, 3],
      ['b'.repeat(40), 0, 4, 0],
      ['name:x', 1, 0, 0],
    ]);
    // The registry's rows are not changed in place.
    expect(own[1]?.seeds).toBe(1);
  });

  it('a swarm only the store knows gets a view of its peers; the grid stays capped', () => {
    const peers = Array.from({ length: MAX_GRID_PEERS + 5 }, (_, i) => ({
      peerId: `-XX0001-${String(i).padStart(12, '0')}`,
      compact: compact(i % 250, 6000 + i),
      seed: i === 0,
    }));
    const v = withAnnouncedPeers(null, 'c'.repeat(40), {
      complete: 1,
      incomplete: peers.length - 1,
      downloaded: 0,
      peers,
    });
    expect(v.totalPeers).toBe(peers.length);
    expect(v.peers.length).toBe(MAX_GRID_PEERS);
    expect(v.peers[0]).toMatchObject({
      address: '10.0.0.0:6000',
      source: 'announce',
      complete: true,
      have: null,
    });
  });
});
