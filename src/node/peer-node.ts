import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { Metainfo } from '../core/metainfo.js';
import { TokenBucket } from '../core/token-bucket.js';
import { PeerSocket } from '../net/peer-socket.js';
import {
  JsonTrackerClient,
  type PeerAddress,
  type TrackerClient,
  trackerClientFor,
} from '../net/tracker-client.js';
import { FsStore, type StoreMode } from '../storage/fs-store.js';
import type { Strategy } from '../swarm/picker.js';
import { type Command, type LinkId, TorrentCore } from '../swarm/torrent-core.js';
import type { Message } from '../wire/messages.js';

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
  /**
   * The original design's way instead of BitTorrent's: ask the tracker (JSON API) for the swarm's
   * chunk maps, pick a random peer that holds chunks we need, fetch up to `maxChunks` of them over
   * one connection, report to the tracker, repeat.
   */
  exchange?: { maxChunks: number };
  /** Upload cap in bytes/s (token bucket); none by default. */
  uploadRate?: number;
  /** Download cap in bytes/s (reading pauses when over it); none by default. */
  downloadRate?: number;
  /** Regular unchoke slots (default 4; the demo unchokes everyone, as the original served all). */
  uploadSlots?: number;
  /** Requests kept outstanding per peer (default DEFAULT_PIPELINE). */
  pipeline?: number;
  /** Super-seed (BEP 16) while complete: offer each peer a few pieces at a time. */
  superSeed?: boolean;
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
  /** An exchange starts: which chunks we ask of whom. */
  requesting: [chunks: number[], peer: string, addr: string];
}

/** An exchange that gives nothing for this long is abandoned (the peer may have died). */
export const EXCHANGE_TIMEOUT_MS = 15_000;
/** Closes that say nothing bad of the peer: we may dial it again. Any other close is a violation. */
const HARMLESS_CLOSES: ReadonlySet<string> = new Set(['ERR_NOT_NEEDED', 'ERR_DUPLICATE_PEER', 'ERR_TIMEOUT']);

