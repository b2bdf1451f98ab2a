import {
  type AnnounceInfo,
  type AnnounceResult,
  HttpTrackerClient,
  JsonTrackerClient,
  type TrackerClient,
} from './tracker-client.js';
import { TrackerError } from './tracker-client-error.js';
import { type UdpClientOpts, UdpTrackerClient } from './udp-tracker-client.js';

/**
 * The client for a tracker URL: `udp://` speaks BEP 15; an http(s) URL whose path ends in
 * `announce` speaks BEP 3; any other http(s) URL is a swarmshare tracker's JSON API base. Any other
 * scheme gets a client that says so on every announce (the peer's other trackers carry on).
 */
export function trackerClientFor(
  url: string,
  info: AnnounceInfo,
  key: string,
  peerName: string,
  udp: UdpClientOpts = {},
): TrackerClient {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return new Unusable(url, `'${url}' is not a URL`);
  }
  if (u.protocol === 'udp:') {
    try {
      return new UdpTrackerClient(url, info, key, udp);
    } catch (e) {
      return new Unusable(url, (e as Error).message);
    }
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    return new Unusable(
      url,
      `unsupported tracker scheme ${u.protocol}// (swarmshare speaks http, https and udp)`,
    );
  if (/announce[^/]*$/.test(u.pathname)) return new HttpTrackerClient(url, info, key);
  return new JsonTrackerClient(url, info, peerName);
}

/** A tracker we cannot talk to: every announce fails with the reason. */
class Unusable implements TrackerClient {
  readonly url: string;
  readonly #why: string;
  constructor(url: string, why: string) {
    this.url = url;
    this.#why = why;
  }
  async announce(): Promise<AnnounceResult> {
    throw new TrackerError(this.#why);
  }
}
