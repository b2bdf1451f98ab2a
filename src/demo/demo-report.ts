import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { distributionLowerBound } from '../core/lower-bound.js';
import type { DemoPeer } from './demo-peer.js';

/** The demo's report: per peer (verified by its file's SHA-256), totals and the lower bound. */

export type DemoStrategy = 'random' | 'rarest-first';

export interface PeerReport {
  name: string;
  address: string;
  role: 'origin' | 'peer' | 'late joiner';
  completed: boolean;
  verified: boolean;
  killed: boolean;
  /** Milliseconds from the swarm's start (from its own start for a late joiner); null if never. */
  timeMs: number | null;
  bytesFromOrigin: number;
  bytesFromPeers: number;
  bytesUploaded: number;
  /** Links it opened, by how it found the peer (tracker, dht, pex, given), and those opened to it (incoming). */
  partnersFound: Record<string, number> | null;
}

export interface DemoReport {
  file: { name: string; size: number; pieces: number; pieceSize: number; sha256: string };
  strategy: DemoStrategy;
  maxChunks: number;
  uploadRate: number | null;
  downloadRate: number | null;
  trackerUrl: string;
  /** How the peers found each other: 'tracker', or 'dht' (trackerless). */
  discovery: 'tracker' | 'dht';
  totalMs: number | null;
  lowerBoundMs: number | null;
  ratioToBound: number | null;
  /** The origin: peer1 (a BitTorrent peer), or an HTTP server (a web seed, `demo --web-seed`). */
  origin: 'peer' | 'web seed';
  /** What the origin sent (the HTTP server's body bytes, for a web seed). */
  originUploadedBytes: number;
  success: boolean;
  peers: PeerReport[];
}

/** One peer of the run, as the swarm tracks it. */
export interface Member {
  name: string;
  node: DemoPeer;
  role: PeerReport['role'];
  startedAt: number;
  /** The peer said it holds every piece (the origin too, as it starts). */
  complete: boolean;
  /** When a peer that started empty completed. */
  doneAt: number | null;
  killed: boolean;
  left: boolean;
}

/** What the report is made of besides the members: the run's settings and its file. */
export interface ReportInput {
  out: string;
  t0: number;
  peers: number;
  strategy: DemoStrategy;
  maxChunks: number;
  uploadRate?: number;
  downloadRate?: number;
  trackerUrl: string;
  discovery: 'tracker' | 'dht';
  /** The HTTP origin's count of bytes sent (`demo --web-seed`). */
  webOrigin?: { bytesSent: number };
  file: DemoReport['file'];
}

export function sha256File(path: string): Promise<string> {
  return new Promise((res, rej) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (d) => h.update(d))
      .on('end', () => res(h.digest('hex')))
      .on('error', rej);
  });
}

export async function buildReport(members: readonly Member[], r: ReportInput): Promise<DemoReport> {
  const originKey = members.find((m) => m.role === 'origin')?.node.peerIdKey ?? '';
  // A web seed's link has a peer id of ours (node/web-seed.ts): its bytes came from the origin.
  const fromOrigin = (id: string) =>
    r.webOrigin === undefined ? id === originKey : id.startsWith('-WS0001-');
  const peers: PeerReport[] = [];
  for (const m of members) peers.push(await peerReport(m, r, fromOrigin));
  const survivors = peers.filter((p) => !p.killed && p.role !== 'origin');
  const success = survivors.length > 0 && survivors.every((p) => p.completed && p.verified);
  const doneTimes = members.filter((m) => m.doneAt !== null).map((m) => (m.doneAt as number) - r.t0);
  const totalMs = success && doneTimes.length > 0 ? Math.max(...doneTimes) : null;
  const lowerBoundMs = lowerBound(r);
  return {
    file: r.file,
    strategy: r.strategy,
    maxChunks: r.maxChunks,
    uploadRate: r.uploadRate ?? null,
    downloadRate: r.downloadRate ?? null,
    trackerUrl: r.trackerUrl,
    discovery: r.discovery,
    totalMs,
    lowerBoundMs,
    ratioToBound: totalMs !== null && lowerBoundMs ? totalMs / lowerBoundMs : null,
    origin: r.webOrigin === undefined ? 'peer' : 'web seed',
    originUploadedBytes:
      r.webOrigin?.bytesSent ?? members.find((m) => m.role === 'origin')?.node.uploaded ?? 0,
    success,
    peers,
  };
}

async function peerReport(
  m: Member,
  r: ReportInput,
  isOrigin: (peerIdKey: string) => boolean,
): Promise<PeerReport> {
  // Every copy is checked, the origin's too: a peer is verified only by its file's bytes.
  const verified =
    m.complete && (await sha256File(join(r.out, m.name, r.file.name)).catch(() => '')) === r.file.sha256;
  let fromOrigin = 0;
  let fromPeers = 0;
  for (const [id, n] of m.node.receivedFrom) {
    if (isOrigin(id)) fromOrigin += n;
    else fromPeers += n;
  }
  return {
    name: m.name,
    address: `127.0.0.1:${m.node.port}`,
    role: m.role,
    completed: m.complete,
    verified,
    killed: m.killed,
    timeMs: m.doneAt === null ? null : m.doneAt - (m.role === 'late joiner' ? m.startedAt : r.t0),
    bytesFromOrigin: fromOrigin,
    bytesFromPeers: fromPeers,
    bytesUploaded: m.node.uploaded,
    partnersFound: m.node.partnersFound === undefined ? null : { ...m.node.partnersFound },
  };
}

/** The fluid lower bound of the run (all peers at the same upload cap), ms; null when uncapped. */
function lowerBound(r: ReportInput): number | null {
  if (!r.uploadRate) return null;
  const n = r.peers - 1;
  const bound = distributionLowerBound(
    r.file.size,
    r.uploadRate,
    new Array(n).fill(r.uploadRate),
    r.downloadRate ?? Number.POSITIVE_INFINITY,
  );
  return bound === null ? null : bound * 1000;
}
