import { type CloseCode, LinkError, mayRedial } from '../core/errors.js';
import type { PeerLinks } from '../net/tcp-links.js';
import type { PeerAddress } from '../net/tracker-client.js';
import type { LinkId } from '../swarm/link.js';
import type { TorrentCore } from '../swarm/torrent-core.js';
import {
  CONNECT_TIMEOUT_MS,
  MAX_CONNECTIONS,
  MAX_PER_IP,
  type PeerNodeOpts,
  SETTLE_MS,
} from './peer-options.js';
import { MAX_KNOWN_PEERS, PeerSet, REST_MS } from './peer-set.js';

/** Where a peer's address came from: a tracker, the DHT, another peer (PEX), or the user (`--peer`). */
export type PeerSource = 'tracker' | 'dht' | 'pex' | 'given';

/** A peer we are linked to, as the daemon's API shows it. */
export interface LinkedPeer {
  address: string;
  peerId: string | null;
  outgoing: boolean;
  downloaded: number;
  uploaded: number;
  pieces: number;
  peerChoking: boolean;
  amChoking: boolean;
  /** The link runs over MSE/PE (RC4 or an obfuscated handshake). */
  encrypted: boolean;
  /** Its bitfield (a copy), when asked for (a piece map). */
  have?: Uint8Array;
}

/** What the dialer reads of its peer: links, core, options, clock, and whether it is stopping. */
export interface DialerHost {
  readonly tcp: PeerLinks;
  readonly core: TorrentCore;
  readonly opts: PeerNodeOpts;
  readonly stopped: boolean;
  now(): number;
  /** A link that connected (ours): the core takes it. */
  linked(id: LinkId, peer: { ip: string; listenPort: number }): void;
  /** A dial that failed for a reason worth telling (an encrypted handshake: a LinkError). */
  dialFailed?(addr: string, e: Error): void;
}

/**
 * The peers a running peer knows and the links it opens: one door for every address learnt
 * (trackers, the DHT, PEX, the user), the connection caps, dialling as room allows, and making
 * room at the cap by closing a link nobody wants.
 */
export class Dialer {
  /** Peers we know of: never ourselves (our port, at our address or any when bound to all). */
  readonly peers: PeerSet;
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
  readonly #connecting = new Set<string>();
  /** When we last dialled each peer the user named, as a seed. */
  readonly #givenDialled = new Map<string, number>();

  constructor(
    readonly host: DialerHost,
    isSelf: (p: PeerAddress) => boolean,
  ) {
    this.peers = new PeerSet(isSelf);
  }

