import type { CloseCode } from '../core/errors.js';
import { parseIp } from '../core/ip.js';
import type { Message } from '../wire/messages.js';
import { PEX_CONNECTABLE, PEX_ENCRYPTION, PEX_SEED, type PexPeer } from '../wire/pex.js';
import type { Command } from './commands.js';
import { answerMetadata, extensionHandshake, OUR_EXTENSIONS, readExtensionHandshake } from './extensions.js';
import { type Link, send } from './link.js';
import { PexLink, pexDue, pexReceived } from './pex.js';

/**
 * The extension protocol on a link (BEP 10): our handshake to the peer, the peer's extended
 * messages dispatched (its handshake, metadata requests: BEP 9, peer exchange: BEP 11), and the
 * PEX round over the torrent's links. The payload codecs: extensions.ts, wire/pex.ts.
 */

export interface ExtendedContext {
  /** The info dictionary we serve, when we hold it. */
  metadata: Uint8Array | null;
  /** Whether we do peer exchange (not for a private torrent). */
  pex: boolean;
  /** Our listening port, when the driver told it. */
  listenPort: number | null;
  /** Requests we queue per peer. */
  reqq: number;
}

/** Our extension handshake to the peer on `l`. */
export function ourExtensionHandshake(l: Link, ctx: ExtendedContext): Message {
  const ip = l.ip === null ? null : parseIp(l.ip);
  return extensionHandshake({
    metadata: ctx.metadata,
    reqq: ctx.reqq,
    pex: ctx.pex,
    listenPort: ctx.listenPort,
    yourIp: ip === null ? null : Uint8Array.from(ip.bytes),
  });
}

/**
 * An extended message from the peer on `l`: what it asks is answered into `out`. Returns why the
 * link closes, or null. Extension ids we did not announce are ignored.
 */
export function onExtended(
  l: Link,
  ext: number,
  payload: Uint8Array,
  ctx: ExtendedContext,
  now: number,
  out: Command[],
): { code: CloseCode; reason: string } | null {
  if (ext === 0) {
    const e = readExtensionHandshake(payload);
    if (typeof e === 'string') return { code: 'ERR_BAD_EXTENSION', reason: e };
    l.ext = e;
    // A peer that dialled us is known by its listening port only when it says it.
    if (!l.outgoing && l.ip !== null && e.listenPort !== null) l.listen = { ip: l.ip, port: e.listenPort };
    if (ctx.pex && e.utPex > 0 && l.pex === null) l.pex = new PexLink(e.utPex);
    return null;
  }
  if (ext === OUR_EXTENSIONS.ut_metadata) {
    const a = answerMetadata(payload, ctx.metadata, l.ext?.utMetadata ?? 0);
    if (typeof a === 'string') return { code: 'ERR_BAD_EXTENSION', reason: a };
    if (a !== null) send(l, a, now, out);
    return null;
  }
  if (ext === OUR_EXTENSIONS.ut_pex && l.pex !== null) {
    const r = pexReceived(l.pex, payload, now);
    if ('code' in r) return r;
    if (r.peers.length > 0) out.push({ type: 'peers', link: l.id, peers: r.peers });
  }
  return null;
}

/** Each PEX link whose message is due gets it (the peers we are linked to, as they changed). */
export function pexRound(
  links: ReadonlyMap<unknown, Link>,
  now: number,
  intervalMs: number,
  out: Command[],
): void {
  let linked: Map<string, PexPeer> | null = null;
  for (const l of links.values()) {
    if (l.pex === null || now - l.pex.sentAt < intervalMs) continue;
    linked ??= linkedPeers(links);
    const msg = pexDue(l.pex, linked, l.listen, now, intervalMs);
    if (msg !== null) send(l, msg, now, out);
  }
}

/** The listening addresses of the peers we are linked to (handshaken), with what we know of them. */
function linkedPeers(links: ReadonlyMap<unknown, Link>): Map<string, PexPeer> {
  const out = new Map<string, PexPeer>();
  for (const l of links.values()) {
    if (l.listen === null || !l.handshaken) continue;
    const flags =
      (l.outgoing ? PEX_CONNECTABLE : 0) |
      (l.have.complete ? PEX_SEED : 0) |
      (l.encrypted ? PEX_ENCRYPTION : 0);
    out.set(`${l.listen.ip}:${l.listen.port}`, { ...l.listen, flags });
  }
  return out;
}
