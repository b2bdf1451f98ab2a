import { EventEmitter } from 'node:events';
import { Bitfield } from '../core/bitfield.js';
import { sameBytes } from '../core/deps.js';
import type { PeerLinks } from '../net/tcp-links.js';
import type { PeerAddress } from '../net/tracker-client.js';
import { trackerClientFor } from '../net/tracker-clients.js';
import { extensionHandshake, OUR_EXTENSIONS, readExtensionHandshake } from '../swarm/extensions.js';
import type { LinkId } from '../swarm/link.js';
import { MetadataFetch } from '../swarm/metadata.js';
import { MAX_PEER_REQUESTS } from '../swarm/serving.js';
import { type Handshake, type Message, speaksExtensions } from '../wire/messages.js';
import type { EncryptionMode } from '../wire/mse.js';
import { Announcer } from './announcer.js';
import type { PeerDht, PeerNodeDeps } from './peer-options.js';
import { PeerSet } from './peer-set.js';
import { newPeerId, systemPeerDeps } from './system-deps.js';

/**
 * A magnet link's first step: the torrent's info dictionary from peers (BEP 9), before anything
 * else. Peers come from the magnet's trackers and `x.pe`; each is asked in turn; what arrives is
 * checked against the info hash (a peer whose metadata does not hash to it is dropped and not
 * asked again); the first good copy wins.
 */

/**
 * A .torrent made of fetched metadata: the info dictionary as it came (its hash is the info hash)
 * and the first tracker as `announce`, so the file works with any client.
 */
export function torrentFromInfo(
  info: Uint8Array,
  trackers: readonly string[],
  webSeeds: readonly string[] = [],
): Uint8Array {
  const str = (v: string) => `${Buffer.byteLength(v)}:${v}`;
  const first = trackers[0];
  const announce = first === undefined ? '' : `8:announce${str(first)}`;
  // Keys in order (announce, info, url-list): the magnet's web seeds (BEP 19) are kept.
  const urls = webSeeds.length === 0 ? '' : `8:url-listl${webSeeds.map(str).join('')}e`;
  return Buffer.concat([Buffer.from(`d${announce}4:info`), info, Buffer.from(`${urls}e`)]);
}

/** What we hold while the metadata is still coming: nothing (the piece count is unknown). */
const NOTHING = new Bitfield(0);

/** A peer that gives no metadata piece for this long is left for another. */
export const METADATA_PEER_TIMEOUT_MS = 15_000;
/** Peers asked for metadata at once. */
export const METADATA_PARALLEL = 4;

export interface MetadataFetchOpts {
  infoHash: Uint8Array;
  host: string;
  /** Dials encrypted first (default `prefer`), encrypted only, or plain only. */
  encryption?: EncryptionMode;
  /** Tracker tiers (each magnet `tr` is a tier). */
  tiers: string[][];
  peers: PeerAddress[];
  minAnnounceIntervalMs?: number;
  /** The DHT, searched for the torrent's peers every DHT_METADATA_SEARCH_MS until the metadata is in. */
  dht?: PeerDht;
}

/** While fetching metadata, the DHT is searched this often. */
export const DHT_METADATA_SEARCH_MS = 5_000;

export interface MetadataFetchEvents {
  tracker: [url: string, peers: number, error?: string, retryInMs?: number];
  'peer-failed': [addr: string, reason: string];
  /** A DHT lookup found `found` peers. */
  dht: [found: number];
}

interface Conn {
  addr: string;
  fetch: MetadataFetch | null;
  cancelTimer: () => void;
}

export class MetadataFetcher extends EventEmitter<MetadataFetchEvents> {
  readonly #o: MetadataFetchOpts;
  readonly #deps: PeerNodeDeps;
  readonly #peerId: Uint8Array;
  #run: FetchRun | undefined;

  constructor(opts: MetadataFetchOpts, deps: PeerNodeDeps = systemPeerDeps()) {
    super();
    this.#o = opts;
    this.#deps = deps;
    this.#peerId = newPeerId(deps.randomBytes);
  }

