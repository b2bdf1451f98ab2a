import bencode from 'bencode';
import { SwarmshareError } from '../core/errors.js';
import { latin1ToHex } from '../core/ids.js';
import { compactAddress, compactIp, compactPort, parseIp } from '../core/ip.js';
import type { TrackerLimits } from './limits.js';
import type { PeerRecord, Swarm, SwarmRegistry } from './registry.js';

/**
 * BEP 3 /announce and BEP 48 /scrape as pure handlers: the raw query string in, bencoded bytes out.
 * Bad requests get a bencoded `failure reason` (BEP 3), never an HTTP error.
 */

/** Longest query string we parse: a scrape of maxScrapeHashes hashes fits with room to spare. */
export const MAX_QUERY_LENGTH = 8192;
/** Longest `key` (BEP 3 leaves it open; clients send 4 to 20 bytes). */
export const MAX_KEY_LENGTH = 64;

/**
 * Splits a query string into raw values: percent escapes become bytes, kept as latin1 strings so
 * binary info hashes and peer ids survive. A name may repeat (scrape sends info_hash many times).
 */
export function parseRawQuery(query: string): Map<string, string[]> {
  if (query.length > MAX_QUERY_LENGTH) {
    throw new SwarmshareError('ERR_BAD_PARAM', `query string longer than ${MAX_QUERY_LENGTH} characters`);
  }
  const out = new Map<string, string[]>();
  if (query === '') return out;
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const name = unescapeLatin1(eq === -1 ? part : part.slice(0, eq));
    const value = eq === -1 ? '' : unescapeLatin1(part.slice(eq + 1));
    const list = out.get(name);
    if (list === undefined) out.set(name, [value]);
    else list.push(value);
  }
  return out;
}

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

const scratch = Buffer.allocUnsafe(MAX_QUERY_LENGTH);

/**
 * Percent-decodes into bytes and returns them as one flat latin1 string (not a chain of
 * concatenations: a tracker keeps 100,000s of these as peer ids).
 */
function unescapeLatin1(s: string): string {
  if (s.indexOf('%') === -1 && s.indexOf('+') === -1) return s;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 37 /* % */) {
      const hi = hexVal(s.charCodeAt(i + 1));
      const lo = hexVal(s.charCodeAt(i + 2));
      if (hi < 0 || lo < 0)
        throw new SwarmshareError('ERR_BAD_PARAM', 'malformed percent escape in query string');
      scratch[n++] = hi * 16 + lo;
      i += 2;
    } else if (c === 43 /* + */) {
      scratch[n++] = 32;
    } else {
      scratch[n++] = c & 0xff;
    }
  }
  return scratch.toString('latin1', 0, n);
}

function one(q: Map<string, string[]>, name: string): string | undefined {
  const v = q.get(name);
  return v === undefined ? undefined : v[v.length - 1];
}

const INTEGER = /^[0-9]{1,16}$/;

function nonNegative(q: Map<string, string[]>, name: string, fallback: number): number {
  const v = one(q, name);
  if (v === undefined || v === '') return fallback;
  if (!INTEGER.test(v) || !Number.isSafeInteger(Number(v))) {
    throw new SwarmshareError('ERR_BAD_PARAM', `${name} must be a non-negative integer`);
  }
  return Number(v);
}

export type AnnounceEvent = 'started' | 'completed' | 'stopped' | 'empty';

export interface AnnounceRequest {
  infoHash: string; // 20 raw bytes as latin1
  peerId: string; // 20 raw bytes as latin1
  port: number;
  uploaded: number;
  downloaded: number;
  left: number;
  event: AnnounceEvent;
  numwant: number;
  compact: boolean;
  noPeerId: boolean;
  key: string | null;
  ip: string;
}

