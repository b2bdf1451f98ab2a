import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { DEFAULT_DHT_SCENARIO, runDhtSimulation } from '../sim/dht-sim.js';
import { fractionOption, intOption } from './options.js';

/** `swarmshare simulate-dht`: the DHT on a simulated network, measured. */
export function registerDhtSimulateCommand(program: Command): void {
  const d = DEFAULT_DHT_SCENARIO;
  program
    .command('simulate-dht')
    .description(
      'simulate the DHT: N nodes join, some leave, then get_peers lookups; report their hops, queries and time',
    )
    .option('--nodes <n>', 'DHT nodes', intOption(2, 1_000_000), d.nodes)
    .option('--latency <ms>', 'one-way latency, ms', intOption(0, 10_000), d.latencyMs)
    .option('--jitter <ms>', 'latency jitter, ms (uniform +-)', intOption(0, 10_000), d.jitterMs)
    .option('--loss <share>', 'share of packets lost (0..1)', fractionOption, d.loss)
    .option(
      '--churn <share>',
      'share of the nodes that leave before the lookups (0..1)',
      fractionOption,
      d.churn,
    )
    .option('--lookups <n>', 'lookups measured', intOption(1, 100_000), d.lookups)
    .option('--seed <n>', 'RNG seed (same options and seed: same report)', intOption(0, 2 ** 31 - 1), d.seed)
    .option('--report <file>', 'write the report as JSON')
    .action(
      async (o: {
        nodes: number;
        latency: number;
        jitter: number;
        loss: number;
        churn: number;
        lookups: number;
        seed: number;
        report?: string;
      }) => {
        const r = runDhtSimulation({
          nodes: o.nodes,
          latencyMs: o.latency,
          jitterMs: o.jitter,
          loss: o.loss,
          churn: o.churn,
          lookups: o.lookups,
          seed: o.seed,
        });
        console.log(
          `DHT: ${o.nodes} nodes, latency ${o.latency}+-${o.jitter} ms, loss ${o.loss * 100}%, churn ${o.churn * 100}%, seed ${o.seed}`,
        );
        console.log(
          `Routing tables: min ${r.table.min}, mean ${r.table.mean.toFixed(1)}, max ${r.table.max}; ${r.packets} packets`,
        );
        console.log(
          `Lookups: ${o.lookups}; hops p50 ${r.hops.p50}, p90 ${r.hops.p90}, max ${r.hops.max}; queries p50 ${r.queries.p50}, p90 ${r.queries.p90}`,
        );
        console.log(
          `Time (ms): p50 ${r.timeMs.p50.toFixed(0)}, p90 ${r.timeMs.p90.toFixed(0)}, max ${r.timeMs.max.toFixed(0)}; announced peer found by ${r.found}/${o.lookups}`,
        );
        if (o.report !== undefined) await writeFile(o.report, `${JSON.stringify(r, null, 2)}\n`);
      },
    );
}
