import type { CloseCode } from '../core/errors.js';
import { MAX_REQUEST_LENGTH } from '../wire/messages.js';
import { blockKey, type Link, NO_READS } from './link.js';
import type { PiecePicker } from './picker.js';

/** The serving side's rules: which of a peer's requests we read from storage, drop, or refuse. */

/** Their requests we queue at most; more is a flood and closes the link (clients send ~250 at most). */
export const MAX_PEER_REQUESTS = 512;

export interface RequestLimits {
  pieceCount: number;
  pieceSize(index: number): number;
  /** Longest block we serve. */
  maxRequest: number;
  /** Whether we hold (and may serve) the piece. */
  have(index: number): boolean;
}

/** The limits a torrent's requests are checked against: its pieces, those we hold, a block's size. */
export function requestLimits(picker: PiecePicker, blockLength: number): RequestLimits {
  return {
    pieceCount: picker.availability.length,
    pieceSize: (i) => picker.pieceSize(i),
    maxRequest: Math.max(MAX_REQUEST_LENGTH, blockLength),
    have: (i) => picker.have.has(i),
  };
}

/**
 * A request from `l`: 'read' (queued in `l.pendingReads`: the block is to be read and sent),
 * 'drop' (nothing to do), 'reject' (a fast peer is told it will not be served: BEP 6), or why the
 * link closes.
 */
export function takeRequest(
  l: Link,
  m: { index: number; begin: number; length: number },
  lim: RequestLimits,
): 'read' | 'drop' | 'reject' | { code: CloseCode; reason: string } {
  if (m.index >= lim.pieceCount)
    return { code: 'ERR_BAD_REQUEST', reason: `request for piece ${m.index} out of range` };
  const size = lim.pieceSize(m.index);
  if (m.length === 0 || m.length > lim.maxRequest || m.begin + m.length > size || m.begin % 1 !== 0)
    return { code: 'ERR_BAD_REQUEST', reason: `bad request ${m.index}:${m.begin}+${m.length}` };
  // A request while choked (it may cross our choke in flight) or for a piece we don't have
  // (yet: it may cross our have) is dropped, not an offence; a fast peer is told so. A piece we
  // allowed a fast peer is served while it is choked.
  if ((l.amChoking && l.allowedOut?.has(m.index) !== true) || !lim.have(m.index))
    return l.fast ? 'reject' : 'drop';
  if (m.begin % 16384 !== 0) return { code: 'ERR_BAD_REQUEST', reason: 'request not on a 16 KiB boundary' };
  if (l.pendingReads.size >= MAX_PEER_REQUESTS)
    return { code: 'ERR_REQUEST_FLOOD', reason: `more than ${MAX_PEER_REQUESTS} requests queued` };
  const key = blockKey(m.index, m.begin);
  if (l.pendingReads.has(key)) return 'drop';
  if (l.pendingReads === NO_READS) l.pendingReads = new Map();
  l.pendingReads.set(key, m.length);
  return 'read';
}
