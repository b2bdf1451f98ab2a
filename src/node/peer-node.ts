import { EventEmitter } from 'node:events';
import { BufferPool } from '../core/buffer-pool.js';
import { type CloseCode, mayRedial } from '../core/errors.js';
import type { Metainfo } from '../core/metainfo.js';
import { TokenBucket } from '../core/token-bucket.js';
import type { PeerLinks } from '../net/tcp-links.js';
import type { JsonTrackerClient, PeerAddress } from '../net/tracker-client.js';
import { trackerClientFor } from '../net/tracker-clients.js';
import type { PieceStore } from '../storage/piece-store.js';
import { CommandInterpreter } from '../swarm/interpreter.js';
import type { LinkId } from '../swarm/link.js';
import { TorrentCore } from '../swarm/torrent-core.js';
import { type AnnounceEvent, Announcer } from './announcer.js';
import { EXCHANGE_TIMEOUT_MS, exchangeLoop } from './exchange.js';
import { HashedBlockStore, MAX_WINDOWS, READ_AHEAD } from './fs-block-store.js';
import {
  CONNECT_TIMEOUT_MS,
  DHT_INTERVAL_MS,
  DHT_SEARCH_MS,
  MAX_CONNECTIONS,
  MAX_PER_IP,
  type PeerNodeDeps,
  type PeerNodeEvents,
  type PeerNodeOpts,
  SETTLE_MS,
  type StoreInfo,
  TICK_MS,
} from './peer-options.js';
import { MAX_KNOWN_PEERS, PeerSet, REST_MS } from './peer-set.js';
import { newPeerId, systemPeerDeps } from './system-deps.js';

export { MAX_RETRY_MS, MIN_ANNOUNCE_INTERVAL_MS, REPORT_MS, RETRY_MS } from './announcer.js';
export { EXCHANGE_IDLE_MS, EXCHANGE_TIMEOUT_MS } from './exchange.js';
export * from './peer-options.js';
export { REST_MS } from './peer-set.js';

