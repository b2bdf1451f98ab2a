import { Bitfield } from '../core/bitfield.js';
import { seededRandom } from '../core/rng.js';
import { nodeHasher } from '../net/system.js';
import { runCommands } from '../swarm/interpreter.js';
import { streamWindowPieces } from '../swarm/picker.js';
import { applyAnnounce } from '../tracker/announce.js';
import { defaultLimits } from '../tracker/limits.js';
import { SwarmRegistry } from '../tracker/registry.js';
import { FrameMaker } from './frames.js';
import { ANNOUNCE_EVENT, EVENT_KINDS, SimNetwork, TICK_EVENT } from './network.js';
import type { ReplayRecorder } from './replay.js';
import { buildReport, type SimReport, sampleAvailability } from './report.js';
import { type CapacityClass, capacityClass, PAIR_KEY, type Scenario, scenarioProblem } from './scenario.js';
import { SimPeer } from './sim-peer.js';
import { emptyUplinkShares, sampleUplinks, UPLINK_SAMPLE_MS } from './uplinks.js';

export type { SimReport } from './report.js';
export {
  type CapacityClass,
  DEFAULT_SCENARIO,
  MAX_PEERS,
  type Scenario,
  scenarioProblem,
} from './scenario.js';

/**
 * The swarm simulator: the real TorrentCore (picker, choker, request pipelining) in every peer
 * (sim-peer.ts) and the real tracker registry, on a simulated network (network.ts) under a
 * virtual clock; the swarm's life here: arrivals, announces, ticks, departures. The report and
 * the replay frames: report.ts, frames.ts. See docs/simulator.md.
 */

/** Piece availability is sampled at least this often (virtual ms), and at every tenth of completions. */
const SAMPLE_MS = 5000;
/** Peers a simulated tracker reply holds. */
const NUMWANT = 50;

/** The run's counts as it goes. */
interface Progress {
  done: number;
  departed: number;
  events: number;
  peakRss: number;
}

export function runSimulation(
  s: Scenario,
  onProgress?: (done: number, total: number, timeMs: number) => void,
  recorder?: ReplayRecorder,
): SimReport {
  const problem = scenarioProblem(s);
  if (problem !== null) throw new RangeError(`scenario: ${problem}`);
  const sim = new Simulation(s, recorder);
  sim.scheduleArrivals();
  sim.loop(onProgress);
  return sim.finish(onProgress);
}

/**
 * One run: the network, the registry and the peers, the swarm's life as events on the network's
 * queue (arrivals, announces, ticks, departures), and what the report is made of.
 */
class Simulation {
  readonly wall0 = performance.now();
  readonly rng: () => number;
  readonly length: number;
  readonly infoHash = new Uint8Array(20).fill(0x5a);
  readonly infoHashKey: string;
  readonly registry: SwarmRegistry;
  readonly blockSize: number;
  readonly zero: Uint8Array;
  readonly net: SimNetwork;
  /** Peers by their BEP 23 compact address (what the registry's records hold). */
  readonly byCompact = new Map<string, SimPeer>();
  readonly all: SimPeer[] = [];
  readonly pipeline: number;
  readonly run: Progress = { done: 0, departed: 0, events: 0, peakRss: process.memoryUsage().rss };
  readonly availability: SimReport['availability'] = [];
  /** Copies of each piece among the live peers (seeds and malicious peers claim all). */
  readonly copies: Uint32Array;
  readonly maliciousCount: number;
  readonly honest: number;
  readonly frames: FrameMaker | null;
  stoppedByWall = false;
  /** The uplinks' samples so far (uplinks.ts). */
  readonly uplinks = emptyUplinkShares();

  constructor(
    readonly s: Scenario,
    readonly recorder: ReplayRecorder | undefined,
  ) {
    this.rng = seededRandom(s.seed);
    this.length = s.pieces * s.pieceSize;
    this.infoHashKey = Buffer.from(this.infoHash).toString('latin1');
    this.registry = new SwarmRegistry(
      { ...defaultLimits(s.interval), maxPeersPerSwarm: 10_000_000 },
      { random: this.rng, newKey: () => 'k' },
    );
    this.blockSize = s.blockSize ?? s.pieceSize;
    this.zero = new Uint8Array(this.blockSize);
    this.net = new SimNetwork(
      { latencyMs: s.latencyMs, loss: s.loss ?? 0, maxConnections: s.maxConnections },
      this.rng,
      this.zero,
      this.infoHash,
      recorder === undefined ? null : { pairKey: PAIR_KEY },
      s.fast !== false,
    );
    this.pipeline = s.pipeline ?? Math.max(1, Math.round((256 * 1024) / this.blockSize));
    this.copies = new Uint32Array(s.pieces);
    this.maliciousCount = Math.round((s.malicious ?? 0) * s.peers);
    this.honest = s.peers - this.maliciousCount;
    this.frames = recorder === undefined ? null : new FrameMaker(s);
  }

  fullHave(): Bitfield {
    const b = new Bitfield(this.s.pieces);
    for (let i = 0; i < this.s.pieces; i++) b.set(i);
    return b;
  }

