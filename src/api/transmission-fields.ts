import { join } from 'node:path';
import { clientName } from '../core/client-name.js';
import { magnetUri, pieceSize } from '../core/metainfo.js';
import { contentType } from '../node/file-stream.js';
import type { Session } from '../session/session.js';
import type { TorrentEntry } from '../session/torrent-entry.js';
import { fileProgress } from './views.js';

/**
 * Transmission's names and numbers for a torrent (rpc-spec, `torrent-get` fields), read from one
 * session's torrent: a mapping, no behaviour of its own. Fields we cannot answer truthfully are
 * left out (docs/daemon.md lists them); a client asking for them gets the rest.
 */

/** Transmission's status numbers. */
export const STATUS = {
  stopped: 0,
  checkWait: 1,
  checking: 2,
  downloadWait: 3,
  downloading: 4,
  seedWait: 5,
  seeding: 6,
} as const;

/** Transmission's speeds are in kB/s of 1,000 bytes (its `units.speed-bytes`). */
export const SPEED_K = 1000;

/** ETA when there is none (done) and when it cannot be told (no rate): Transmission's values. */
const ETA_NOT_AVAILABLE = -1;
const ETA_UNKNOWN = -2;
/** uploadRatio when nothing was downloaded. */
const RATIO_NA = -1;

/** What a field reads besides the torrent. */
export interface FieldContext {
  session: Session;
  /** Limits set while disabled (kB/s), remembered as Transmission does; by torrent id. */
  remembered: Map<string, { down: number; up: number }>;
  /** One torrent's files and error, worked out once for all the fields asked (torrentFields). */
  memo?: { files?: ReturnType<typeof filesOf>; error?: { error: number; errorString: string } };
}

type Field = (e: TorrentEntry, c: FieldContext) => unknown;

const secs = (ms: number | null) => (ms === null ? 0 : Math.floor(ms / 1000));

function statusOf(e: TorrentEntry, s: Session): number {
  switch (e.state(s.running(e))) {
    case 'checking':
      return STATUS.checking;
    case 'queued':
      return e.complete ? STATUS.seedWait : STATUS.downloadWait;
    case 'downloading':
      return STATUS.downloading;
    case 'seeding':
      return STATUS.seeding;
    default:
      return STATUS.stopped;
  }
}

/** Transmission's error numbers: 0 none, 2 tracker error (every tracker failed), 3 local error. */
function errorOf(e: TorrentEntry): { error: number; errorString: string } {
  if (e.error !== null) return { error: 3, errorString: e.error };
  const answers = [...e.trackers.values()];
  const failed = answers.filter((a) => a.error !== null);
  if (answers.length > 0 && failed.length === answers.length)
    return { error: 2, errorString: failed[0]?.error ?? 'tracker error' };
  return { error: 0, errorString: '' };
}

function left(e: TorrentEntry): number {
  const w = e.wantedBytes;
  return w.size - w.done;
}

function etaOf(e: TorrentEntry): number {
  if (e.complete) return ETA_NOT_AVAILABLE;
  return e.rateDown > 0 ? Math.ceil(left(e) / e.rateDown) : ETA_UNKNOWN;
}

/** Bytes of wanted pieces we lack that some linked peer has. */
function desiredAvailable(e: TorrentEntry): number {
  const avail = e.node?.core?.picker.availability;
  if (avail === undefined) return 0;
  const have = e.pieces;
  const wanted = e.wanted;
  let n = 0;
  for (let i = 0; i < e.meta.pieceCount; i++)
    if (!have.has(i) && (wanted === null || wanted.has(i)) && (avail[i] ?? 0) > 0) n += pieceSize(e.meta, i);
  return n;
}

function peersOf(e: TorrentEntry) {
  return (e.node?.peerList() ?? []).map((p) => {
    const r = e.peerSamples.get(p.address);
    const toClient = Math.round(r?.rateDown ?? 0);
    const toPeer = Math.round(r?.rateUp ?? 0);
    const cut = p.address.lastIndexOf(':');
    const flags = `${toClient > 0 ? 'D' : ''}${toPeer > 0 ? 'U' : ''}${p.encrypted ? 'E' : ''}${p.outgoing ? '' : 'I'}`;
    return {
      address: p.address.slice(0, cut).replace(/^\[|\]$/g, ''),
      port: Number(p.address.slice(cut + 1)),
      clientName: p.peerId === null ? '' : clientName(p.peerId),
      clientIsChoked: p.amChoking,
      peerIsChoked: p.peerChoking,
      isDownloadingFrom: toClient > 0,
      isUploadingTo: toPeer > 0,
      isEncrypted: p.encrypted,
      isIncoming: !p.outgoing,
      isUTP: false,
      progress: e.meta.pieceCount === 0 ? 1 : p.pieces / e.meta.pieceCount,
      rateToClient: toClient,
      rateToPeer: toPeer,
      flagStr: flags,
    };
  });
}

