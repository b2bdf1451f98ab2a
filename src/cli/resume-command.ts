import type { Command } from 'commander';
import { registerTorrentAction } from './remote-client.js';

/** `swarmshare resume <id|prefix|all>...`: paused (or failed) torrents of the daemon started again. */
export function registerResumeCommand(program: Command): void {
  registerTorrentAction(program, {
    name: 'resume',
    description: 'resume torrents of the running daemon',
    done: 'Resumed',
  });
}
