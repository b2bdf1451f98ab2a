import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Metainfo } from '../core/metainfo.js';
import { PeerSocket } from '../net/peer-socket.js';
import { type PeerAddress, type TrackerClient, trackerClientFor } from '../net/tracker-client.js';
import { FsStore, type StoreMode } from '../storage/fs-store.js';
import type { Strategy } from '../swarm/picker.js';
import { type Command, type LinkId, TorrentCore } from '../swarm/torrent-core.js';

/**
 * A running peer for one torrent: the driver that wires the pure TorrentCore to TCP sockets,
 * the file store, SHA-1, trackers and the clock. See docs/peer.md.
 */

export interface PeerNodeOpts {
  meta: Metainfo;
  /** The folder that holds (seed) or receives (download) the torrent's name. */
  dir: string;
  mode: StoreMode;
  /** Address to bind and announce (default 127.0.0.1). */
  host?: string;
  /** TCP port (0 picks a free one). */
  port?: number;
  /** Tracker URLs (default: the torrent's). */
  trackers?: string[];
  strategy?: Strategy;
  /** Connections at most, in and out. */
  maxConnections?: number;
  /** Connections from one IP address at most. */
  maxPerIp?: number;
  /** Name used with the JSON tracker API (default: the peer id). */
  name?: string;
  peerId?: Uint8Array;
}

/** Default cap on open connections. */
export const MAX_CONNECTIONS = 60;
/** Default cap on connections from one address (local swarms put many peers on one address). */
export const MAX_PER_IP = 20;
/** First retry delay after a failed announce; doubles up to MAX_RETRY_MS. */
export const RETRY_MS = 2_000;
export const MAX_RETRY_MS = 60_000;
/** Attempting a TCP connection gives up after this. */
export const CONNECT_TIMEOUT_MS = 10_000;
/** The driver's clock tick. */
export const TICK_MS = 1_000;

export const PEER_ID_PREFIX = '-SS0001-';

export function newPeerId(): Uint8Array {
  const id = Buffer.alloc(20);
  id.write(PEER_ID_PREFIX, 0, 'latin1');
  const r = randomBytes(12);
  for (let i = 0; i < 12; i++) id[8 + i] = 0x30 + ((r[i] as number) % 10);
  return id;
}

function sha1(data: Uint8Array): Buffer {
  return createHash('sha1').update(data).digest();
}

interface LinkEntry {
  sock: PeerSocket;
  addr: string;
  ip: string;
  outgoing: boolean;
}

export interface PeerNodeEvents {
  piece: [index: number, have: number, total: number];
  'piece-failed': [index: number];
  block: [bytes: number];
  upload: [bytes: number];
  complete: [];
  error: [err: Error];
  tracker: [url: string, peers: number, error?: string];
  'peer-closed': [addr: string, code: string, reason: string];
}

export class PeerNode extends EventEmitter<PeerNodeEvents> {
  readonly opts: PeerNodeOpts;
  readonly meta: Metainfo;
  readonly peerId: Uint8Array;
  readonly host: string;
  core!: TorrentCore;
  store!: FsStore;
  port = 0;
  downloaded = 0;
  uploaded = 0;
  #server: Server | null = null;
  #links = new Map<LinkId, LinkEntry>();
  #nextLink = 1;
  #connecting = new Set<string>();
  #known = new Map<string, PeerAddress>();
  #bannedAddrs = new Set<string>();
  #trackers: TrackerClient[] = [];
  #timers = new Set<NodeJS.Timeout>();
  #stopped = false;
  #completed = false;
  #done: Promise<void>;
  #resolveDone!: () => void;
  #rejectDone!: (e: Error) => void;

