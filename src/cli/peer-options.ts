import { readFile } from 'node:fs/promises';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { splitHostPort, usablePeerAddress } from '../core/ip.js';
import { parseTorrent } from '../core/metainfo.js';
import { DhtUdp, parseBootstrap } from '../net/dht-udp.js';
import { nodeHasher } from '../net/system.js';
import { MIN_ANNOUNCE_INTERVAL_MS, type PeerNode } from '../node/peer-node.js';
import type { Session } from '../session/session.js';
import { intOption, portOption } from './options.js';

/** What `share` and `get` have in common: option parsers and tables, the DHT, metrics, signals, messages. */

/** `--peer host:port` (repeatable): an IPv4 or `[IPv6]` literal and a port. */
export function peerOption(
  value: string,
  previous: { ip: string; port: number }[],
): { ip: string; port: number }[] {
  const hp = splitHostPort(value);
  const ip = hp === null ? null : usablePeerAddress(hp.host, hp.port);
  if (hp === null || ip === null)
    throw new InvalidArgumentError(
      `'${value}' is not IP:PORT (an IP address, [IPv6] in brackets, port 1-65535)`,
    );
  return [...previous, { ip, port: hp.port }];
}

/** Connection counts. */
export const countOption = intOption(1, 100_000);

export async function readTorrent(path: string) {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    return { meta: parseTorrent(bytes, nodeHasher.sha1), bytes };
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
}

/** Runs until SIGINT/SIGTERM, then stops the session (its torrent leaves the tracker) and exits with `code`. */
export function stopOnSignal(
  session: { stop(): Promise<void> },
  code: () => number,
  cleanup?: () => void,
): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    cleanup?.();
    console.log(`Stopping (${signal}): leaving the tracker...`);
    session.stop().then(
      () => process.exit(code()),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
}

/** What a tracker failure looks like on the console: what went wrong, and when we try again. */
export function trackerLine(url: string, _peers: number, error?: string, retryInMs?: number): void {
  if (error === undefined) return;
  const next =
    retryInMs === undefined
      ? 'retrying'
      : retryInMs === 0
        ? 'trying the next tracker of its tier'
        : `next try in ${Math.max(1, Math.round(retryInMs / 1000))} s`;
  console.error(`tracker ${url}: ${error} (${next})`);
}

/** `--metrics-port`: Prometheus metrics of the running peer. */
export const metricsOption = () =>
  new Option(
    '--metrics-port <n>',
    'serve Prometheus metrics at http://HOST:N/metrics (bytes, peers, pieces)',
  ).argParser(portOption);

/** Starts the metrics endpoint when asked; says where it is. */
export async function maybeMetrics(node: PeerNode, host: string, port: number | undefined): Promise<void> {
  if (port === undefined) return;
  // prom-client loads only for a peer asked for metrics (~13 MB of RSS otherwise spent by every get).
  const { peerMetrics, serveMetrics } = await import('../node/peer-metrics.js');
  const server = await serveMetrics(peerMetrics(node), host, port);
  server.unref();
  const a = server.address();
  console.log(`Metrics:   http://${host}:${typeof a === 'object' && a !== null ? a.port : port}/metrics`);
}

/** `--dht-bootstrap`, `--dht-port`, `--no-dht`, `--dht-interval`: the Mainline DHT (BEP 5). */
export function addDhtOptions(cmd: Command): Command {
  return cmd
    .option(
      '--dht-bootstrap <host:port,...>',
      'DHT nodes to join through (default: the public routers router.bittorrent.com, dht.transmissionbt.com, router.utorrent.com)',
      (v: string) => {
        const list = parseBootstrap(v);
        if (typeof list === 'string') throw new InvalidArgumentError(list);
        return list;
      },
    )
    .option('--dht-port <n>', 'UDP port of our DHT node (0 picks one)', portOption, 0)
    .option('--no-dht', 'do not use the DHT (a private torrent never does)')
    .option('--dht-interval <seconds>', 'announce to the DHT this often', intOption(1, 86_400), 900);
}

export interface DhtFlags {
  dht: boolean;
  dhtBootstrap?: string[];
  dhtPort: number;
  dhtInterval: number;
  host: string;
}

/** Our DHT node, when the DHT is on: bound, joining in the background; its address printed. */
export async function startDht(
  o: DhtFlags,
  say: (line: string) => void = (line) => console.log(line),
): Promise<DhtUdp | undefined> {
  if (!o.dht) return undefined;
  const d = await DhtUdp.start({
    host: o.host,
    port: o.dhtPort,
    bootstrap: o.dhtBootstrap,
    log: (line) => console.error(line),
  });
  say(`DHT:       udp://${o.host}:${d.port} (node ${Buffer.from(d.node.id).toString('hex')})`);
  d.bootstrap().catch(() => {});
  return d;
}

/** `--min-announce-interval`: the shortest announce interval we take from a tracker. */
export const minIntervalOption = () =>
  new Option(
    '--min-announce-interval <seconds>',
    'the shortest announce interval taken from a tracker (lower it for a local tracker you run)',
  )
    .argParser(intOption(1, 86_400))
    .default(MIN_ANNOUNCE_INTERVAL_MS / 1000);

export const strategyOption = () =>
  new Option('--strategy <name>', 'piece selection')
    .choices(['rarest-first', 'random', 'sequential'])
    .default('rarest-first');

/** `--encryption`: MSE/PE, on every command that talks to peers. */
export const encryptionOption = () =>
  new Option(
    '--encryption <mode>',
    'encrypted connections (MSE/PE): prefer (dial encrypted, fall back to plain; accept both), require (RC4 only, both ways), disable (plain only)',
  )
    .choices(['prefer', 'require', 'disable'])
    .default('prefer');

/** Why a connection was refused, in words (the listener's codes). */
const REFUSED: Record<string, string> = {
  ERR_ENCRYPTION_REQUIRED: 'refused: it came plain and we require encryption, or offered no method we take',
  ERR_MSE_HANDSHAKE: 'refused: its encrypted handshake failed',
  ERR_BAD_HANDSHAKE: 'refused: not a BitTorrent handshake (or encrypted, and we disable encryption)',
};

/**
 * Connections refused for encryption, and dials whose encrypted handshake failed: said once per
 * peer. And what befalls a web seed (backing off, a file dropped, dropped).
 */
export function reportRefusals(session: Session, node: PeerNode): void {
  const said = new Set<string>();
  const once = (key: string, line: string) => {
    if (said.has(key) || said.size > 1000) return;
    said.add(key);
    console.error(line);
  };
  node.on('dial-failed', (addr, reason) => once(`dial ${addr}`, `peer ${addr}: ${reason}`));
  node.on('web-seed', (line) => console.error(line));
  session.on('refused', (code, remote) => {
    const why = REFUSED[code];
    const ip = remote.slice(0, remote.lastIndexOf(':'));
    if (why !== undefined) once(`${code} ${ip}`, `peer ${remote}: ${why}`);
  });
}
