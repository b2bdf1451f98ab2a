import type { Command } from 'commander';
import { call, targets, withApi } from './remote-client.js';

/** `swarmshare rm [--delete-data] <id|prefix|all>...`: torrents removed from the daemon. */
export function registerRmCommand(program: Command): void {
  withApi(
    program
      .command('rm')
      .description('remove torrents from the running daemon (their data stays unless --delete-data)')
      .argument('<ids...>', "ids, unique starts of ids, or 'all'")
      .option('--delete-data', 'delete the downloaded files too'),
  ).action(async (refs: string[], o: { api: string; deleteData?: boolean }) => {
    for (const t of await targets(o.api, refs)) {
      await call(o.api, 'DELETE', `/api/v1/torrents/${t.id}?deleteData=${o.deleteData === true}`);
      console.log(`Removed: ${t.id.slice(0, 12)} ${t.name}${o.deleteData ? ' (data deleted)' : ''}`);
    }
  });
}
