import { EventEmitter } from 'node:events';
import type { Bitfield } from '../core/bitfield.js';
import { BufferPool } from '../core/buffer-pool.js';
import type { CloseCode } from '../core/errors.js';
import { bytesHeld, holdsWanted, type Metainfo, piecePriorities, wantedPieces } from '../core/metainfo.js';
import { burstFor, TokenBucket } from '../core/token-bucket.js';
import { type Admit, SharedListener } from '../net/shared-listener.js';
import type { PeerLinks } from '../net/tcp-links.js';
import type { JsonTrackerClient, PeerAddress } from '../net/tracker-client.js';
import { trackerClientFor } from '../net/tracker-clients.js';
import type { PieceStore } from '../storage/piece-store.js';
import { CommandInterpreter } from '../swarm/interpreter.js';
import type { LinkId } from '../swarm/link.js';
import { TorrentCore } from '../swarm/torrent-core.js';
import { type AnnounceEvent, Announcer } from './announcer.js';
import { startDhtRounds } from './dht-rounds.js';
import { Dialer, type LinkedPeer, type PeerSource } from './dialer.js';
import { Exchanges } from './exchanges.js';
import { HashedBlockStore, MAX_WINDOWS, READ_AHEAD } from './fs-block-store.js';
import {
  type PeerNodeDeps,
  type PeerNodeEvents,
  type PeerNodeOpts,
  type StoreInfo,
  sendAheadFor,
  TICK_MS,
} from './peer-options.js';
import { newPeerId, systemPeerDeps } from './system-deps.js';
import { transferStats } from './transfer-stats.js';
import { createWebSeeds, routeTransport, type WebSeeds } from './web-seed.js';

export { MAX_RETRY_MS, MIN_ANNOUNCE_INTERVAL_MS, REPORT_MS, RETRY_MS } from './announcer.js';
export type { LinkedPeer, PeerSource } from './dialer.js';
export * from './peer-options.js';

/**
 * A running peer for one torrent: the driver that wires the pure TorrentCore, through the one
 * command interpreter, to its collaborators: TCP links, the piece store, SHA-1, trackers, the
 * clock, timers and randomness, all handed in (`deps`; the real ones: system-deps.ts). See
 * docs/peer.md.
 */

export class PeerNode extends EventEmitter<PeerNodeEvents> {
  readonly opts: PeerNodeOpts;
  readonly meta: Metainfo;
  readonly peerId: Uint8Array;
  readonly host: string;
  readonly #deps: PeerNodeDeps;
  core!: TorrentCore;
  store!: PieceStore & StoreInfo;
  #interp!: CommandInterpreter;
  #tcp!: PeerLinks;
  #webSeeds: WebSeeds | null = null;
  #ownListener: SharedListener | null = null;
  /** The pieces touching a wanted file; null without file selection (every piece). */
  readonly wanted: Bitfield | null;
  port = 0;
  downloaded = 0;
  uploaded = 0;
  /** Every tracker URL announced to, and those that answered (peers or an error) at least once. */
  #trackerUrls: string[] = [];
  readonly #heardFrom = new Set<string>();
  /** Pieces read and hashed at start to find what is on disk (0 when resume data was trusted). */
  hashChecks = 0;
  /** Bytes received per remote peer id (latin1). */
  readonly receivedFrom = new Map<string, number>();
  /** Known peers and the links we open to them. */
  readonly #dialer: Dialer;
  /** The original design's exchanges, when opts.exchange. */
  readonly #exchanges: Exchanges;
  #announcer!: Announcer;
  #cancelTick: () => void = () => {};
  #cancelDht: () => void = () => {};
  #stopped = false;
  #completed = false;
  #done: Promise<void>;
  #resolveDone!: () => void;
  #rejectDone!: (e: Error) => void;