  constructor(opts: PeerNodeOpts) {
    super();
    this.opts = opts;
    this.meta = opts.meta;
    this.peerId = opts.peerId ?? newPeerId();
    this.host = opts.host ?? '127.0.0.1';
    this.#done = new Promise((resolve, reject) => {
      this.#resolveDone = resolve;
      this.#rejectDone = reject;
    });
    this.#done.catch(() => {});
  }

  /** Resolves when every piece is verified and the file is under its final name. */
  get done(): Promise<void> {
    return this.#done;
  }

  get connections(): number {
    return this.#links.size;
  }

  async start(): Promise<void> {
    const m = this.meta;
    this.store = await FsStore.open(m, this.opts.dir, this.opts.mode);
    const have = await this.store.verifyExisting(async (i, data) =>
      sha1(data).equals(m.pieceHashes.subarray(i * 20, i * 20 + 20)),
    );
    if (this.opts.mode === 'seed' && !have.complete) {
      await this.store.close();
      throw new Error(
        `${this.store.finalPath} does not match the torrent: ${m.pieceCount - have.count} of ${m.pieceCount} pieces differ`,
      );
    }
    if (this.opts.mode === 'download' && this.store.finished && !have.complete) {
      await this.store.close();
      throw new Error(
        `${this.store.finalPath} exists and is not this torrent's content; move it away or choose another folder`,
      );
    }
    this.downloaded = 0;
    this.core = new TorrentCore(
      {
        infoHash: m.infoHash,
        peerId: this.peerId,
        pieceCount: m.pieceCount,
        pieceLength: m.pieceLength,
        length: m.length,
        strategy: this.opts.strategy,
        have,
      },
      Math.random,
      {
        onPieceVerified: (i) => this.emit('piece', i, this.core.have.count, m.pieceCount),
        onPieceFailed: (i) => this.emit('piece-failed', i),
        onBlock: (_l, n) => {
          this.downloaded += n;
          this.emit('block', n);
        },
        onUpload: (_l, n) => {
          this.uploaded += n;
          this.emit('upload', n);
        },
      },
    );
    await this.#listen();
    if (this.core.complete) await this.#onComplete();
    const info = {
      infoHash: m.infoHash,
      peerId: this.peerId,
      ip: this.host,
      port: this.port,
      name: m.name,
      pieceCount: m.pieceCount,
      length: m.length,
    };
    const key = randomBytes(4).toString('hex');
    const name = this.opts.name ?? Buffer.from(this.peerId).toString('latin1');
    this.#trackers = (this.opts.trackers ?? m.trackers).map((u) => trackerClientFor(u, info, key, name));
    for (const t of this.#trackers) this.#announceLoop(t, 'started', RETRY_MS);
    const tick = setInterval(() => this.#tick(), TICK_MS);
    this.#timers.add(tick);
  }

  #listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const server = createServer((socket) => this.#accept(socket));
      server.once('error', reject);
      server.listen(this.opts.port ?? 0, this.host, () => {
        server.off('error', reject);
        server.on('error', (e) => this.#report(e));
        const a = server.address();
        this.port = typeof a === 'object' && a !== null ? a.port : 0;
        this.#server = server;
        resolve();
      });
    });
  }

  #perIp(ip: string): number {
    let n = 0;
    for (const l of this.#links.values()) if (l.ip === ip) n++;
    return n;
  }

  #accept(socket: Socket): void {
    const ip = socket.remoteAddress ?? '';
    if (
      this.#stopped ||
      this.#links.size >= (this.opts.maxConnections ?? MAX_CONNECTIONS) ||
      this.#perIp(ip) >= (this.opts.maxPerIp ?? MAX_PER_IP)
    ) {
      socket.destroy();
      return;
    }
    this.#attach(socket, false);
  }

  #attach(socket: Socket, outgoing: boolean, addr?: string, borrowed = false): PeerSocket {
    const id = this.#nextLink++;
    const sock = new PeerSocket(
      socket,
      {
        onMessage: (msg) => this.#run(this.core.message(id, msg, Date.now())),
        onWireError: (e) => {
          this.emit('peer-closed', entry.addr, e.code, e.message);
          this.core.removeLink(id);
          sock.close();
        },
        onClose: () => {
          this.core.removeLink(id);
          this.#links.delete(id);
        },
      },
      borrowed,
    );
    const entry: LinkEntry = { sock, addr: addr ?? sock.remote, ip: socket.remoteAddress ?? '', outgoing };
    this.#links.set(id, entry);
    this.#run(this.core.addLink(id, outgoing, Date.now()));
    return sock;
  }

  #run(cmds: Command[]): void {
    // Messages produced by one event (a burst of requests, haves to every peer) leave in one
    // write per socket, not one syscall each.
    let corked: PeerSocket[] | null = null;
    const out = (link: LinkId): PeerSocket | undefined => {
      const sock = this.#links.get(link)?.sock;
      if (sock === undefined || sock.closed) return undefined;
      corked ??= [];
      if (!corked.includes(sock)) {
        sock.socket.cork();
        corked.push(sock);
      }
      return sock;
    };
    for (const c of cmds) {
      switch (c.type) {
        case 'handshake':
          out(c.link)?.sendHandshake(this.meta.infoHash, this.peerId);
          break;
        case 'send':
          out(c.link)?.send(c.msg);
          break;
        case 'close': {
          const l = this.#links.get(c.link);
          if (l) {
            if (c.ban) this.#bannedAddrs.add(l.addr);
            this.emit('peer-closed', l.addr, c.code, c.reason);
            l.sock.close();
          }
          break;
        }
        case 'read':
          this.store.read(c.index, c.begin, c.length).then(
            (data) => this.#run(this.core.readDone(c.link, c.index, c.begin, data, Date.now())),
            (e: Error) => this.#report(e),
          );
          break;
        case 'verify':
          this.#verify(c.index, c.data);
          break;
        case 'complete':
          this.#onComplete().catch((e: Error) => this.#fail(e));
          break;
      }
    }
    if (corked !== null) for (const sock of corked as PeerSocket[]) sock.socket.uncork();
  }

  #verify(index: number, data: Uint8Array): void {
    const ok = sha1(data).equals(this.meta.pieceHashes.subarray(index * 20, index * 20 + 20));
    if (!ok) {
      this.#run(this.core.verifyDone(index, false, Date.now()));
      return;
    }
    this.store.write(index, data).then(
      () => this.#run(this.core.verifyDone(index, true, Date.now())),
      (e: Error) => this.#fail(e),
    );
  }

  async #onComplete(): Promise<void> {
    if (this.#completed) return;
    this.#completed = true;
    await this.store.finish();
    this.emit('complete');
    this.#resolveDone();
    for (const t of this.#trackers) this.#announceOnce(t, 'completed').catch(() => {});
  }

  #fail(e: Error): void {
    this.#report(e);
    this.#rejectDone(e);
  }

  /** 'error' events only reach listeners; without one, `done` carries the failure. */
  #report(e: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }

  #state(event?: 'started' | 'completed' | 'stopped') {
    const m = this.meta;
    const have = this.core.have;
    const last = m.pieceCount - 1;
    const held = have.count * m.pieceLength - (have.has(last) ? m.pieceLength * m.pieceCount - m.length : 0);
    return {
      uploaded: this.uploaded,
      downloaded: this.downloaded,
      left: m.length - held,
      have: this.core.have,
      event,
    };
  }

  async #announceOnce(t: TrackerClient, event?: 'started' | 'completed' | 'stopped'): Promise<number> {
    const r = await t.announce(this.#state(event));
    for (const p of r.peers) this.#known.set(`${p.ip}:${p.port}`, p);
    this.emit('tracker', t.url, r.peers.length);
    this.#connectMore();
    return r.interval;
  }

  #announceLoop(t: TrackerClient, event: 'started' | undefined, backoff: number): void {
    if (this.#stopped) return;
    this.#announceOnce(t, event).then(
      (interval) =>
        this.#later(() => this.#announceLoop(t, undefined, RETRY_MS), Math.max(1, interval) * 1000),
      (e: Error) => {
        this.emit('tracker', t.url, 0, e.message);
        // Keep trading with the peers we know; try the tracker again, backing off.
        this.#later(() => this.#announceLoop(t, event, Math.min(backoff * 2, MAX_RETRY_MS)), backoff);
      },
    );
  }

  #later(fn: () => void, ms: number): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fn();
    }, ms);
    this.#timers.add(timer);
  }

  #connectMore(): void {
    if (this.#stopped || this.core.complete) return;
    const max = this.opts.maxConnections ?? MAX_CONNECTIONS;
    const connected = new Set([...this.#links.values()].map((l) => l.addr));
    for (const [addr, p] of this.#known) {
      if (this.#links.size + this.#connecting.size >= max) break;
      if (connected.has(addr) || this.#connecting.has(addr) || this.#bannedAddrs.has(addr)) continue;
      if (p.port === this.port && (p.ip === this.host || this.host === '0.0.0.0')) continue;
      this.#connecting.add(addr);
      let peerSocket: PeerSocket | undefined;
      const socket = connect({
        host: p.ip,
        port: p.port,
        localAddress: this.host === '0.0.0.0' ? undefined : this.host,
        onread: PeerSocket.readInto(() => peerSocket),
      });
      socket.setTimeout(CONNECT_TIMEOUT_MS);
      socket.once('timeout', () => socket.destroy());
      socket.once('error', () => this.#connecting.delete(addr));
      socket.once('close', () => this.#connecting.delete(addr));
      socket.once('connect', () => {
        socket.setTimeout(0);
        this.#connecting.delete(addr);
        if (this.#stopped) return void socket.destroy();
        peerSocket = this.#attach(socket, true, addr, true);
      });
    }
  }

  #tick(): void {
    if (this.#stopped) return;
    this.#run(this.core.tick(Date.now()));
    this.#connectMore();
  }

  /** Leaves the trackers (event=stopped, bounded in time), closes every connection and the store. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    await Promise.race([
      Promise.allSettled(this.#trackers.map((t) => this.#announceOnce(t, 'stopped'))),
      new Promise((r) => setTimeout(r, 3000).unref()),
    ]);
    for (const l of this.#links.values()) l.sock.close();
    this.#links.clear();
    await new Promise<void>((r) => (this.#server ? this.#server.close(() => r()) : r()));
    await this.store?.close();
    this.#rejectDone(new Error('stopped before the download completed'));
  }
}
