import Fastify, { type FastifyInstance } from 'fastify';
import type { Replay } from '../sim/replay.js';
import { FEED_INTERVAL_MS, MAX_FEED_CLIENTS, openEventStream, registerDashboardAssets } from './routes.js';

/**
 * `swarmshare replay`: the dashboard page, fed a recorded simulation instead of a live tracker.
 * `/events` sends the frames as the live feed sends snapshots (same event name and shape, plus
 * `replay: {timeMs, frame, frames}`), spaced by their virtual time divided by `speed`; then it
 * repeats the last frame every FEED_INTERVAL_MS until the page closes.
 */

export interface ReplayServerOpts {
  /** Virtual seconds per wall second. */
  speed: number;
}

/** Shortest wall time between two frames, ms (a fast replay still draws every frame). */
export const MIN_FRAME_GAP_MS = 40;

export function buildReplayServer(replay: Replay, opts: ReplayServerOpts): FastifyInstance {
  if (!(opts.speed > 0)) throw new RangeError(`speed must be positive, not ${opts.speed}`);
  const app = Fastify({ logger: false });
  registerDashboardAssets(app);
  let clients = 0;
  const frames = replay.frames;
  const data = (k: number) => {
    const f = frames[k] as Replay['frames'][number];
    return JSON.stringify({
      swarms: f.swarms,
      view: f.view,
      replay: { timeMs: f.timeMs, frame: k + 1, frames: frames.length },
    });
  };

  app.get('/api/replay', async () => ({
    scenario: replay.scenario,
    frames: frames.length,
    everyMs: replay.everyMs,
    durationMs: (frames[frames.length - 1] as Replay['frames'][number]).timeMs,
    speed: opts.speed,
  }));

  app.get('/events', (req, reply) => {
    if (clients >= MAX_FEED_CLIENTS) {
      reply.status(429).send({ error: { code: 'ERR_RATE_LIMITED', message: 'too many feed connections' } });
      return;
    }
    clients++;
    const res = openEventStream(reply);
    let k = 0;
    let timer: NodeJS.Timeout | undefined;
    const next = () => {
      res.write(`event: snapshot\ndata: ${data(k)}\n\n`);
      if (k + 1 < frames.length) {
        const gap =
          ((frames[k + 1] as Replay['frames'][number]).timeMs -
            (frames[k] as Replay['frames'][number]).timeMs) /
          opts.speed;
        k++;
        timer = setTimeout(next, Math.max(MIN_FRAME_GAP_MS, gap));
      } else {
        timer = setTimeout(next, FEED_INTERVAL_MS);
      }
    };
    next();
    req.raw.once('close', () => {
      clearTimeout(timer);
      clients--;
    });
  });
  return app;
}
