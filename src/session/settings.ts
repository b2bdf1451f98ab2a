import { isAbsolute } from 'node:path';

/** A session's settings: changed through the API, kept in settings.json, taken back at start. */
export interface SessionSettings {
  /** Global download and upload limits, bytes/s (null: none). */
  downloadLimit: number | null;
  uploadLimit: number | null;
  /** Downloads running at once. */
  maxActive: number;
  /** Where new torrents download unless told otherwise (absolute). */
  downloadDir: string;
}

const limit = (x: unknown) => x === null || (Number.isSafeInteger(x) && (x as number) >= 0);

/** What a saved value must be to be used (a hand-edited or damaged file is ignored key by key). */
const VALID: Record<keyof SessionSettings, (x: unknown) => boolean> = {
  downloadLimit: limit,
  uploadLimit: limit,
  maxActive: (x) => Number.isSafeInteger(x) && (x as number) >= 1 && (x as number) <= 10_000,
  downloadDir: (x) => typeof x === 'string' && isAbsolute(x),
};

/** The settings with the saved ones taken in: each valid saved value, unless fixed for this run. */
export function mergeSaved(
  current: SessionSettings,
  saved: Record<string, unknown> | null,
  fixed: readonly (keyof SessionSettings)[],
): SessionSettings {
  const out = { ...current } as unknown as Record<string, unknown>;
  for (const [k, ok] of Object.entries(VALID))
    if (saved !== null && k in saved && !fixed.includes(k as keyof SessionSettings) && ok(saved[k]))
      out[k] = saved[k];
  return out as unknown as SessionSettings;
}

/**
 * Gives every torrent a number for Transmission's RPC: a torrent keeps the one in its resume data;
 * one without (or whose number another already holds) gets the next free one. Returns the next.
 */
export function numberTorrents(
  torrents: Iterable<{ rpcId: number; position: number; dirty: boolean }>,
): number {
  const taken = new Set<number>();
  const later: { rpcId: number; dirty: boolean }[] = [];
  for (const e of [...torrents].sort((a, b) => a.position - b.position)) {
    if (Number.isSafeInteger(e.rpcId) && e.rpcId > 0 && !taken.has(e.rpcId)) taken.add(e.rpcId);
    else later.push(e);
  }
  let next = 1;
  for (const id of taken) if (id >= next) next = id + 1;
  for (const e of later) {
    e.rpcId = next++;
    e.dirty = true;
  }
  return next;
}
