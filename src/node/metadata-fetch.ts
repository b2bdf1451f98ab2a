import { EventEmitter } from 'node:events';
import { Bitfield } from '../core/bitfield.js';
import { sameBytes } from '../core/deps.js';
import type { PeerAddress } from '../net/tracker-client.js';
import { trackerClientFor } from '../net/tracker-clients.js';
import { extensionHandshake, OUR_EXTENSIONS, readExtensionHandshake } from '../swarm/extensions.js';
import type { LinkId } from '../swarm/link.js';
import { MetadataFetch } from '../swarm/metadata.js';
import { MAX_PEER_REQUESTS } from '../swarm/serving.js';
import { type Handshake, type Message, speaksExtensions } from '../wire/messages.js';
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

/** What we hold while the metadata is still coming: nothing (the piece count is unknown). */
const NOTHING = new Bitfield(0);

/** A peer that gives no metadata piece for this long is left for another. */
export const METADATA_PEER_TIMEOUT_MS = 15_000;
/** Peers asked for metadata at once. */
export const METADATA_PARALLEL = 4;

export interface MetadataFetchOpts {
  infoHash: Uint8Array;
  host: string;
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

  constructor(opts: MetadataFetchOpts, deps: PeerNodeDeps = systemPeerDeps()) {
    super();
    this.#o = opts;
    this.#deps = deps;
    this.#peerId = newPeerId(deps.randomBytes);
  }

  /** Resolves with the info dictionary's bytes once one peer's copy hashes to the info hash. */
  fetch(): Promise<Uint8Array> {
    const { clock, timers, hasher } = this.#deps;
    const o = this.#o;
    const peers = new PeerSet();
    const conns = new Map<LinkId, Conn>();
    let done = false;
    return new Promise<Uint8Array>((resolve) => {
      const finish = (info: Uint8Array) => {
        if (done) return;
        done = true;
        cancelTick();
        announcer.close();
        for (const c of conns.values()) c.cancelTimer();
        void tcp.closeAll();
        resolve(info);
      };
      const fail = (id: LinkId, reason: string) => {
        const c = conns.get(id);
        if (c === undefined) return;
        c.cancelTimer();
        conns.delete(id);
        peers.ban(c.addr);
        this.emit('peer-failed', c.addr, reason);
        tcp.drop(id);
      };
      const send = (id: LinkId, m: Message) => {
        tcp.send(id, m);
        tcp.flush?.();
      };
      const tcp = this.#deps.links(
        {
          host: o.host,
          infoHash: o.infoHash,
          peerId: this.#peerId,
          upBucket: null,
          downBucket: null,
          clock,
          timers,
        },
        {
          message: (id, m) => this.#onMessage(id, m, conns, send, fail, finish, hasher),
          wireError: (id, _l, e) => fail(id, e.message),
          closedByCore: () => {},
          gone: (id) => {
            const c = conns.get(id);
            if (c === undefined) return;
            c.cancelTimer();
            conns.delete(id);
          },
          accept: () => false,
          incoming: () => {},
          uploaded: () => {},
        },
      );
      const dialMore = () => {
        if (done) return;
        const busy = (addr: string) => [...conns.values()].some((c) => c.addr === addr);
        for (const { addr, p } of peers.toDial(METADATA_PARALLEL - conns.size, busy, clock.now())) {
          const dial = tcp.dial(p.ip, p.port, 10_000);
          dial.connected.then(
            () => {
              if (done) return dial.abort();
              const id = dial.attach(addr);
              const c: Conn = { addr, fetch: null, cancelTimer: () => {} };
              c.cancelTimer = timers.after(METADATA_PEER_TIMEOUT_MS, () => fail(id, 'no metadata in time'));
              conns.set(id, c);
              tcp.handshake(id);
              tcp.flush?.();
            },
            () => {},
          );
        }
      };
      const announcer = new Announcer(
        o.tiers.map((tier) =>
          tier.map((u) =>
            trackerClientFor(
              u,
              {
                infoHash: o.infoHash,
                peerId: this.#peerId,
                ip: o.host,
                port: 6881,
                name: '',
                pieceCount: 0,
                length: 0,
              },
              Buffer.from(this.#deps.randomBytes(4)).toString('hex'),
              '',
            ),
          ),
        ),
        {
          // Not yet able to serve anything: left is unknown, said as 1 byte so we count as a leecher.
          state: (event) => ({
            uploaded: 0,
            downloaded: 0,
            left: 1,
            have: NOTHING,
            event,
          }),
          peers: (url, list) => {
            for (const p of list) peers.learn(p);
            this.emit('tracker', url, list.length);
            dialMore();
          },
          failed: (url, message, retry) => this.emit('tracker', url, 0, message, retry),
          have: () => NOTHING,
        },
        timers,
        this.#deps.rng,
        o.minAnnounceIntervalMs,
      );
      for (const p of o.peers) peers.learn(p);
      announcer.start();
      dialMore();
      let cancelTick = timers.every(1000, dialMore);
      const dht = o.dht;
      if (dht !== undefined) {
        let searching = false;
        const search = () => {
          if (done || searching) return;
          searching = true;
          dht.getPeers(o.infoHash).then(
            (r) => {
              searching = false;
              for (const p of r.peers) peers.learn(p);
              this.emit('dht', r.peers.length);
              dialMore();
            },
            () => {
              searching = false;
            },
          );
        };
        search();
        const cancelSearch = timers.every(DHT_METADATA_SEARCH_MS, search);
        const stop = cancelTick;
        cancelTick = () => {
          stop();
          cancelSearch();
        };
      }
    });
  }

  #onMessage(
    id: LinkId,
    m: Message | Handshake,
    conns: Map<LinkId, Conn>,
    send: (id: LinkId, m: Message) => void,
    fail: (id: LinkId, reason: string) => void,
    finish: (info: Uint8Array) => void,
    hasher: PeerNodeDeps['hasher'],
  ): void {
    const c = conns.get(id);
    if (c === undefined) return;
    if (m.type === 'handshake') {
      if (!sameBytes(m.infoHash, this.#o.infoHash)) {
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
      if (!sameBytes(hasher.sha1(r.info), this.#o.infoHash)) {
        fail(id, 'sent metadata that does not hash to the info hash');
        return;
      }
      finish(Uint8Array.from(r.info));
    }
  }
}
