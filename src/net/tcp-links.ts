import { connect, createServer, type Server, type Socket } from 'node:net';
import type { BufferPool } from '../core/buffer-pool.js';
import type { Clock, Timers } from '../core/deps.js';
import type { CloseCode } from '../core/errors.js';
import { LinkError } from '../core/errors.js';
import type { Pacer } from '../core/token-bucket.js';
import type { Transport } from '../swarm/interpreter.js';
import type { LinkId } from '../swarm/link.js';
import type { Handshake, Message, WireError } from '../wire/messages.js';
import { type EncryptionMode, type MseDeps, MseInitiator, offered } from '../wire/mse.js';
import { type LinkCiphers, PeerSocket, READ_BUFFER } from './peer-socket.js';
import { mseDeps } from './system.js';

/**
 * A torrent's links over real TCP: the listening socket, dials, and each link's PeerSocket by
 * link id. It is the peer driver's Transport: the core's messages leave through it (paced by the
 * upload bucket, and corked so the messages of one event leave in one write per socket).
 */

export interface TcpLink {
  sock: PeerSocket;
  /** The address we know the peer by (its listening address when we dialled it). */
  addr: string;
  ip: string;
  outgoing: boolean;
}

export interface TcpLinksHandlers {
  /** A message arrived on `link`. */
  message(link: LinkId, m: Message | Handshake): void;
  /** The bytes on `link` broke the protocol: the link is being closed. */
  wireError(link: LinkId, l: TcpLink, e: WireError): void;
  /** The core closed `link`. */
  closedByCore(link: LinkId, l: TcpLink, code: CloseCode, reason: string): void;
  /** `link`'s socket is gone (whoever closed it). */
  gone(link: LinkId, l: TcpLink): void;
  /** An incoming connection: whether to take it. */
  accept(ip: string): boolean;
  /** A new incoming link (`accept` said yes), from `ip`. */
  incoming(link: LinkId, ip: string): void;
  /** Piece bytes written to a socket. */
  uploaded(bytes: number): void;
  /** A piece message given to `send` has gone: written to its socket, or dropped with its link (once each). */
  pieceGone?(): void;
}

/** A connection being made (TcpLinks.dial). */
export interface Dial {
  /** Resolves once connected; rejects when it fails, closes first or times out. */
  readonly connected: Promise<void>;
  /** Makes the connection a link (once connected); returns the link's id. */
  attach(addr: string): LinkId;
  abort(): void;
}

/** What a peer driver uses of its links: the Transport, and listening, dialling, closing. */
export interface PeerLinks extends Transport {
  readonly links: ReadonlyMap<LinkId, TcpLink>;
  listen(port: number, onError: (e: Error) => void): Promise<number>;
  /**
   * An incoming connection from a listener shared by several torrents, its first bytes read already
   * (decrypted, with the link's ciphers, when it came encrypted).
   */
  adopt(socket: Socket, prefix: Uint8Array, ciphers?: LinkCiphers | null, viaMse?: boolean): void;
  dial(ip: string, port: number, timeoutMs?: number): Dial;
  perIp(ip: string): number;
  drop(link: LinkId): void;
  closeAll(): Promise<void>;
}

export interface TcpLinksOpts {
  host: string;
  infoHash: Uint8Array;
  peerId: Uint8Array;
  upBucket: Pacer | null;
  downBucket: Pacer | null;
  clock: Clock;
  timers: Timers;
  /** The pool the blocks we serve are read into (their leases end as sockets take them). */
  pool?: BufferPool | null;
  /** Dials: encrypted first and plain on failure (prefer), encrypted only, or plain only (default). */
  encryption?: EncryptionMode;
  mse?: MseDeps;
}

/** An encrypted handshake that has not finished by then fails (and, preferring, we dial plain). */
export const MSE_TIMEOUT_MS = 20_000;

export class TcpLinks implements PeerLinks {
  readonly #o: TcpLinksOpts;
  readonly #h: TcpLinksHandlers;
  readonly links = new Map<LinkId, TcpLink>();
  #server: Server | null = null;
  #nextLink = 1;
  /** Sockets corked since the last flush. */
  #corked: PeerSocket[] = [];
  /** Cancels for paced sends still waiting. */
  readonly #waiting = new Set<() => void>();
  /** Addresses where an encrypted handshake failed: dialled plain from then on (preferring). */
  readonly plainOnly = new Set<string>();
  port = 0;

  constructor(opts: TcpLinksOpts, handlers: TcpLinksHandlers) {
    this.#o = opts;
    this.#h = handlers;
  }

  /** The id the next link will get. */
  get nextLink(): LinkId {
    return this.#nextLink;
  }

