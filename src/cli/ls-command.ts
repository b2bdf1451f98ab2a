import type { Command } from 'commander';
import { formatBytes } from './progress.js';
import { call, type TorrentRow, withApi } from './remote-client.js';

/** `swarmshare ls`: the daemon's torrents, one line each. */
export function registerLsCommand(program: Command): void {
  withApi(
    program
      .command('ls')
      .description("list the running daemon's torrents")
      .option('--json', 'print the JSON'),
  ).action(async (o: { api: string; json?: boolean }) => {
    const { torrents } = await call<{ torrents: TorrentRow[] }>(o.api, 'GET', '/api/v1/torrents');
    if (o.json) {
      console.log(JSON.stringify(torrents, null, 2));
      return;
    }
    console.log(lsTable(torrents).join('\n'));
  });
}

export function lsTable(torrents: readonly TorrentRow[]): string[] {
  const lines = [
    `${'ID'.padEnd(12)}  ${'STATE'.padEnd(11)}  ${'DONE'.padStart(6)}  ${'SIZE'.padStart(10)}  ${'DOWN/s'.padStart(10)}  ${'UP/s'.padStart(10)}  ${'PEERS'.padStart(5)}  ${'ETA'.padStart(7)}  NAME`,
  ];
  for (const t of torrents) {
    const eta = t.eta === null ? '-' : t.eta === 0 ? '' : `${t.eta}s`;
    lines.push(
      `${t.id.slice(0, 12)}  ${t.state.padEnd(11)}  ${`${(t.progress * 100).toFixed(1)}%`.padStart(6)}  ${formatBytes(t.size).padStart(10)}  ${formatBytes(t.rateDownload).padStart(10)}  ${formatBytes(t.rateUpload).padStart(10)}  ${String(t.peers).padStart(5)}  ${eta.padStart(7)}  ${t.name}${t.error ? `  (error: ${t.error})` : ''}`,
    );
  }
  if (torrents.length === 0) lines.push('(no torrents)');
  return lines;
}
