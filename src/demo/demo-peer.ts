import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Bitfield } from '../core/bitfield.js';
import { parseTorrent } from '../core/metainfo.js';
import { DhtUdp } from '../net/dht-udp.js';
import { nodeHasher } from '../net/system.js';
import { PeerNode, type PeerNodeOpts } from '../node/peer-node.js';
import type { EncryptionMode } from '../wire/mse.js';

/**
 * One demo peer, in this process (a PeerNode) or in its own OS process (`--processes`: a child
 * running `swarmshare _demo-peer`, talking JSON lines). The demo sees the same surface either way.
 */
export interface DemoPeerEvents {
  requesting: [chunks: number[], peer: string, addr: string];
  complete: [];
  error: [err: Error];
}

export interface DemoPeerSpec {
  torrent: string;
  dir: string;
  mode: 'seed' | 'download';
  name: string;
  tracker: string;
  strategy: 'random' | 'rarest-first';
  maxChunks: number;
  uploadRate?: number;
  downloadRate?: number;
  uploadSlots: number;
  /** The origin super-seeds in rarest-first mode unless this is false. */
  superSeed?: boolean;
  /** Trackerless: no tracker; the peers find each other through the DHT via this node (HOST:PORT). */
  dhtBootstrap?: string;
  encryption?: EncryptionMode;
}

export interface DemoPeer extends EventEmitter<DemoPeerEvents> {
  readonly name: string;
  readonly port: number;
  /** The peer id as a latin1 string (how other peers' byte counts name it). */
  readonly peerIdKey: string;
  readonly downloaded: number;
  readonly uploaded: number;
  readonly receivedFrom: ReadonlyMap<string, number>;
  has(index: number): boolean;
  haveCount(): number;
  start(): Promise<void>;
  /** Leaves the tracker and stops. */
  stop(): Promise<void>;
  /** Dies at once, saying nothing to anyone. */
  kill(): Promise<void>;
  /** Links opened by how their peer was found (in-process peers only). */
  readonly partnersFound?: Readonly<Record<string, number>>;
}

export function nodeOpts(spec: DemoPeerSpec, meta: PeerNodeOpts['meta']): PeerNodeOpts {
  return {
    meta,
    dir: spec.dir,
    mode: spec.mode,
    host: '127.0.0.1',
    port: 0,
    trackers: spec.tracker === '' ? [] : [spec.tracker],
    name: spec.name,
    strategy: spec.strategy === 'random' ? 'random' : 'rarest-first',
    exchange: spec.strategy === 'random' ? { maxChunks: spec.maxChunks } : undefined,
    uploadRate: spec.uploadRate,
    downloadRate: spec.downloadRate,
    uploadSlots: spec.uploadSlots,
    pipeline: spec.uploadRate !== undefined ? CAPPED_PIPELINE : undefined,
    // The origin of a rarest-first swarm super-seeds: it sends each piece about once.
    superSeed: spec.mode === 'seed' && spec.strategy === 'rarest-first' && spec.superSeed !== false,
    // The demo's own tracker asks for 2-second announces: take them (peers learn of each other).
    minAnnounceIntervalMs: 1000,
    encryption: spec.encryption,
  };
}

/**
 * Requests outstanding per peer in a rate-capped demo: 16 blocks (256 KiB, a quarter second at
 * 1 MiB/s). Deeper queues wait at the capped sender and delay every piece: with 10 peers at
 * 8 MiB/s each, 16 finished in 1.2x the lower bound, 128 in 1.5x (the origin sent more duplicates).
 */
export const CAPPED_PIPELINE = 16;

export class InProcessPeer extends EventEmitter<DemoPeerEvents> implements DemoPeer {
  readonly name: string;
  readonly node: PeerNode;

  constructor(spec: DemoPeerSpec, meta: PeerNodeOpts['meta']) {
    super();
    this.name = spec.name;
    // Trackerless: each peer runs its own DHT node, joined through the demo's bootstrap node.
    if (spec.dhtBootstrap !== undefined) {
      const bootstrap = [spec.dhtBootstrap];
      this.#dht = DhtUdp.start({ host: '127.0.0.1', port: 0, bootstrap });
      this.#dht.catch(() => {});
      const ready = this.#dht;
      this.node = new PeerNode({
        ...nodeOpts(spec, meta),
        dht: { getPeers: async (h, port) => (await ready).getPeers(h, port) },
        dhtIntervalMs: 1000,
      });
    } else this.node = new PeerNode(nodeOpts(spec, meta));
    this.node.on('requesting', (c, p, a) => this.emit('requesting', c, p, a));
    this.node.on('complete', () => this.emit('complete'));
    this.node.on('error', (e) => this.emit('error', e));
    this.node.done.catch(() => {});
  }

