import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { copyFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { distributionLowerBound } from '../core/lower-bound.js';
import { registerDashboard } from '../dashboard/routes.js';
import { DhtUdp } from '../net/dht-udp.js';
import { createTorrent } from '../node/create-torrent.js';
import { makeDir } from '../storage/make-dir.js';
import { formatChunks } from '../tracker/log-format.js';
import { type RunningTracker, startTracker } from '../tracker-server/server.js';
import { ChildProcessPeer, type DemoPeer, type DemoPeerSpec, InProcessPeer } from './demo-peer.js';

/**
 * The original simulation, for real: a tracker and N peers on 127.0.0.1, each with its own TCP
 * listener and folder, the origin (peer1) holding the file; every other peer fetches it until all
 * hold a verified copy. Faults (kill, join, origin leaving) on a schedule. See docs/demo.md.
 */

export type DemoStrategy = 'random' | 'rarest-first';

export interface DemoOpts {
  /** The file to spread (copied into the origin's folder). */
  file: string;
  /** Peers in all, the origin included. */
  peers: number;
  pieceSize: number;
  strategy: DemoStrategy;
  maxChunks: number;
  /** Bytes/s per peer, or undefined for uncapped. */
  uploadRate?: number;
  downloadRate?: number;
  /** Where the peers' folders go (emptied first). */
  out: string;
  /** Milliseconds after start, or 'copy': the origin leaves once the other peers hold every chunk between them. */
  originLeavesAfter?: number | 'copy';
  kill?: { name: string; atMs: number }[];
  join?: { name: string; atMs: number }[];
  /** Give up after this long (ms). */
  timeoutMs: number;
  /** Where log lines go. */
  log: (line: string) => void;
  /** Tracker log lines too (registrations, availability tables). */
  trackerLog: boolean;
  /** Run each peer as its own OS process (this CLI script, `_demo-peer`). */
  processes?: { cli: string };
  /** The tracker's port (0: any free one). */
  trackerPort?: number;
  /**
   * Trackerless: the peers announce nowhere; a DHT node of the demo's is their bootstrap and they
   * find each other through the DHT (and PEX). Rarest-first, in-process peers only.
   */
  trackerless?: boolean;
}

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
  originUploadedBytes: number;
  success: boolean;
  peers: PeerReport[];
}

interface Member {
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

function sha256File(path: string): Promise<string> {
  return new Promise((res, rej) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (d) => h.update(d))
      .on('end', () => res(h.digest('hex')))
      .on('error', rej);
  });
}

export interface DemoRun {
  /** Resolves with the report when every live peer is done (or on timeout, or stop). */
  finished: Promise<DemoReport>;
  /** Ends the run now (Ctrl-C): peers leave the tracker, the tracker stops. */
  stop(): Promise<void>;
  members: () => { name: string; node: DemoPeer; role: PeerReport['role']; done: boolean }[];
  tracker: RunningTracker;
  pieces: number;
}

