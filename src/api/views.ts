import { clientName } from '../core/client-name.js';
import { pieceSize } from '../core/metainfo.js';
import type { Session } from '../session/session.js';
import type { TorrentEntry } from '../session/torrent-entry.js';

/** What the API says of a torrent and of the session (JSON, the shapes in the OpenAPI document). */

export function torrentSummary(s: Session, e: TorrentEntry) {
  // With file selection, progress and ETA count the wanted files' pieces (`sizeWhenDone`).
  const { size: wantedSize, done } = e.wantedBytes;
  const size = e.meta.length;
  const left = wantedSize - done;
  const eta = e.complete ? 0 : e.rateDown > 0 ? Math.ceil(left / e.rateDown) : null;
  return {
    id: e.id,
    name: e.meta.name,
    state: e.state(s.running(e)),
    progress: wantedSize === 0 ? 1 : done / wantedSize,
    size,
    sizeWhenDone: wantedSize,
    pieces: e.meta.pieceCount,
    pieceLength: e.meta.pieceLength,
    have: e.pieces.count,
    downloaded: e.downloaded,
    downloadedWebSeed: e.downloadedWebSeed,
    uploaded: e.uploaded,
    rateDownload: Math.round(e.rateDown),
    rateUpload: Math.round(e.rateUp),
    peers: e.node?.connections ?? 0,
    eta,
    error: e.error,
    downloadDir: e.downloadDir,
    addedAt: e.addedAt,
    completedAt: e.completedAt,
    position: e.position,
    hashChecks: e.hashChecks,
    downloadLimit: e.downloadLimit,
    uploadLimit: e.uploadLimit,
  };
}

export function torrentDetail(s: Session, e: TorrentEntry) {
  return {
    ...torrentSummary(s, e),
    infoHash: e.id,
    private: e.meta.private,
    webSeeds: e.meta.webSeeds,
    files: fileProgress(e),
    trackers: e.meta.tiers.flatMap((tier, t) =>
      tier.map((url) => {
        const r = e.trackers.get(url);
        return { url, tier: t, peers: r?.peers ?? null, error: r?.error ?? null, at: r?.at ?? null };
      }),
    ),
    peerList: (e.node?.peerList() ?? []).map((p) => {
      const r = e.peerSamples.get(p.address);
      return {
        address: p.address,
        client: p.peerId === null ? null : clientName(p.peerId),
        outgoing: p.outgoing,
        progress: e.meta.pieceCount === 0 ? 1 : p.pieces / e.meta.pieceCount,
        downloaded: p.downloaded,
        uploaded: p.uploaded,
        rateDownload: Math.round(r?.rateDown ?? 0),
        rateUpload: Math.round(r?.rateUp ?? 0),
      };
    }),
    bitfield: Buffer.from(e.pieces.bytes).toString('base64'),
  };
}

/** Each file's bytes held verified (a piece counts for the bytes of it that fall in the file). */
export function fileProgress(e: TorrentEntry) {
  const m = e.meta;
  const have = e.pieces;
  let offset = 0;
  return m.files.map((f, index) => {
    const start = offset;
    const end = offset + f.length;
    offset = end;
    let held = 0;
    if (f.length > 0) {
      const first = Math.floor(start / m.pieceLength);
      const last = Math.floor((end - 1) / m.pieceLength);
      for (let i = first; i <= last; i++) {
        if (!have.has(i)) continue;
        const ps = i * m.pieceLength;
        const pe = ps + pieceSize(m, i);
        held += Math.min(pe, end) - Math.max(ps, start);
      }
    }
    return {
      index,
      path: f.path.join('/'),
      size: f.length,
      done: held,
      progress: f.length === 0 ? 1 : held / f.length,
      wanted: !e.unwanted.has(index),
      priority: (['low', 'normal', 'high'] as const)[e.priorities.get(index) ?? 1],
    };
  });
}

export function sessionView(s: Session) {
  let down = 0;
  let up = 0;
  let downloaded = 0;
  let uploaded = 0;
  for (const e of s.torrents.values()) {
    down += e.rateDown;
    up += e.rateUp;
    downloaded += e.downloaded;
    uploaded += e.uploaded;
  }
  return {
    version: s.version,
    port: s.port,
    torrents: s.torrents.size,
    rateDownload: Math.round(down),
    rateUpload: Math.round(up),
    downloaded,
    uploaded,
    uptimeSeconds: Math.round((Date.now() - s.startedAt) / 1000),
    settings: { ...s.settings },
  };
}

/** Peers drawn in a torrent's piece map at most (each row is a bitfield). */
export const MAX_MAP_PEERS = 50;

/**
 * A torrent's piece map (the web UI draws it): what we hold, what is in flight, how many linked
 * peers hold each piece, and each peer's bitfield (the first MAX_MAP_PEERS).
 */
export function torrentPieces(e: TorrentEntry) {
  const core = e.node?.core;
  const peers = e.node?.peerList(true) ?? [];
  const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
  return {
    id: e.id,
    pieces: e.meta.pieceCount,
    have: b64(e.pieces.bytes),
    haveCount: e.pieces.count,
    wanted: e.wanted === null ? null : b64(e.wanted.bytes),
    inFlight: core === undefined ? [] : [...core.picker.active.keys()].sort((a, b) => a - b),
    availability: core === undefined ? null : Array.from(core.picker.availability),
    totalPeers: peers.length,
    peers: peers.slice(0, MAX_MAP_PEERS).map((p) => ({
      address: p.address,
      client: p.peerId === null ? null : clientName(p.peerId),
      have: b64(p.have ?? new Uint8Array(0)),
    })),
  };
}
