import { readFile } from 'node:fs/promises';
import type { SwarmSummary, SwarmView } from '../tracker/feed.js';
import type { Scenario } from './scenario.js';

/**
 * A simulation recorded for the dashboard: snapshots of the same shape as the live feed's
 * (`/events`: the swarm list and one swarm's view), one per `everyMs` of virtual time, so the
 * dashboard page can play a simulation as it plays a live swarm (`swarmshare replay`).
 */

export const REPLAY_FORMAT = 'swarmshare-replay';
export const REPLAY_VERSION = 1;
/** Frames kept at most: past this, every other frame is dropped and the interval doubles. */
export const MAX_FRAMES = 600;

export interface ReplayFrame {
  /** Virtual time, ms. */
  timeMs: number;
  swarms: SwarmSummary[];
  view: SwarmView;
}

export interface Replay {
  format: typeof REPLAY_FORMAT;
  version: typeof REPLAY_VERSION;
  scenario: Scenario;
  everyMs: number;
  frames: ReplayFrame[];
}

/** Collects frames as a simulation runs; keeps at most MAX_FRAMES, evenly spaced. */
export class ReplayRecorder {
  #everyMs: number;
  readonly frames: ReplayFrame[] = [];

  constructor(everyMs: number) {
    if (!(everyMs > 0)) throw new RangeError(`frame interval must be positive, not ${everyMs}`);
    this.#everyMs = everyMs;
  }

  /** Virtual ms between frames (doubles each time the frames are thinned). */
  get everyMs(): number {
    return this.#everyMs;
  }

  add(frame: ReplayFrame): void {
    this.frames.push(frame);
    if (this.frames.length > MAX_FRAMES) {
      // Keep the even ones: still evenly spaced, at twice the interval.
      let k = 0;
      for (let i = 0; i < this.frames.length; i += 2) this.frames[k++] = this.frames[i] as ReplayFrame;
      this.frames.length = k;
      this.#everyMs *= 2;
    }
  }

  replay(scenario: Scenario): Replay {
    return {
      format: REPLAY_FORMAT,
      version: REPLAY_VERSION,
      scenario,
      everyMs: this.#everyMs,
      frames: this.frames,
    };
  }
}

/** Reads a replay file, with a clear error when it is not one. */
export async function readReplay(path: string): Promise<Replay> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new Error(`${path}: not a replay file: ${(e as Error).message}`);
  }
  const r = value as Partial<Replay> | null;
  if (r === null || typeof r !== 'object' || r.format !== REPLAY_FORMAT)
    throw new Error(`${path}: not a replay file (write one with 'swarmshare simulate --replay FILE')`);
  if (r.version !== REPLAY_VERSION)
    throw new Error(`${path}: replay version ${r.version}; this build reads ${REPLAY_VERSION}`);
  if (!Array.isArray(r.frames) || r.frames.length === 0)
    throw new Error(`${path}: the replay holds no frames`);
  for (const [i, f] of r.frames.entries()) {
    if (
      typeof f?.timeMs !== 'number' ||
      !Array.isArray(f.swarms) ||
      typeof f.view !== 'object' ||
      f.view === null
    )
      throw new Error(`${path}: frame ${i} is malformed`);
  }
  return r as Replay;
}