export async function startDemo(o: DemoOpts): Promise<DemoRun> {
  const out = resolve(o.out);
  await makeDir(out);
  // Empty the peers' folders from an earlier run and nothing else: the samples and any other file
  // stay (the demo's own .torrent, `<name>.torrent`, is written over below).
  for (const entry of await readdir(out)) {
    if (/^peer[0-9]+$/.test(entry)) await rm(join(out, entry), { recursive: true, force: true });
  }
  const name = basename(o.file);
  const originDir = join(out, 'peer1');
  await makeDir(originDir);
  await copyFile(o.file, join(originDir, name));

  let finalReport: DemoReport | null = null;
  const tracker = await startTracker(
    { host: '127.0.0.1', port: o.trackerPort ?? 0 },
    {
      interval: 2,
      log: o.trackerLog ? o.log : undefined,
      routes: (app, registry, now) => {
        registerDashboard(app, registry, now);
        // The run's report for the page, once the swarm has finished (null until then).
        app.get(
          '/api/report',
          {
            schema: {
              description: "The demo run's report once it has finished (null before).",
              tags: ['dashboard'],
            },
          },
          async () => ({ report: finalReport }),
        );
      },
    },
  );
  if (o.trackerless && (o.strategy !== 'rarest-first' || o.processes))
    throw new Error('--trackerless needs the rarest-first strategy and in-process peers (no --processes)');
  // Trackerless: the first node of the swarm's DHT; the torrent names no tracker.
  const dhtBoot = o.trackerless ? await DhtUdp.start({ host: '127.0.0.1', port: 0, bootstrap: [] }) : null;
  const { bytes, meta } = await createTorrent(join(originDir, name), {
    pieceLength: o.pieceSize,
    trackers: dhtBoot === null ? [tracker.url] : [],
  });
  const torrentPath = join(out, `${name}.torrent`);
  await writeFile(torrentPath, bytes);
  const fileSha = await sha256File(join(originDir, name));
  const size = (await stat(join(originDir, name))).size;

  const members: Member[] = [];
  const t0 = Date.now();
  const timers = new Set<NodeJS.Timeout>();
  let stopped = false;
  let resolveFinished!: (r: DemoReport) => void;
  let rejectFinished!: (e: Error) => void;
  const finished = new Promise<DemoReport>((resolve, reject) => {
    resolveFinished = resolve;
    rejectFinished = reject;
  });

  const addPeer = async (peerName: string, role: PeerReport['role']): Promise<Member> => {
    const dir = join(out, peerName);
    await makeDir(dir);
    const spec: DemoPeerSpec = {
      torrent: torrentPath,
      dir,
      mode: role === 'origin' ? 'seed' : 'download',
      name: peerName,
      tracker: dhtBoot === null ? tracker.url : '',
      dhtBootstrap: dhtBoot === null ? undefined : `127.0.0.1:${dhtBoot.port}`,
      strategy: o.strategy,
      maxChunks: o.maxChunks,
      uploadRate: o.uploadRate,
      downloadRate: o.downloadRate,
      uploadSlots: o.peers + (o.join?.length ?? 0),
    };
    const node: DemoPeer = o.processes
      ? new ChildProcessPeer(spec, meta.pieceCount, o.processes.cli)
      : new InProcessPeer(spec, meta);
    const m: Member = {
      name: peerName,
      node,
      role,
      startedAt: Date.now(),
      complete: false,
      doneAt: null,
      killed: false,
      left: false,
    };
    members.push(m);
    node.on('requesting', (chunks, from, addr) =>
      o.log(`Peer ${peerName} requesting chunks ${formatChunks(chunks)} from ${from} (${addr})`),
    );
    node.on('complete', () => {
      m.complete = true;
      if (role === 'origin') return;
      m.doneAt = Date.now();
      o.log(`Peer ${peerName} has downloaded all chunks. Done!`);
      check();
    });
    node.on('error', (e) => o.log(`Peer ${peerName}: ${e.message}`));
    await node.start();
    return m;
  };

  /** Runs fn `ms` after the swarm's start (t0), however long starting the peers took. */
  const later = (ms: number, fn: () => void) => {
    const t = setTimeout(
      () => {
        timers.delete(t);
        if (!stopped) fn();
      },
      Math.max(0, t0 + ms - Date.now()),
    );
    timers.add(t);
  };

  const live = () => members.filter((m) => !m.killed && !m.left);
  const pendingJoins = () => (o.join ?? []).filter((j) => !members.some((m) => m.name === j.name)).length;

  const originLeave = () => {
    const origin = members.find((m) => m.role === 'origin');
    if (!origin || origin.left) return;
    origin.left = true;
    o.log('Origin peer1 leaves the swarm');
    origin.node.stop().catch(() => {});
  };

  function check(): void {
    if (o.originLeavesAfter === 'copy') {
      const others = live().filter((m) => m.role !== 'origin');
      const union = new Set<number>();
      for (const m of others) for (let i = 0; i < meta.pieceCount; i++) if (m.node.has(i)) union.add(i);
      if (union.size === meta.pieceCount) originLeave();
    }
    const waiting = live().filter((m) => m.role !== 'origin' && m.doneAt === null);
    if (waiting.length === 0 && pendingJoins() === 0) finish();
  }

  const report = async (): Promise<DemoReport> => {
    const originKey = members.find((m) => m.role === 'origin')?.node.peerIdKey ?? '';
    const peers: PeerReport[] = [];
    for (const m of members) {
      // Every copy is checked, the origin's too: a peer is verified only by its file's bytes.
      const verified = m.complete && (await sha256File(join(out, m.name, name)).catch(() => '')) === fileSha;
      let fromOrigin = 0;
      let fromPeers = 0;
      for (const [id, n] of m.node.receivedFrom) {
        if (id === originKey) fromOrigin += n;
        else fromPeers += n;
      }
      peers.push({
        name: m.name,
        address: `127.0.0.1:${m.node.port}`,
        role: m.role,
        completed: m.complete,
        verified,
        killed: m.killed,
        timeMs: m.doneAt === null ? null : m.doneAt - (m.role === 'late joiner' ? m.startedAt : t0),
        bytesFromOrigin: fromOrigin,
        bytesFromPeers: fromPeers,
        bytesUploaded: m.node.uploaded,
        partnersFound: m.node.partnersFound === undefined ? null : { ...m.node.partnersFound },
      });
    }
    const survivors = peers.filter((p) => !p.killed && p.role !== 'origin');
    const success = survivors.length > 0 && survivors.every((p) => p.completed && p.verified);
    const doneTimes = members.filter((m) => m.doneAt !== null).map((m) => (m.doneAt as number) - t0);
    const totalMs = success && doneTimes.length > 0 ? Math.max(...doneTimes) : null;
    const n = o.peers - 1;
    const bound = o.uploadRate
      ? distributionLowerBound(
          size,
          o.uploadRate,
          new Array(n).fill(o.uploadRate),
          o.downloadRate ?? Number.POSITIVE_INFINITY,
        )
      : null;
    const lowerBoundMs = bound === null ? null : bound * 1000;
    return {
      file: { name, size, pieces: meta.pieceCount, pieceSize: meta.pieceLength, sha256: fileSha },
      strategy: o.strategy,
      maxChunks: o.maxChunks,
      uploadRate: o.uploadRate ?? null,
      downloadRate: o.downloadRate ?? null,
      trackerUrl: tracker.url,
      discovery: dhtBoot === null ? 'tracker' : 'dht',
      totalMs,
      lowerBoundMs,
      ratioToBound: totalMs !== null && lowerBoundMs ? totalMs / lowerBoundMs : null,
      originUploadedBytes: members.find((m) => m.role === 'origin')?.node.uploaded ?? 0,
      success,
      peers,
    };
  };

  let finishing = false;
  function finish(): void {
    if (finishing) return;
    finishing = true;
    report().then((r) => {
      finalReport = r;
      resolveFinished(r);
    }, rejectFinished);
  }

  // Origin first, as in the original; then the nine empty peers.
  await addPeer('peer1', 'origin');
  for (let i = 2; i <= o.peers; i++) await addPeer(`peer${i}`, 'peer');
  for (const k of o.kill ?? []) {
    later(k.atMs, () => {
      const m = members.find((x) => x.name === k.name);
      if (!m || m.killed) return;
      m.killed = true;
      o.log(`Peer ${k.name} killed`);
      m.node.kill().then(check, check);
    });
  }
  for (const j of o.join ?? []) {
    later(j.atMs, () => {
      o.log(`Peer ${j.name} joins the swarm`);
      addPeer(j.name, 'late joiner').then(check, (e: Error) =>
        o.log(`Peer ${j.name} could not start: ${e.message}`),
      );
    });
  }
  if (typeof o.originLeavesAfter === 'number') later(o.originLeavesAfter, originLeave);
  later(o.timeoutMs, () => {
    o.log(`Timed out after ${Math.round(o.timeoutMs / 1000)} s`);
    finish();
  });
  const poll = setInterval(check, 250);
  timers.add(poll as unknown as NodeJS.Timeout);

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const t of timers) clearTimeout(t);
    clearInterval(poll);
    await Promise.all(live().map((m) => m.node.stop().catch(() => {})));
    await tracker.close();
    await dhtBoot?.close();
  };

  return {
    finished,
    stop,
    tracker,
    pieces: meta.pieceCount,
    members: () =>
      members.map((m) => ({
        name: m.name,
        node: m.node,
        role: m.role,
        done: m.complete,
      })),
  };
}