export function parseAnnounce(
  query: string,
  remoteIp: string,
  defaultNumwant: number,
  trustIp: boolean,
): AnnounceRequest {
  const q = parseRawQuery(query);
  const infoHash = one(q, 'info_hash');
  if (infoHash === undefined) throw new SwarmshareError('ERR_BAD_INFO_HASH', 'missing info_hash');
  if (infoHash.length !== 20) {
    throw new SwarmshareError('ERR_BAD_INFO_HASH', `info_hash must be 20 bytes, got ${infoHash.length}`);
  }
  const peerId = one(q, 'peer_id');
  if (peerId === undefined) throw new SwarmshareError('ERR_BAD_PEER_ID', 'missing peer_id');
  if (peerId.length !== 20)
    throw new SwarmshareError('ERR_BAD_PEER_ID', `peer_id must be 20 bytes, got ${peerId.length}`);
  const portText = one(q, 'port');
  if (portText === undefined) throw new SwarmshareError('ERR_BAD_PORT', 'missing port');
  const port = Number(portText);
  if (!/^[0-9]{1,5}$/.test(portText) || port < 1 || port > 65535) {
    throw new SwarmshareError('ERR_BAD_PORT', 'port must be an integer from 1 to 65535');
  }
  const ev = one(q, 'event') ?? '';
  if (ev !== '' && ev !== 'started' && ev !== 'completed' && ev !== 'stopped' && ev !== 'empty') {
    throw new SwarmshareError('ERR_BAD_PARAM', 'event must be started, completed, stopped or empty');
  }
  const key = one(q, 'key') ?? null;
  if (key !== null && key.length > MAX_KEY_LENGTH) {
    throw new SwarmshareError('ERR_BAD_PARAM', `key longer than ${MAX_KEY_LENGTH} bytes`);
  }
  const ipParam = one(q, 'ip');
  let ip = remoteIp;
  if (ipParam !== undefined && ipParam !== '' && trustIp) {
    if (parseIp(ipParam) === null)
      throw new SwarmshareError('ERR_BAD_IP', 'ip must be an IPv4 or IPv6 address');
    ip = ipParam;
  }
  return {
    infoHash,
    peerId,
    port,
    uploaded: nonNegative(q, 'uploaded', 0),
    downloaded: nonNegative(q, 'downloaded', 0),
    left: nonNegative(q, 'left', -1),
    event: ev === '' ? 'empty' : ev,
    numwant: nonNegative(q, 'numwant', defaultNumwant),
    compact: one(q, 'compact') !== '0',
    noPeerId: one(q, 'no_peer_id') === '1',
    key,
    ip,
  };
}

export interface AnnounceResult {
  swarm: Swarm | undefined;
  peer: PeerRecord | undefined;
  /** True when this announce made the peer a seed (a completed download). */
  completed: boolean;
}

/** Applies one announce to the registry. */
export function applyAnnounce(reg: SwarmRegistry, a: AnnounceRequest, now: number): AnnounceResult {
  const hex = latin1ToHex(a.infoHash);
  const ip = parseIp(a.ip);
  if (ip === null) throw new SwarmshareError('ERR_BAD_IP', `'${a.ip}' is not an IPv4 or IPv6 address`);
  if (a.event === 'stopped') {
    const s = reg.infoHashSwarm(hex, false, now);
    const p = s?.peers.get(a.peerId);
    if (s !== undefined && p !== undefined) {
      checkKey(p, a.key);
      // A client that stops right as it finishes (aria2c --seed-time=0) never sends `completed`.
      if (p.chunks === null && p.leftState === 1 && a.left === 0) s.downloaded++;
      reg.removePeer(s, p);
      if (p.isJson) reg.clients.get(p.peerId)?.swarms.delete(s);
    }
    return { swarm: s, peer: undefined, completed: false };
  }
  const s = reg.infoHashSwarm(hex, true, now) as Swarm;
  let p = s.peers.get(a.peerId);
  const isNew = p === undefined;
  const wasLeecher = p !== undefined && p.chunks === null && p.leftState === 1;
  if (p === undefined) {
    p = reg.addPeer(s, a.peerId, compactAddress(ip, a.port), a.key, false, now);
  } else {
    checkKey(p, a.key);
    if (p.key === null && a.key !== null) p.key = a.key;
    reg.setAddress(p, ip, a.port);
    reg.touch(p, now);
  }
  if (p.chunks === null) reg.setLeft(s, p, a.left);
  // A finished download: a leecher we knew reaching left=0 (with or without event=completed),
  // or a first announce that says `completed`. A JSON peer's is counted when its chunk set fills.
  const completed = p.chunks === null && p.complete && (wasLeecher || (isNew && a.event === 'completed'));
  if (completed) s.downloaded++;
  return { swarm: s, peer: p, completed };
}

