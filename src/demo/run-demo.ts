import { copyFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import type { Metainfo } from '../core/metainfo.js';
import { registerDashboard } from '../dashboard/routes.js';
import { DhtUdp } from '../net/dht-udp.js';
import { createTorrent } from '../node/create-torrent.js';
import { makeDir } from '../storage/make-dir.js';
import { formatChunks } from '../tracker/log-format.js';
import { type RunningTracker, startTracker } from '../tracker-server/server.js';
import type { EncryptionMode } from '../wire/mse.js';
import { ChildProcessPeer, type DemoPeer, type DemoPeerSpec, InProcessPeer } from './demo-peer.js';
import {
  buildReport,
  type DemoReport,
  type DemoStrategy,
  type Member,
  type PeerReport,
  sha256File,
} from './demo-report.js';
import { startWebOrigin, type WebOrigin } from './web-origin.js';

export type { DemoReport, DemoStrategy, PeerReport } from './demo-report.js';

/**
 * The original simulation, for real: a tracker and N peers on 127.0.0.1, each with its own TCP
 * listener and folder, the origin (peer1) holding the file; every other peer fetches it until all
 * hold a verified copy. Faults (kill, join, origin leaving) on a schedule. See docs/demo.md.
 */

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
  /** Encrypted connections between the peers (MSE/PE; default prefer). */
  encryption?: EncryptionMode;
  /**
   * The origin is an HTTP server (a web seed, BEP 19, at the same upload cap) instead of peer1:
   * the other peers start from it and offload it to each other.
   */
  webSeed?: boolean;
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

/** The run's report for the page, once the swarm has finished (null until then). */
interface ReportBox {
  report: DemoReport | null;
}

/** What the peers share: the tracker (or the DHT's first node), the torrent and the file's digest. */
interface DemoSetup {
  out: string;
  name: string;
  tracker: RunningTracker;
  dhtBoot: DhtUdp | null;
  meta: Metainfo;
  torrentPath: string;
  fileSha: string;
  size: number;
  box: ReportBox;
  /** The HTTP origin (`webSeed`), else null. */
  web: WebOrigin | null;
}

export async function startDemo(o: DemoOpts): Promise<DemoRun> {
  const out = await prepareFolder(o);
  const box: ReportBox = { report: null };
  const tracker = await startDemoTracker(o, box);
  if (o.trackerless && (o.strategy !== 'rarest-first' || o.processes)) {
    await tracker.close();
    throw new Error('--trackerless needs the rarest-first strategy and in-process peers (no --processes)');
  }
  if (o.webSeed && (o.originLeavesAfter !== undefined || o.strategy !== 'rarest-first')) {
    await tracker.close();
    throw new Error('--web-seed needs the rarest-first strategy, and its origin does not leave');
  }
  const swarm = new DemoSwarm(o, await describeFile(o, out, tracker, box));
  await swarm.startPeers();
  swarm.schedule();
  return swarm.run();
}

/**
 * The output folder, with the peers' folders of an earlier run removed and nothing else: the
 * samples and any other file stay (the demo's own .torrent, `<name>.torrent`, is written over).
 * The origin's folder gets the file.
 */
async function prepareFolder(o: DemoOpts): Promise<string> {
  const out = resolve(o.out);
  await makeDir(out);
  for (const entry of await readdir(out)) {
    if (/^peer[0-9]+$/.test(entry)) await rm(join(out, entry), { recursive: true, force: true });
  }
  const originDir = join(out, 'peer1');
  await makeDir(originDir);
  await copyFile(o.file, join(originDir, basename(o.file)));
  return out;
}

/** The tracker with the dashboard, and the run's report at /api/report once it has finished. */
function startDemoTracker(o: DemoOpts, box: ReportBox): Promise<RunningTracker> {
  return startTracker(
    { host: '127.0.0.1', port: o.trackerPort ?? 0 },
    {
      interval: 2,
      log: o.trackerLog ? o.log : undefined,
      routes: (app, registry, now) => {
        registerDashboard(app, registry, now);
        app.get(
          '/api/report',
          {
            schema: {
              description: "The demo run's report once it has finished (null before).",
              tags: ['dashboard'],
            },
          },
          async () => ({ report: box.report }),
        );
      },
    },
  );
}

/** The torrent of the origin's copy (naming the tracker, or nothing when trackerless), its digest and size. */
async function describeFile(
  o: DemoOpts,
  out: string,
  tracker: RunningTracker,
  box: ReportBox,
): Promise<DemoSetup> {
  const name = basename(o.file);
  const originFile = join(out, 'peer1', name);
  // Trackerless: the first node of the swarm's DHT; the torrent names no tracker.
  const dhtBoot = o.trackerless ? await DhtUdp.start({ host: '127.0.0.1', port: 0, bootstrap: [] }) : null;
  const size = (await stat(originFile)).size;
  const web = o.webSeed ? await startWebOrigin(originFile, size, o.uploadRate) : null;
  const { bytes, meta } = await createTorrent(originFile, {
    pieceLength: o.pieceSize,
    trackers: dhtBoot === null ? [tracker.url] : [],
    webSeeds: web === null ? undefined : [web.url],
  });
  const torrentPath = join(out, `${name}.torrent`);
  await writeFile(torrentPath, bytes);
  const fileSha = await sha256File(originFile);
  return { out, name, tracker, dhtBoot, meta, torrentPath, fileSha, size, box, web };
}

/** The running swarm: its members, the schedule of faults, completion and the report. */
class DemoSwarm {
  readonly members: Member[] = [];
  readonly t0 = Date.now();
  readonly #timers = new Set<NodeJS.Timeout>();
  #stopped = false;
  #finishing = false;
  #poll: NodeJS.Timeout | undefined;
  readonly finished: Promise<DemoReport>;
  #resolveFinished!: (r: DemoReport) => void;
  #rejectFinished!: (e: Error) => void;

  constructor(
    readonly o: DemoOpts,
    readonly s: DemoSetup,
  ) {
    this.finished = new Promise<DemoReport>((resolve, reject) => {
      this.#resolveFinished = resolve;
      this.#rejectFinished = reject;
    });
  }

  /** Origin first, as in the original (or the HTTP origin, already serving); then the nine empty peers. */
  async startPeers(): Promise<void> {
    if (this.s.web === null) await this.addPeer('peer1', 'origin');
    else this.o.log(`Origin: a web seed (HTTP) at ${this.s.web.url}`);
    for (let i = 2; i <= this.o.peers; i++) await this.addPeer(`peer${i}`, 'peer');
  }

  async addPeer(peerName: string, role: PeerReport['role']): Promise<Member> {
    const { o, s } = this;
    const dir = join(s.out, peerName);
    await makeDir(dir);
    const node: DemoPeer = o.processes
      ? new ChildProcessPeer(this.#spec(peerName, role, dir), s.meta.pieceCount, o.processes.cli)
      : new InProcessPeer(this.#spec(peerName, role, dir), s.meta);
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
    this.members.push(m);
    this.#watch(m);
    await node.start();
    return m;
  }

  #spec(peerName: string, role: PeerReport['role'], dir: string): DemoPeerSpec {
    const { o, s } = this;
    return {
      torrent: s.torrentPath,
      dir,
      mode: role === 'origin' ? 'seed' : 'download',
      name: peerName,
      tracker: s.dhtBoot === null ? s.tracker.url : '',
      dhtBootstrap: s.dhtBoot === null ? undefined : `127.0.0.1:${s.dhtBoot.port}`,
      strategy: o.strategy,
      maxChunks: o.maxChunks,
      uploadRate: o.uploadRate,
      downloadRate: o.downloadRate,
      uploadSlots: o.peers + (o.join?.length ?? 0),
      encryption: o.encryption,
    };
  }

  /** A member's events as the original's log lines; its completion checked. */
  #watch(m: Member): void {
    const { o } = this;
    m.node.on('requesting', (chunks, from, addr) =>
      o.log(`Peer ${m.name} requesting chunks ${formatChunks(chunks)} from ${from} (${addr})`),
    );
    m.node.on('complete', () => {
      m.complete = true;
      if (m.role === 'origin') return;
      m.doneAt = Date.now();
      o.log(`Peer ${m.name} has downloaded all chunks. Done!`);
      this.check();
    });
    m.node.on('error', (e) => o.log(`Peer ${m.name}: ${e.message}`));
  }

  /** Runs fn `ms` after the swarm's start (t0), however long starting the peers took. */
  later(ms: number, fn: () => void): void {
    const t = setTimeout(
      () => {
        this.#timers.delete(t);
        if (!this.#stopped) fn();
      },
      Math.max(0, this.t0 + ms - Date.now()),
    );
    this.#timers.add(t);
  }

  /** Kills, joins, the origin leaving, the timeout; and a poll of completion. */
  schedule(): void {
    const { o } = this;
    for (const k of o.kill ?? []) this.later(k.atMs, () => this.#kill(k.name));
    for (const j of o.join ?? []) {
      this.later(j.atMs, () => {
        o.log(`Peer ${j.name} joins the swarm`);
        this.addPeer(j.name, 'late joiner').then(
          () => this.check(),
          (e: Error) => o.log(`Peer ${j.name} could not start: ${e.message}`),
        );
      });
    }
    const leaves = o.originLeavesAfter;
    if (typeof leaves === 'number') this.later(leaves, () => this.originLeave());
    this.later(o.timeoutMs, () => {
      o.log(`Timed out after ${Math.round(o.timeoutMs / 1000)} s`);
      this.finish();
    });
    this.#poll = setInterval(() => this.check(), 250);
  }

  #kill(name: string): void {
    const m = this.members.find((x) => x.name === name);
    if (!m || m.killed) return;
    m.killed = true;
    this.o.log(`Peer ${name} killed`);
    const check = () => this.check();
    m.node.kill().then(check, check);
  }

  live(): Member[] {
    return this.members.filter((m) => !m.killed && !m.left);
  }

  #pendingJoins(): number {
    return (this.o.join ?? []).filter((j) => !this.members.some((m) => m.name === j.name)).length;
  }

  originLeave(): void {
    const origin = this.members.find((m) => m.role === 'origin');
    if (!origin || origin.left) return;
    origin.left = true;
    this.o.log('Origin peer1 leaves the swarm');
    origin.node.stop().catch(() => {});
  }

  check(): void {
    const pieceCount = this.s.meta.pieceCount;
    if (this.o.originLeavesAfter === 'copy') {
      const others = this.live().filter((m) => m.role !== 'origin');
      const union = new Set<number>();
      for (const m of others) for (let i = 0; i < pieceCount; i++) if (m.node.has(i)) union.add(i);
      if (union.size === pieceCount) this.originLeave();
    }
    const waiting = this.live().filter((m) => m.role !== 'origin' && m.doneAt === null);
    if (waiting.length === 0 && this.#pendingJoins() === 0) this.finish();
  }

  finish(): void {
    if (this.#finishing) return;
    this.#finishing = true;
    const { o, s } = this;
    buildReport(this.members, {
      out: s.out,
      t0: this.t0,
      peers: o.peers,
      strategy: o.strategy,
      maxChunks: o.maxChunks,
      uploadRate: o.uploadRate,
      downloadRate: o.downloadRate,
      trackerUrl: s.tracker.url,
      discovery: s.dhtBoot === null ? 'tracker' : 'dht',
      webOrigin: s.web === null ? undefined : { bytesSent: s.web.bytesSent },
      file: {
        name: s.name,
        size: s.size,
        pieces: s.meta.pieceCount,
        pieceSize: s.meta.pieceLength,
        sha256: s.fileSha,
      },
    }).then((r) => {
      s.box.report = r;
      this.#resolveFinished(r);
    }, this.#rejectFinished);
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    clearInterval(this.#poll);
    await Promise.all(this.live().map((m) => m.node.stop().catch(() => {})));
    await this.s.tracker.close();
    await this.s.dhtBoot?.close();
    await this.s.web?.close();
  }

  run(): DemoRun {
    return {
      finished: this.finished,
      stop: () => this.stop(),
      tracker: this.s.tracker,
      pieces: this.s.meta.pieceCount,
      members: () =>
        this.members.map((m) => ({ name: m.name, node: m.node, role: m.role, done: m.complete })),
    };
  }
}
