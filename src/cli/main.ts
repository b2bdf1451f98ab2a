#!/usr/bin/env node
import { MagnetError } from '../core/magnet.js';
import { buildCli } from './program.js';

async function main(): Promise<void> {
  try {
    await buildCli().parseAsync(process.argv);
  } catch (e) {
    console.error(`swarmshare: ${(e as Error).message ?? String(e)}`);
    // A malformed argument (a magnet link that is not one) is a usage error: 2, as for options.
    process.exit(e instanceof MagnetError ? 2 : 1);
  }
}

main();
