/**
 * The download queue, pure: which torrents of a session run. Downloads take a slot each, at most
 * `maxActive` at once, in the order they were queued; seeding torrents never take one (they run
 * whenever they are not paused); a paused torrent never runs. A torrent that fails keeps its
 * place but does not run (its error is shown until the user resumes or rechecks it).
 */

export interface QueuedTorrent {
  id: string;
  paused: boolean;
  /** Every wanted piece is verified: it seeds. */
  complete: boolean;
  /** Stopped by an error (not retried until resumed). */
  failed: boolean;
  /** Its place in the queue: lower runs first. */
  position: number;
}

/** Connections of all torrents together by default (Transmission's global peer limit is 200). */
export const DEFAULT_MAX_CONNECTIONS_TOTAL = 200;

/** Downloads that run at once by default (Transmission and qBittorrent use 3 to 5). */
export const DEFAULT_MAX_ACTIVE = 5;

/** The ids that should run now. */
export function activeSet(torrents: readonly QueuedTorrent[], maxActive: number): Set<string> {
  const active = new Set<string>();
  const downloads = torrents
    .filter((t) => !t.paused && !t.failed && !t.complete)
    .sort((a, b) => a.position - b.position);
  for (const t of downloads.slice(0, Math.max(0, maxActive))) active.add(t.id);
  for (const t of torrents) if (!t.paused && !t.failed && t.complete) active.add(t.id);
  return active;
}

/** What a torrent's state is called, from its place in the queue. */
export type TorrentState = 'checking' | 'queued' | 'downloading' | 'seeding' | 'paused' | 'error';

export function stateOf(t: QueuedTorrent, running: boolean, checking: boolean): TorrentState {
  if (t.failed) return 'error';
  if (t.paused) return 'paused';
  if (checking) return 'checking';
  if (!running) return 'queued';
  return t.complete ? 'seeding' : 'downloading';
}
