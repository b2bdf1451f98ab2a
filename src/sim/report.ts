import { distributionLowerBound } from '../core/lower-bound.js';
import type { Scenario } from './scenario.js';
import type { SimPeer } from './sim-peer.js';
import { type UplinkShares, uplinkShares } from './uplinks.js';

/** A simulation's metrics: piece availability over time, and the report at the end. */

export interface SimReport {
  scenario: Scenario;
  /** Milliseconds from each honest peer's arrival to its completion (null: never). */
  completionMs: (number | null)[];
  distribution: { min: number; p50: number; p90: number; p99: number; max: number; mean: number } | null;
  /** Time from joining to the first verified piece, ms, over the honest leechers that got one. */
  firstPiece: { p10: number; p50: number; p90: number; mean: number } | null;
  /** Virtual time when the last peer completed, ms. */
  lastCompletionMs: number | null;
  lowerBoundMs: number | null;
  ratioToBound: number | null;
  /** Bytes the initial seeds uploaded, over the file size. */
  originLoad: number;
  /**
   * What the seeds sent, piece by piece: sends in all, how many it took (and when) until every
   * piece had been sent once (null: never), and how many pieces were sent 1, 2, 3... times.
   */
  seedSends: {
    total: number;
    coveredAfter: number | null;
    coveredAtMs: number | null;
    copies: Record<number, number>;
  };
  /** Bytes uploaded over (capacity x time) for all peers, up to the last completion. */
  uploadUtilization: number;
  /** The uplinks sampled each second: busy, or idle and why (shares of the samples; uplinks.ts). */
  uplinks: UplinkShares;
  /** Samples of piece availability: copies of the rarest and mean piece among live peers. */
  availability: { timeMs: number; min: number; mean: number; completed: number }[];
  events: number;
  wallMs: number;
  peakRssBytes: number;
  /** Virtual time reached, ms. */
  virtualMs: number;
  /** True when maxWallMs ran out before the swarm completed. */
  stoppedByWall: boolean;
  /** Pieces that failed their hash (data from malicious peers). */
  failedPieces: number;
  /** Honest peers that left before completing. */
  departedIncomplete: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

export function sampleAvailability(copies: Uint32Array, timeMs: number, completed: number) {
  const pieces = copies.length;
  let min = Number.POSITIVE_INFINITY;
  let sum = 0;
  for (const c of copies) {
    if (c < min) min = c;
    sum += c;
  }
  return { timeMs, min: pieces === 0 ? 0 : min, mean: pieces === 0 ? 0 : sum / pieces, completed };
}

/** What the run measured, over `all` its peers. */
export interface RunTotals {
  all: SimPeer[];
  done: number;
  honest: number;
  departed: number;
  availability: SimReport['availability'];
  events: number;
  wallMs: number;
  peakRssBytes: number;
  virtualMs: number;
  stoppedByWall: boolean;
  uplinks: UplinkShares;
}

/** How long after joining the honest leechers verified their first piece (null: none did). */
function firstPieceStats(leechers: readonly SimPeer[]): SimReport['firstPiece'] {
  const t = leechers
    .filter((p) => p.firstPieceAt !== null)
    .map((p) => (p.firstPieceAt as number) - p.joinedAt)
    .sort((a, b) => a - b);
  if (t.length === 0) return null;
  return {
    p10: percentile(t, 10),
    p50: percentile(t, 50),
    p90: percentile(t, 90),
    mean: t.reduce((a, b) => a + b, 0) / t.length,
  };
}

/** The seeds' piece sends in time order: how long until each piece had gone out once, and the copies. */
function seedSendStats(all: readonly SimPeer[], pieces: number): SimReport['seedSends'] {
  const sends = all.flatMap((p) => p.sends ?? []).sort((a, b) => a.at - b.at);
  const times = new Uint32Array(pieces);
  let covered = 0;
  let coveredAfter: number | null = null;
  let coveredAtMs: number | null = null;
  for (const [k, x] of sends.entries()) {
    if ((times[x.index] as number) === 0 && ++covered === pieces) {
      coveredAfter = k + 1;
      coveredAtMs = x.at;
    }
    times[x.index] = (times[x.index] as number) + 1;
  }
  const copies: Record<number, number> = {};
  for (const c of times) if (c > 0) copies[c] = (copies[c] ?? 0) + 1;
  return { total: sends.length, coveredAfter, coveredAtMs, copies };
}

export function buildReport(s: Scenario, t: RunTotals): SimReport {
  const { all, done, honest } = t;
  const F = s.pieces * s.pieceSize;
  const leechers = all.filter((p) => !p.seed && !p.malicious);
  const completionMs = leechers.map((p) => (p.doneAt === null ? null : p.doneAt - p.joinedAt));
  const times = completionMs.filter((x): x is number => x !== null).sort((a, b) => a - b);
  const lastCompletion = leechers.reduce<number | null>(
    (m, p) => (p.doneAt === null ? m : Math.max(m ?? 0, p.doneAt)),
    null,
  );
  const seedUpload = all.filter((p) => p.seed).reduce((a, p) => a + p.upload, 0);
  const dmin = Math.min(...leechers.map((p) => p.download));
  const bound = distributionLowerBound(
    F,
    seedUpload,
    leechers.map((p) => p.upload),
    dmin,
  );
  const boundMs = bound === null ? null : bound * 1000;
  const capacity = all.reduce((a, p) => a + p.upload, 0);
  const uploadedAll = all.reduce((a, p) => a + p.uploaded, 0);
  return {
    scenario: s,
    completionMs,
    distribution:
      times.length === 0
        ? null
        : {
            min: times[0] as number,
            p50: percentile(times, 50),
            p90: percentile(times, 90),
            p99: percentile(times, 99),
            max: times[times.length - 1] as number,
            mean: times.reduce((a, b) => a + b, 0) / times.length,
          },
    firstPiece: firstPieceStats(leechers),
    lastCompletionMs: done === honest ? lastCompletion : null,
    lowerBoundMs: boundMs,
    ratioToBound: done === honest && lastCompletion !== null && boundMs ? lastCompletion / boundMs : null,
    failedPieces: all.reduce((a, p) => a + p.failedPieces, 0),
    departedIncomplete: t.departed,
    originLoad: all.filter((p) => p.seed).reduce((a, p) => a + p.uploaded, 0) / F,
    seedSends: seedSendStats(all, s.pieces),
    uploadUtilization: lastCompletion ? uploadedAll / ((capacity * lastCompletion) / 1000) : 0,
    uplinks: uplinkShares(t.uplinks),
    availability: t.availability,
    events: t.events,
    wallMs: t.wallMs,
    peakRssBytes: t.peakRssBytes,
    virtualMs: t.virtualMs,
    stoppedByWall: t.stoppedByWall,
  };
}
