import type { Bitfield } from '../core/bitfield.js';
import { parseIp } from '../core/ip.js';
import type { Message } from '../wire/messages.js';
import type { Command } from './commands.js';
import type { Downloads } from './downloads.js';
import { keyBegin, keyIndex, type Link, send } from './link.js';

/**
 * The fast extension (BEP 6), between peers that both set its reserved bit: have all / have none
 * in place of a bitfield, rejects for requests we will not serve (a choke no longer drops them
 * silently), and the allowed-fast set: a few pieces, chosen from the peer's address and the info
 * hash, that a newcomer may fetch while we choke it, so it has something to trade sooner.
 */

/** Pieces in the allowed-fast set we give a newcomer (BEP 6 suggests 10). */
export const ALLOWED_FAST_K = 10;
/** A torrent needs this many pieces before we give an allowed-fast set (else it is most of the file). */
export const MIN_PIECES_FOR_ALLOWED_FAST = 4 * ALLOWED_FAST_K;
/** Allowed-fast pieces we take from one peer at most; more are ignored. */
export const MAX_ALLOWED_IN = 32;
/** SHA-1 rounds the set computation may take at most (a few suffice; this bounds a tiny torrent). */
const MAX_ROUNDS = 1000;

/**
 * BEP 6's allowed-fast set for a peer at `ip` (IPv4; none for IPv6, which the BEP does not
 * define): SHA-1 over the address's /24 and the info hash, chained, each 4-byte word taken
 * modulo the piece count, until `k` distinct pieces.
 */
export function allowedFastSet(
  ip: string,
  infoHash: Uint8Array,
  pieceCount: number,
  k: number,
  sha1: (data: Uint8Array) => Uint8Array,
): number[] {
  const p = parseIp(ip);
  if (p === null || p.family !== 4 || pieceCount <= 0) return [];
  const want = Math.min(k, pieceCount);
  let x: Uint8Array = new Uint8Array(4 + infoHash.length);
  x.set([p.bytes[0] as number, p.bytes[1] as number, p.bytes[2] as number, 0]);
  x.set(infoHash, 4);
  const out: number[] = [];
  for (let round = 0; out.length < want && round < MAX_ROUNDS; round++) {
    x = sha1(x);
    for (let i = 0; i < 5 && out.length < want; i++) {
      const y =
        (x[i * 4] as number) * 2 ** 24 +
        ((x[i * 4 + 1] as number) << 16) +
        ((x[i * 4 + 2] as number) << 8) +
        (x[i * 4 + 3] as number);
      const index = y % pieceCount;
      if (!out.includes(index)) out.push(index);
    }
  }
  return out;
}

/** A bitfield's bytes of every piece or none (what have all / have none say). */
export function allOrNone(pieceCount: number, all: boolean): Uint8Array {
  const b = new Uint8Array((pieceCount + 7) >>> 3);
  if (all) for (let i = 0; i < pieceCount; i++) b[i >>> 3] = (b[i >>> 3] as number) | (0x80 >>> (i & 7));
  return b;
}

/** What we hold, said to a fast peer (one of the three is mandatory after the handshake). */
export function haveMessage(have: Bitfield, pretendNone: boolean): Message {
  if (pretendNone || have.count === 0) return { type: 'haveNone' };
  if (have.complete) return { type: 'haveAll' };
  return { type: 'bitfield', bitfield: have.bytes.slice() };
}

export interface FastContext {
  infoHash: Uint8Array;
  pieceCount: number;
  have: Bitfield;
  /** SHA-1 for the allowed-fast set; null: we give none. */
  sha1: ((data: Uint8Array) => Uint8Array) | null;
}

/**
 * A fast peer said what it holds: if it is a newcomer (fewer than ALLOWED_FAST_K pieces), it
 * gets the pieces of its allowed-fast set that we hold, once; not from a seed, whose upload is
 * the swarm's scarcest (a flash crowd of 1,000: 1.83x the bound with seeds giving allowed-fast
 * pieces, 1.73x without; docs/simulator.md).
 */
export function offerAllowedFast(l: Link, ctx: FastContext, now: number, out: Command[]): void {
  if (!l.fast || l.allowedOut !== null || l.ip === null || ctx.sha1 === null || ctx.have.complete) return;
  if (l.have.count >= ALLOWED_FAST_K || ctx.pieceCount < MIN_PIECES_FOR_ALLOWED_FAST) return;
  const set = allowedFastSet(l.ip, ctx.infoHash, ctx.pieceCount, ALLOWED_FAST_K, ctx.sha1).filter((i) =>
    ctx.have.has(i),
  );
  l.allowedOut = new Set(set);
  for (const index of set) send(l, { type: 'allowedFast', index }, now, out);
}

/**
 * suggest (a seed's advice, taken: it knows which of its pieces it sent least), allowed fast
 * and reject from the peer on `l`. Returns why the link closes (a fast message from a peer that
 * did not negotiate the extension, too many rejects of nothing we asked), or null.
 */
export function fastMessage(
  l: Link,
  m: Extract<Message, { type: 'suggest' | 'allowedFast' | 'reject' }>,
  downloads: Downloads,
  pieceCount: number,
  now: number,
  out: Command[],
): string | null {
  if (!l.fast) return `${m.type} without the fast extension`;
  if (m.type === 'suggest') downloads.suggested(l, m.index, now, out);
  else if (m.type === 'allowedFast') {
    if (allowedIn(l, m.index, pieceCount) && l.peerChoking) downloads.fill(l, now, out);
  } else if (m.type === 'reject') return downloads.rejected(l, m, now, out);
  return null;
}

/** The peer let us fetch `index` while choked (taken up to MAX_ALLOWED_IN pieces). */
export function allowedIn(l: Link, index: number, pieceCount: number): boolean {
  if (index >= pieceCount) return false;
  l.allowedIn ??= new Set();
  if (l.allowedIn.size >= MAX_ALLOWED_IN) return false;
  l.allowedIn.add(index);
  return true;
}

/**
 * We choke `l`: the requests we had accepted are dropped, except those for pieces we allowed it;
 * a fast peer hears a reject for each (BEP 6), a plain one nothing (BEP 3: the choke says it).
 */
export function dropPendingReads(l: Link, now: number, out: Command[]): void {
  if (l.pendingReads.size === 0) return;
  if (!l.fast) {
    l.pendingReads.clear();
    return;
  }
  for (const [key, length] of l.pendingReads) {
    const index = keyIndex(key);
    if (l.allowedOut?.has(index) === true) continue;
    l.pendingReads.delete(key);
    send(l, { type: 'reject', index, begin: keyBegin(key), length }, now, out);
  }
}
