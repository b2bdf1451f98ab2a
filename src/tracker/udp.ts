import { SwarmshareError } from '../core/errors.js';
import { parseIp } from '../core/ip.js';
import type { RateLimiter } from '../core/rate-limit.js';
import type { AnnounceEvent, AnnounceRequest } from './announce.js';
import type { TrackerLimits } from './limits.js';
import type { AnnounceOutcome, MaybePromise, SwarmCounts, SwarmStore } from './swarm-store.js';

/**
 * The UDP tracker protocol (BEP 15), sans I/O: packets in, packets out, over the same registry as
 * the HTTP tracker. Connection ids are a keyed hash of the client's address and a time window (no
 * table): valid for the window they were made in and the next one, about two minutes.
 *
 * Wire layouts (big-endian):
 *   connect   <int64 0x41727101980><int32 0><int32 tid>                         -> <int32 0><int32 tid><int64 cid>
 *   announce  <int64 cid><int32 1><int32 tid><20 info_hash><20 peer_id><int64 downloaded><int64 left>
 *             <int64 uploaded><int32 event><uint32 ip><uint32 key><int32 num_want><uint16 port>  (98 bytes)
 *                                                  -> <int32 1><int32 tid><int32 interval><int32 leechers><int32 seeders><6|18 bytes a peer>
 *   scrape    <int64 cid><int32 2><int32 tid><20 info_hash>...                  -> <int32 2><int32 tid>(<int32 seeders><int32 completed><int32 leechers>)...
 *   error                                                                       -> <int32 3><int32 tid><message>
 */

export const PROTOCOL_ID_HI = 0x417;
export const PROTOCOL_ID_LO = 0x27101980;
export const ACTION_CONNECT = 0;
export const ACTION_ANNOUNCE = 1;
export const ACTION_SCRAPE = 2;
export const ACTION_ERROR = 3;
/** An announce request's length (BEP 41 options after it are ignored). */
export const ANNOUNCE_LENGTH = 98;
/** Info hashes one scrape may ask about (what fits a 1,500-byte packet, as the BEP says). */
export const MAX_UDP_SCRAPE = 74;
/** A connection id's time window: ids are accepted in their window and the next (1-2 minutes). */
export const CONNECTION_WINDOW_MS = 60_000;
/** Bytes of an error message at most (an error is never much larger than the request it answers). */
export const MAX_ERROR_MESSAGE = 64;
/** Largest packet we read: a full scrape is 16 + 74 x 20 bytes. */
export const MAX_UDP_PACKET = 2048;

export interface UdpContext {
  store: SwarmStore;
  limits: TrackerLimits;
  /** A keyed hash (the key secret to this tracker): at least 8 bytes out. */
  mac(data: Uint8Array): Uint8Array;
  /** Honour the IPv4 address an announce states (else the sender's is used). */
  trustIp: boolean;
  limiter: RateLimiter | null;
  /** Peers returned when an announce asks for the default (-1). */
  defaultNumwant: number;
}

export interface UdpSender {
  ip: string;
  port: number;
}

/** The connection id `ctx` gives `ip` in the window holding `now`. */
export function connectionId(ctx: UdpContext, ip: string, now: number, windowOffset = 0): Uint8Array {
  const w = Math.floor(now / CONNECTION_WINDOW_MS) + windowOffset;
  const data = Buffer.alloc(8 + ip.length);
  data.writeUInt32BE(Math.floor(w / 2 ** 32), 0);
  data.writeUInt32BE(w >>> 0, 4);
  data.write(ip, 8, 'latin1');
  return ctx.mac(data).subarray(0, 8);
}

function validConnection(ctx: UdpContext, packet: Uint8Array, ip: string, now: number): boolean {
  const cid = packet.subarray(0, 8);
  return (
    Buffer.compare(cid, connectionId(ctx, ip, now)) === 0 ||
    Buffer.compare(cid, connectionId(ctx, ip, now, -1)) === 0
  );
}

/** An error reply, cut to `maxLength` bytes in all (so it is never larger than its request). */
export function errorPacket(tid: number, message: string, maxLength = 8 + MAX_ERROR_MESSAGE): Uint8Array {
  const text = Buffer.from(message, 'utf8').subarray(
    0,
    Math.max(0, Math.min(MAX_ERROR_MESSAGE, maxLength - 8)),
  );
  const out = Buffer.alloc(8 + text.length);
  out.writeUInt32BE(ACTION_ERROR, 0);
  out.writeUInt32BE(tid >>> 0, 4);
  text.copy(out, 8);
  return out;
}

const EVENTS: readonly AnnounceEvent[] = ['empty', 'completed', 'started', 'stopped'];

/**
 * One packet from `from`: the reply to send back, or null to stay silent (a short, malformed or
 * unknown packet without a valid connection id, or a sender over its rate). No reply is larger
 * than its request unless the request carried a valid connection id.
 */