  /** Resolves with the info dictionary's bytes once one peer's copy hashes to the info hash. */
  fetch(): Promise<Uint8Array> {
    return new Promise<Uint8Array>((resolve) => {
      this.#run = new FetchRun(this.#o, this.#deps, this.#peerId, this, resolve);
      this.#run.start();
    });
  }

  /** Gives up: links closed, trackers and timers stopped; `fetch` never resolves. */
  cancel(): void {
    this.#run?.stop();
  }
}

/** One fetch as it runs: the peers we know, the links asking them, the trackers and the DHT. */
class FetchRun {
  readonly peers = new PeerSet();
  readonly conns = new Map<LinkId, Conn>();
  readonly tcp: PeerLinks;
  readonly announcer: Announcer;
  done = false;
  #cancelTimers: (() => void)[] = [];

  constructor(
    readonly o: MetadataFetchOpts,
    readonly deps: PeerNodeDeps,
    readonly peerId: Uint8Array,
    readonly events: MetadataFetcher,
    readonly resolve: (info: Uint8Array) => void,
  ) {
    this.tcp = this.#links();
    this.announcer = this.#announcer();
  }

  start(): void {
    for (const p of this.o.peers) this.peers.learn(p);
    this.announcer.start();
    this.dialMore();
    this.#cancelTimers.push(this.deps.timers.every(1000, () => this.dialMore()));
    if (this.o.dht !== undefined) this.#searchDht(this.o.dht);
  }

  /** TCP links that hand every message to `onMessage`; no incoming links. */
  #links(): PeerLinks {
    const { clock, timers } = this.deps;
    return this.deps.links(
      {
        host: this.o.host,
        infoHash: this.o.infoHash,
        peerId: this.peerId,
        upBucket: null,
        downBucket: null,
        clock,
        timers,
        encryption: this.o.encryption ?? 'prefer',
      },
      {
        message: (id, m) => onMessage(this, id, m),
        wireError: (id, _l, e) => this.fail(id, e.message),
        closedByCore: () => {},
        gone: (id) => {
          const c = this.conns.get(id);
          if (c === undefined) return;
          c.cancelTimer();
          this.conns.delete(id);
        },
        accept: () => false,
        incoming: () => {},
        uploaded: () => {},
      },
    );
  }

  /** The magnet's trackers, told we are a leecher that holds nothing yet. */
  #announcer(): Announcer {
    const o = this.o;
    const torrent = {
      infoHash: o.infoHash,
      peerId: this.peerId,
      ip: o.host,
      port: 6881,
      name: '',
      pieceCount: 0,
      length: 0,
    };
    const tiers = o.tiers.map((tier) =>
      tier.map((u) =>
        trackerClientFor(u, torrent, Buffer.from(this.deps.randomBytes(4)).toString('hex'), ''),
      ),
    );
    return new Announcer(
      tiers,
      {
        // Not yet able to serve anything: left is unknown, said as 1 byte so we count as a leecher.
        state: (event) => ({ uploaded: 0, downloaded: 0, left: 1, have: NOTHING, event }),
        peers: (url, list) => {
          for (const p of list) this.peers.learn(p);
          this.events.emit('tracker', url, list.length);
          this.dialMore();
        },
        failed: (url, message, retry) => this.events.emit('tracker', url, 0, message, retry),
        have: () => NOTHING,
      },
      this.deps.timers,
      this.deps.rng,
      o.minAnnounceIntervalMs,
    );
  }

  /** The DHT searched now and every DHT_METADATA_SEARCH_MS (one lookup at a time). */
  #searchDht(dht: PeerDht): void {
    let searching = false;
    const search = () => {
      if (this.done || searching) return;
      searching = true;
      dht.getPeers(this.o.infoHash).then(
        (r) => {
          searching = false;
          for (const p of r.peers) this.peers.learn(p);
          this.events.emit('dht', r.peers.length);
          this.dialMore();
        },
        () => {
          searching = false;
        },
      );
    };
    search();
    this.#cancelTimers.push(this.deps.timers.every(DHT_METADATA_SEARCH_MS, search));
  }

  /** Links up to METADATA_PARALLEL peers, each given METADATA_PEER_TIMEOUT_MS to deliver. */
  dialMore(): void {
    if (this.done) return;
    const busy = (addr: string) => [...this.conns.values()].some((c) => c.addr === addr);
    const now = this.deps.clock.now();
    for (const { addr, p } of this.peers.toDial(METADATA_PARALLEL - this.conns.size, busy, now)) {
      const dial = this.tcp.dial(p.ip, p.port, 10_000);
      dial.connected.then(
        () => {
          if (this.done) return dial.abort();
          const id = dial.attach(addr);
          const c: Conn = { addr, fetch: null, cancelTimer: () => {} };
          c.cancelTimer = this.deps.timers.after(METADATA_PEER_TIMEOUT_MS, () =>
            this.fail(id, 'no metadata in time'),
          );
          this.conns.set(id, c);
          this.tcp.handshake(id);
          this.tcp.flush?.();
        },
        () => {},
      );
    }
  }

  send(id: LinkId, m: Message): void {
    this.tcp.send(id, m);
    this.tcp.flush?.();
  }

  /** Drops a peer that failed us, and never asks it again. */
  fail(id: LinkId, reason: string): void {
    const c = this.conns.get(id);
    if (c === undefined) return;
    c.cancelTimer();
    this.conns.delete(id);
    this.peers.ban(c.addr);
    this.events.emit('peer-failed', c.addr, reason);
    this.tcp.drop(id);
  }

  finish(info: Uint8Array): void {
    if (this.done) return;
    this.stop();
    this.resolve(info);
  }

  stop(): void {
    if (this.done) return;
    this.done = true;
    for (const cancel of this.#cancelTimers) cancel();
    this.announcer.close();
    for (const c of this.conns.values()) c.cancelTimer();
    void this.tcp.closeAll();
  }
}

