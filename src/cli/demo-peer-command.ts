import type { Command } from 'commander';

/** `swarmshare _demo-peer <spec>` (hidden): one demo peer in its own process, started by `demo --processes`. */
export function registerDemoPeerCommand(program: Command): void {
  program
    .command('_demo-peer', { hidden: true })
    .description('one demo peer in its own process (used by demo --processes)')
    .argument('<spec>', 'the peer, as JSON')
    .action(async (spec: string) => {
      await (await import('../demo/demo-peer.js')).runDemoPeerChild(spec);
    });
}
