import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerDemoCommand } from './demo-command.js';
import { registerDhtCommand, registerDhtSimulateCommand } from './dht-command.js';
import { describeDefaults } from './options.js';
import { registerPeerCommands } from './peer-commands.js';
import { registerReplayCommand, registerSimulateCommand } from './simulate-command.js';
import { registerTrackerCommand } from './tracker-command.js';

/**
 * The package's version, from its package.json: two folders up both from the bundle (dist/cli/)
 * and from the source (src/cli/).
 */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** The whole command line: every command registered, nothing run (tests build it to read help). */
export function buildCli(): Command {
  const program = new Command('swarmshare')
    .description('Peer-to-peer file sharing: a chunk-map tracker and BitTorrent-compatible peers')
    .version(packageVersion(), '-V, --version', "print swarmshare's version")
    .showHelpAfterError();

  registerTrackerCommand(program);
  registerPeerCommands(program);
  registerDemoCommand(program);
  registerDhtCommand(program);
  registerDhtSimulateCommand(program);
  registerSimulateCommand(program);
  registerReplayCommand(program);
  describeDefaults(program);
  return program;
}