  get port() {
    return this.node.port;
  }
  get peerIdKey() {
    return Buffer.from(this.node.peerId).toString('latin1');
  }
  get downloaded() {
    return this.node.downloaded;
  }
  get uploaded() {
    return this.node.uploaded;
  }
  get receivedFrom() {
    return this.node.receivedFrom;
  }
  has(i: number) {
    return this.node.core?.have.has(i) ?? false;
  }
  haveCount() {
    return this.node.core?.have.count ?? 0;
  }
  get partnersFound() {
    return this.node.partnersFound;
  }
  async start() {
    if (this.#dht !== null) await (await this.#dht).bootstrap();
    return this.node.start();
  }
  async stop() {
    await this.node.stop();
    await this.#closeDht();
  }
  async kill() {
    await this.node.kill();
    await this.#closeDht();
  }
  readonly #dht: Promise<DhtUdp> | null = null;
  async #closeDht() {
    if (this.#dht !== null) await (await this.#dht).close();
  }
}

/** A status line from a child peer. */
interface Status {
  t: 'status';
  have: string;
  downloaded: number;
  uploaded: number;
  receivedFrom: Record<string, number>;
}

type ChildLine =
  | { t: 'ready'; port: number; peerId: string }
  | { t: 'requesting'; chunks: number[]; peer: string; addr: string }
  | { t: 'complete' }
  | { t: 'error'; message: string }
  | Status;

/** How often a child reports its state. */
export const STATUS_MS = 200;

export class ChildProcessPeer extends EventEmitter<DemoPeerEvents> implements DemoPeer {
  readonly name: string;
  readonly #spec: DemoPeerSpec;
  readonly #cli: string;
  readonly #pieces: number;
  #child: ChildProcess | null = null;
  #port = 0;
  #peerId = '';
  #have: Bitfield;
  #downloaded = 0;
  #uploaded = 0;
  #receivedFrom = new Map<string, number>();

  constructor(spec: DemoPeerSpec, pieces: number, cli: string) {
    super();
    this.name = spec.name;
    this.#spec = spec;
    this.#cli = cli;
    this.#pieces = pieces;
    this.#have = new Bitfield(pieces);
  }

  get port() {
    return this.#port;
  }
  get peerIdKey() {
    return this.#peerId;
  }
  get downloaded() {
    return this.#downloaded;
  }
  get uploaded() {
    return this.#uploaded;
  }
  get receivedFrom() {
    return this.#receivedFrom;
  }
  get pid() {
    return this.#child?.pid;
  }
  has(i: number) {
    return this.#have.has(i);
  }
  haveCount() {
    return this.#have.count;
  }

  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [this.#cli, '_demo-peer', JSON.stringify(this.#spec)], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      this.#child = child;
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`${this.name} exited early (${code})`)));
      createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (text) => {
        let line: ChildLine;
        try {
          line = JSON.parse(text) as ChildLine;
        } catch {
          return;
        }
        switch (line.t) {
          case 'ready':
            this.#port = line.port;
            this.#peerId = Buffer.from(line.peerId, 'hex').toString('latin1');
            resolve();
            break;
          case 'requesting':
            this.emit('requesting', line.chunks, line.peer, line.addr);
            break;
          case 'complete':
            this.emit('complete');
            break;
          case 'error':
            this.emit('error', new Error(line.message));
            break;
          case 'status':
            this.#have = new Bitfield(this.#pieces, new Uint8Array(Buffer.from(line.have, 'base64')));
            this.#downloaded = line.downloaded;
            this.#uploaded = line.uploaded;
            this.#receivedFrom = new Map(
              Object.entries(line.receivedFrom).map(([k, v]) => [
                Buffer.from(k, 'hex').toString('latin1'),
                v,
              ]),
            );
            break;
        }
      });
    });
  }

  #end(signal: NodeJS.Signals): Promise<void> {
    const child = this.#child;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
      child.kill(signal);
    });
  }

  stop() {
    return this.#end('SIGTERM');
  }
  kill() {
    return this.#end('SIGKILL');
  }
}

/** The child side: `swarmshare _demo-peer '<spec json>'`. */
export async function runDemoPeerChild(specJson: string): Promise<void> {
  const spec = JSON.parse(specJson) as DemoPeerSpec;
  const meta = parseTorrent(await readFile(spec.torrent), nodeHasher.sha1);
  const node = new PeerNode(nodeOpts(spec, meta));
  const say = (o: ChildLine) => process.stdout.write(`${JSON.stringify(o)}\n`);
  const status = () => {
    const rf: Record<string, number> = {};
    for (const [k, v] of node.receivedFrom) rf[Buffer.from(k, 'latin1').toString('hex')] = v;
    say({
      t: 'status',
      have: Buffer.from(node.core.have.bytes).toString('base64'),
      downloaded: node.downloaded,
      uploaded: node.uploaded,
      receivedFrom: rf,
    });
  };
  node.on('requesting', (chunks, peer, addr) => say({ t: 'requesting', chunks, peer, addr }));
  node.on('complete', () => {
    status();
    say({ t: 'complete' });
  });
  node.on('error', (e) => say({ t: 'error', message: e.message }));
  node.done.catch(() => {});
  await node.start();
  say({ t: 'ready', port: node.port, peerId: Buffer.from(node.peerId).toString('hex') });
  const timer = setInterval(status, STATUS_MS);
  process.once('SIGTERM', () => {
    clearInterval(timer);
    status();
    node.stop().finally(() => process.exit(0));
  });
}
