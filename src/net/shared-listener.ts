import { createServer, type Server, type Socket } from 'node:net';
import { latin1ToHex } from '../core/ids.js';
import { PSTR } from '../wire/messages.js';
import { type EncryptionMode, type MseDeps, MseResponder, selectMethod } from '../wire/mse.js';
import type { LinkCiphers } from './peer-socket.js';
import { mseDeps } from './system.js';

/**
 * One TCP listener for every torrent of a session (or of one peer): an incoming connection's first
 * bytes say which torrent it is for, and the socket and the bytes read so far go to that torrent's
 * links. A plain handshake starts with 19 and "BitTorrent protocol" and names its info hash;
 * anything else is taken as an encrypted handshake (MSE/PE), whose HASH('req2', info hash) is
 * matched against every torrent served, and whose link goes on with its ciphers. A handshake for a
 * torrent we do not serve, bytes that are neither, a plain handshake where encryption is required
 * or an encrypted one where it is disabled close the connection (ERR_WRONG_INFO_HASH,
 * ERR_BAD_HANDSHAKE, ERR_ENCRYPTION_REQUIRED, ERR_MSE_HANDSHAKE).
 */

/** What a torrent's links take from the listener. */
export interface Adopter {
  /** Takes an incoming socket whose first bytes (`prefix`, decrypted) were read already. */
  adopt(socket: Socket, prefix: Uint8Array, ciphers?: LinkCiphers | null, viaMse?: boolean): void;
}

/** Whether a new connection may be read: its address, and the connections still being read. */
export type Admit = (ip: string, pending: { fromIp: number; total: number }) => boolean;

/** Bytes up to the end of the info hash: <pstrlen=19><pstr><reserved 8><info_hash 20>. */
const ROUTE_BYTES = 1 + PSTR.length + 8 + 20;
/** A connection that has not sent its info hash by then is closed (a slow or silent dialler). */
export const ROUTE_TIMEOUT_MS = 10_000;

export class SharedListener {
  readonly #torrents = new Map<string, Adopter>();
  /** Info hashes by HASH('req2', info hash) (hex), for encrypted handshakes. */
  readonly #byReq2 = new Map<string, Uint8Array>();
  #server: Server | null = null;
  port = 0;
  /** Connections closed before reaching a torrent, by reason code. */
  readonly refused = {
    ERR_WRONG_INFO_HASH: 0,
    ERR_BAD_HANDSHAKE: 0,
    ERR_TIMEOUT: 0,
    ERR_MSE_HANDSHAKE: 0,
    ERR_ENCRYPTION_REQUIRED: 0,
  };
  /** Connections taken, plain and encrypted (MSE/PE). */
  readonly accepted = { plain: 0, encrypted: 0 };
  readonly encryption: EncryptionMode;
  readonly #mse: MseDeps;

  constructor(
    readonly host: string,
    readonly onRefused?: (code: keyof SharedListener['refused'], remote: string) => void,
    o: { encryption?: EncryptionMode; mse?: MseDeps; admit?: Admit } = {},
  ) {
    this.encryption = o.encryption ?? 'prefer';
    this.#mse = o.mse ?? mseDeps;
    this.#admit = o.admit;
  }

  /** Whether a new connection from `ip` may be read at all (connection caps), before any byte. */
  readonly #admit: Admit | undefined;
  /** Connections being read (not yet handed to a torrent), by address. */
  readonly #pending = new Map<string, number>();
  /** Connections being read, closed with the listener. */
  readonly #routing = new Set<Socket>();
  #pendingTotal = 0;

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
    this.#byReq2.set(this.#req2(infoHash), infoHash);
  }

  remove(infoHash: Uint8Array): void {
    this.#torrents.delete(Buffer.from(infoHash).toString('hex'));
    this.#byReq2.delete(this.#req2(infoHash));
  }

  #req2(infoHash: Uint8Array): string {
    return Buffer.from(this.#mse.sha1(Buffer.concat([Buffer.from('req2'), infoHash]))).toString('hex');
  }

  get torrents(): number {
    return this.#torrents.size;
  }

  #route(socket: Socket): void {
    const ip = socket.remoteAddress ?? '';
    const fromIp = this.#pending.get(ip) ?? 0;
    if (this.#admit !== undefined && !this.#admit(ip, { fromIp, total: this.#pendingTotal })) {
      socket.destroy();
      return;
    }
    this.#pending.set(ip, fromIp + 1);
    this.#pendingTotal++;
    this.#routing.add(socket);
    let counted = true;
    const uncount = () => {
      if (!counted) return;
      counted = false;
      this.#routing.delete(socket);
      this.#pendingTotal--;
      const n = (this.#pending.get(ip) ?? 1) - 1;
      if (n > 0) this.#pending.set(ip, n);
      else this.#pending.delete(ip);
    };
    socket.once('close', uncount);
    const chunks: Buffer[] = [];
    let have = 0;
    let mse: MseResponder | null = null;
    const remote = `${socket.remoteAddress}:${socket.remotePort}`;
    const refuse = (code: keyof SharedListener['refused']) => {
      cleanup();
      this.refused[code]++;
      this.onRefused?.(code, remote);
      socket.destroy();
    };
    const timer = setTimeout(() => refuse('ERR_TIMEOUT'), ROUTE_TIMEOUT_MS);
    timer.unref();
    const encrypted = (chunk: Uint8Array) => {
      const step = (mse as MseResponder).push(chunk);
      for (const out of step.send) socket.write(out);
      if (step.error) return refuse(step.error.code);
      if (step.done === undefined) return;
      const links = this.#torrents.get(Buffer.from(step.done.infoHash).toString('hex'));
      if (links === undefined) return refuse('ERR_WRONG_INFO_HASH');
      cleanup();
      this.accepted.encrypted++;
      links.adopt(socket, step.done.rest, step.done.ciphers, true);
    };
    const onData = (chunk: Buffer) => {
      if (mse !== null) return encrypted(chunk);
      chunks.push(chunk);
      have += chunk.length;
      const head = chunks.length === 1 ? chunk : Buffer.concat(chunks);
      if (!opensPlain(head)) {
        if (this.encryption === 'disable') return refuse('ERR_BAD_HANDSHAKE');
        mse = new MseResponder(
          (req2) => this.#byReq2.get(Buffer.from(req2).toString('hex')) ?? null,
          (provide) => selectMethod(this.encryption, provide),
          this.#mse,
        );
        return encrypted(head);
      }
      if (have < ROUTE_BYTES) return;
      if (this.encryption === 'require') return refuse('ERR_ENCRYPTION_REQUIRED');
      const id = latin1ToHex(head.toString('latin1', 1 + PSTR.length + 8, ROUTE_BYTES));
      const links = this.#torrents.get(id);
      if (links === undefined) return refuse('ERR_WRONG_INFO_HASH');
      cleanup();
      this.accepted.plain++;
      links.adopt(socket, head);
    };
    const cleanup = () => {
      uncount();
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
    for (const socket of this.#routing) socket.destroy();
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  }
}

/** Whether the bytes so far could open a plain handshake (19, then "BitTorrent protocol"). */
function opensPlain(head: Buffer): boolean {
  if (head[0] !== PSTR.length) return false;
  const n = Math.min(head.length - 1, PSTR.length);
  return head.toString('latin1', 1, 1 + n) === PSTR.slice(0, n);
}
