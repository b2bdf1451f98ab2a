import type { Command } from 'commander';
import { formatBytes } from './progress.js';
import { call, type TorrentRow, targets, withApi } from './remote-client.js';

interface Detail extends TorrentRow {
  downloadDir: string;
  files: { index: number; path: string; size: number; progress: number }[];
  trackers: { url: string; tier: number; peers: number | null; error: string | null }[];
  peerList: {
    address: string;
    client: string | null;
    progress: number;
    rateDownload: number;
    rateUpload: number;
  }[];
}

/** `swarmshare show <id>`: one torrent of the daemon: files, trackers, peers. */
export function registerShowCommand(program: Command): void {
  withApi(
    program
      .command('show')
      .description("one of the daemon's torrents: files, trackers, peers")
      .argument('<id>', 'its id or a unique start of it')
      .option('--json', 'print the JSON'),
  ).action(async (ref: string, o: { api: string; json?: boolean }) => {
    const [t] = await targets(o.api, [ref]);
    const { torrent: d } = await call<{ torrent: Detail }>(
      o.api,
      'GET',
      `/api/v1/torrents/${(t as TorrentRow).id}`,
    );
    if (o.json) {
      console.log(JSON.stringify(d, null, 2));
      return;
    }
    console.log(`${d.name}  ${d.id}`);
    console.log(
      `State: ${d.state}${d.error ? ` (${d.error})` : ''}, ${(d.progress * 100).toFixed(1)}% of ${formatBytes(d.size)}, in ${d.downloadDir}`,
    );
    console.log(
      `Rates: down ${formatBytes(d.rateDownload)}/s, up ${formatBytes(d.rateUpload)}/s; downloaded ${formatBytes(d.downloaded)}, uploaded ${formatBytes(d.uploaded)}`,
    );
    console.log('Files:');
    for (const f of d.files)
      console.log(
        `  ${String(f.index).padStart(4)}  ${(f.progress * 100).toFixed(1).padStart(5)}%  ${formatBytes(f.size).padStart(10)}  ${f.path}`,
      );
    console.log('Trackers:');
    for (const tr of d.trackers)
      console.log(
        `  tier ${tr.tier}  ${tr.url}  ${tr.error !== null ? `error: ${tr.error}` : tr.peers === null ? 'not answered yet' : `${tr.peers} peers`}`,
      );
    if (d.trackers.length === 0) console.log('  (none)');
    console.log('Peers:');
    for (const p of d.peerList)
      console.log(
        `  ${p.address.padEnd(22)}  ${(p.client ?? '?').padEnd(24)}  ${(p.progress * 100).toFixed(0).padStart(3)}%  down ${formatBytes(p.rateDownload)}/s  up ${formatBytes(p.rateUpload)}/s`,
      );
    if (d.peerList.length === 0) console.log('  (none)');
  });
}