  get #max(): number {
    return this.host.opts.maxConnections ?? MAX_CONNECTIONS;
  }

  /** Dials under way. */
  get dialling(): number {
    return this.#connecting.size;
  }

  /** Connections we may still open or take: under this torrent's cap and the session's. */
  #room(): number {
    const own = this.#max - this.host.tcp.links.size - this.#connecting.size;
    const shared = this.host.opts.sharedConnections?.room() ?? Number.POSITIVE_INFINITY;
    return Math.min(own, shared);
  }

  /**
   * A peer from `source`, through the one door (PeerSet.learn); the first source an address came
   * from is remembered, so links can be counted by how their peer was found.
   */
  learn(p: PeerAddress, source: PeerSource): boolean {
    const ok = this.peers.learn(p);
    if (ok) {
      const addr = `${p.ip}:${p.port}`;
      if (!this.#sourceOf.has(addr) && this.#sourceOf.size < 4 * MAX_KNOWN_PEERS)
        this.#sourceOf.set(addr, source);
    }
    return ok;
  }

  /** Whether an incoming connection from `ip` fits under the caps. */
  /** `pending`: connections still being read by the listener (from this address, and in all). */
  acceptable(ip: string, pending = { fromIp: 0, total: 0 }): boolean {
    const { tcp } = this.host;
    return !(
      this.host.stopped ||
      // Dials under way hold their slots: otherwise the peer we just dropped to make room could
      // take the slot back before the dial it was dropped for connects.
      this.#room() - pending.total <= 0 ||
      tcp.perIp(ip) + pending.fromIp >= (this.host.opts.maxPerIp ?? MAX_PER_IP)
    );
  }

  /**
   * Addresses we are linked to or dialling: a link's address, and where its peer listens (for a
   * peer that dialled us, the port its extension handshake names). Without the latter we dialled
   * peers already linked to us, the duplicate was closed, and PEX named them again: a 50-peer
   * demo opened 130,000 connections, its CPU spent on handshakes.
   */
  busy(): (addr: string) => boolean {
    const connected = new Set<string>();
    for (const [id, l] of this.host.tcp.links) {
      connected.add(l.addr);
      const at = this.host.core.links.get(id)?.listen;
      if (at) connected.add(`${at.ip}:${at.port}`);
    }
    return (addr) => connected.has(addr) || this.#connecting.has(addr);
  }

  /**
   * A link's socket is gone: a peer we dialled that closed before its handshake (at its connection
   * cap, most likely) rests for REST_MS. Dialled again at once, 49 peers at their caps took 110,000
   * connections in a minute from each other in the 50-peer demo.
   */
  gone(id: LinkId, l: { addr: string; outgoing: boolean }): void {
    // A peer the user named is redialled as before (it may be starting: a client checking its copy).
    if (this.#sourceOf.get(l.addr) === 'given') return;
    if (l.outgoing && this.host.core.linkStats(id)?.handshaken !== true)
      this.peers.rest(l.addr, this.host.now());
  }

  /**
   * The core closed a link: a peer that broke the rules is not dialled again; one we dialled that
   * may be (already linked, neither side needing the other, silent) rests for REST_MS first.
   */
  closed(l: { addr: string; outgoing: boolean }, code: CloseCode): void {
    if (!mayRedial(code)) this.peers.ban(l.addr);
    else if (l.outgoing) this.peers.rest(l.addr, this.host.now());
  }

  connectMore(): void {
    const { tcp, core, opts } = this.host;
    if (this.host.stopped || opts.exchange) return;
    if (core.complete) {
      this.#dialGiven();
      return;
    }
    const busy = this.busy();
    if (tcp.links.size + this.#connecting.size >= this.#max) this.#dropUselessLink(busy);
    const room = this.#room();
    if (room <= 0) return;
    for (const { addr, p } of this.peers.toDial(room, busy, this.host.now())) this.#dial(addr, p);
  }

  #dial(addr: string, p: PeerAddress): void {
    this.#connecting.add(addr);
    const dial = this.host.tcp.dial(p.ip, p.port, CONNECT_TIMEOUT_MS);
    dial.connected.then(
      () => {
        this.#connecting.delete(addr);
        if (this.host.stopped) return dial.abort();
        this.partnersFound[this.#sourceOf.get(addr) ?? 'given']++;
        this.host.linked(dial.attach(addr), { ip: p.ip, listenPort: p.port });
      },
      (e: Error) => {
        this.#connecting.delete(addr);
        if (e instanceof LinkError) this.host.dialFailed?.(addr, e);
      },
    );
  }

  /**
   * As a seed we dial only the peers the user named (`--peer`), each at most once per REST_MS:
   * a client that will not dial us (Transmission refuses loopback addresses from trackers and PEX)
   * still gets the file, and a named peer that is a seed too costs one connection a minute.
   */
  #dialGiven(): void {
    const now = this.host.now();
    const busy = this.busy();
    for (const p of this.host.opts.peers ?? []) {
      const addr = `${p.ip}:${p.port}`;
      if (
        busy(addr) ||
        this.peers.banned(addr) ||
        now - (this.#givenDialled.get(addr) ?? Number.NEGATIVE_INFINITY) < REST_MS
      )
        continue;
      if (this.#room() <= 0) return;
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
    if (!this.peers.anyCandidate(busy)) return;
    const { tcp, core } = this.host;
    const now = this.host.now();
    for (const [id, l] of tcp.links) {
      const st = core.linkStats(id);
      // A link still settling (handshake, bitfield) has not said what it holds yet: under load a
      // seed's link was dropped as useless before its bitfield arrived, and then rested for 60 s.
      if (st === undefined || !st.handshaken || now - st.openedAt < SETTLE_MS) continue;
      if (!st.amInterested && !st.peerInterested) {
        this.peers.rest(l.addr, now);
        core.removeLink(id);
        tcp.drop(id);
        return;
      }
    }
  }

  /** The peers we are linked to, with what the core knows of each. */
  linkedPeers(withPieces = false): LinkedPeer[] {
    const { tcp, core } = this.host;
    const out: LinkedPeer[] = [];
    for (const [id, l] of tcp.links) {
      const st = core.linkStats(id);
      if (st === undefined) continue;
      out.push({
        address: l.addr,
        peerId: core.peerIdOf(id),
        outgoing: l.outgoing,
        downloaded: st.downloaded,
        uploaded: st.uploaded,
        pieces: st.pieces,
        peerChoking: st.peerChoking,
        amChoking: st.amChoking,
        encrypted: l.sock.viaMse === true,
        have: withPieces ? Uint8Array.from(core.links.get(id)?.have.bytes ?? []) : undefined,
      });
    }
    return out;
  }
}