/** Where a peer's address came from: a tracker, the DHT, another peer (PEX), or the user (`--peer`). */
export type PeerSource = 'tracker' | 'dht' | 'pex' | 'given';
export { newPeerId, PEER_ID_PREFIX } from './system-deps.js';

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
  port = 0;
  downloaded = 0;
  uploaded = 0;
  /** Bytes received per remote peer id (latin1). */
  readonly receivedFrom = new Map<string, number>();
  /** Peers we know of: never ourselves (our port, at our address or any when bound to all). */
  readonly #peers = new PeerSet(
    (p) => p.port === this.port && (p.ip === this.host || this.host === '0.0.0.0'),
  );
  #exchanges = new Map<LinkId, () => void>();
  #exchangeProgress = new Map<LinkId, () => void>();
  #connecting = new Set<string>();
  /** How each known address was first found. */
  readonly #sourceOf = new Map<string, PeerSource>();
  /** Links opened, by how their peer was found (dialled), or `incoming` (the peer dialled us). */
  readonly partnersFound: Record<PeerSource | 'incoming', number> = {
    tracker: 0,
    dht: 0,
    pex: 0,
    given: 0,
    incoming: 0,
  };
  /** When we last dialled each peer the user named, as a seed. */
  readonly #givenDialled = new Map<string, number>();
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
    this.#deps = deps;
    this.peerId = opts.peerId ?? newPeerId(deps.randomBytes);
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
    return this.#tcp?.links.size ?? 0;
  }

  async start(): Promise<void> {
    const m = this.meta;
    const { clock, hasher } = this.#deps;
    this.store = await this.#deps.openStore(m, this.opts.dir, this.opts.mode);
    // Read-ahead windows for serving, reused once the sockets have taken their blocks.
    const pool = new BufferPool(READ_AHEAD, MAX_WINDOWS);
    const blocks = new HashedBlockStore(this.store, m, hasher, pool);
    const have = await this.store.verifyExisting(async (i, data) => blocks.matches(i, data));
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
        metadata: m.infoBytes,
        private: m.private,
        sha1: hasher.sha1,
        pexIntervalMs: this.opts.pexIntervalMs,
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
          this.#exchangeProgress.get(l)?.();
          const from = this.core.peerIdOf(l);
          if (from !== null) this.receivedFrom.set(from, (this.receivedFrom.get(from) ?? 0) + n);
          this.emit('block', n);
        },
      },
    );
    const now = clock.now();
    // Bursts of a quarter second's worth (at least one block) keep the pace smooth.
    const bucket = (rate: number | undefined) =>
      rate ? new TokenBucket(rate, Math.max(16384, rate / 4), now) : null;
    this.#tcp = this.#deps.links(
      {
        host: this.host,
        infoHash: m.infoHash,
        peerId: this.peerId,
        upBucket: bucket(this.opts.uploadRate),
        downBucket: bucket(this.opts.downloadRate),
        clock,
        timers: this.#deps.timers,
        pool,
      },
      {
        message: (id, msg) => this.#interp.run(this.core.message(id, msg, clock.now())),
        wireError: (id, l, e) => {
          // A peer that breaks the protocol is not dialled again.
          this.#peers.ban(l.addr);
          this.emit('peer-closed', l.addr, e.code, e.message);
          this.core.removeLink(id);
          this.#tcp.drop(id);
        },
        closedByCore: (_id, l, code: CloseCode, reason) => {
          if (!mayRedial(code)) this.#peers.ban(l.addr);
          this.emit('peer-closed', l.addr, code, reason);
        },
        gone: (id) => {
          this.core.removeLink(id);
          // An exchange ends with its link, whoever closed it.
          this.#exchanges.get(id)?.();
        },
        accept: (ip) => this.#acceptable(ip),
        // In exchange mode a peer fetches only through its own exchanges; incoming links just serve.
        incoming: (id, ip) => {
          this.partnersFound.incoming++;
          this.#addLink(id, false, this.opts.exchange ? [] : undefined, { ip });
        },
        uploaded: (n) => {
          this.uploaded += n;
          this.emit('upload', n);
        },
      },
    );
    this.#interp = new CommandInterpreter(this.core, {
      transport: this.#tcp,
      store: blocks,
      clock,
      hooks: {
        complete: () => this.#onComplete().catch((e: Error) => this.#fail(e)),
        exchangeDone: (link) => this.#exchanges.get(link)?.(),
        peers: (peers) => this.#learnFromPeers(peers),
        error: (e, fatal) => (fatal ? this.#fail(e) : this.#report(e)),
      },
    });
    this.port = await this.#tcp.listen(this.opts.port ?? 0, (e) => this.#report(e));
    this.core.listenPort = this.port;
    if (this.core.complete) await this.#onComplete();
    this.#startTrackers();
    this.#startDht();
    // Peers given by the user are dialled like those a tracker names (with or without trackers).
    for (const p of this.opts.peers ?? []) this.#learn(p, 'given');
    this.#connectMore();
    this.#cancelTick = this.#deps.timers.every(TICK_MS, () => this.#tick());
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
      trackerClientFor(u, info, key, name, { retransmitMs: this.opts.udpRetransmitMs });
    // Trackers given by the user are a tier each; the torrent's come in its tiers (BEP 12).
    const tiers = this.opts.trackers !== undefined ? this.opts.trackers.map((u) => [u]) : m.tiers;
    this.#announcer = new Announcer(
      tiers.map((tier) => tier.map(client)),
      {
        state: (event) => this.#state(event),
        peers: (url, peers) => {
          for (const p of peers) this.#learn(p, 'tracker');
          this.emit('tracker', url, peers.length);
          this.#connectMore();
        },
        failed: (url, message, retryInMs) => this.emit('tracker', url, 0, message, retryInMs),
        have: () => this.core.have,
      },
      this.#deps.timers,
      this.#deps.rng,
      this.opts.minAnnounceIntervalMs,
    );
    for (const t of this.#announcer.json) t.stats = () => this.transferStats();
    this.#announcer.start();
    if (this.opts.exchange) {
      const json = this.#announcer.json[0];
      if (json === undefined)
        throw new Error('the exchange strategy needs a swarmshare tracker (its base URL, not /announce)');
      this.#runExchanges(json as JsonTrackerClient, this.opts.exchange.maxChunks);
    }
  }

  /** DHT rounds: a lookup that also announces us, now and then periodically (not for a private torrent). */
  #startDht(): void {
    const dht = this.opts.dht;
    if (dht === undefined || this.meta.private) return;
    const every = this.opts.dhtIntervalMs ?? DHT_INTERVAL_MS;
    let running = false;
    let last = Number.NEGATIVE_INFINITY;
    const round = () => {
      if (this.#stopped || running) return;
      const now = this.#deps.clock.now();
      // A seed re-announces every period; a download searches at least every DHT_SEARCH_MS.
      const due = this.core.complete ? every : Math.min(every, DHT_SEARCH_MS);
      if (now - last < due) return;
      running = true;
      last = now;
      dht.getPeers(this.meta.infoHash, this.port).then(
        (r) => {
          running = false;
          if (this.#stopped) return;
          let learned = 0;
          for (const p of r.peers) if (this.#learn(p, 'dht')) learned++;
          this.emit('dht', r.peers.length, learned);
          this.#connectMore();
        },
        () => {
          running = false;
        },
      );
    };
    round();
    this.#cancelDht = this.#deps.timers.every(Math.min(1000, every), round);
  }

  /**
   * A peer from `source`, through the one door (PeerSet.learn); the first source an address came
   * from is remembered, so links can be counted by how their peer was found.
   */
  #learn(p: PeerAddress, source: PeerSource): boolean {
    const ok = this.#peers.learn(p);
    if (ok) {
      const addr = `${p.ip}:${p.port}`;
      if (!this.#sourceOf.has(addr) && this.#sourceOf.size < 4 * MAX_KNOWN_PEERS)
        this.#sourceOf.set(addr, source);
    }
    return ok;
  }

  #acceptable(ip: string): boolean {
    return !(
      this.#stopped ||
      // Dials under way hold their slots: otherwise the peer we just dropped to make room could
      // take the slot back before the dial it was dropped for connects.
      this.#tcp.links.size + this.#connecting.size >= (this.opts.maxConnections ?? MAX_CONNECTIONS) ||
      this.#tcp.perIp(ip) >= (this.opts.maxPerIp ?? MAX_PER_IP)
    );
  }

  #addLink(
    id: LinkId,
    outgoing: boolean,
    wanted?: number[],
    peer?: { ip: string; listenPort?: number },
  ): void {
    this.#interp.run(this.core.addLink(id, outgoing, this.#deps.clock.now(), wanted, peer));
  }

  /** Peers a peer told us of (PEX): the same door as a tracker's (PeerSet.learn), then dialled as room allows. */
  #learnFromPeers(peers: readonly PeerAddress[]): void {
    let learned = 0;
    for (const p of peers) if (this.#learn(p, 'pex')) learned++;
    this.emit('pex', peers.length, learned);
    this.#connectMore();
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

  #sleep(ms: number): Promise<void> {
    return new Promise((r) => this.#announcer.later(r, ms));
  }

  /** Addresses we are linked to or dialling. */
  #busy(): (addr: string) => boolean {
    const connected = new Set([...this.#tcp.links.values()].map((l) => l.addr));
    return (addr) => connected.has(addr) || this.#connecting.has(addr);
  }

  #connectMore(): void {
    if (this.#stopped || this.opts.exchange) return;
    if (this.core.complete) {
      this.#dialGiven();
      return;
    }
    const max = this.opts.maxConnections ?? MAX_CONNECTIONS;
    const busy = this.#busy();
    if (this.#tcp.links.size + this.#connecting.size >= max) this.#dropUselessLink(busy);
    const room = max - this.#tcp.links.size - this.#connecting.size;
    if (room <= 0) return;
    for (const { addr, p } of this.#peers.toDial(room, busy, this.#deps.clock.now())) this.#dial(addr, p);
  }

  #dial(addr: string, p: PeerAddress): void {
    this.#connecting.add(addr);
    const dial = this.#tcp.dial(p.ip, p.port, CONNECT_TIMEOUT_MS);
    dial.connected.then(
      () => {
        this.#connecting.delete(addr);
        if (this.#stopped) return dial.abort();
        this.partnersFound[this.#sourceOf.get(addr) ?? 'given']++;
        this.#addLink(dial.attach(addr), true, undefined, { ip: p.ip, listenPort: p.port });
      },
      () => this.#connecting.delete(addr),
    );
  }

  /**
   * As a seed we dial only the peers the user named (`--peer`), each at most once per REST_MS:
   * a client that will not dial us (Transmission refuses loopback addresses from trackers and PEX)
   * still gets the file, and a named peer that is a seed too costs one connection a minute.
   */
  #dialGiven(): void {
    const now = this.#deps.clock.now();
    const busy = this.#busy();
    for (const p of this.opts.peers ?? []) {
      const addr = `${p.ip}:${p.port}`;
      if (
        busy(addr) ||
        this.#peers.banned(addr) ||
        now - (this.#givenDialled.get(addr) ?? Number.NEGATIVE_INFINITY) < REST_MS
      )
        continue;
      if (this.#tcp.links.size + this.#connecting.size >= (this.opts.maxConnections ?? MAX_CONNECTIONS))
        return;
      this.#givenDialled.set(addr, now);
      this.#dial(addr, p);
    }
  }

  /**
   * At the connection limit, with peers we know and are not connected to, one link over which
   * neither side wants anything is closed to make room (one per tick): otherwise peers that only
   * know peers as empty as themselves would keep their slots and wait forever.
   */
  #dropUselessLink(busy: (addr: string) => boolean): void {
    if (!this.#peers.anyCandidate(busy)) return;
    const now = this.#deps.clock.now();
    for (const [id, l] of this.#tcp.links) {
      const st = this.core.linkStats(id);
      // A link still settling (handshake, bitfield) has not said what it holds yet: under load a
      // seed's link was dropped as useless before its bitfield arrived, and then rested for 60 s.
      if (st === undefined || !st.handshaken || now - st.openedAt < SETTLE_MS) continue;
      if (!st.amInterested && !st.peerInterested) {
        this.#peers.rest(l.addr, now);
        this.core.removeLink(id);
        this.#tcp.drop(id);
        return;
      }
    }
  }

  #runExchanges(tracker: JsonTrackerClient, maxChunks: number): void {
    const node = this;
    exchangeLoop(
      {
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
        banned: (addr) => this.#peers.banned(addr),
        exchange: (p, chunks) => this.#exchange(p, chunks),
        sleep: (ms) => this.#sleep(ms),
        trackerFailed: (url, message, retryInMs) => this.emit('tracker', url, 0, message, retryInMs),
        requesting: (chunks, name, addr) => this.emit('requesting', chunks, name, addr),
      },
      tracker,
      maxChunks,
      this.#deps.rng,
    ).catch((e: Error) => this.#fail(e));
  }

  /** Connects to `p`, fetches `chunks` over that one link, closes it. Resolves when over, whatever happened. */
  #exchange(p: PeerAddress, chunks: number[]): Promise<void> {
    return new Promise((resolve) => {
      let link: LinkId | undefined;
      let settled = false;
      let cancelTimer = () => {};
      const finish = () => {
        if (settled) return;
        settled = true;
        cancelTimer();
        if (link !== undefined) {
          this.#exchanges.delete(link);
          this.#exchangeProgress.delete(link);
          this.#tcp.drop(link);
        }
        resolve();
      };
      // Abandoned when nothing arrives for EXCHANGE_TIMEOUT_MS (a dead or stalled peer), however
      // long a slow but steady exchange takes.
      const progress = () => {
        cancelTimer();
        cancelTimer = this.#deps.timers.after(EXCHANGE_TIMEOUT_MS, finish);
      };
      progress();
      const dial = this.#tcp.dial(p.ip, p.port);
      dial.connected.then(() => {
        if (this.#stopped || settled) return dial.abort();
        link = dial.attach(`${p.ip}:${p.port}`);
        this.#exchanges.set(link, finish);
        this.#exchangeProgress.set(link, progress);
        this.#addLink(link, true, chunks);
      }, finish);
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

  #tick(): void {
    if (this.#stopped) return;
    this.#interp.tick();
    this.#connectMore();
  }

  #cancelTimers(): void {
    this.#cancelTick();
    this.#cancelDht();
    this.#announcer?.close();
  }

  /** Dies without a word (a crash, for fault tests): no tracker goodbye, sockets just drop. */
  async kill(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#cancelTimers();
    await this.#tcp?.closeAll();
    await this.store?.close();
    this.#rejectDone(new Error('killed'));
  }

  /** Leaves the trackers (event=stopped, bounded in time), closes every connection and the store. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#cancelTick();
    this.#cancelDht();
    await this.#announcer?.stop();
    await this.#tcp?.closeAll();
    await this.store?.close();
    this.#rejectDone(new Error('stopped before the download completed'));
  }
}
