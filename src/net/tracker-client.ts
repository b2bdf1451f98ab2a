import bencode from 'bencode';
import type { Bitfield } from '../core/bitfield.js';
import { type PeerAddress, parseCompactPeers, usablePeerAddress } from '../core/ip.js';
import { boundedFetch } from './bounded-fetch.js';
import { TrackerError } from './tracker-client-error.js';

export { MAX_REDIRECTS, TRACKER_TIMEOUT_MS } from './bounded-fetch.js';
export { TrackerError } from './tracker-client-error.js';

/**
 * Talking to trackers: a standard BitTorrent HTTP tracker (`.../announce`, BEP 3/23/7) or our own
 * tracker's JSON API (any other URL: its base). One interface, so the peer doesn't care which.
 */

export type { PeerAddress } from '../core/ip.js';
export { parseCompactPeers };

export interface AnnounceInfo {
  infoHash: Uint8Array;
  peerId: Uint8Array;
  /** The address we are reachable at (announced as `ip`) and our port. */
  ip: string;
  port: number;
  name: string;
  pieceCount: number;
  length: number;
}

export interface AnnounceState {
  uploaded: number;
  downloaded: number;
  left: number;
  have: Bitfield;
  event?: 'started' | 'completed' | 'stopped';
}

export interface AnnounceResult {
  interval: number;
  peers: PeerAddress[];
}

export interface TrackerClient {
  readonly url: string;
  announce(state: AnnounceState): Promise<AnnounceResult>;
  /** Lets go of its resources (a UDP socket). */
  close?(): void;
}

/** Peers we ask a tracker for. */
export const NUMWANT = 50;
/** Peers taken from one reply at most: we ask for NUMWANT; a tracker that sends more is trimmed. */
export const MAX_PEERS_PER_REPLY = 500;
/**
 * A BitTorrent tracker's reply read at most: the dictionary model with peer ids takes ~70 bytes a
 * peer, so this holds ~3,500 peers, far past what we ask for. Past it the reply is refused.
 */
export const MAX_ANNOUNCE_REPLY_BYTES = 256 * 1024;
/**
 * A swarmshare tracker's JSON reply read at most: its largest legitimate one is a get_peers of
 * NUMWANT peers' bitfields for a file of 2^20 pieces (50 x 171 KiB of base64, ~8.5 MiB).
 */
export const MAX_JSON_REPLY_BYTES = 12 * 1024 * 1024;

function pct(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) {
    const unreserved =
      (b >= 0x30 && b <= 0x39) ||
      (b >= 0x41 && b <= 0x5a) ||
      (b >= 0x61 && b <= 0x7a) ||
      b === 0x2d ||
      b === 0x2e ||
      b === 0x5f ||
      b === 0x7e;
    s += unreserved ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`;
  }
  return s;
}

const decoder = new TextDecoder();

export class HttpTrackerClient implements TrackerClient {
  readonly url: string;
  readonly #info: AnnounceInfo;
  readonly #key: string;

  constructor(url: string, info: AnnounceInfo, key: string) {
    this.url = url;
    this.#info = info;
    this.#key = key;
  }

  async announce(s: AnnounceState): Promise<AnnounceResult> {
    const i = this.#info;
    const q = [
      `info_hash=${pct(i.infoHash)}`,
      `peer_id=${pct(i.peerId)}`,
      `port=${i.port}`,
      `uploaded=${s.uploaded}`,
      `downloaded=${s.downloaded}`,
      `left=${s.left}`,
      'compact=1',
      `numwant=${s.event === 'stopped' ? 0 : NUMWANT}`,
      `key=${this.#key}`,
      `ip=${encodeURIComponent(i.ip)}`,
    ];
    if (s.event) q.push(`event=${s.event}`);
    const sepChar = this.url.includes('?') ? '&' : '?';
    const { status, body } = await boundedFetch(
      `${this.url}${sepChar}${q.join('&')}`,
      MAX_ANNOUNCE_REPLY_BYTES,
    );
    let d: Record<string, unknown>;
    try {
      d = bencode.decode(body) as Record<string, unknown>;
    } catch {
      throw new TrackerError(`tracker answered HTTP ${status} with something that is not bencode`);
    }
    if (d['failure reason'] instanceof Uint8Array) {
      throw new TrackerError(`tracker refused: ${decoder.decode(d['failure reason'])}`);
    }
    const peers: PeerAddress[] = [];
    if (d.peers instanceof Uint8Array) peers.push(...parseCompactPeers(d.peers, 6, MAX_PEERS_PER_REPLY));
    else if (Array.isArray(d.peers)) {
      for (const p of (d.peers as Record<string, unknown>[]).slice(0, MAX_PEERS_PER_REPLY)) {
        if (
          p === null ||
          typeof p !== 'object' ||
          !(p.ip instanceof Uint8Array) ||
          typeof p.port !== 'number'
        )
          continue;
        const ip = usablePeerAddress(decoder.decode(p.ip), p.port);
        if (ip !== null) peers.push({ ip, port: p.port });
      }
    }
    if (d.peers6 instanceof Uint8Array)
      peers.push(...parseCompactPeers(d.peers6, 18, MAX_PEERS_PER_REPLY - peers.length));
    const interval = typeof d.interval === 'number' && d.interval > 0 ? d.interval : 1800;
    return { interval, peers };
  }
}

/** A peer as our tracker's /get_peers shows it, with the chunks it holds when known. */
export interface SwarmPeer extends PeerAddress {
  name: string;
  /** BEP 3 bitfield of its chunks; null when unknown (a BitTorrent client that announced). */
  bitfield: Uint8Array | null;
  complete: boolean;
}

