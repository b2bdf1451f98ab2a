import { createSocket, type Socket } from 'node:dgram';
import { resolve4 } from 'node:dns/promises';
import { isIP } from 'node:net';
import { splitHostPort } from '../core/ip.js';
import { DhtNode, type LookupResult, type Packet } from '../dht/dht-node.js';
import type { NodeId } from '../dht/krpc.js';
import { nodeHasher, secureRandomBytes, systemClock } from './system.js';

/**
 * A DHT node (dht/dht-node.ts) on a UDP socket: packets to and from the pure node, its tick on a
 * timer, bootstrap names resolved once. Lookups are promises.
 */

/** The public routers other clients start from, when no bootstrap is given. */
export const PUBLIC_ROUTERS = [
  'router.bittorrent.com:6881',
  'dht.transmissionbt.com:6881',
  'router.utorrent.com:6881',
];
/** The node ticks this often (query timeouts, refresh). */
export const DHT_TICK_MS = 250;

export interface DhtUdpOpts {
  host?: string;
  /** UDP port (0 picks one). */
  port?: number;
  /** `HOST:PORT` entries; host names are resolved (a name that does not resolve is skipped, and said). */
  bootstrap?: readonly string[];
  id?: NodeId;
  /** Known nodes to start from (a saved state). */
  nodes?: readonly { ip: string; port: number }[];
  /** Queries per second one address may send (default the node's; null: no limit). */
  queriesPerSecond?: number | null;
  log?: (line: string) => void;
}

/** `HOST:PORT[,HOST:PORT...]` as a list, or why not. */
export function parseBootstrap(text: string): string[] | string {
  const list = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (list.length === 0) return 'expected HOST:PORT[,HOST:PORT...]';
  for (const e of list) if (splitHostPort(e) === null) return `'${e}' is not HOST:PORT`;
  return list;
}

export class DhtUdp {
  readonly node: DhtNode;
  readonly #socket: Socket;
  readonly #timer: NodeJS.Timeout;
  port = 0;

  private constructor(node: DhtNode, socket: Socket) {
    this.node = node;
    this.#socket = socket;
    socket.on('message', (msg, rinfo) => {
      this.#send(this.node.receive(msg, { ip: rinfo.address, port: rinfo.port }, systemClock.now()));
    });
    this.#timer = setInterval(() => this.#send(this.node.tick(systemClock.now())), DHT_TICK_MS);
    this.#timer.unref();
  }

  /**
   * Binds the socket and joins the network: IP bootstrap entries at once, host names as they
   * resolve (in the background: a name that does not resolve is said and skipped, never waited on).
   */
  static async start(o: DhtUdpOpts): Promise<DhtUdp> {
    const boot: { ip: string; port: number }[] = [...(o.nodes ?? [])];
    const names: { host: string; port: number; text: string }[] = [];
    for (const e of o.bootstrap ?? PUBLIC_ROUTERS) {
      const hp = splitHostPort(e);
      if (hp === null) continue;
      if (isIP(hp.host) !== 0) boot.push({ ip: hp.host, port: hp.port });
      else names.push({ host: hp.host, port: hp.port, text: e });
    }
    const node = new DhtNode(
      { id: o.id, bootstrap: boot, queriesPerSecond: o.queriesPerSecond },
      { sha1: nodeHasher.sha1, randomBytes: secureRandomBytes },
      systemClock.now(),
    );
    const host = o.host ?? '127.0.0.1';
    const socket = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(o.port ?? 0, host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', (e) => o.log?.(`dht: socket error: ${e.message}`));
    const d = new DhtUdp(node, socket);
    d.port = socket.address().port;
    // resolve4 (DNS over c-ares) rather than lookup (getaddrinfo on the libuv thread pool: its
    // threads cost a peer ~15 MB of memory for three names).
    for (const n of names)
      resolve4(n.host).then(
        (ips) => {
          if (d.#closed || ips[0] === undefined) return;
          node.addBootstrap(ips.slice(0, 4).map((ip) => ({ ip, port: n.port })));
          d.bootstrap().catch(() => {});
        },
        (err: Error) => o.log?.(`dht: bootstrap ${n.text} does not resolve (${err.message})`),
      );
    return d;
  }

  #send(packets: readonly Packet[]): void {
    if (this.#closed) return;
    for (const p of packets) this.#socket.send(p.data, p.port, p.ip);
  }

  #lookup(start: (done: (r: LookupResult) => void) => Packet[]): Promise<LookupResult> {
    return new Promise((resolve) => this.#send(start(resolve)));
  }

  /** Joins the network (a lookup of our own id). */
  bootstrap(): Promise<LookupResult> {
    return this.#lookup((done) => this.node.bootstrap(systemClock.now(), done));
  }

  /** A torrent's peers; with `announcePort`, we are announced at it (0: the DHT socket's port, implied). */
  getPeers(infoHash: Uint8Array, announcePort?: number): Promise<LookupResult> {
    return this.#lookup((done) => this.node.getPeers(infoHash, systemClock.now(), done, announcePort));
  }

  #closed = false;

  close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    return new Promise((r) => this.#socket.close(() => r()));
  }
}
