import { isIPv6 } from 'node:net';
import {
  ACTION_ANNOUNCE,
  ACTION_CONNECT,
  ACTION_ERROR,
  ANNOUNCE_LENGTH,
  PROTOCOL_ID_HI,
  PROTOCOL_ID_LO,
} from '../tracker/udp.js';
import { secureRandomBytes, systemClock } from './system.js';
import type { AnnounceInfo, AnnounceResult, AnnounceState, TrackerClient } from './tracker-client.js';
import { MAX_PEERS_PER_REPLY, NUMWANT, parseCompactPeers } from './tracker-client.js';
import { TrackerError } from './tracker-client-error.js';
import { UdpTrackerSocket } from './udp-tracker-socket.js';

/**
 * A UDP tracker (BEP 15) as a client: connect for a connection id (kept a minute, as the BEP
 * allows), then announce with it; each request sent again after 15 x 2^n seconds without an
 * answer (n = 0, 1, ...), at most MAX_TRIES times, before the announce fails.
 */

/** The BEP's first retransmission timeout. */
export const RETRANSMIT_MS = 15_000;
/** Tries per request (15 + 30 + 60 s: then the announce fails and is retried later, backing off). */
export const MAX_TRIES = 3;
/** How long a connection id is used (BEP 15: one minute). */
export const CONNECTION_ID_MS = 60_000;

const EVENTS = { completed: 1, started: 2, stopped: 3 } as const;

export interface UdpClientOpts {
  /** The first retransmission timeout (tests shorten it). */
  retransmitMs?: number;
  maxTries?: number;
  /** The socket to send from, shared with other clients (a session's); default: one of its own. */
  socket?: UdpTrackerSocket;
}

export class UdpTrackerClient implements TrackerClient {
  readonly url: string;
  readonly #host: string;
  readonly #port: number;
  readonly #info: AnnounceInfo;
  readonly #key: number;
  readonly #retransmitMs: number;
  readonly #maxTries: number;
  /** A socket shared with other clients, or null: this client's own, made on first use. */
  readonly #shared: UdpTrackerSocket | null;
  #own: UdpTrackerSocket | null = null;
  #cid: Buffer | null = null;
  #cidAt = 0;

  constructor(url: string, info: AnnounceInfo, key: string, opts: UdpClientOpts = {}) {
    const u = new URL(url);
    this.url = url;
    this.#host = u.hostname.replace(/^\[|\]$/g, '');
    this.#port = Number(u.port);
    if (!(this.#port > 0 && this.#port < 65536))
      throw new TrackerError(`${url}: a UDP tracker URL needs a port`);
    this.#info = info;
    this.#key = Number.parseInt(key.slice(0, 8).padEnd(8, '0'), 16) >>> 0;
    this.#retransmitMs = opts.retransmitMs ?? RETRANSMIT_MS;
    this.#maxTries = opts.maxTries ?? MAX_TRIES;
    this.#shared = opts.socket ?? null;
  }

  #socket(): UdpTrackerSocket {
    if (this.#shared !== null) return this.#shared;
    this.#own ??= new UdpTrackerSocket(this.#info.ip);
    return this.#own;
  }

  /** Sends `packet` until an answer comes or the tries run out; its transaction id (offset 12) is set here. */
  async #request(packet: Buffer): Promise<Buffer> {
    const socket = this.#socket();
    let tid = Buffer.from(secureRandomBytes(4)).readUInt32BE(0);
    while (socket.busy(tid)) tid = (tid + 1) >>> 0;
    packet.writeUInt32BE(tid, 12);
    try {
      for (let n = 0; n < this.#maxTries; n++) {
        const reply = await new Promise<Buffer | null>((resolve) => {
          const timer = setTimeout(() => resolve(null), this.#retransmitMs * 2 ** n);
          timer.unref();
          socket.await(tid, (msg) => {
            clearTimeout(timer);
            resolve(msg);
          });
          socket.send(packet, this.#port, this.#host, (e) => {
            if (e) {
              clearTimeout(timer);
              resolve(null);
            }
          });
        });
        if (reply !== null) {
          const action = reply.readUInt32BE(0);
          if (action === ACTION_ERROR)
            throw new TrackerError(`tracker refused: ${reply.toString('utf8', 8, 8 + 200)}`);
          return reply;
        }
      }
    } finally {
      socket.forget(tid);
    }
    throw new TrackerError(`tracker ${this.url} did not answer (${this.#maxTries} tries)`);
  }

  async #connectionId(now: number): Promise<Buffer> {
    if (this.#cid !== null && now - this.#cidAt < CONNECTION_ID_MS) return this.#cid;
    const req = Buffer.alloc(16);
    req.writeUInt32BE(PROTOCOL_ID_HI, 0);
    req.writeUInt32BE(PROTOCOL_ID_LO, 4);
    req.writeUInt32BE(ACTION_CONNECT, 8);
    const reply = await this.#request(req);
    if (reply.length < 16 || reply.readUInt32BE(0) !== ACTION_CONNECT)
      throw new TrackerError('tracker sent a malformed connect reply');
    this.#cid = Buffer.from(reply.subarray(8, 16));
    this.#cidAt = now;
    return this.#cid;
  }

  async announce(s: AnnounceState): Promise<AnnounceResult> {
    const cid = await this.#connectionId(systemClock.now());
    const i = this.#info;
    const req = Buffer.alloc(ANNOUNCE_LENGTH);
    cid.copy(req, 0);
    req.writeUInt32BE(ACTION_ANNOUNCE, 8);
    Buffer.from(i.infoHash).copy(req, 16);
    Buffer.from(i.peerId).copy(req, 36);
    writeU64(req, 56, s.downloaded);
    writeU64(req, 64, s.left);
    writeU64(req, 72, s.uploaded);
    req.writeUInt32BE(s.event === undefined ? 0 : EVENTS[s.event], 80);
    req.writeUInt32BE(0, 84);
    req.writeUInt32BE(this.#key, 88);
    req.writeInt32BE(s.event === 'stopped' ? 0 : NUMWANT, 92);
    req.writeUInt16BE(i.port, 96);
    let reply: Buffer;
    try {
      reply = await this.#request(req);
    } catch (e) {
      // An expired or refused connection: the next announce connects again.
      this.#cid = null;
      throw e;
    }
    if (reply.length < 20 || reply.readUInt32BE(0) !== ACTION_ANNOUNCE)
      throw new TrackerError('tracker sent a malformed announce reply');
    const peers = parseCompactPeers(reply.subarray(20), isIPv6(this.#host) ? 18 : 6, MAX_PEERS_PER_REPLY);
    return { interval: reply.readUInt32BE(8), peers };
  }

  close(): void {
    // A shared socket belongs to its session, which closes it.
    this.#own?.close();
    this.#own = null;
  }
}

function writeU64(b: Buffer, at: number, v: number): void {
  const n = Math.max(0, Math.floor(v));
  b.writeUInt32BE(Math.floor(n / 2 ** 32), at);
  b.writeUInt32BE(n >>> 0, at + 4);
}
