import type { Message } from '../wire/messages.js';
import type { Command } from './commands.js';
import { KEEPALIVE_MS } from './core-opts.js';
import type { Downloads } from './downloads.js';
import { REQUEST_TIMEOUT_MS } from './downloads.js';
import { type Link, send, timedOut } from './link.js';
import {
  AM_INTERESTED,
  COUNT,
  EXCHANGE,
  FLAGS,
  HANDSHAKEN,
  ID,
  INTERESTING,
  LAST_RECEIVED,
  LAST_SENT,
  type LinkTable,
  META,
  PEER_INTERESTED,
  REQUESTED_AT,
  WAS_INTERESTED,
} from './link-table.js';

/**
 * The core's loops over the link table (a peer's links in a few cache lines; a link object is
 * looked at only when something is due): a verified piece told to the links, and each tick's
 * timers.
 */

/**
 * A piece we verified, told to the links (the hottest loop of a large swarm after a peer's
 * `have`): each link's interest count follows, a `have` goes where it is news, interest ends where
 * nothing is left to want. Returns the links to close (seeds, once we are one too).
 */
export function tellLinks(
  t: LinkTable,
  bySlot: readonly (Link | undefined)[],
  downloads: Downloads,
  index: number,
  refill: boolean,
  now: number,
  out: Command[],
): Link[] {
  const have: Message = { type: 'have', index };
  const closing: Link[] = [];
  // Over the link table rather than the link objects: a peer's links in a few cache lines.
  const n = t.pieceCount;
  const mask = 0x80 >>> (index & 7);
  const meta = t.meta;
  for (let slot = 0; slot < t.used; slot++) {
    const m = slot * META;
    const f = meta[m + FLAGS] as number;
    if ((f & HANDSHAKEN) === 0) continue;
    const theirs = ((t.bits[slot * t.stride + (index >>> 3)] as number) & mask) !== 0;
    const exchange = (f & EXCHANGE) !== 0;
    if (exchange ? (bySlot[slot] as Link).offer.has(index) : theirs)
      meta[m + INTERESTING] = (meta[m + INTERESTING] as number) - 1;
    // Have suppression: a seed hears of nothing, nor does a peer that holds the piece and has
    // been interested in us (so it was downloading: not an initial seed, the only kind that
    // super-seeds and must hear what its offers became). Half the haves of a swarm go to
    // peers that hold the piece.
    const seed = meta[m + COUNT] === n;
    if (!seed && !(theirs && (f & WAS_INTERESTED) !== 0)) {
      meta[m + LAST_SENT] = now;
      out.push({ type: 'send', link: meta[m + ID] as number, msg: have });
    }
    // Interest can only end here (or an exchange finish); requests change only after a release.
    if (
      refill ||
      exchange ||
      ((f & AM_INTERESTED) !== 0 && (downloads.complete || (meta[m + INTERESTING] as number) <= 0))
    )
      downloads.updateInterest(bySlot[slot] as Link, now, out);
    if (downloads.complete && seed) closing.push(bySlot[slot] as Link);
  }
  return closing;
}

/**
 * A seed closes a link over which neither side has wanted anything for this long (since the peer
 * lost interest, or we completed), once the peer has been interested: it is a seed too, or wants
 * nothing we have. Have suppression means two peers that both complete need not learn it of each
 * other, and such links held seeds' connection slots for good. A peer never interested yet is left
 * alone (Transmission says nothing while it checks a torrent it was just given).
 */
export const UNWANTED_MS = 10_000;

/**
 * A tick's timers on every link: no handshake in time or silent too long (`close` with
 * ERR_TIMEOUT), unwanted by both sides while we seed (`seedSince`: since when, else null; closed
 * with ERR_NOT_NEEDED), requests unanswered too long (back to the picker), our own silence (a
 * keep-alive).
 */
export function linkTimers(
  t: LinkTable,
  bySlot: readonly (Link | undefined)[],
  downloads: Downloads,
  now: number,
  out: Command[],
  seedSince: number | null,
  close: (l: Link, code: 'ERR_TIMEOUT' | 'ERR_NOT_NEEDED', why: string) => void,
): void {
  for (let slot = 0; slot < t.used; slot++) {
    const l = bySlot[slot];
    if (l === undefined) continue;
    const m = slot * META;
    const flags = t.meta[m + FLAGS] as number;
    const handshaken = (flags & HANDSHAKEN) !== 0;
    const late = timedOut(l, handshaken, t.meta[m + LAST_RECEIVED] as number, now);
    if (late !== null) {
      close(l, 'ERR_TIMEOUT', late);
      continue;
    }
    if (
      seedSince !== null &&
      (flags & (HANDSHAKEN | WAS_INTERESTED | PEER_INTERESTED | AM_INTERESTED)) ===
        (HANDSHAKEN | WAS_INTERESTED) &&
      now - Math.max(seedSince, l.lostInterestAt) >= UNWANTED_MS
    ) {
      close(l, 'ERR_NOT_NEEDED', `neither side has wanted anything of the other for ${UNWANTED_MS / 1000} s`);
      continue;
    }
    if (now - (t.meta[m + REQUESTED_AT] as number) > REQUEST_TIMEOUT_MS) {
      t.meta[m + REQUESTED_AT] = downloads.expire(l, now, out);
    }
    if (handshaken && now - (t.meta[m + LAST_SENT] as number) > KEEPALIVE_MS)
      send(l, { type: 'keepAlive' }, now, out);
  }
}