  makePeer(n: number, seed: boolean): SimPeer {
    const { s, net, copies } = this;
    const malicious = !seed && n < this.maliciousCount;
    // Streamers spread evenly over the honest peers (and so over the capacity classes).
    const share = s.streamers ?? 0;
    const streamer = !seed && !malicious && share > 0 && Math.floor((n + 1) * share) > Math.floor(n * share);
    const peerId = new Uint8Array(20);
    Buffer.from(`-SM0001-${String(n).padStart(12, '0')}`, 'latin1').copy(peerId);
    const cls: CapacityClass = seed
      ? { share: 1, upload: s.seedUpload ?? (s.capacity[0] as CapacityClass).upload }
      : capacityClass(s, n);
    const p: SimPeer = new SimPeer(
      {
        n,
        seed,
        malicious,
        peerId,
        addr: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
        upload: cls.upload,
        download: cls.download ?? Number.POSITIVE_INFINITY,
        idx: this.all.length,
        joinedAt: net.time,
      },
      {
        infoHash: this.infoHash,
        pieceCount: s.pieces,
        pieceLength: s.pieceSize,
        length: this.length,
        strategy: s.strategy,
        assemble: false,
        pipeline: this.pipeline,
        // The uplink takes one block at a time; the rest of the requests wait in the core, where
        // a cancel takes them back (send-queue.ts).
        sendAhead: 1,
        uploadSlots: s.uploadSlots,
        superSeed: seed && s.superSeed,
        blockLength: this.blockSize,
        fast: s.fast !== false,
        sha1: s.fast !== false ? nodeHasher.sha1 : undefined,
        // Links never outnumber the connection cap here.
        linkSlots: s.maxConnections,
        // A malicious peer claims every piece (and serves garbage).
        have: seed || malicious ? this.fullHave() : undefined,
      },
      this.rng,
      net,
      this.zero,
      {
        onPieceVerified: (i) => {
          copies[i] = (copies[i] as number) + 1;
          if (p.firstPieceAt === null) p.firstPieceAt = net.time;
          // A streamer's window moves on after the core is done with this event.
          if (streamer) net.queue.push(net.time, () => this.streamWindow(p));
        },
        complete: () => {
          if (!p.seed && p.doneAt === null) {
            p.doneAt = net.time;
            this.run.done++;
            if (s.leaveOnComplete) net.queue.push(net.time, () => this.leave(p));
          }
        },
      },
    );
    this.byCompact.set(
      String.fromCharCode(10, (n >> 16) & 255, (n >> 8) & 255, n & 255, 6881 >> 8, 6881 & 255),
      p,
    );
    this.all.push(p);
    if (streamer) {
      p.streams = true;
      this.streamWindow(p);
    }
    if (p.core.have.count > 0) for (let i = 0; i < s.pieces; i++) copies[i] = (copies[i] as number) + 1;
    return p;
  }

  /** A streamer's deadlines: the pieces from the first it lacks to 16 MiB on (node/file-stream.ts's window). */
  streamWindow(p: SimPeer): void {
    if (p.gone || p.core.complete) return;
    const { s } = this;
    const have = p.core.have;
    while (p.streamAt < s.pieces && have.has(p.streamAt)) p.streamAt++;
    const size = streamWindowPieces(s.pieceSize);
    const urgent: number[] = [];
    for (let i = p.streamAt; i < Math.min(s.pieces, p.streamAt + size); i++) if (!have.has(i)) urgent.push(i);
    runCommands(p, p.core.setUrgent(urgent, this.net.time));
  }

  announce(p: SimPeer, event: 'started' | 'stopped' | 'empty'): void {
    const { s, net } = this;
    const left = p.core.complete ? 0 : this.length - p.core.have.count * s.pieceSize;
    const a = {
      infoHash: this.infoHashKey,
      peerId: p.peerIdKey,
      port: 6881,
      uploaded: p.uploaded,
      downloaded: 0,
      left,
      event,
      numwant: NUMWANT,
      compact: true,
      noPeerId: true,
      key: null,
      ip: p.addr,
    } as const;
    const r = applyAnnounce(this.registry, a, net.time);
    if (event === 'stopped' || r.swarm === undefined) return;
    for (const rec of this.registry.sample(r.swarm, NUMWANT, p.peerIdKey)) {
      if (p.linkCount >= s.maxConnections) break;
      const other = this.byCompact.get(rec.compact);
      if (other !== undefined) net.connect(p, other);
    }
  }

  leave(p: SimPeer): void {
    if (p.gone) return;
    const h = p.core.have;
    for (let i = 0; i < this.s.pieces; i++) if (h.has(i)) this.copies[i] = (this.copies[i] as number) - 1;
    if (!p.seed && !p.malicious && p.doneAt === null) this.run.departed++;
    this.net.disconnect(p);
    this.announce(p, 'stopped');
    p.gone = true;
  }

