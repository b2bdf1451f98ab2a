import type { Command } from 'commander';
import { registerTorrentAction } from './remote-client.js';

/** `swarmshare pause <id|prefix|all>...`: torrents of the daemon stopped (they leave their trackers). */
export function registerPauseCommand(program: Command): void {
  registerTorrentAction(program, {
    name: 'pause',
    description: 'pause torrents of the running daemon',
    done: 'Paused',
  });
}
