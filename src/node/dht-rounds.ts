import type { Cancel, Clock, Timers } from '../core/deps.js';
import type { PeerAddress } from '../net/tracker-client.js';
import { DHT_INTERVAL_MS, DHT_SEARCH_MS, type PeerDht } from './peer-options.js';

/**
 * A torrent's DHT rounds: a lookup that also announces us, now and then periodically (a seed
 * every `intervalMs`, a download at least every DHT_SEARCH_MS); one at a time.
 */
export function startDhtRounds(o: {
  dht: PeerDht;
  infoHash: Uint8Array;
  intervalMs?: number;
  clock: Clock;
  timers: Timers;
  stopped: () => boolean;
  complete: () => boolean;
  port: () => number;
  found: (peers: readonly PeerAddress[]) => void;
}): Cancel {
  const every = o.intervalMs ?? DHT_INTERVAL_MS;
  let running = false;
  let last = Number.NEGATIVE_INFINITY;
  const round = () => {
    if (o.stopped() || running) return;
    const now = o.clock.now();
    const due = o.complete() ? every : Math.min(every, DHT_SEARCH_MS);
    if (now - last < due) return;
    running = true;
    last = now;
    o.dht.getPeers(o.infoHash, o.port()).then(
      (r) => {
        running = false;
        if (!o.stopped()) o.found(r.peers);
      },
      () => {
        running = false;
      },
    );
  };
  round();
  return o.timers.every(Math.min(1000, every), round);
}
