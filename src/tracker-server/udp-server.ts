import { createSocket, type Socket } from 'node:dgram';
import type { RateLimiter } from '../core/rate-limit.js';
import { secureRandomBytes, sha256 } from '../net/system.js';
import type { TrackerLimits } from '../tracker/limits.js';
import type { MaybePromise, SwarmStore } from '../tracker/swarm-store.js';
import {
  ACTION_ANNOUNCE,
  ACTION_CONNECT,
  ACTION_ERROR,
  ACTION_SCRAPE,
  handleUdpPacket,
  type UdpContext,
} from '../tracker/udp.js';
import type { TrackerMetrics } from './metrics.js';

/**
 * The UDP tracker (BEP 15) on a datagram socket: each packet to the pure handler
 * (tracker/udp.ts), its reply sent back. Connection ids are keyed with a secret made at start.
 */

export interface UdpTrackerOpts {
  host: string;
  port: number;
  store: SwarmStore;
  limits: TrackerLimits;
  trustIp: boolean;
  limiter: RateLimiter | null;
  defaultNumwant: number;
  now: () => number;
  /** Counts packets by outcome (the tracker's /stats). */
  counters: Record<string, number>;
  metrics: TrackerMetrics;
  log?: (line: string) => void;
}

export interface RunningUdpTracker {
  port: number;
  close(): Promise<void>;
}

export async function startUdpTracker(o: UdpTrackerOpts): Promise<RunningUdpTracker> {
  const secret = secureRandomBytes(32);
  const ctx: UdpContext = {
    store: o.store,
    limits: o.limits,
    // A keyed SHA-256 of fixed-length input (secret, window, address): one call, no object per
    // packet (HMAC's objects were a tenth of the time per announce).
    mac: (data) => sha256(Buffer.concat([secret, data])),
    trustIp: o.trustIp,
    limiter: o.limiter,
    defaultNumwant: o.defaultNumwant,
  };
  const socket: Socket = createSocket({ type: o.host.includes(':') ? 'udp6' : 'udp4', reuseAddr: false });
  const m = o.metrics;
  socket.on('message', (msg, rinfo) => {
    const t0 = performance.now();
    const action = msg.length >= 16 ? msg.readUInt32BE(8) : -1;
    const endpoint =
      action === ACTION_CONNECT
        ? 'connect'
        : action === ACTION_ANNOUNCE
          ? 'announce'
          : action === ACTION_SCRAPE
            ? 'scrape'
            : 'other';
    const internal = (e: Error) => {
      o.counters.udp_errors = (o.counters.udp_errors ?? 0) + 1;
      o.log?.(`tracker: internal error on a UDP packet: ${e.stack ?? e.message}`);
    };
    const answer = (reply: Uint8Array | null) => {
      if (reply === null) {
        o.counters.udp_dropped = (o.counters.udp_dropped ?? 0) + 1;
        m.request(endpoint, 'udp', 'dropped');
        return;
      }
      o.counters.udp = (o.counters.udp ?? 0) + 1;
      const error =
        reply.length >= 4 && Buffer.from(reply.buffer, reply.byteOffset, 4).readUInt32BE(0) === ACTION_ERROR;
      m.request(endpoint, 'udp', error ? 'error' : 'ok');
      if (endpoint === 'announce') m.announced('udp', t0);
      socket.send(reply, rinfo.port, rinfo.address);
    };
    let reply: MaybePromise<Uint8Array | null>;
    try {
      reply = handleUdpPacket(ctx, msg, { ip: rinfo.address, port: rinfo.port }, o.now());
    } catch (e) {
      internal(e as Error);
      return;
    }
    if (reply instanceof Promise) reply.then(answer, internal);
    else answer(reply);
  });
  socket.on('error', (e) => o.log?.(`tracker: UDP socket error: ${e.message}`));
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(o.port, o.host, () => {
      socket.off('error', reject);
      resolve();
    });
  });
  return {
    port: socket.address().port,
    close: () => new Promise<void>((r) => socket.close(() => r())),
  };
}