  join(p: SimPeer): void {
    const { s, net } = this;
    p.joinedAt = net.time;
    this.announce(p, 'started');
    if (s.meanStaySeconds !== undefined && !p.seed) {
      net.queue.push(net.time + -Math.log(1 - this.rng()) * s.meanStaySeconds * 1000, () => this.leave(p));
    }
    net.queue.pushCode(net.time + 1000 * this.rng(), p.idx * EVENT_KINDS + TICK_EVENT);
    net.queue.pushCode(net.time + s.interval * 1000, p.idx * EVENT_KINDS + ANNOUNCE_EVENT);
  }

  tick(p: SimPeer): void {
    if (p.gone) return;
    const net = this.net;
    runCommands(p, p.core.tick(net.time));
    net.queue.pushCode(net.time + 1000, p.idx * EVENT_KINDS + TICK_EVENT);
  }

  reannounce(p: SimPeer): void {
    if (p.gone) return;
    this.announce(p, 'empty');
    this.net.queue.pushCode(this.net.time + this.s.interval * 1000, p.idx * EVENT_KINDS + ANNOUNCE_EVENT);
  }

  frame(timeMs: number) {
    const net = this.net;
    return (this.frames as FrameMaker).frame(
      timeMs,
      this.all,
      net.pairBytes as Map<number, number>,
      this.copies,
      this.run.done,
    );
  }

  /** Seeds first, then the peers as the arrival process says; the seeds' departure. */
  scheduleArrivals(): void {
    const { s, net } = this;
    for (let i = 0; i < s.seeds; i++) this.join(this.makePeer(s.peers + i, true));
    let arrival = 0;
    for (let i = 0; i < s.peers; i++) {
      if (s.arrival.kind === 'poisson') arrival += (-Math.log(1 - this.rng()) / s.arrival.perSecond) * 1000;
      const n = i;
      net.queue.push(arrival, () => this.join(this.makePeer(n, false)));
    }
    if (s.seedsLeaveAtMs !== undefined) {
      net.queue.push(s.seedsLeaveAtMs, () => {
        for (const p of this.all) if (p.seed) this.leave(p);
      });
    }
  }

  /** Events in time order until every honest peer is done or gone, or a limit is reached. */
  loop(onProgress?: (done: number, total: number, timeMs: number) => void): void {
    const { s, net, run, recorder } = this;
    const queue = net.queue;
    const sampleEvery = Math.max(1, Math.floor(s.peers / 10));
    let nextSample = 0;
    let nextSampleTime = 0;
    let lastProgress = 0;
    let nextFrameAt = 0;
    let nextUplinksAt = 0;
    while (queue.size > 0 && run.done + run.departed < this.honest) {
      const t = queue.peekTime();
      if (t > s.maxTimeMs) break;
      // Replay frames show the swarm as it was at each frame time, before later events.
      while (recorder !== undefined && t > nextFrameAt) {
        recorder.add(this.frame(nextFrameAt));
        nextFrameAt += recorder.everyMs;
      }
      if (
        s.maxWallMs !== undefined &&
        (run.events & 0xfff) === 0 &&
        performance.now() - this.wall0 > s.maxWallMs
      ) {
        this.stoppedByWall = true;
        break;
      }
      net.time = t;
      this.dispatch(queue.popCode());
      run.events++;
      const now = net.time;
      if (run.done >= nextSample || now >= nextSampleTime) {
        if (run.done >= nextSample) nextSample += sampleEvery;
        nextSampleTime = now + SAMPLE_MS;
        this.availability.push(sampleAvailability(this.copies, now, run.done));
        run.peakRss = Math.max(run.peakRss, process.memoryUsage().rss);
      }
      if (now >= nextUplinksAt) {
        nextUplinksAt = now + UPLINK_SAMPLE_MS;
        sampleUplinks(this.all, now, this.uplinks);
      }
      if (onProgress && (run.events & 0xffff) === 0 && run.done !== lastProgress) {
        lastProgress = run.done;
        onProgress(run.done, s.peers, now);
      }
    }
  }

  /** One event: a closure, a network delivery, or a peer's tick or announce. */
  dispatch(code: number): void {
    const net = this.net;
    if (code < 0) net.queue.takeFn(code)();
    else if (!net.dispatch(code)) {
      const p = this.all[Math.floor(code / EVENT_KINDS)] as SimPeer;
      if (code % EVENT_KINDS === TICK_EVENT) this.tick(p);
      else this.reannounce(p);
    }
  }

  finish(onProgress?: (done: number, total: number, timeMs: number) => void): SimReport {
    const { s, net, run } = this;
    this.availability.push(sampleAvailability(this.copies, net.time, run.done));
    run.peakRss = Math.max(run.peakRss, process.memoryUsage().rss);
    onProgress?.(run.done, s.peers, net.time);
    if (this.recorder !== undefined) this.recorder.add(this.frame(net.time));
    return buildReport(s, {
      all: this.all,
      done: run.done,
      honest: this.honest,
      departed: run.departed,
      availability: this.availability,
      events: run.events,
      wallMs: performance.now() - this.wall0,
      peakRssBytes: run.peakRss,
      virtualMs: net.time,
      stoppedByWall: this.stoppedByWall,
      uplinks: this.uplinks,
    });
  }
}
