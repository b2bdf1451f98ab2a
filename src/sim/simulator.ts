import { Bitfield } from '../core/bitfield.js';
import { seededRandom } from '../core/rng.js';
import { nodeHasher } from '../net/system.js';
import { runCommands } from '../swarm/interpreter.js';
import { applyAnnounce } from '../tracker/announce.js';
import { defaultLimits } from '../tracker/limits.js';
import { SwarmRegistry } from '../tracker/registry.js';
import { FrameMaker } from './frames.js';
import { ANNOUNCE_EVENT, EVENT_KINDS, SimNetwork, TICK_EVENT } from './network.js';
import type { ReplayRecorder } from './replay.js';
import { buildReport, type SimReport, sampleAvailability } from './report.js';
import { type CapacityClass, capacityClass, PAIR_KEY, type Scenario, scenarioProblem } from './scenario.js';
import { SimPeer } from './sim-peer.js';

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
  const wall0 = performance.now();
  const rng = seededRandom(s.seed);
  const length = s.pieces * s.pieceSize;
  const infoHash = new Uint8Array(20).fill(0x5a);
  const infoHashKey = Buffer.from(infoHash).toString('latin1');
  const registry = new SwarmRegistry(
    { ...defaultLimits(s.interval), maxPeersPerSwarm: 10_000_000 },
    { random: rng, newKey: () => 'k' },
  );
  const blockSize = s.blockSize ?? s.pieceSize;
  const zero = new Uint8Array(blockSize);
  const net = new SimNetwork(
    { latencyMs: s.latencyMs, loss: s.loss ?? 0, maxConnections: s.maxConnections },
    rng,
    zero,
    infoHash,
    recorder === undefined ? null : { pairKey: PAIR_KEY },
    s.fast === true,
  );
  const queue = net.queue;
  /** Peers by their BEP 23 compact address (what the registry's records hold). */
  const byCompact = new Map<string, SimPeer>();
  const all: SimPeer[] = [];
  const pipeline = s.pipeline ?? Math.max(1, Math.round((256 * 1024) / blockSize));
  const run: Progress = { done: 0, departed: 0, events: 0, peakRss: process.memoryUsage().rss };
  const availability: SimReport['availability'] = [];
  /** Copies of each piece among the live peers (seeds and malicious peers claim all). */
  const copies = new Uint32Array(s.pieces);
  const maliciousCount = Math.round((s.malicious ?? 0) * s.peers);
  const frames = recorder === undefined ? null : new FrameMaker(s);

  const fullHave = () => {
    const b = new Bitfield(s.pieces);
    for (let i = 0; i < s.pieces; i++) b.set(i);
    return b;
  };

  function makePeer(n: number, seed: boolean): SimPeer {
    const malicious = !seed && n < maliciousCount;
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
        idx: all.length,
        joinedAt: net.time,
      },
      {
        infoHash,
        pieceCount: s.pieces,
        pieceLength: s.pieceSize,
        length,
        strategy: s.strategy,
        assemble: false,
        pipeline,
        uploadSlots: s.uploadSlots,
        superSeed: seed && s.superSeed,
        blockLength: blockSize,
        fast: s.fast === true,
        sha1: s.fast === true ? nodeHasher.sha1 : undefined,
        // Links never outnumber the connection cap here.
        linkSlots: s.maxConnections,
        // A malicious peer claims every piece (and serves garbage).
        have: seed || malicious ? fullHave() : undefined,
      },
      rng,
      net,
      zero,
      {
        onPieceVerified: (i) => {
          copies[i] = (copies[i] as number) + 1;
          if (p.firstPieceAt === null) p.firstPieceAt = net.time;
        },
        complete: () => {
          if (!p.seed && p.doneAt === null) {
            p.doneAt = net.time;
            run.done++;
            if (s.leaveOnComplete) queue.push(net.time, () => leave(p));
          }
        },
      },
    );
    byCompact.set(
      String.fromCharCode(10, (n >> 16) & 255, (n >> 8) & 255, n & 255, 6881 >> 8, 6881 & 255),
      p,
    );
    all.push(p);
    if (p.core.have.count > 0) for (let i = 0; i < s.pieces; i++) copies[i] = (copies[i] as number) + 1;
    return p;
  }

  function announce(p: SimPeer, event: 'started' | 'stopped' | 'empty'): void {
    const left = p.core.complete ? 0 : length - p.core.have.count * s.pieceSize;
    const a = {
      infoHash: infoHashKey,
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
    const r = applyAnnounce(registry, a, net.time);
    if (event === 'stopped' || r.swarm === undefined) return;
    for (const rec of registry.sample(r.swarm, NUMWANT, p.peerIdKey)) {
      if (p.linkCount >= s.maxConnections) break;
      const other = byCompact.get(rec.compact);
      if (other !== undefined) net.connect(p, other);
    }
  }

  function leave(p: SimPeer): void {
    if (p.gone) return;
    const h = p.core.have;
    for (let i = 0; i < s.pieces; i++) if (h.has(i)) copies[i] = (copies[i] as number) - 1;
    if (!p.seed && !p.malicious && p.doneAt === null) run.departed++;
    net.disconnect(p);
    announce(p, 'stopped');
    p.gone = true;
  }

  function join(p: SimPeer): void {
    p.joinedAt = net.time;
    announce(p, 'started');
    if (s.meanStaySeconds !== undefined && !p.seed) {
      queue.push(net.time + -Math.log(1 - rng()) * s.meanStaySeconds * 1000, () => leave(p));
    }
    queue.pushCode(net.time + 1000 * rng(), p.idx * EVENT_KINDS + TICK_EVENT);
    queue.pushCode(net.time + s.interval * 1000, p.idx * EVENT_KINDS + ANNOUNCE_EVENT);
  }

  function tick(p: SimPeer): void {
    if (p.gone) return;
    runCommands(p, p.core.tick(net.time));
    queue.pushCode(net.time + 1000, p.idx * EVENT_KINDS + TICK_EVENT);
  }

  function reannounce(p: SimPeer): void {
    if (p.gone) return;
    announce(p, 'empty');
    queue.pushCode(net.time + s.interval * 1000, p.idx * EVENT_KINDS + ANNOUNCE_EVENT);
  }

  const frame = (timeMs: number) =>
    (frames as FrameMaker).frame(timeMs, all, net.pairBytes as Map<number, number>, copies, run.done);

  // Seeds first, then the peers as the arrival process says.
  for (let i = 0; i < s.seeds; i++) join(makePeer(s.peers + i, true));
  let arrival = 0;
  for (let i = 0; i < s.peers; i++) {
    if (s.arrival.kind === 'poisson') arrival += (-Math.log(1 - rng()) / s.arrival.perSecond) * 1000;
    const n = i;
    queue.push(arrival, () => join(makePeer(n, false)));
  }
  if (s.seedsLeaveAtMs !== undefined) {
    queue.push(s.seedsLeaveAtMs, () => {
      for (const p of all) if (p.seed) leave(p);
    });
  }
  const sampleEvery = Math.max(1, Math.floor(s.peers / 10));
  let nextSample = 0;
  let nextSampleTime = 0;
  let lastProgress = 0;
  let stoppedByWall = false;
  const honest = s.peers - maliciousCount;
  let nextFrameAt = 0;
  while (queue.size > 0 && run.done + run.departed < honest) {
    const t = queue.peekTime();
    if (t > s.maxTimeMs) break;
    // Replay frames show the swarm as it was at each frame time, before later events.
    while (recorder !== undefined && t > nextFrameAt) {
      recorder.add(frame(nextFrameAt));
      nextFrameAt += recorder.everyMs;
    }
    if (s.maxWallMs !== undefined && (run.events & 0xfff) === 0 && performance.now() - wall0 > s.maxWallMs) {
      stoppedByWall = true;
      break;
    }
    net.time = t;
    const code = queue.popCode();
    if (code < 0) queue.takeFn(code)();
    else if (!net.dispatch(code)) {
      const p = all[Math.floor(code / EVENT_KINDS)] as SimPeer;
      if (code % EVENT_KINDS === TICK_EVENT) tick(p);
      else reannounce(p);
    }
    run.events++;
    const now = net.time;
    if (run.done >= nextSample || now >= nextSampleTime) {
      if (run.done >= nextSample) nextSample += sampleEvery;
      nextSampleTime = now + SAMPLE_MS;
      availability.push(sampleAvailability(copies, now, run.done));
      run.peakRss = Math.max(run.peakRss, process.memoryUsage().rss);
    }
    if (onProgress && (run.events & 0xffff) === 0 && run.done !== lastProgress) {
      lastProgress = run.done;
      onProgress(run.done, s.peers, now);
    }
  }
  availability.push(sampleAvailability(copies, net.time, run.done));
  run.peakRss = Math.max(run.peakRss, process.memoryUsage().rss);
  onProgress?.(run.done, s.peers, net.time);
  if (recorder !== undefined) recorder.add(frame(net.time));
  return buildReport(s, {
    all,
    done: run.done,
    honest,
    departed: run.departed,
    availability,
    events: run.events,
    wallMs: performance.now() - wall0,
    peakRssBytes: run.peakRss,
    virtualMs: net.time,
    stoppedByWall,
  });
}