export function handleUdpPacket(
  ctx: UdpContext,
  packet: Uint8Array,
  from: UdpSender,
  now: number,
): MaybePromise<Uint8Array | null> {
  if (packet.length < 16 || packet.length > MAX_UDP_PACKET) return null;
  const ip = parseIp(from.ip)?.text;
  if (ip === undefined) return null;
  if (ctx.limiter !== null && !ctx.limiter.allow(ip, now)) return null;
  const b = Buffer.from(packet.buffer, packet.byteOffset, packet.length);
  const action = b.readUInt32BE(8);
  const tid = b.readUInt32BE(12);
  if (action === ACTION_CONNECT) {
    if (b.readUInt32BE(0) !== PROTOCOL_ID_HI || b.readUInt32BE(4) !== PROTOCOL_ID_LO) return null;
    const out = Buffer.alloc(16);
    out.writeUInt32BE(ACTION_CONNECT, 0);
    out.writeUInt32BE(tid, 4);
    Buffer.from(connectionId(ctx, ip, now)).copy(out, 8);
    return out;
  }
  if (action === ACTION_ANNOUNCE && packet.length < ANNOUNCE_LENGTH) return null;
  if (action === ACTION_SCRAPE && packet.length < 36) return null;
  if (action !== ACTION_ANNOUNCE && action !== ACTION_SCRAPE) return null;
  if (!validConnection(ctx, packet, ip, now))
    return errorPacket(tid, 'connection id unknown or expired', packet.length);
  const refused = (e: unknown) => {
    if (e instanceof SwarmshareError) return errorPacket(tid, e.message, packet.length);
    throw e;
  };
  try {
    const r = action === ACTION_ANNOUNCE ? announce(ctx, b, tid, ip, now) : scrape(ctx, b, tid);
    return r instanceof Promise ? r.catch(refused) : r;
  } catch (e) {
    return refused(e);
  }
}

/** A 64-bit count as a number (counts past 2^53 are clamped: no client has that many bytes). */
function u64(b: Buffer, at: number): number {
  return Math.min(Number.MAX_SAFE_INTEGER, b.readUInt32BE(at) * 2 ** 32 + b.readUInt32BE(at + 4));
}

function announce(
  ctx: UdpContext,
  b: Buffer,
  tid: number,
  senderIp: string,
  now: number,
): MaybePromise<Uint8Array> {
  const eventCode = b.readUInt32BE(80);
  const event = EVENTS[eventCode];
  if (event === undefined) throw new SwarmshareError('ERR_BAD_PARAM', `unknown event ${eventCode}`);
  const port = b.readUInt16BE(96);
  if (port === 0) throw new SwarmshareError('ERR_BAD_PORT', 'port must be from 1 to 65535');
  const stated = b.readUInt32BE(84);
  const ip =
    ctx.trustIp && stated !== 0
      ? `${stated >>> 24}.${(stated >>> 16) & 255}.${(stated >>> 8) & 255}.${stated & 255}`
      : senderIp;
  const numwant = b.readInt32BE(92);
  const limits = ctx.limits;
  const a: AnnounceRequest = {
    infoHash: b.toString('latin1', 16, 36),
    peerId: b.toString('latin1', 36, 56),
    downloaded: u64(b, 56),
    left: u64(b, 64),
    uploaded: u64(b, 72),
    event,
    port,
    numwant: numwant < 0 ? ctx.defaultNumwant : Math.min(numwant, limits.maxNumwant),
    compact: true,
    noPeerId: true,
    key: b.toString('hex', 88, 92),
    ip,
  };
  const family = parseIp(senderIp)?.family ?? 4;
  const o = ctx.store.announce(a, a.numwant, family, now);
  return o instanceof Promise
    ? o.then((x) => announcePacket(x, tid, limits))
    : announcePacket(o, tid, limits);
}

function announcePacket(o: AnnounceOutcome, tid: number, limits: TrackerLimits): Uint8Array {
  // The peers' compact forms joined, written in one go.
  let compact = '';
  for (const p of o.peers) compact += p.compact;
  const out = Buffer.allocUnsafe(20 + compact.length);
  out.writeUInt32BE(ACTION_ANNOUNCE, 0);
  out.writeUInt32BE(tid, 4);
  out.writeUInt32BE(limits.intervalSec, 8);
  out.writeUInt32BE(o.incomplete, 12);
  out.writeUInt32BE(o.complete, 16);
  out.write(compact, 20, 'latin1');
  return out;
}

function scrape(ctx: UdpContext, b: Buffer, tid: number): MaybePromise<Uint8Array> {
  const n = Math.min(MAX_UDP_SCRAPE, Math.floor((b.length - 16) / 20));
  const hashes: string[] = [];
  for (let i = 0; i < n; i++) hashes.push(b.toString('hex', 16 + 20 * i, 36 + 20 * i));
  const packet = (counts: ReadonlyMap<string, SwarmCounts>) => {
    const out = Buffer.alloc(8 + 12 * n);
    out.writeUInt32BE(ACTION_SCRAPE, 0);
    out.writeUInt32BE(tid, 4);
    hashes.forEach((h, i) => {
      const c = counts.get(h);
      out.writeUInt32BE(c?.complete ?? 0, 8 + 12 * i);
      out.writeUInt32BE(c?.downloaded ?? 0, 12 + 12 * i);
      out.writeUInt32BE(c?.incomplete ?? 0, 16 + 12 * i);
    });
    return out;
  };
  const c = ctx.store.scrape(hashes, n);
  return c instanceof Promise ? c.then(packet) : packet(c);
}
