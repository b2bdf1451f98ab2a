import type { TorrentCore } from '../swarm/torrent-core.js';

/** What a peer reports to a swarmshare tracker for its dashboard: totals, pieces in flight, bytes by peer. */
export function transferStats(node: {
  uploaded: number;
  downloaded: number;
  receivedFrom: ReadonlyMap<string, number>;
  core: TorrentCore;
}) {
  const from: Record<string, number> = {};
  for (const [id, n] of node.receivedFrom) from[Buffer.from(id, 'latin1').toString('hex')] = n;
  return {
    uploaded: node.uploaded,
    downloaded: node.downloaded,
    fetching: [...node.core.picker.active.keys()].slice(0, 1024),
    from,
  };
}