function checkKey(p: PeerRecord, key: string | null): void {
  if (p.key !== null && key !== p.key) {
    throw new SwarmshareError('ERR_WRONG_KEY', 'this peer_id is taken by a peer with another key');
  }
}

/** What an announce gives back: the swarm's counts after it, and peers for the announcer. */
export interface AnnounceOutcome {
  complete: number;
  incomplete: number;
  downloaded: number;
  /**
   * Other peers (never the announcer), each as its compact address (6 or 18 bytes, latin1) and
   * peer id (latin1; a store may leave it '' when the request wants a compact reply or no ids).
   */
  peers: { compact: string; peerId: string }[];
}

/** One swarm's counts, as a scrape gives them. */
export interface SwarmCounts {
  complete: number;
  incomplete: number;
  downloaded: number;
  /** The swarm's name, when the JSON API gave one (in-memory store only). */
  name?: string;
}

/** The bencoded reply to an announce, from what the store gave. */
export function announceReply(limits: TrackerLimits, a: AnnounceRequest, o: AnnounceOutcome): Uint8Array {
  const { complete, incomplete, downloaded, peers } = o;
  if (a.compact) {
    let v4 = '';
    let v6 = '';
    for (const p of peers) {
      if (p.compact.length === 6) v4 += p.compact;
      else v6 += p.compact;
    }
    return compactReply(limits, complete, incomplete, downloaded, v4, v6);
  }
  const reply = {
    interval: limits.intervalSec,
    'min interval': limits.minIntervalSec,
    complete,
    incomplete,
    downloaded,
    peers: peers.map((p) => {
      const d: Record<string, unknown> = { ip: compactIp(p.compact), port: compactPort(p.compact) };
      if (!a.noPeerId) d['peer id'] = Buffer.from(p.peerId, 'latin1');
      return d;
    }),
  };
  return bencode.encode(reply);
}

/**
 * The compact reply, written directly (the hot path: a library encoder sorts keys and allocates a
 * buffer per value). Keys in bencode's sorted order:
 * d 8:complete i..e 10:downloaded i..e 10:incomplete i..e 8:interval i..e 12:min interval i..e
 *   5:peers <n>:<6-byte entries> [6:peers6 <n>:<18-byte entries>] e
 */
function compactReply(
  limits: TrackerLimits,
  complete: number,
  incomplete: number,
  downloaded: number,
  v4: string,
  v6: string,
): Uint8Array {
  let out = `d8:completei${complete}e10:downloadedi${downloaded}e10:incompletei${incomplete}e8:intervali${limits.intervalSec}e12:min intervali${limits.minIntervalSec}e5:peers${v4.length}:${v4}`;
  if (v6 !== '') out += `6:peers6${v6.length}:${v6}`;
  return Buffer.from(`${out}e`, 'latin1');
}

export function failureReply(message: string): Uint8Array {
  return bencode.encode({ 'failure reason': message });
}

/** BEP 48 scrape. With no info_hash: every info-hash swarm, up to MAX_FULL_SCRAPE. */
export const MAX_FULL_SCRAPE = 1000;

/**
 * The info hashes (hex) a scrape asks for, or null for every swarm; a refused scrape throws (too
 * many hashes, one not 20 bytes).
 */
export function scrapeRequest(query: string, maxHashes: number): string[] | null {
  const hashes = parseRawQuery(query).get('info_hash') ?? [];
  if (hashes.length > maxHashes) {
    throw new SwarmshareError('ERR_BAD_PARAM', `at most ${maxHashes} info_hash values per scrape`);
  }
  if (hashes.length === 0) return null;
  return hashes.map((h) => {
    if (h.length !== 20)
      throw new SwarmshareError('ERR_BAD_INFO_HASH', `info_hash must be 20 bytes, got ${h.length}`);
    return latin1ToHex(h);
  });
}

/** The bencoded scrape reply: every swarm asked for (zeros for unknown ones), or all the store gave. */
export function scrapeReply(
  asked: readonly string[] | null,
  counts: ReadonlyMap<string, SwarmCounts>,
): Uint8Array {
  const files = new Map<Buffer, Record<string, unknown>>();
  const zero = { complete: 0, incomplete: 0, downloaded: 0 };
  for (const h of asked ?? counts.keys()) files.set(Buffer.from(h, 'hex'), { ...(counts.get(h) ?? zero) });
  return bencode.encode({ files });
}
