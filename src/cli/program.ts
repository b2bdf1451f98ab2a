import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerCreateCommand } from './create-command.js';
import { registerDemoCommand } from './demo-command.js';
import { registerDemoPeerCommand } from './demo-peer-command.js';
import { registerDhtCommand } from './dht-command.js';
import { registerGetCommand } from './get-command.js';
import { describeDefaults } from './options.js';
import { registerReplayCommand } from './replay-command.js';
import { registerShareCommand } from './share-command.js';
import { registerSimulateCommand } from './simulate-command.js';
import { registerDhtSimulateCommand } from './simulate-dht-command.js';
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
  registerCreateCommand(program);
  registerShareCommand(program);
  registerGetCommand(program);
  registerDemoPeerCommand(program);
  registerDemoCommand(program);
  registerDhtCommand(program);
  registerDhtSimulateCommand(program);
  registerSimulateCommand(program);
  registerReplayCommand(program);
  describeDefaults(program);
  return program;
}
