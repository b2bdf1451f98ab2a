import { createServer, type Server, type Socket } from 'node:net';
import { latin1ToHex } from '../core/ids.js';
import { PSTR } from '../wire/messages.js';

/**
 * One TCP listener for every torrent of a session: an incoming connection's first bytes (the
 * BitTorrent handshake's protocol string and info hash) say which torrent it is for; the socket and
 * the bytes read so far go to that torrent's links. A handshake for a torrent we do not serve, or
 * bytes that are not a handshake, close the connection (ERR_WRONG_INFO_HASH, ERR_BAD_HANDSHAKE).
 */

/** What a torrent's links take from the listener. */
export interface Adopter {
  /** Takes an incoming socket whose first bytes (`prefix`) were read already. */
  adopt(socket: Socket, prefix: Uint8Array): void;
}

/** Bytes up to the end of the info hash: <pstrlen=19><pstr><reserved 8><info_hash 20>. */
const ROUTE_BYTES = 1 + PSTR.length + 8 + 20;
/** A connection that has not sent its info hash by then is closed (a slow or silent dialler). */
export const ROUTE_TIMEOUT_MS = 10_000;

export class SharedListener {
  readonly #torrents = new Map<string, Adopter>();
  #server: Server | null = null;
  port = 0;
  /** Connections closed before reaching a torrent, by reason code. */
  readonly refused = { ERR_WRONG_INFO_HASH: 0, ERR_BAD_HANDSHAKE: 0, ERR_TIMEOUT: 0 };

  constructor(
    readonly host: string,
    readonly onRefused?: (code: keyof SharedListener['refused'], remote: string) => void,
  ) {}

  listen(port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const server = createServer((socket) => this.#route(socket));
      server.once('error', reject);
      server.listen(port, this.host, () => {
        server.off('error', reject);
        server.on('error', () => {});
        const a = server.address();
        this.port = typeof a === 'object' && a !== null ? a.port : 0;
        this.#server = server;
        resolve(this.port);
      });
    });
  }

  /** Incoming handshakes for `infoHash` go to `links` (until `remove`). */
  add(infoHash: Uint8Array, links: Adopter): void {
    this.#torrents.set(Buffer.from(infoHash).toString('hex'), links);
  }

  remove(infoHash: Uint8Array): void {
    this.#torrents.delete(Buffer.from(infoHash).toString('hex'));
  }

  get torrents(): number {
    return this.#torrents.size;
  }

  #route(socket: Socket): void {
    const chunks: Buffer[] = [];
    let have = 0;
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const refuse = (code: keyof SharedListener['refused']) => {
      cleanup();
      this.refused[code]++;
      this.onRefused?.(code, remote);
      socket.destroy();
    };
    const timer = setTimeout(() => refuse('ERR_TIMEOUT'), ROUTE_TIMEOUT_MS);
    timer.unref();
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      have += chunk.length;
      if (have < ROUTE_BYTES) return;
      const head = Buffer.concat(chunks);
      if (head[0] !== PSTR.length || head.toString('latin1', 1, 1 + PSTR.length) !== PSTR)
        return refuse('ERR_BAD_HANDSHAKE');
      const id = latin1ToHex(head.toString('latin1', 1 + PSTR.length + 8, ROUTE_BYTES));
      const links = this.#torrents.get(id);
      if (links === undefined) return refuse('ERR_WRONG_INFO_HASH');
      cleanup();
      links.adopt(socket, head);
    };
    const cleanup = () => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
    };
    const onError = () => cleanup();
    socket.on('data', onData);
    socket.on('error', onError);
  }

  async close(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  }
}
