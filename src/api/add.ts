import { SwarmshareError } from '../core/errors.js';
import { usablePeerAddress } from '../core/ip.js';
import { MagnetError, parseMagnet } from '../core/magnet.js';
import { MAX_TORRENT_BYTES } from '../core/metainfo.js';
import { boundedFetch } from '../net/bounded-fetch.js';
import { MetadataFetcher, torrentFromInfo } from '../node/metadata-fetch.js';
import type { Session } from '../session/session.js';
import type { TorrentEntry } from '../session/torrent-entry.js';

/** What an add asks for: a .torrent's bytes, a magnet link, or a URL of a .torrent. */
export interface AddBody {
  torrentBytes?: Uint8Array;
  magnet?: string;
  url?: string;
  paused?: boolean;
  downloadDir?: string;
}

/** A magnet link's metadata is awaited this long before the add is refused (ERR_METADATA_TIMEOUT). */
export const METADATA_TIMEOUT_MS = 60_000;
/** A URL's .torrent is fetched within this long. */
export const URL_TIMEOUT_MS = 30_000;

export async function addTorrent(
  session: Session,
  b: AddBody,
  metadataTimeoutMs = METADATA_TIMEOUT_MS,
): Promise<{ entry: TorrentEntry; created: boolean }> {
  const bytes =
    b.torrentBytes ??
    (b.url !== undefined
      ? await fetchTorrent(b.url)
      : await magnetTorrent(session, b.magnet ?? '', metadataTimeoutMs));
  return session.add(bytes, { paused: b.paused, downloadDir: b.downloadDir });
}

/** A .torrent from an http(s) URL, through the bounded client (size, time and redirects capped). */
async function fetchTorrent(url: string): Promise<Uint8Array> {
  let scheme: string;
  try {
    scheme = new URL(url).protocol;
  } catch {
    throw new SwarmshareError('ERR_VALIDATION', `not a URL: ${url}`);
  }
  if (scheme !== 'http:' && scheme !== 'https:')
    throw new SwarmshareError('ERR_VALIDATION', `only http and https URLs are fetched, not ${scheme}`);
  try {
    const r = await boundedFetch(url, MAX_TORRENT_BYTES, { timeoutMs: URL_TIMEOUT_MS });
    if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
    return r.body;
  } catch (e) {
    throw new SwarmshareError('ERR_FETCH_FAILED', `cannot fetch ${url}: ${(e as Error).message}`);
  }
}

/** A magnet link's metadata from its peers (trackers, x.pe, the session's DHT), as a .torrent. */
async function magnetTorrent(session: Session, link: string, timeoutMs: number): Promise<Uint8Array> {
  let mg: ReturnType<typeof parseMagnet>;
  try {
    mg = parseMagnet(link);
  } catch (e) {
    throw new SwarmshareError('ERR_VALIDATION', e instanceof MagnetError ? e.message : 'not a magnet link');
  }
  const known = session.torrents.get(mg.infoHashHex);
  if (known !== undefined) return known.torrentBytes;
  const peers: { ip: string; port: number }[] = [];
  for (const p of mg.peers) {
    const ip = usablePeerAddress(p.host, p.port);
    if (ip !== null) peers.push({ ip, port: p.port });
  }
  const fetcher = new MetadataFetcher({
    infoHash: mg.infoHash,
    host: session.opts.host,
    tiers: mg.trackers.map((u) => [u]),
    peers,
    minAnnounceIntervalMs: session.opts.minAnnounceIntervalMs,
    encryption: session.opts.encryption,
    dht: session.opts.dht,
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new SwarmshareError(
            'ERR_METADATA_TIMEOUT',
            `no metadata for ${mg.infoHashHex} after ${timeoutMs / 1000} s`,
          ),
        ),
      timeoutMs,
    );
  });
  try {
    const info = await Promise.race([fetcher.fetch(), timeout]);
    return torrentFromInfo(info, mg.trackers, mg.webSeeds);
  } finally {
    clearTimeout(timer);
    fetcher.cancel();
  }
}
