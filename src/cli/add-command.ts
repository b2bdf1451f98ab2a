import { resolve } from 'node:path';
import type { Command } from 'commander';
import { isMagnet } from '../core/magnet.js';
import { call, readBytes, type TorrentRow, withApi } from './remote-client.js';

/** `swarmshare add <file.torrent | magnet | url>`: a torrent added to a running daemon. */
export function registerAddCommand(program: Command): void {
  withApi(
    program
      .command('add')
      .description('add a torrent to the running daemon: a .torrent file, a magnet link or an http(s) URL')
      .argument('<torrent>', '.torrent file, magnet link, or URL of a .torrent')
      .option('--paused', 'add it paused')
      .option('--dir <folder>', "download into this folder (default: the daemon's --download-dir)"),
  ).action(async (torrent: string, o: { paused?: boolean; dir?: string; api: string }) => {
    const downloadDir = o.dir === undefined ? undefined : resolve(o.dir);
    let r: { torrent: TorrentRow; created: boolean };
    if (isMagnet(torrent) || /^https?:\/\//i.test(torrent)) {
      const key = isMagnet(torrent) ? 'magnet' : 'url';
      r = await call(o.api, 'POST', '/api/v1/torrents', {
        [key]: torrent,
        paused: o.paused === true,
        downloadDir,
      });
    } else {
      const q = new URLSearchParams();
      if (o.paused) q.set('paused', 'true');
      if (downloadDir !== undefined) q.set('downloadDir', downloadDir);
      r = await call(o.api, 'POST', `/api/v1/torrents?${q}`, await readBytes(torrent));
    }
    console.log(
      `${r.created ? 'Added' : 'Already there'}: ${r.torrent.id.slice(0, 12)} ${r.torrent.name} (${r.torrent.state})`,
    );
  });
}