/** Transfer figures sent with /update for the tracker's dashboard. */
export interface TransferStats {
  uploaded: number;
  downloaded: number;
  fetching: number[];
  /** Bytes received per peer, keyed by wire peer id (40 hex). */
  from: Record<string, number>;
}

/** Our tracker's JSON API: register once, then update (with the chunk bitfield) and get_peers. */
export class JsonTrackerClient implements TrackerClient {
  readonly url: string;
  readonly #info: AnnounceInfo;
  readonly #peerName: string;
  #key: string | null = null;
  #interval = 30;
  /** Set by the peer: what it reports with each update. */
  stats: (() => TransferStats) | null = null;

  constructor(url: string, info: AnnounceInfo, peerName: string) {
    this.url = url.replace(/\/+$/, '');
    this.#info = info;
    this.#peerName = peerName;
  }

  async #post(path: string, body: unknown): Promise<{ status: number; json: JsonReply }> {
    const { status, body: raw } = await boundedFetch(`${this.url}${path}`, MAX_JSON_REPLY_BYTES, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status, json: parseJson(raw, status) };
  }

  #file(have: Bitfield) {
    return {
      info_hash: Buffer.from(this.#info.infoHash).toString('hex'),
      bitfield: Buffer.from(have.bytes).toString('base64'),
      pieces: this.#info.pieceCount,
      size: this.#info.length,
    };
  }

  async #register(have: Bitfield): Promise<void> {
    const r = await this.#post('/register', {
      peer_id: this.#peerName,
      wire_id: Buffer.from(this.#info.peerId).toString('hex'),
      ip: this.#info.ip,
      port: this.#info.port,
      files: { [this.#info.name]: this.#file(have) },
      ...(this.#key ? { key: this.#key } : {}),
    });
    if (r.status !== 200) throw new TrackerError(`register refused: ${r.json.error?.message ?? r.status}`);
    this.#key = r.json.key as string;
    if (typeof r.json.interval === 'number' && r.json.interval > 0) this.#interval = r.json.interval;
  }

  #chain: Promise<unknown> = Promise.resolve();

  /** Tells the tracker which chunks we hold (registering first, or again after a tracker restart). */
  report(have: Bitfield): Promise<void> {
    // One request at a time: two registrations racing would refuse each other.
    const run = this.#chain.then(() => this.#report(have));
    this.#chain = run.catch(() => {});
    return run;
  }

  async #report(have: Bitfield): Promise<void> {
    if (this.#key === null) return this.#register(have);
    const u = await this.#post('/update', {
      peer_id: this.#peerName,
      key: this.#key,
      file: Buffer.from(this.#info.infoHash).toString('hex'),
      bitfield: Buffer.from(have.bytes).toString('base64'),
      pieces: this.#info.pieceCount,
      size: this.#info.length,
      ...(this.stats ? { stats: this.stats() } : {}),
    });
    if (u.status === 404 && u.json.error?.code === 'ERR_UNKNOWN_PEER') {
      // The tracker restarted or dropped us: register again.
      this.#key = null;
      return this.#register(have);
    }
    if (u.status !== 200) throw new TrackerError(`update refused: ${u.json.error?.message ?? u.status}`);
  }

  /** The swarm's peers (not us) and the chunks each holds. */
  async swarmPeers(): Promise<SwarmPeer[]> {
    const hex = Buffer.from(this.#info.infoHash).toString('hex');
    const { status, body } = await boundedFetch(
      `${this.url}/get_peers?file=${hex}&exclude=${encodeURIComponent(this.#peerName)}&numwant=${NUMWANT}&format=bitfield`,
      MAX_JSON_REPLY_BYTES,
    );
    const g = parseJson(body, status);
    if (status !== 200) throw new TrackerError(`get_peers refused: ${g.error?.message ?? status}`);
    const out: SwarmPeer[] = [];
    if (g.peers === null || typeof g.peers !== 'object')
      throw new TrackerError('get_peers answer has no peers');
    for (const [name, p] of Object.entries(
      g.peers as Record<string, { ip: string; port: number; bitfield: string | null; complete: boolean }>,
    ).slice(0, MAX_PEERS_PER_REPLY)) {
      if (p === null || typeof p !== 'object' || typeof p.ip !== 'string') continue;
      const ip = usablePeerAddress(p.ip, p.port);
      if (ip === null) continue;
      out.push({
        name,
        ip,
        port: p.port,
        bitfield: typeof p.bitfield === 'string' ? new Uint8Array(Buffer.from(p.bitfield, 'base64')) : null,
        complete: p.complete === true,
      });
    }
    return out;
  }

  async announce(s: AnnounceState): Promise<AnnounceResult> {
    if (s.event === 'stopped') {
      if (this.#key !== null) await this.#post('/deregister', { peer_id: this.#peerName, key: this.#key });
      this.#key = null;
      return { interval: 0, peers: [] };
    }
    await this.report(s.have);
    const peers: PeerAddress[] = (await this.swarmPeers()).map((p) => ({ ip: p.ip, port: p.port }));
    return { interval: this.#interval, peers };
  }
}

/** A tracker's JSON reply: read field by field, each checked where it is used. */
// biome-ignore lint/suspicious/noExplicitAny: untrusted JSON, narrowed at each use
type JsonReply = Record<string, any>;

function parseJson(raw: Uint8Array, status: number): JsonReply {
  try {
    return JSON.parse(decoder.decode(raw)) as JsonReply;
  } catch {
    throw new TrackerError(`tracker answered HTTP ${status} with something that is not JSON`);
  }
}
