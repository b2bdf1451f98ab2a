/** Every tracker limit, with its default and the reason for it. SECURITY.md lists them for users. */
export interface TrackerLimits {
  /** Seconds a client should wait between announces (BEP 3 `interval`). */
  intervalSec: number;
  /** Seconds a client must wait at least between announces (`min interval`). */
  minIntervalSec: number;
  /** A peer not heard from for this long is dropped (default: twice the interval). */
  peerTimeoutMs: number;
  /** Peers one swarm holds at most: bounds memory per swarm. */
  maxPeersPerSwarm: number;
  /** Swarms the tracker holds at most: bounds memory against info-hash spraying. */
  maxSwarms: number;
  /** Chunks one file may have: 2^20 pieces of 16 KiB is already 16 GiB; larger files use larger pieces. */
  maxPieces: number;
  /** Peers an /announce reply holds when the client does not say (BEP 3 clients usually ask 50). */
  defaultNumwant: number;
  /** Peers an /announce or /get_peers reply holds at most, whatever numwant asks. */
  maxNumwant: number;
  /** Peers a /get_peers reply holds when numwant is not given. */
  defaultGetPeers: number;
  /** Info hashes one /scrape may ask about. */
  maxScrapeHashes: number;
  /** Files one /register may list. */
  maxFilesPerRegister: number;
  /** Largest JSON body accepted, in bytes (a 2^20-chunk bitfield in base64 is ~175 KiB; index lists are larger). */
  maxBodyBytes: number;
}

export function defaultLimits(intervalSec = 30): TrackerLimits {
  return {
    intervalSec,
    minIntervalSec: Math.max(1, Math.floor(intervalSec / 2)),
    peerTimeoutMs: intervalSec * 2 * 1000,
    maxPeersPerSwarm: 200_000,
    maxSwarms: 100_000,
    maxPieces: 1 << 20,
    defaultNumwant: 50,
    maxNumwant: 200,
    defaultGetPeers: 50,
    maxScrapeHashes: 64,
    maxFilesPerRegister: 256,
    maxBodyBytes: 1 << 20,
  };
}
