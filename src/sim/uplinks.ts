import type { SimPeer } from './sim-peer.js';

/**
 * Where the swarm's upload goes: each second of virtual time, a sample of the live peers' uplinks
 * (up to UPLINK_SAMPLE_PEERS, evenly spread), each either busy or idle for the first of these
 * reasons that holds, weighed by its upload capacity: shares of the swarm's capacity over every
 * sample of the run (to the last completion), comparable with the upload utilization.
 */

/** Peers looked at per sample at most (a 10,000-peer swarm's sample costs what 1,000's does). */
export const UPLINK_SAMPLE_PEERS = 1000;
export const UPLINK_SAMPLE_MS = 1000;

export interface UplinkShares {
  /** Peer-samples taken. */
  samples: number;
  /** Their upload capacity summed (the shares' denominator). */
  capacity: number;
  /** Sending (a piece on the wire or queued behind one). */
  busy: number;
  /** Idle: holds no piece yet. */
  empty: number;
  /** Idle: holds pieces, but unchokes nobody (nobody interested, or the round has not come). */
  noneUnchoked: number;
  /** Idle: the peers it unchokes want nothing it has. */
  notInterested: number;
  /** Idle: a peer it unchokes wants a piece it has, but asked another peer for it (or its request is on its way). */
  askedElsewhere: number;
}

export function emptyUplinkShares(): UplinkShares {
  return { samples: 0, capacity: 0, busy: 0, empty: 0, noneUnchoked: 0, notInterested: 0, askedElsewhere: 0 };
}

/** Adds one sample of `peers` (the live ones; the seeds too) at `now` to `acc` (counts, not yet shares). */
export function sampleUplinks(peers: readonly SimPeer[], now: number, acc: UplinkShares): void {
  const step = Math.max(1, Math.floor(peers.length / UPLINK_SAMPLE_PEERS));
  for (let k = 0; k < peers.length; k += step) {
    const p = peers[k] as SimPeer;
    if (p.gone || p.malicious) continue;
    const w = p.upload;
    acc.samples++;
    acc.capacity += w;
    if (p.upBusy > now) {
      acc.busy += w;
      continue;
    }
    if (p.core.picker.have.count === 0) {
      acc.empty += w;
      continue;
    }
    let unchoked = 0;
    let interested = 0;
    for (const l of p.core.links.values()) {
      if (l.amChoking) continue;
      unchoked++;
      if (l.peerInterested) interested++;
    }
    if (unchoked === 0) acc.noneUnchoked += w;
    else if (interested === 0) acc.notInterested += w;
    else acc.askedElsewhere += w;
  }
}

/** The sums as shares of the capacity sampled. */
export function uplinkShares(acc: UplinkShares): UplinkShares {
  const n = acc.capacity > 0 ? acc.capacity : 1;
  return {
    samples: acc.samples,
    capacity: acc.capacity,
    busy: acc.busy / n,
    empty: acc.empty / n,
    noneUnchoked: acc.noneUnchoked / n,
    notInterested: acc.notInterested / n,
    askedElsewhere: acc.askedElsewhere / n,
  };
}