function filesOf(e: TorrentEntry) {
  const m = e.meta;
  return fileProgress(e).map((f, i) => {
    const file = m.files[i];
    const offset = file?.offset ?? 0;
    const end = offset + f.size;
    return {
      name: m.multiFile ? `${m.name}/${f.path}` : m.name,
      length: f.size,
      bytesCompleted: f.done,
      beginPiece: Math.floor(offset / m.pieceLength),
      endPiece: f.size === 0 ? Math.floor(offset / m.pieceLength) : Math.ceil(end / m.pieceLength),
      wanted: f.wanted,
      priority: f.priority === 'high' ? 1 : f.priority === 'low' ? -1 : 0,
    };
  });
}

function trackersOf(e: TorrentEntry) {
  let id = 0;
  return e.meta.tiers.flatMap((tier, t) =>
    tier.map((announce) => ({ id: id++, announce, scrape: '', tier: t, sitename: siteName(announce) })),
  );
}

function siteName(url: string): string {
  try {
    return new URL(url).hostname;
  } catch {
    return '';
  }
}

function trackerStatsOf(e: TorrentEntry) {
  return trackersOf(e).map((t) => {
    const r = e.trackers.get(t.announce);
    let host = '';
    try {
      const u = new URL(t.announce);
      host = `${u.hostname}:${u.port || (u.protocol === 'https:' ? 443 : 80)}`;
    } catch {}
    return {
      ...t,
      host,
      isBackup: false,
      hasAnnounced: r !== undefined,
      lastAnnounceTime: secs(r?.at ?? null),
      lastAnnounceSucceeded: r !== undefined && r.error === null,
      lastAnnounceResult: r === undefined ? '' : (r.error ?? 'Success'),
      lastAnnouncePeerCount: r?.peers ?? 0,
      lastAnnounceTimedOut: false,
      hasScraped: false,
      scrapeState: 0,
      // 0 inactive (the torrent is stopped), 1 waiting for its next announce.
      announceState: e.node === null ? 0 : 1,
      seederCount: -1,
      leecherCount: -1,
      downloadCount: -1,
    };
  });
}

function limitOf(e: TorrentEntry, c: FieldContext, dir: 'down' | 'up'): number {
  const v = dir === 'down' ? e.downloadLimit : e.uploadLimit;
  return v === null ? (c.remembered.get(e.id)?.[dir] ?? 100) : Math.round(v / SPEED_K);
}

const FIELDS: Record<string, Field> = {
  id: (e) => e.rpcId,
  hashString: (e) => e.id,
  name: (e) => e.meta.name,
  status: (e, c) => statusOf(e, c.session),
  error: (e, c) => errorMemo(e, c).error,
  errorString: (e, c) => errorMemo(e, c).errorString,
  totalSize: (e) => e.meta.length,
  sizeWhenDone: (e) => e.wantedBytes.size,
  leftUntilDone: left,
  haveValid: (e) => e.bytesDone,
  haveUnchecked: () => 0,
  desiredAvailable,
  percentDone: (e) => {
    const w = e.wantedBytes;
    return w.size === 0 ? 1 : w.done / w.size;
  },
  percentComplete: (e) => (e.meta.length === 0 ? 1 : e.bytesDone / e.meta.length),
  metadataPercentComplete: () => 1,
  recheckProgress: (e) =>
    e.checking && e.node !== null && e.meta.pieceCount > 0 ? e.node.hashChecks / e.meta.pieceCount : 0,
  rateDownload: (e) => Math.round(e.rateDown),
  rateUpload: (e) => Math.round(e.rateUp),
  eta: etaOf,
  // Transmission's meaning: seeding stopped by its ratio or idle limit; we have no seeding limits.
  isFinished: () => false,
  isStalled: (e, c) => e.state(c.session.running(e)) === 'downloading' && e.rateDown === 0,
  isPrivate: (e) => e.meta.private,
  downloadDir: (e) => e.downloadDir,
  uploadedEver: (e) => e.uploaded,
  downloadedEver: (e) => e.downloaded,
  uploadRatio: (e) => (e.downloaded > 0 ? e.uploaded / e.downloaded : RATIO_NA),
  addedDate: (e) => secs(e.addedAt),
  doneDate: (e) => secs(e.completedAt),
  activityDate: (e) => secs(e.activityAt),
  queuePosition: (e) => e.position,
  labels: (e) => e.labels,
  pieceCount: (e) => e.meta.pieceCount,
  pieceSize: (e) => e.meta.pieceLength,
  pieces: (e) => Buffer.from(e.pieces.bytes).toString('base64'),
  magnetLink: (e) => magnetUri(e.meta),
  torrentFile: (e, c) =>
    c.session.opts.state === undefined ? '' : join(c.session.opts.state.torrentsDir, `${e.id}.torrent`),
  files: (e) =>
    filesOf(e).map(({ name, length, bytesCompleted, beginPiece, endPiece }) => ({
      name,
      length,
      bytesCompleted,
      beginPiece,
      endPiece,
    })),
  fileStats: (e, c) =>
    filesMemo(e, c).map(({ bytesCompleted, wanted, priority }) => ({ bytesCompleted, wanted, priority })),
  'file-count': (e) => e.meta.files.length,
  wanted: (e, c) => filesMemo(e, c).map((f) => f.wanted),
  priorities: (e, c) => filesMemo(e, c).map((f) => f.priority),
  'primary-mime-type': (e) => {
    const biggest = [...e.meta.files].sort((a, b) => b.length - a.length)[0];
    return contentType(biggest?.path.at(-1) ?? e.meta.name);
  },
  trackers: trackersOf,
  trackerStats: trackerStatsOf,
  trackerList: (e) => e.meta.tiers.map((t) => t.join('\n')).join('\n\n'),
  peers: peersOf,
  peersConnected: (e) => e.node?.connections ?? 0,
  peersSendingToUs: (e) => [...e.peerSamples.values()].filter((p) => p.rateDown > 0).length,
  peersGettingFromUs: (e) => [...e.peerSamples.values()].filter((p) => p.rateUp > 0).length,
  'peer-limit': (e, c) => e.peerOpts.maxConnections ?? c.session.opts.maxConnections ?? 0,
  webseeds: (e) => e.meta.webSeeds,
  downloadLimit: (e, c) => limitOf(e, c, 'down'),
  downloadLimited: (e) => e.downloadLimit !== null,
  uploadLimit: (e, c) => limitOf(e, c, 'up'),
  uploadLimited: (e) => e.uploadLimit !== null,
  honorsSessionLimits: () => true,
  bandwidthPriority: () => 0,
  sequentialDownload: (e) => e.peerOpts.strategy === 'sequential',
};