/** A peer whose link we closed for being useless is not dialled again for this long. */
export const REST_MS = 60_000;
/** A link is not judged useless before it has been open this long (its handshake and bitfield). */
export const SETTLE_MS = 3_000;
/** New pieces reach a swarmshare tracker within this (updates coalesced). */
export const REPORT_MS = 500;
/** Pause before asking the tracker again when no peer has a chunk we need. */
export const EXCHANGE_IDLE_MS = 300;

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
  /** Bytes received per remote peer id (latin1). */
  readonly receivedFrom = new Map<string, number>();
  #upBucket: TokenBucket | null = null;
  #downBucket: TokenBucket | null = null;
  #exchanges = new Map<LinkId, () => void>();
  #reportPending = false;
  /** Addresses whose useless link we closed to make room: not dialled again before the time. */
  #resting = new Map<string, number>();
  #exchangeProgress = new Map<LinkId, () => void>();
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
        uploadSlots: this.opts.uploadSlots,
        pipeline: this.opts.pipeline,
        superSeed: this.opts.superSeed,
        have,
      },
      Math.random,
      {
        onPieceVerified: (i) => {
          this.emit('piece', i, this.core.have.count, m.pieceCount);
          this.#reportSoon();
        },
        onPieceFailed: (i) => this.emit('piece-failed', i),
        onBlock: (l, n) => {
          this.downloaded += n;
          this.#exchangeProgress.get(l)?.();
          const from = this.core.peerIdOf(l);
          if (from !== null) this.receivedFrom.set(from, (this.receivedFrom.get(from) ?? 0) + n);
          this.emit('block', n);
        },
      },
    );
    const now = Date.now();
    // Bursts of a quarter second's worth (at least one block) keep the pace smooth.
    if (this.opts.uploadRate)
      this.#upBucket = new TokenBucket(this.opts.uploadRate, Math.max(16384, this.opts.uploadRate / 4), now);
    if (this.opts.downloadRate)
      this.#downBucket = new TokenBucket(
        this.opts.downloadRate,
        Math.max(16384, this.opts.downloadRate / 4),
        now,
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
    for (const t of this.#trackers) {
      if (t instanceof JsonTrackerClient) t.stats = () => this.transferStats();
    }
    for (const t of this.#trackers) this.#announceLoop(t, 'started', RETRY_MS);
    if (this.opts.exchange) {
      const json = this.#trackers.find((t) => t instanceof JsonTrackerClient);
      if (json === undefined)
        throw new Error('the exchange strategy needs a swarmshare tracker (its base URL, not /announce)');
      this.#exchangeLoop(json as JsonTrackerClient, this.opts.exchange.maxChunks).catch((e: Error) =>
        this.#fail(e),
      );
    }
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
      // Dials under way hold their slots: otherwise the peer we just dropped to make room could
      // take the slot back before the dial it was dropped for connects.
      this.#links.size + this.#connecting.size >= (this.opts.maxConnections ?? MAX_CONNECTIONS) ||
      this.#perIp(ip) >= (this.opts.maxPerIp ?? MAX_PER_IP)
    ) {
      socket.destroy();
      return;
    }
    // In exchange mode a peer fetches only through its own exchanges; incoming links just serve.
    this.#attach(socket, false, undefined, false, this.opts.exchange ? [] : undefined);
  }

  #attach(socket: Socket, outgoing: boolean, addr?: string, borrowed = false, wanted?: number[]): PeerSocket {
    const id = this.#nextLink++;
    const sock = new PeerSocket(
      socket,
      {
        onMessage: (msg) => this.#run(this.core.message(id, msg, Date.now())),
        onWireError: (e) => {
          // A peer that breaks the protocol is not dialled again.
          this.#bannedAddrs.add(entry.addr);
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
      this.#downBucket ? (n) => (this.#downBucket as TokenBucket).reserve(n, Date.now()) : undefined,
    );
    const entry: LinkEntry = { sock, addr: addr ?? sock.remote, ip: socket.remoteAddress ?? '', outgoing };
    this.#links.set(id, entry);
    this.#run(this.core.addLink(id, outgoing, Date.now(), wanted));
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
        case 'send': {
          const msg = c.msg;
          const wait =
            msg.type === 'piece' && this.#upBucket ? this.#upBucket.reserve(msg.block.length, Date.now()) : 0;
          if (wait > 0) {
            const sock = this.#links.get(c.link)?.sock;
            const timer = setTimeout(() => {
              this.#timers.delete(timer);
              if (sock !== undefined && !sock.closed) this.#sendCounted(sock, msg);
            }, wait);
            this.#timers.add(timer);
          } else {
            const sock = out(c.link);
            if (sock !== undefined) this.#sendCounted(sock, msg);
          }
          break;
        }
        case 'exchangeDone':
          this.#exchanges.get(c.link)?.();
          break;
        case 'close': {
          const l = this.#links.get(c.link);
          if (l) {
            if (c.ban || !HARMLESS_CLOSES.has(c.code)) this.#bannedAddrs.add(l.addr);
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

  /** Sends a message; a piece counts as uploaded only when it is actually written to the socket. */
  #sendCounted(sock: PeerSocket, msg: Message): void {
    sock.send(msg);
    if (msg.type === 'piece') {
      this.uploaded += msg.block.length;
      this.emit('upload', msg.block.length);
    }
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
    if (this.#stopped || this.core.complete || this.opts.exchange) return;
    const max = this.opts.maxConnections ?? MAX_CONNECTIONS;
    const connected = new Set([...this.#links.values()].map((l) => l.addr));
    if (this.#links.size + this.#connecting.size >= max) this.#dropUselessLink(connected);
    for (const [addr, p] of [...this.#known]) {
      if (this.#links.size + this.#connecting.size >= max) break;
      if (connected.has(addr) || this.#connecting.has(addr) || this.#bannedAddrs.has(addr)) continue;
      const rest = this.#resting.get(addr);
      if (rest !== undefined) {
        if (rest > Date.now()) continue;
        this.#resting.delete(addr);
      }
      if (p.port === this.port && (p.ip === this.host || this.host === '0.0.0.0')) continue;
      this.#connecting.add(addr);
      // Round robin: a peer dialled goes to the back, so the next free slot tries someone else. (A
      // peer we are linked to by its incoming connection is not recognised by its listening
      // address; always dialling the first known one could keep a slot cycling on that peer.)
      this.#known.delete(addr);
      this.#known.set(addr, p);
      const { socket, attach } = this.#dial(p);
      socket.setTimeout(CONNECT_TIMEOUT_MS);
      socket.once('timeout', () => socket.destroy());
      socket.once('error', () => this.#connecting.delete(addr));
      socket.once('close', () => this.#connecting.delete(addr));
      socket.once('connect', () => {
        socket.setTimeout(0);
        this.#connecting.delete(addr);
        if (this.#stopped) return void socket.destroy();
        attach(addr);
      });
    }
  }

  /** The original design's loop: one exchange at a time with a random peer that has what we need. */
  async #exchangeLoop(tracker: JsonTrackerClient, maxChunks: number): Promise<void> {
    const rand = Math.random;
    while (!this.#stopped && !this.core.complete) {
      let peers: Awaited<ReturnType<JsonTrackerClient['swarmPeers']>>;
      try {
        await tracker.report(this.core.have);
        peers = await tracker.swarmPeers();
      } catch (e) {
        this.emit('tracker', tracker.url, 0, (e as Error).message);
        await this.#sleep(RETRY_MS);
        continue;
      }
      const have = this.core.have;
      const offers = peers
        .map((p) => {
          const chunks: number[] = [];
          if (p.bitfield !== null) {
            for (let i = 0; i < this.meta.pieceCount; i++) {
              if (!have.has(i) && ((p.bitfield[i >> 3] ?? 0) & (0x80 >> (i & 7))) !== 0) chunks.push(i);
            }
          }
          return { p, chunks };
        })
        .filter((o) => o.chunks.length > 0 && !this.#bannedAddrs.has(`${o.p.ip}:${o.p.port}`));
      if (offers.length === 0) {
        await this.#sleep(EXCHANGE_IDLE_MS);
        continue;
      }
      const pick = offers[Math.floor(rand() * offers.length)] as (typeof offers)[number];
      // Up to maxChunks of the chunks it has that we need, drawn at random (peers that all start
      // from the origin then fetch different chunks and can trade them), in index order.
      const pool = pick.chunks.slice();
      for (let i = pool.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        [pool[i], pool[j]] = [pool[j] as number, pool[i] as number];
      }
      const chunks = pool.slice(0, maxChunks).sort((a, b) => a - b);
      this.emit('requesting', chunks, pick.p.name, `${pick.p.ip}:${pick.p.port}`);
      await this.#exchange(pick.p, chunks);
    }
    if (!this.#stopped) await tracker.report(this.core.have).catch(() => {});
  }

  /** Connects to `p`, fetches `chunks` over that one link, closes it. Resolves when over, whatever happened. */
  #exchange(p: PeerAddress, chunks: number[]): Promise<void> {
    return new Promise((resolve) => {
      let link: LinkId | undefined;
      let settled = false;
      const finish = () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (link !== undefined) {
          this.#exchanges.delete(link);
          this.#exchangeProgress.delete(link);
          this.#links.get(link)?.sock.close();
        }
        resolve();
      };
      // Abandoned when nothing arrives for EXCHANGE_TIMEOUT_MS (a dead or stalled peer), however
      // long a slow but steady exchange takes.
      let timer = setTimeout(finish, EXCHANGE_TIMEOUT_MS);
      const progress = () => {
        clearTimeout(timer);
        timer = setTimeout(finish, EXCHANGE_TIMEOUT_MS);
      };
      const { socket, attach } = this.#dial(p);
      socket.once('error', finish);
      socket.once('close', finish);
      socket.once('connect', () => {
        if (this.#stopped || settled) return void socket.destroy();
        link = this.#nextLink;
        this.#exchanges.set(link, finish);
        this.#exchangeProgress.set(link, progress);
        attach(`${p.ip}:${p.port}`, chunks);
      });
    });
  }

  /** What we report to a swarmshare tracker for its dashboard. */
  transferStats() {
    const from: Record<string, number> = {};
    for (const [id, n] of this.receivedFrom) from[Buffer.from(id, 'latin1').toString('hex')] = n;
    return {
      uploaded: this.uploaded,
      downloaded: this.downloaded,
      fetching: [...this.core.picker.active.keys()].slice(0, 1024),
      from,
    };
  }

  /**
   * Tells swarmshare trackers about new pieces within REPORT_MS (coalesced), so their view (and
   * dashboard) follows the download closely without an update per piece.
   */
  #reportSoon(): void {
    if (this.#reportPending || this.#stopped) return;
    const json = this.#trackers.filter((t): t is JsonTrackerClient => t instanceof JsonTrackerClient);
    if (json.length === 0) return;
    this.#reportPending = true;
    this.#later(() => {
      this.#reportPending = false;
      for (const t of json) t.report(this.core.have).catch(() => {});
    }, REPORT_MS);
  }

  /**
   * Opens a TCP connection from our address that reads into one reused buffer; `attach` makes it
   * a link once connected.
   */
  #dial(p: PeerAddress): { socket: Socket; attach: (addr: string, wanted?: number[]) => void } {
    let peerSocket: PeerSocket | undefined;
    const socket = connect({
      host: p.ip,
      port: p.port,
      localAddress: this.host === '0.0.0.0' ? undefined : this.host,
      onread: PeerSocket.readInto(() => peerSocket),
    });
    return {
      socket,
      attach: (addr, wanted) => {
        peerSocket = this.#attach(socket, true, addr, true, wanted);
      },
    };
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((r) => this.#later(r, ms));
  }

  /** Dies without a word (a crash, for fault tests): no tracker goodbye, sockets just drop. */
  async kill(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const l of this.#links.values()) l.sock.close();
    this.#links.clear();
    await new Promise<void>((r) => (this.#server ? this.#server.close(() => r()) : r()));
    await this.store?.close();
    this.#rejectDone(new Error('killed'));
  }

  /**
   * At the connection limit, with peers we know and are not connected to, one link over which
   * neither side wants anything is closed to make room (one per tick): otherwise peers that only
   * know peers as empty as themselves would keep their slots and wait forever.
   */
  #dropUselessLink(connected: Set<string>): void {
    let candidates = false;
    for (const addr of this.#known.keys()) {
      if (!connected.has(addr) && !this.#connecting.has(addr) && !this.#bannedAddrs.has(addr)) {
        candidates = true;
        break;
      }
    }
    if (!candidates) return;
    for (const [id, l] of this.#links) {
      const st = this.core.linkStats(id);
      // A link still settling (handshake, bitfield) has not said what it holds yet: under load a
      // seed's link was dropped as useless before its bitfield arrived, and then rested for 60 s.
      if (st === undefined || !st.handshaken || Date.now() - st.openedAt < SETTLE_MS) continue;
      if (!st.amInterested && !st.peerInterested) {
        this.#resting.set(l.addr, Date.now() + REST_MS);
        this.core.removeLink(id);
        l.sock.close();
        return;
      }
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
