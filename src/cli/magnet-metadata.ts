import { usablePeerAddress } from '../core/ip.js';
import { type Magnet, parseMagnet } from '../core/magnet.js';
import { type Metainfo, parseTorrent } from '../core/metainfo.js';
import type { DhtUdp } from '../net/dht-udp.js';
import { nodeHasher } from '../net/system.js';
import { MetadataFetcher, torrentFromInfo } from '../node/metadata-fetch.js';
import type { EncryptionMode } from '../wire/mse.js';
import { trackerLine } from './peer-options.js';

/** A magnet link's metadata, for `get` and `info`: where to look, and the fetch itself. */

type Peer = { ip: string; port: number };

/** The link parsed, its trackers after ours (--tracker), its peers (x.pe) after ours (--peer). */
export function magnetPlan(
  link: string,
  o: { tracker: string[]; peer: Peer[]; dht: boolean },
): { mg: Magnet; trackers: string[]; peers: Peer[] } {
  const mg = parseMagnet(link);
  const trackers = [...o.tracker, ...mg.trackers.filter((u) => !o.tracker.includes(u))];
  const peers = [...o.peer];
  for (const p of mg.peers) {
    const ip = usablePeerAddress(p.host, p.port);
    if (ip !== null) peers.push({ ip, port: p.port });
  }
  if (trackers.length === 0 && peers.length === 0 && !o.dht)
    throw new Error(
      'the magnet link names no tracker (tr) and no peer (x.pe): give one with --tracker or --peer, or leave the DHT on',
    );
  return { mg, trackers, peers };
}

/**
 * The metadata from peers (BEP 9), made into a torrent: the info dictionary verified against the
 * info hash, the first tracker as `announce`. `say` prints progress (stdout for `get`, stderr for
 * `info`, whose stdout may be JSON). The caller bounds it in time.
 */
export async function fetchMetadata(
  plan: { mg: Magnet; trackers: string[]; peers: Peer[] },
  o: { host: string; minAnnounceInterval: number; encryption: EncryptionMode },
  dht: DhtUdp | undefined,
  say: (line: string) => void,
): Promise<{ meta: Metainfo; bytes: Uint8Array }> {
  const { mg, trackers, peers } = plan;
  say(`Fetching the metadata of ${mg.name ?? mg.infoHashHex} from its peers...`);
  const fetcher = new MetadataFetcher({
    infoHash: mg.infoHash,
    host: o.host,
    tiers: trackers.map((u) => [u]),
    peers,
    minAnnounceIntervalMs: o.minAnnounceInterval * 1000,
    encryption: o.encryption,
    dht,
  });
  fetcher.on('tracker', trackerLine);
  fetcher.on('peer-failed', (addr, why) => console.error(`peer ${addr}: ${why}`));
  const info = await fetcher.fetch();
  const bytes = torrentFromInfo(info, trackers, mg.webSeeds);
  const meta = parseTorrent(bytes, nodeHasher.sha1);
  say(`Metadata:  ${meta.name}, verified against the info hash`);
  return { meta, bytes };
}