  listen(port: number, onError: (e: Error) => void): Promise<number> {
    return new Promise((resolve, reject) => {
      const server = createServer((socket) => this.#accept(socket));
      server.once('error', reject);
      server.listen(port, this.#o.host, () => {
        server.off('error', reject);
        server.on('error', onError);
        const a = server.address();
        this.port = typeof a === 'object' && a !== null ? a.port : 0;
        this.#server = server;
        resolve(this.port);
      });
    });
  }

  perIp(ip: string): number {
    let n = 0;
    for (const l of this.links.values()) if (l.ip === ip) n++;
    return n;
  }

  #accept(socket: Socket): void {
    if (!this.#h.accept(socket.remoteAddress ?? '')) {
      socket.destroy();
      return;
    }
    const id = this.#attach(socket, false);
    this.#h.incoming(id, (this.links.get(id) as TcpLink).ip);
  }

  adopt(
    socket: Socket,
    prefix: Uint8Array,
    ciphers: LinkCiphers | null = null,
    viaMse = ciphers !== null,
  ): void {
    if (!this.#h.accept(socket.remoteAddress ?? '')) {
      socket.destroy();
      return;
    }
    const id = this.#attach(socket, false, undefined, false, ciphers);
    const link = this.links.get(id) as TcpLink;
    link.sock.viaMse = viaMse;
    this.#h.incoming(id, link.ip);
    link.sock.pushPlain(prefix);
  }

  /** Makes `socket` link number `nextLink`; the caller tells the core. */
  #attach(
    socket: Socket,
    outgoing: boolean,
    addr?: string,
    borrowed = false,
    ciphers: LinkCiphers | null = null,
  ): LinkId {
    const id = this.#nextLink++;
    const down = this.#o.downBucket;
    const clock = this.#o.clock;
    const sock = new PeerSocket(
      socket,
      {
        onMessage: (msg) => this.#h.message(id, msg),
        onWireError: (e) => this.#h.wireError(id, entry, e),
        onClose: () => {
          this.links.delete(id);
          this.#h.gone(id, entry);
        },
      },
      borrowed,
      down ? (n) => down.reserve(n, clock.now()) : undefined,
      this.#o.pool ?? null,
      ciphers,
    );
    const entry: TcpLink = { sock, addr: addr ?? sock.remote, ip: socket.remoteAddress ?? '', outgoing };
    this.links.set(id, entry);
    return id;
  }

  /**
   * Opens a TCP connection from our address that reads into one reused buffer, encrypted first
   * when `encryption` says so (MSE/PE; preferring, a failed encrypted handshake is followed by a
   * plain dial, and that address is dialled plain from then on). `connected` settles when it is up
   * (or rejects when it fails, closes or takes over `timeoutMs`); `attach` then makes it a link and
   * returns its id; `abort` gives up on it.
   */
  dial(ip: string, port: number, timeoutMs = 0): Dial {
    const mode = this.#o.encryption ?? 'disable';
    const addr = `${ip}:${port}`;
    let conn: Connection | null = null;
    let aborted = false;
    let result: { ciphers: LinkCiphers | null; rest: Uint8Array; viaMse?: boolean } = {
      ciphers: null,
      rest: new Uint8Array(0),
    };
    const open = () => {
      if (aborted) throw new Error('dial aborted');
      conn = new Connection(ip, port, this.#o.host, timeoutMs);
      return conn;
    };
    const connected = (async () => {
      if (mode === 'require' || (mode === 'prefer' && !this.plainOnly.has(addr))) {
        const c = open();
        await c.connected;
        try {
          result = {
            ...(await c.encrypt(this.#o.infoHash, offered(mode), this.#o.mse ?? mseDeps)),
            viaMse: true,
          };
          return;
        } catch (e) {
          c.socket.destroy();
          if (mode === 'require')
            throw new LinkError(
              (e as LinkError).code ?? 'ERR_MSE_HANDSHAKE',
              `encrypted handshake failed: ${(e as Error).message} (encryption is required: no plain fallback)`,
            );
          this.plainOnly.add(addr);
        }
      }
      await open().connected;
    })();
    connected.catch(() => {});
    return {
      connected,
      attach: (linkAddr) => {
        const c = conn as unknown as Connection;
        const id = this.#attach(c.socket, true, linkAddr, true, result.ciphers);
        const sock = this.links.get(id)?.sock;
        if (sock !== undefined) sock.viaMse = result.viaMse === true;
        c.target = sock;
        // What came with the handshake, once the caller has told the core of the link.
        if (result.rest.length > 0) queueMicrotask(() => sock?.pushPlain(result.rest));
        return id;
      },
      abort: () => {
        aborted = true;
        (conn as Connection | null)?.socket.destroy();
      },
    };
  }

  /** The link's socket, corked until the next flush (undefined: gone). */
  #out(link: LinkId): PeerSocket | undefined {
    const sock = this.links.get(link)?.sock;
    if (sock === undefined || sock.closed) return undefined;
    if (!this.#corked.includes(sock)) {
      sock.socket.cork();
      this.#corked.push(sock);
    }
    return sock;
  }

  handshake(link: LinkId): void {
    this.#out(link)?.sendHandshake(this.#o.infoHash, this.#o.peerId);
  }

  send(link: LinkId, msg: Message): void {
    const up = this.#o.upBucket;
    const wait = msg.type === 'piece' && up ? up.reserve(msg.block.length, this.#o.clock.now()) : 0;
    if (wait > 0) {
      const sock = this.links.get(link)?.sock;
      const cancel = this.#o.timers.after(wait, () => {
        this.#waiting.delete(cancel);
        if (sock !== undefined && !sock.closed) this.#sendCounted(sock, msg);
        this.#h.pieceGone?.();
      });
      this.#waiting.add(cancel);
    } else {
      const sock = this.#out(link);
      if (sock !== undefined) this.#sendCounted(sock, msg);
      if (msg.type === 'piece') this.#h.pieceGone?.();
    }
  }

  /** Sends a message; a piece counts as uploaded only when it is actually written to the socket. */
  #sendCounted(sock: PeerSocket, msg: Message): void {
    sock.send(msg);
    if (msg.type === 'piece') this.#h.uploaded(msg.block.length);
  }

  close(link: LinkId, code: CloseCode, reason: string): void {
    const l = this.links.get(link);
    if (l === undefined) return;
    this.#h.closedByCore(link, l, code, reason);
    l.sock.close();
  }

  /** Messages produced by one event (a burst of requests, haves to every peer) leave in one write per socket. */
  flush(): void {
    if (this.#corked.length === 0) return;
    const corked = this.#corked;
    this.#corked = [];
    for (const sock of corked) sock.socket.uncork();
  }

  /** Closes `link`'s socket (no word to the core: the caller has told it). */
  drop(link: LinkId): void {
    this.links.get(link)?.sock.close();
  }

  /** Closes every link and the listening socket. */
  async closeAll(): Promise<void> {
    for (const cancel of this.#waiting) cancel();
    this.#waiting.clear();
    for (const l of this.links.values()) l.sock.close();
    this.links.clear();
    const server = this.#server;
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  }
}

/** One outgoing TCP connection reading into one reused buffer: to an MSE handshake first, then to its link. */
class Connection {
  readonly socket: Socket;
  readonly connected: Promise<void>;
  target: PeerSocket | undefined;
  #handshake: ((b: Uint8Array) => void) | null = null;

  constructor(ip: string, port: number, host: string, timeoutMs: number) {
    this.socket = connect({
      host: ip,
      port,
      localAddress: host === '0.0.0.0' ? undefined : host,
      onread: {
        buffer: Buffer.allocUnsafe(READ_BUFFER),
        callback: (n, buf) => {
          const b = buf.subarray(0, n);
          if (this.#handshake !== null) this.#handshake(b);
          else this.target?.push(b);
          return true;
        },
      },
    });
    const socket = this.socket;
    this.connected = new Promise<void>((resolve, reject) => {
      if (timeoutMs > 0) {
        socket.setTimeout(timeoutMs);
        socket.once('timeout', () => socket.destroy());
      }
      socket.once('error', reject);
      socket.once('close', () => reject(new Error(`connection to ${ip}:${port} closed`)));
      socket.once('connect', () => {
        socket.setTimeout(0);
        resolve();
      });
    });
    this.connected.catch(() => {});
  }

  /** The MSE/PE handshake as the dialling side, bounded by MSE_TIMEOUT_MS. */
  encrypt(
    infoHash: Uint8Array,
    provide: number,
    deps: MseDeps,
  ): Promise<{ ciphers: LinkCiphers | null; rest: Uint8Array }> {
    const socket = this.socket;
    const m = new MseInitiator(infoHash, provide, deps);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => finish(new LinkError('ERR_MSE_HANDSHAKE', 'encrypted handshake timed out')),
        MSE_TIMEOUT_MS,
      );
      timer.unref();
      const onClose = () =>
        finish(new LinkError('ERR_MSE_HANDSHAKE', 'closed during the encrypted handshake'));
      const finish = (e: Error | null, r?: { ciphers: LinkCiphers | null; rest: Uint8Array }) => {
        clearTimeout(timer);
        socket.off('close', onClose);
        this.#handshake = null;
        if (e !== null) reject(e);
        else resolve(r as { ciphers: LinkCiphers | null; rest: Uint8Array });
      };
      socket.once('close', onClose);
      this.#handshake = (b) => {
        const step = m.push(b);
        for (const out of step.send) socket.write(out);
        if (step.error) finish(new LinkError(step.error.code, step.error.message));
        else if (step.done) finish(null, { ciphers: step.done.ciphers, rest: step.done.rest });
      };
      socket.write(m.start());
    });
  }
}