/** A message on a link: the extension handshake, then metadata pieces, checked when whole. */
function onMessage(run: FetchRun, id: LinkId, m: Message | Handshake): void {
  const send = (lid: LinkId, msg: Message) => run.send(lid, msg);
  const fail = (lid: LinkId, reason: string) => run.fail(lid, reason);
  const c = run.conns.get(id);
  if (c === undefined) return;
  if (m.type === 'handshake') {
    if (!sameBytes(m.infoHash, run.o.infoHash)) {
      fail(id, 'a handshake for another torrent');
      return;
    }
    if (!speaksExtensions(m.reserved)) {
      fail(id, 'the peer does not speak the extension protocol');
      return;
    }
    // No PEX while fetching metadata: the torrent's private flag is not known yet (BEP 27).
    send(
      id,
      extensionHandshake({
        metadata: null,
        reqq: MAX_PEER_REQUESTS,
        pex: false,
        listenPort: null,
        yourIp: null,
      }),
    );
    return;
  }
  if (m.type !== 'extended') return;
  if (m.ext === 0 && c.fetch === null) {
    const theirs = readExtensionHandshake(m.payload);
    if (typeof theirs === 'string') {
      fail(id, theirs);
      return;
    }
    const size = theirs.metadataSize ?? undefined;
    const why = MetadataFetch.refuse(theirs.utMetadata, size);
    if (why !== null) {
      fail(id, why);
      return;
    }
    c.fetch = new MetadataFetch(theirs.utMetadata, size as number);
    send(id, c.fetch.start());
    return;
  }
  if (m.ext !== OUR_EXTENSIONS.ut_metadata || c.fetch === null) return;
  const r = c.fetch.receive(m.payload);
  if (r.kind === 'send') send(id, r.msg);
  else if (r.kind === 'fail') fail(id, r.reason);
  else if (r.kind === 'done') {
    if (!sameBytes(run.deps.hasher.sha1(r.info), run.o.infoHash)) {
      fail(id, 'sent metadata that does not hash to the info hash');
      return;
    }
    run.finish(Uint8Array.from(r.info));
  }
}
