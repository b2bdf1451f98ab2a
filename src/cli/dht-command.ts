import { readFile, rename, writeFile } from 'node:fs/promises';
import { type Command, InvalidArgumentError } from 'commander';
import { DhtUdp, parseBootstrap } from '../net/dht-udp.js';
import { intOption, portOption } from './options.js';

/**
 * `swarmshare dht`: a standalone DHT node (BEP 5), e.g. the bootstrap node of a private network.
 * It prints its id and, periodically, how many nodes and peers it knows; `--state` keeps its id
 * and routing table across restarts.
 */

interface State {
  id: string;
  nodes: { ip: string; port: number }[];
}

async function loadState(path: string): Promise<State | null> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  const s = JSON.parse(text) as Partial<State>;
  if (typeof s.id !== 'string' || !/^[0-9a-f]{40}$/.test(s.id) || !Array.isArray(s.nodes))
    throw new Error(`${path} is not a DHT state file (id and nodes expected)`);
  return {
    id: s.id,
    nodes: s.nodes.filter((n) => typeof n?.ip === 'string' && Number.isInteger(n?.port)).slice(0, 1000),
  };
}

async function saveState(path: string, d: DhtUdp): Promise<void> {
  const s: State = {
    id: Buffer.from(d.node.id).toString('hex'),
    nodes: d.node.nodes().map((n) => ({ ip: n.ip, port: n.port })),
  };
  // Written beside, then renamed: a crash mid-write never leaves half a file.
  await writeFile(`${path}.tmp`, `${JSON.stringify(s, null, 1)}\n`);
  await rename(`${path}.tmp`, path);
}

export function registerDhtCommand(program: Command): void {
  program
    .command('dht')
    .description('run a standalone Mainline DHT node (BEP 5): a bootstrap node for others')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--port <n>', 'UDP port (0 picks one)', portOption, 6881)
    .option(
      '--bootstrap <host:port,...>',
      'nodes to join through (default: none, this node is the first of its network)',
      (v: string) => {
        const list = parseBootstrap(v);
        if (typeof list === 'string') throw new InvalidArgumentError(list);
        return list;
      },
    )
    .option('--state <file>', 'keep the node id and routing table in this file across restarts')
    .option(
      '--rate-limit <n>',
      'queries per second one address may send (burst twice that; 0: no limit)',
      intOption(0, 1_000_000),
      20,
    )
    .option('--status-every <seconds>', 'print the node and peer counts this often', intOption(1, 86_400), 60)
    .action(
      async (o: {
        host: string;
        port: number;
        bootstrap?: string[];
        state?: string;
        statusEvery: number;
        rateLimit: number;
      }) => {
        const state = o.state === undefined ? null : await loadState(o.state);
        const d = await DhtUdp.start({
          host: o.host,
          port: o.port,
          bootstrap: o.bootstrap ?? [],
          id: state === null ? undefined : Buffer.from(state.id, 'hex'),
          nodes: state?.nodes,
          queriesPerSecond: o.rateLimit === 0 ? null : o.rateLimit,
          log: (line) => console.error(line),
        });
        d.bootstrap().catch(() => {});
        // Saves run one after another: two at once (a periodic one and the one at exit) would write
        // the same temporary file and the second rename would find it gone.
        let saving: Promise<void> = Promise.resolve();
        const save = (): Promise<void> => {
          const path = o.state;
          if (path === undefined) return Promise.resolve();
          saving = saving.catch(() => {}).then(() => saveState(path, d));
          return saving;
        };
        const status = () => {
          const s = d.node.stats;
          console.log(
            `nodes ${d.node.table.size}, peers ${d.node.store.peers} in ${d.node.store.torrents} torrents; queries in ${s.queriesIn}, out ${s.queriesOut}, dropped ${s.dropped}`,
          );
          if (o.state !== undefined) save().catch((e: Error) => console.error(`swarmshare: ${e.message}`));
        };
        const timer = setInterval(status, o.statusEvery * 1000);
        let stopping = false;
        const stop = (signal: string) => {
          if (stopping) return;
          stopping = true;
          clearInterval(timer);
          console.log(`DHT node stopping (${signal})`);
          save()
            .then(() => d.close())
            .then(
              () => process.exit(0),
              (e: Error) => {
                console.error(`swarmshare: ${e.message}`);
                process.exit(1);
              },
            );
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
        // Said once the signals are handled: a SIGINT sent on this line found no handler and killed it.
        console.log(`DHT node ${Buffer.from(d.node.id).toString('hex')} on udp://${o.host}:${d.port}`);
        if (state !== null) console.log(`State:    ${o.state} (${state.nodes.length} nodes)`);
      },
    );
}
