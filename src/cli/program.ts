import { Command } from 'commander';
import { registerAddCommand } from './add-command.js';
import { registerCreateCommand } from './create-command.js';
import { registerDaemonCommand } from './daemon-command.js';
import { registerDemoCommand } from './demo-command.js';
import { registerDemoPeerCommand } from './demo-peer-command.js';
import { registerDhtCommand } from './dht-command.js';
import { registerGetCommand } from './get-command.js';
import { registerInfoCommand } from './info-command.js';
import { registerLsCommand } from './ls-command.js';
import { describeDefaults } from './options.js';
import { registerPauseCommand } from './pause-command.js';
import { registerReplayCommand } from './replay-command.js';
import { registerResumeCommand } from './resume-command.js';
import { registerRmCommand } from './rm-command.js';
import { registerShareCommand } from './share-command.js';
import { registerShowCommand } from './show-command.js';
import { registerSimulateCommand } from './simulate-command.js';
import { registerDhtSimulateCommand } from './simulate-dht-command.js';
import { registerTrackerCommand } from './tracker-command.js';
import { packageVersion } from './version.js';

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
  registerInfoCommand(program);
  registerDemoPeerCommand(program);
  registerDemoCommand(program);
  registerDhtCommand(program);
  registerDhtSimulateCommand(program);
  registerSimulateCommand(program);
  registerReplayCommand(program);
  registerDaemonCommand(program);
  registerAddCommand(program);
  registerLsCommand(program);
  registerShowCommand(program);
  registerPauseCommand(program);
  registerResumeCommand(program);
  registerRmCommand(program);
  describeDefaults(program);
  return program;
}
