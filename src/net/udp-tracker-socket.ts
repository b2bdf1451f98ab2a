import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';

/**
 * The UDP socket(s) our UDP tracker clients send from: one per address family, opened on first use,
 * bound to our own address (a UDP tracker announces the sender's, as our TCP dials are from it).
 * Replies are routed by transaction id (bytes 4..8 of every BEP 15 reply) to the request awaiting
 * it. A session shares one among all its torrents' trackers; a client without one makes its own.
 */
export class UdpTrackerSocket {
  readonly #local: string;
  readonly #sockets = new Map<'udp4' | 'udp6', Socket>();
  /** Requests awaiting an answer, by transaction id. */
  readonly #waiting = new Map<number, (reply: Buffer) => void>();

  /** `local`: the address to send from ('0.0.0.0' or '::': any). */
  constructor(local = '0.0.0.0') {
    this.#local = local;
  }

  /** Requests awaiting their answer now. */
  get waiting(): number {
    return this.#waiting.size;
  }

  /** Sockets opened so far (one per address family used). */
  get sockets(): number {
    return this.#sockets.size;
  }

  #socket(host: string): Socket {
    const family = isIPv6(host) ? 'udp6' : 'udp4';
    const open = this.#sockets.get(family);
    if (open !== undefined) return open;
    const s = createSocket(family);
    const local = this.#local;
    if (local !== '0.0.0.0' && local !== '::' && isIPv6(local) === (family === 'udp6')) s.bind(0, local);
    s.on('message', (msg) => {
      if (msg.length < 8) return;
      this.#waiting.get(msg.readUInt32BE(4))?.(msg);
    });
    s.on('error', () => {});
    s.unref();
    this.#sockets.set(family, s);
    return s;
  }

  /** Whether a transaction id is awaited already (a new request picks another). */
  busy(tid: number): boolean {
    return this.#waiting.has(tid);
  }

  /** Answers to `tid` go to `onReply` until `forget(tid)`. */
  await(tid: number, onReply: (reply: Buffer) => void): void {
    this.#waiting.set(tid, onReply);
  }

  forget(tid: number): void {
    this.#waiting.delete(tid);
  }

  send(packet: Buffer, port: number, host: string, done: (e: Error | null) => void): void {
    this.#socket(host).send(packet, port, host, (e) => done(e ?? null));
  }

  close(): void {
    for (const s of this.#sockets.values()) s.close();
    this.#sockets.clear();
    this.#waiting.clear();
  }
}
