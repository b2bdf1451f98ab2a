import type { PeerAddress } from '../core/ip.js';
import type { Message } from '../wire/messages.js';
import { decodePex, encodePex, MAX_PEX_SEND, type PexMessage, type PexPeer } from '../wire/pex.js';

/**
 * Peer exchange policy (BEP 11): what we tell each peer of the peers we are linked to, and what we
 * make of what it tells us. Each link gets at most one message per interval (a minute, as other
 * clients do), carrying the peers added and dropped since the last one, at most MAX_PEX_SEND of
 * each. A peer that sends faster than that has its extra messages ignored, and a steady flood
 * closes its link. Never for a private torrent (the core leaves PEX out of its handshake then).
 */

/** One PEX message per link per this long. */
export const PEX_INTERVAL_MS = 60_000;
/**
 * A peer's PEX messages closer together than this are ignored (a sender on a one-minute timer
 * never is); more than MAX_EARLY_PEX of them close the link.
 */
export const PEX_MIN_GAP_MS = 20_000;
export const MAX_EARLY_PEX = 8;

/** One link's PEX state. */
export class PexLink {
  /** The id the peer wants for ut_pex messages (from its extension handshake). */
  readonly theirId: number;
  /** When we last sent (-Infinity: never). */
  sentAt = Number.NEGATIVE_INFINITY;
  /** What the peer has heard from us: the peers it knows we are linked to, by address. */
  readonly told = new Map<string, PexPeer>();
  /** When we last took a message from it, and how many came too early since. */
  heardAt = Number.NEGATIVE_INFINITY;
  early = 0;

  constructor(theirId: number) {
    this.theirId = theirId;
  }
}

const key = (p: PeerAddress) => `${p.ip}:${p.port}`;

/**
 * The message for `link` if one is due at `now`: the peers in `linked` (our links' listening
 * addresses, the peer's own left out) it has not heard of, and those it heard of that are gone.
 * Null when not due or when there is nothing new.
 */
export function pexDue(
  link: PexLink,
  linked: ReadonlyMap<string, PexPeer>,
  self: PeerAddress | null,
  now: number,
  intervalMs: number,
): Message | null {
  if (now - link.sentAt < intervalMs) return null;
  const selfKey = self === null ? null : key(self);
  const added: PexPeer[] = [];
  const dropped: PeerAddress[] = [];
  for (const [k, p] of linked) {
    if (added.length >= MAX_PEX_SEND) break;
    if (k !== selfKey && !link.told.has(k)) added.push(p);
  }
  for (const [k, p] of link.told) {
    if (dropped.length >= MAX_PEX_SEND) break;
    if (!linked.has(k)) dropped.push(p);
  }
  if (added.length === 0 && dropped.length === 0) return null;
  for (const p of added) link.told.set(key(p), p);
  for (const p of dropped) link.told.delete(key(p));
  link.sentAt = now;
  return { type: 'extended', ext: link.theirId, payload: encodePex(added, dropped) };
}

/**
 * A PEX message from the peer on `link`: the peers it adds, [] when the message came too early
 * (ignored), or why the link closes.
 */
export function pexReceived(
  link: PexLink,
  payload: Uint8Array,
  now: number,
): { peers: PexPeer[] } | { code: 'ERR_BAD_EXTENSION' | 'ERR_PEX_FLOOD'; reason: string } {
  const m: PexMessage | string = decodePex(payload);
  if (typeof m === 'string') return { code: 'ERR_BAD_EXTENSION', reason: m };
  if (now - link.heardAt < PEX_MIN_GAP_MS) {
    if (++link.early > MAX_EARLY_PEX)
      return { code: 'ERR_PEX_FLOOD', reason: `more than ${MAX_EARLY_PEX} PEX messages too close together` };
    return { peers: [] };
  }
  link.heardAt = now;
  return { peers: m.added };
}
