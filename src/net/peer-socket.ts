import type { Socket } from 'node:net';
import type { BufferPool } from '../core/buffer-pool.js';
import { Decoder } from '../wire/decoder.js';
import { encode, encodeHandshake, pieceHeader } from '../wire/encode.js';
import { type Handshake, type Message, OUR_RESERVED, type WireError } from '../wire/messages.js';
import type { StreamCipher } from '../wire/rc4.js';

/** RC4 both ways after an encrypted handshake (MSE/PE). */
export interface LinkCiphers {
  decrypt: StreamCipher;
  encrypt: StreamCipher;
}

/**
 * One TCP connection speaking the peer wire: bytes in through the pure decoder, messages out
 * through the pure encoder. A piece message is written as its 13-byte header and the block
 * itself, without copying the block.
 */
export interface PeerSocketHandlers {
  onMessage(m: Message | Handshake): void;
  onWireError(e: WireError): void;
  onClose(): void;
}

/** Size of the buffer an outgoing connection reads into (one per connection, reused). */
export const READ_BUFFER = 256 * 1024;

/** Bytes we let queue up unsent on one socket before we stop reading blocks for it. */
export const MAX_WRITE_BACKLOG = 4 * 1024 * 1024;

export class PeerSocket {
  readonly socket: Socket;
  readonly remote: string;
  #closed = false;
  /** Corked until the end of this turn of the event loop (#batch). */
  #corked = false;

  readonly #decoder: Decoder;
  readonly #handlers: PeerSocketHandlers;

  /**
   * `borrowed`: the socket reads into one reused buffer (net.connect's `onread`) and calls `push`;
   * messages are handled before the next read, so nothing is kept from that buffer.
   */
  readonly #throttle: ((bytes: number) => number) | undefined;
  /** Where the blocks we send may come from: their lease ends once the socket has taken them. */
  readonly #pool: BufferPool | null;
  /** Encrypted links: what arrives is decrypted in place, what leaves is encrypted (null: plain). */
  readonly #cipher: LinkCiphers | null;

  /**
   * `throttle(bytes)` (a download rate limit) returns how long to stop reading after `bytes`
   * arrived.
   */
  constructor(
    socket: Socket,
    handlers: PeerSocketHandlers,
    borrowed = false,
    throttle?: (bytes: number) => number,
    pool: BufferPool | null = null,
    cipher: LinkCiphers | null = null,
  ) {
    this.#cipher = cipher;
    this.#throttle = throttle;
    this.#pool = pool;
    this.socket = socket;
    this.remote = `${socket.remoteAddress}:${socket.remotePort}`;
    this.#handlers = handlers;
    this.#decoder = new Decoder({ handshake: true, borrowed });
    socket.setNoDelay(true);
    if (!borrowed) socket.on('data', (chunk: Buffer) => this.push(chunk));
    socket.on('error', () => {
      // 'close' follows; the error itself is just the reason the link ended.
    });
    socket.on('close', () => {
      this.#closed = true;
      handlers.onClose();
    });
  }

  /** Options for net.connect that read into one reused buffer and feed `target().push`. */
  static readInto(target: () => PeerSocket | undefined): {
    buffer: Buffer;
    callback: (n: number, buf: Buffer) => boolean;
  } {
    return {
      buffer: Buffer.allocUnsafe(READ_BUFFER),
      callback: (n, buf) => {
        target()?.push(buf.subarray(0, n));
        return true;
      },
    };
  }

  /** Bytes as they came off the socket (ours to change: a read buffer or a fresh chunk). */
  push(chunk: Uint8Array): void {
    if (this.#closed) return;
    this.pushPlain(this.#cipher === null ? chunk : this.#cipher.decrypt.updateInPlace(chunk));
  }

  /** Bytes already decrypted (what came with an encrypted handshake). */
  pushPlain(chunk: Uint8Array): void {
    if (this.#closed) return;
    const r = this.#decoder.push(chunk);
    for (const m of r.messages) {
      if (this.#closed) return;
      this.#handlers.onMessage(m);
    }
    if (r.error && !this.#closed) this.#handlers.onWireError(r.error);
    const wait = this.#throttle?.(chunk.length) ?? 0;
    if (wait > 0 && !this.#closed) {
      this.socket.pause();
      setTimeout(() => {
        if (!this.#closed) this.socket.resume();
      }, wait).unref();
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The connection began with an encrypted handshake (MSE/PE), RC4 after it or not. */
  viaMse = false;

  get backlog(): number {
    return this.socket.writableLength;
  }

  sendHandshake(infoHash: Uint8Array, peerId: Uint8Array): void {
    if (this.#closed) return;
    this.#batch();
    this.#write(encodeHandshake({ reserved: OUR_RESERVED, infoHash, peerId }));
  }

  /** Writes bytes of our own making (encrypted in place on an encrypted link). */
  #write(b: Uint8Array): void {
    this.socket.write(this.#cipher === null ? b : this.#cipher.encrypt.updateInPlace(b));
  }

  send(m: Message): void {
    if (this.#closed) return;
    this.#batch();
    if (m.type === 'piece') {
      this.#write(pieceHeader(m.index, m.begin, m.block.length));
      const pool = this.#pool;
      if (this.#cipher !== null) {
        // The cipher's copy is what leaves; the block (a read-ahead window's) is free at once.
        this.socket.write(this.#cipher.encrypt.update(m.block));
        pool?.release(m.block);
      } else if (pool === null) this.socket.write(m.block);
      else {
        // The callback runs once the kernel has the bytes (or the socket failed): the block's
        // buffer may then be reused. A socket destroyed first never calls it: the lease is lost,
        // the buffer collected, nothing reused early.
        const block = m.block;
        this.socket.write(block, () => pool.release(block));
      }
      return;
    }
    this.#write(encode(m));
  }

  /**
   * What we send in one turn of the event loop leaves in one system call (a writev): the
   * requests that answer a read's worth of blocks, the blocks of a read-ahead window. On loopback
   * the kernel does the receiving side's work in the sender's call, so every call saved counts.
   */
  #batch(): void {
    if (this.#corked) return;
    this.#corked = true;
    this.socket.cork();
    setImmediate(() => {
      this.#corked = false;
      if (!this.socket.destroyed) this.socket.uncork();
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.socket.destroy();
  }
}