  constructor(opts: PeerNodeOpts, deps: PeerNodeDeps = systemPeerDeps()) {
    super();
    this.opts = opts;
    this.meta = opts.meta;
    this.wanted = opts.unwantedFiles?.length ? wantedPieces(opts.meta, new Set(opts.unwantedFiles)) : null;
    this.#deps = deps;
    this.peerId = opts.peerId ?? newPeerId(deps.randomBytes);
    this.host = opts.host ?? '127.0.0.1';
    this.#done = new Promise((resolve, reject) => {
      this.#resolveDone = resolve;
      this.#rejectDone = reject;
    });
    this.#done.catch(() => {});
    const node = this;
    this.#dialer = new Dialer(
      {
        get tcp() {
          return node.#tcp;
        },
        get core() {
          return node.core;
        },
        get stopped() {
          return node.#stopped;
        },
        opts,
        now: () => deps.clock.now(),
        dialFailed: (addr, e) => this.emit('dial-failed', addr, e.message),
        linked: (id, peer) => this.#addLink(id, true, undefined, peer),
      },
      (p) => p.port === this.port && (p.ip === this.host || this.host === '0.0.0.0'),
    );
    this.#exchanges = new Exchanges({
      get tcp() {
        return node.#tcp;
      },
      get stopped() {
        return node.#stopped;
      },
      get complete() {
        return node.core.complete;
      },
      get have() {
        return node.core.have;
      },
      pieceCount: this.meta.pieceCount,
      timers: deps.timers,
      rng: deps.rng,
      banned: (addr) => this.#dialer.peers.banned(addr),
      sleep: (ms) => this.#sleep(ms),
      linked: (id, chunks) => this.#addLink(id, true, chunks),
      trackerFailed: (url, message, retryInMs) => this.emit('tracker', url, 0, message, retryInMs),
      requesting: (chunks, name, addr) => this.emit('requesting', chunks, name, addr),
    });
  }

  /** Links opened, by how their peer was found (dialled), or `incoming` (the peer dialled us). */
  get partnersFound(): Readonly<Record<PeerSource | 'incoming', number>> {
    return this.#dialer.partnersFound;
  }

  /** Resolves when every piece is verified and the file is under its final name. */
  get done(): Promise<void> {
    return this.#done;
  }

  /** Bytes the web seeds (BEP 19) sent us. */
  get webSeedDownloaded(): number {
    return this.#webSeeds?.downloaded ?? 0;
  }

  get connections(): number {
    return this.#tcp?.links.size ?? 0;
  }

  /** Connections open and being dialled: what this torrent takes of a shared cap. */
  get connectionsHeld(): number {
    return this.connections + this.#dialer.dialling;
  }

  async start(): Promise<void> {
    const { blocks, have, pool } = await this.#openStore();
    this.downloaded = 0;
    this.core = this.#makeCore(have);
    const pri = this.opts.filePriorities;
    if (pri?.some((p) => p !== 1)) this.core.picker.setPriorities(piecePriorities(this.meta, pri));
    this.#tcp = this.#makeLinks(pool);
    this.#webSeeds = this.core.complete
      ? null
      : createWebSeeds({
          meta: this.meta,
          urls: this.opts.webSeeds ?? this.meta.webSeeds,
          core: () => this.core,
          run: (cmds) => this.#interp.run(cmds),
          now: () => this.#deps.clock.now(),
          timers: this.#deps.timers,
          log: (line) => this.emit('web-seed', line),
          only:
            !this.opts.dht && !this.opts.peers?.length && !(this.opts.trackers ?? this.meta.trackers).length,
        });
    this.#interp = new CommandInterpreter(this.core, {
      transport: this.#webSeeds === null ? this.#tcp : routeTransport(this.#tcp, this.#webSeeds),
      store: blocks,
      clock: this.#deps.clock,
      hooks: {
        complete: () => this.#onComplete().catch((e: Error) => this.#fail(e)),
        exchangeDone: (link) => this.#exchanges.ended(link),
        peers: (peers) => this.#learnFromPeers(peers),
        error: (e, fatal) => (fatal ? this.#fail(e) : this.#report(e)),
      },
    });
    // Incoming connections, plain or encrypted, come through a listener: the session's, or our own.
    const { encryption } = this.opts;
    const admit: Admit = (ip, pending) => this.#dialer.acceptable(ip, pending);
    if (this.opts.listener === undefined) {
      this.#ownListener = new SharedListener(this.host, undefined, { encryption, admit });
      await this.#ownListener.listen(this.opts.port ?? 0);
    }
    const listener = this.opts.listener ?? (this.#ownListener as SharedListener);
    listener.add(this.meta.infoHash, this.#tcp);
    this.port = listener.port;
    this.core.listenPort = this.port;
    if (this.core.complete) await this.#onComplete();
    this.#startTrackers();
    // DHT rounds (not for a private torrent): dht-rounds.ts.
    const dht = this.meta.private ? undefined : this.opts.dht;
    if (dht !== undefined)
      this.#cancelDht = startDhtRounds({
        dht,
        infoHash: this.meta.infoHash,
        intervalMs: this.opts.dhtIntervalMs,
        clock: this.#deps.clock,
        timers: this.#deps.timers,
        stopped: () => this.#stopped,
        complete: () => this.core.complete,
        port: () => this.port,
        found: (peers) => this.#learnFromPeers(peers, 'dht'),
      });
    this.#webSeeds?.start();
    // Peers given by the user are dialled like those a tracker names (with or without trackers).
    for (const p of this.opts.peers ?? []) this.#dialer.learn(p, 'given');
    this.#dialer.connectMore();
    this.#cancelTick = this.#deps.timers.every(TICK_MS, () => this.#tick());
  }

  /**
   * The torrent's storage opened and its pieces on disk verified: a seed must hold them all, and a
   * finished download's file must be this torrent's.
   */
  async #openStore() {
    const m = this.meta;
    const unwanted = new Set(this.opts.unwantedFiles ?? []);
    this.store = await this.#deps.openStore(m, this.opts.dir, this.opts.mode, { unwanted });
    // Read-ahead windows for serving, reused once the sockets have taken their blocks.
    const pool = new BufferPool(READ_AHEAD, MAX_WINDOWS);
    const blocks = new HashedBlockStore(this.store, m, this.#deps.hasher, pool);
    const have =
      this.opts.trustedHave ??
      (await this.store.verifyExisting(async (i, data) => {
        this.hashChecks++;
        return blocks.matches(i, data);
      }));
    const { mode } = this.opts;
    const problem =
      mode === 'seed' && !have.complete
        ? `${this.store.finalPath} does not match the torrent: ${m.pieceCount - have.count} of ${m.pieceCount} pieces differ`
        : mode === 'download' && this.store.finished && have.count === 0 && !holdsWanted(have, this.wanted)
          ? `${this.store.finalPath} exists and is not this torrent's content; move it away or choose another folder`
          : null;
    if (problem !== null) {
      await this.store.close();
      throw new Error(problem);
    }
    return { blocks, have, pool };
  }

  /** The pure core of the torrent, its events counted and told. */
  #makeCore(have: Bitfield): TorrentCore {
    const m = this.meta;
    return new TorrentCore(
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
        wanted: this.wanted ?? undefined,
        metadata: m.infoBytes,
        private: m.private,
        sha1: this.#deps.hasher.sha1,
        pexIntervalMs: this.opts.pexIntervalMs,
        sendAhead: sendAheadFor(this.opts),
      },
      this.#deps.rng,
      {
        onPieceVerified: (i) => {
          this.emit('piece', i, this.core.have.count, m.pieceCount);
          this.#announcer.reportSoon();
        },
        onPieceFailed: (i) => this.emit('piece-failed', i),
        onBlock: (l, n) => {
          this.downloaded += n;
          this.#exchanges.progressed(l);
          const from = this.core.peerIdOf(l);
          if (from !== null) this.receivedFrom.set(from, (this.receivedFrom.get(from) ?? 0) + n);
          this.emit('block', n);
        },
      },
    );
  }

  /** The torrent's TCP links (rate caps as token buckets), their events handed to the core. */
  #makeLinks(pool: BufferPool): PeerLinks {
    const clock = this.#deps.clock;
    const bucket = (rate?: number) => (rate ? new TokenBucket(rate, burstFor(rate), clock.now()) : null);
    return this.#deps.links(
      {
        host: this.host,
        infoHash: this.meta.infoHash,
        peerId: this.peerId,
        upBucket: this.opts.upBucket ?? bucket(this.opts.uploadRate),
        downBucket: this.opts.downBucket ?? bucket(this.opts.downloadRate),
        clock,
        timers: this.#deps.timers,
        pool,
        encryption: this.opts.encryption ?? 'prefer',
      },
      {
        message: (id, msg) => this.#interp.run(this.core.message(id, msg, clock.now())),
        wireError: (id, l, e) => {
          this.#dialer.peers.ban(l.addr); // it broke the protocol: not dialled again
          this.emit('peer-closed', l.addr, e.code, e.message);
          this.core.removeLink(id);
          this.#tcp.drop(id);
        },
        closedByCore: (_id, l, code: CloseCode, reason) => {
          this.#dialer.closed(l, code);
          this.emit('peer-closed', l.addr, code, reason);
        },
        gone: (id, l) => {
          this.#dialer.gone(id, l);
          this.core.removeLink(id);
          this.#exchanges.ended(id); // an exchange ends with its link, whoever closed it
        },
        accept: (ip) => this.#dialer.acceptable(ip),
        // In exchange mode a peer fetches only through its own exchanges; incoming links just serve.
        incoming: (id, ip) => {
          this.#dialer.partnersFound.incoming++;
          this.#addLink(id, false, this.opts.exchange ? [] : undefined, { ip });
        },
        uploaded: (n) => {
          this.uploaded += n;
          this.emit('upload', n);
        },
        pieceGone: sendAheadFor(this.opts)
          ? () => queueMicrotask(() => this.#interp.run(this.core.blockSent(clock.now())))
          : undefined,
      },
    );
  }

  #startTrackers(): void {
    const m = this.meta;
    const info = {
      infoHash: m.infoHash,
      peerId: this.peerId,
      ip: this.host,
      port: this.port,
      name: m.name,
      pieceCount: m.pieceCount,
      length: m.length,
    };
    const key = Buffer.from(this.#deps.randomBytes(4)).toString('hex');
    const name = this.opts.name ?? Buffer.from(this.peerId).toString('latin1');
    const client = (u: string) =>
      trackerClientFor(u, info, key, name, {
        retransmitMs: this.opts.udpRetransmitMs,
        socket: this.opts.udpSocket,
      });
    // Trackers given by the user are a tier each; the torrent's come in its tiers (BEP 12).
    const tiers = this.opts.trackers !== undefined ? this.opts.trackers.map((u) => [u]) : m.tiers;
    this.#trackerUrls = tiers.flat();
    this.#announcer = new Announcer(
      tiers.map((tier) => tier.map(client)),
      {
        state: (event) => this.#state(event),
        peers: (url, peers) => {
          this.#heardFrom.add(url);
          for (const p of peers) this.#dialer.learn(p, 'tracker');
          this.emit('tracker', url, peers.length);
          this.#dialer.connectMore();
        },
        failed: (url, message, retryInMs) => {
          this.#heardFrom.add(url);
          this.emit('tracker', url, 0, message, retryInMs);
        },
        have: () => this.core.have,
      },
      this.#deps.timers,
      this.#deps.rng,
      this.opts.minAnnounceIntervalMs,
    );
    for (const t of this.#announcer.json) t.stats = () => transferStats(this);
    this.#announcer.start();
    if (this.opts.exchange) {
      const json = this.#announcer.json[0];
      if (json === undefined)
        throw new Error('the exchange strategy needs a swarmshare tracker (its base URL, not /announce)');
      this.#exchanges
        .run(json as JsonTrackerClient, this.opts.exchange.maxChunks)
        .catch((e: Error) => this.#fail(e));
    }
  }

  #addLink(
    id: LinkId,
    outgoing: boolean,
    wanted?: number[],
    peer?: { ip: string; listenPort?: number },
  ): void {
    const encrypted = this.#tcp.links.get(id)?.sock.viaMse === true;
    const p = peer === undefined ? undefined : { ...peer, encrypted };
    this.#interp.run(this.core.addLink(id, outgoing, this.#deps.clock.now(), wanted, p));
  }

  /** Peers a peer told us of (PEX) or the DHT found: the same door as a tracker's (PeerSet.learn), then dialled as room allows. */
  #learnFromPeers(peers: readonly PeerAddress[], source: 'pex' | 'dht' = 'pex'): void {
    let learned = 0;
    for (const p of peers) if (this.#dialer.learn(p, source)) learned++;
    this.emit(source, peers.length, learned);
    this.#dialer.connectMore();
  }

  async #onComplete(): Promise<void> {
    if (this.#completed) return;
    this.#completed = true;
    await this.store.finish();
    this.emit('complete');
    this.#resolveDone();
    this.#announcer?.completed();
  }

  #fail(e: Error): void {
    this.#report(e);
    this.#rejectDone(e);
  }

  /** 'error' events only reach listeners; without one, `done` carries the failure. */
  #report(e: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }

  #state(event?: AnnounceEvent) {
    const have = this.core.have;
    const left = this.meta.length - bytesHeld(this.meta, have);
    return { uploaded: this.uploaded, downloaded: this.downloaded, left, have, event };
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((r) => this.#announcer.later(r, ms));
  }

  /** The peers we are linked to: address, peer id, direction, bytes each way, what each holds. */
  peerList(withPieces = false): LinkedPeer[] {
    return this.#tcp === undefined || this.core === undefined ? [] : this.#dialer.linkedPeers(withPieces);
  }

  /** Trackers that have not answered yet, neither with peers nor with an error. */
  unansweredTrackers(): string[] {
    return this.#trackerUrls.filter((u) => !this.#heardFrom.has(u));
  }

  /** Pieces with a deadline, most urgent first (file readers: node/file-stream.ts); asked for at once. */
  setUrgent(pieces: readonly number[]): void {
    if (!this.#stopped && this.core !== undefined)
      this.#interp.run(this.core.setUrgent(pieces, this.#deps.clock.now()));
  }

  #tick(): void {
    if (this.#stopped) return;
    // A seed with no link and no peer to dial has nothing to do (a session's idle seeds).
    if (this.core.complete && this.connectionsHeld === 0 && !this.opts.peers?.length) return;
    this.#interp.tick();
    this.#dialer.connectMore();
  }

  /** Stops listening (done once the links close), ticking and searching the DHT: the first step of stopping. */
  #halt(): Promise<void> {
    this.#stopped = true;
    this.opts.listener?.remove(this.meta.infoHash);
    this.#cancelTick();
    this.#cancelDht();
    this.#webSeeds?.stop();
    return this.#ownListener?.close() ?? Promise.resolve();
  }

  /** Dies without a word (a crash, for fault tests): no tracker goodbye, sockets just drop. */
  async kill(): Promise<void> {
    if (this.#stopped) return;
    void this.#halt();
    this.#announcer?.close();
    await this.#tcp?.closeAll();
    await this.store?.close();
    this.#rejectDone(new Error('killed'));
  }

  /** Leaves the trackers (event=stopped, bounded in time), closes every connection and the store. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    const halted = this.#halt(); // awaited after our links close, or two peers wait on each other
    await this.#announcer?.stop();
    await this.#tcp?.closeAll();
    await Promise.all([halted, this.store?.close()]);
    this.#rejectDone(new Error('stopped before the download completed'));
  }
}
