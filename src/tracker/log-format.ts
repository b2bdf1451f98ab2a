import { displayPeerId } from '../core/ids.js';
import type { PeerRecord, Swarm } from './registry.js';

/** Chunk lists longer than this are shown as ranges (`[0-999, 1200]`) so a log line stays readable. */
export const MAX_LISTED_CHUNKS = 64;

/** `[0, 1, 2]` as the original printed it; long lists as ranges. */
export function formatChunks(indices: readonly number[]): string {
  if (indices.length <= MAX_LISTED_CHUNKS) return `[${indices.join(', ')}]`;
  const parts: string[] = [];
  let start = indices[0] as number;
  let prev = start;
  for (let i = 1; i <= indices.length; i++) {
    const v = indices[i];
    if (v !== undefined && v === prev + 1) {
      prev = v;
      continue;
    }
    parts.push(start === prev ? String(start) : `${start}-${prev}`);
    if (v !== undefined) start = prev = v;
  }
  return `[${parts.join(', ')}]`;
}

/** `{'file2.txt': [0, 1, 2]}`, the original's Python-style files map. */
export function formatFiles(files: Record<string, number[]>): string {
  const entries = Object.entries(files).map(([name, chunks]) => `'${name}': ${formatChunks(chunks)}`);
  return `{${entries.join(', ')}}`;
}

export function registeredLine(
  peerId: string,
  ip: string,
  port: number,
  files: Record<string, number[]>,
): string {
  return `Peer registered: ${peerId} at ${ip}:${port} with files: ${formatFiles(files)}`;
}

/** The original's availability table, one line per peer. */
export function availabilityLines(swarm: Swarm, peers: readonly PeerRecord[], excluded = 0): string[] {
  const label = swarm.name ?? swarm.infoHash ?? swarm.id;
  const lines = [`Available peers for '${label}':`];
  for (const p of peers) {
    const held =
      p.chunks !== null
        ? formatChunks(p.chunks.indices())
        : p.complete
          ? 'all chunks (BitTorrent client, seed)'
          : 'unknown (BitTorrent client)';
    lines.push(`${displayPeerId(p.peerId)}: ${held}`);
  }
  const unlisted = swarm.list.length - excluded - peers.length;
  if (unlisted > 0) lines.push(`(${unlisted} more peers not listed)`);
  return lines;
}