/** The fields we serve (unknown ones a client asks for are left out, as Transmission does). */
export const SERVED_FIELDS = Object.keys(FIELDS);

/** One torrent as `torrent-get` answers it: the asked fields in the order asked. */
export function torrentFields(e: TorrentEntry, fields: readonly string[], c: FieldContext): unknown[] {
  const one = { ...c, memo: {} };
  return fields.map((f) => (Object.hasOwn(FIELDS, f) ? (FIELDS[f] as Field)(e, one) : undefined));
}

function filesMemo(e: TorrentEntry, c: FieldContext) {
  const m = c.memo ?? {};
  m.files ??= filesOf(e);
  return m.files;
}

function errorMemo(e: TorrentEntry, c: FieldContext) {
  const m = c.memo ?? {};
  m.error ??= errorOf(e);
  return m.error;
}

/** The asked fields that we serve. */
export function knownFields(fields: readonly string[]): string[] {
  return [...new Set(fields)].filter((f) => Object.hasOwn(FIELDS, f));
}

export function fieldsObject(e: TorrentEntry, fields: readonly string[], c: FieldContext) {
  const values = torrentFields(e, fields, c);
  return Object.fromEntries(fields.map((f, i) => [f, values[i]]));
}

/**
 * Counts and rates, and bytes moved: `cumulative-stats` since each torrent was added (its resume
 * data), `current-stats` since `baseline` (what each torrent had moved when the RPC started).
 */
export function sessionStats(s: Session, baseline: ReadonlyMap<string, { down: number; up: number }>) {
  let active = 0;
  let paused = 0;
  let down = 0;
  let up = 0;
  const all = { down: 0, up: 0 };
  const run = { down: 0, up: 0 };
  for (const e of s.torrents.values()) {
    if (e.paused) paused++;
    if (e.rateDown > 0 || e.rateUp > 0) active++;
    down += e.rateDown;
    up += e.rateUp;
    all.down += e.downloaded;
    all.up += e.uploaded;
    const b = baseline.get(e.id);
    run.down += e.downloaded - (b?.down ?? 0);
    run.up += e.uploaded - (b?.up ?? 0);
  }
  const secondsActive = Math.round((s.clock.now() - s.startedAt) / 1000);
  return {
    activeTorrentCount: active,
    pausedTorrentCount: paused,
    torrentCount: s.torrents.size,
    downloadSpeed: Math.round(down),
    uploadSpeed: Math.round(up),
    'cumulative-stats': { uploadedBytes: all.up, downloadedBytes: all.down },
    'current-stats': {
      uploadedBytes: run.up,
      downloadedBytes: run.down,
      sessionCount: 1,
      secondsActive,
    },
  };
}
