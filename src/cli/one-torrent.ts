import type { Metainfo } from '../core/metainfo.js';
import type { PeerDht, PeerNode } from '../node/peer-node.js';
import { Session } from '../session/session.js';
import type { TorrentPeerOpts } from '../session/torrent-entry.js';
import type { EncryptionMode } from '../wire/mse.js';

/**
 * `share` and `get` run a session of one torrent: the daemon's code path (its listener, limits and
 * connection cap) with nothing kept on disk beyond the download itself.
 */
export interface OneTorrent {
  session: Session;
  /** The torrent's peer, started: its folder opened and verified, listening, trackers told. */
  node: PeerNode;
}

export interface OneTorrentOpts {
  meta: Metainfo;
  bytes: Uint8Array;
  dir: string;
  host: string;
  port: number;
  dht?: PeerDht;
  minAnnounceIntervalMs: number;
  maxConnections: number;
  encryption: EncryptionMode;
  peer: TorrentPeerOpts;
  /** Called with the peer (and its session) as it starts, so its first events are heard. */
  before?: (node: PeerNode, session: Session) => void;
}

/** Starts the session and its torrent; a failed start stops the session and throws as the peer did. */
export async function startOneTorrent(o: OneTorrentOpts): Promise<OneTorrent> {
  const session = new Session({
    downloadDir: o.dir,
    host: o.host,
    port: o.port,
    dht: o.dht,
    maxConnections: o.maxConnections,
    // One torrent: its own cap is the session's.
    maxConnectionsTotal: o.maxConnections,
    minAnnounceIntervalMs: o.minAnnounceIntervalMs,
    encryption: o.encryption,
  });
  await session.start();
  const { entry } = await session.addParsed(o.meta, o.bytes, { peer: o.peer });
  const node = entry.node;
  if (node === null || entry.started === null) throw new Error(`${o.meta.name} did not start`);
  o.before?.(node, session);
  try {
    await entry.started;
  } catch (e) {
    await session.stop();
    throw e;
  }
  return { session, node };
}
