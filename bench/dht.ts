/**
 * npm run bench:dht [-- --duration 5 --window 64 --nodes 10000 --lookups 200]
 *
 * In one run, on loopback:
 *   1. queries answered per second by one DHT node: `swarmshare dht` (its per-address limit off)
 *      and the bittorrent-dht npm package (the baseline), each in its own process, the same load
 *      from this process: --window get_peers and find_node queries in flight for --duration
 *      seconds, after 300 pings from made-up node ids have filled its routing table;
 *   2. the DHT simulation (sim/dht-sim.ts): --nodes nodes joining one after another, 50 ms latency
 *      +-20, 1% loss, 10% of the nodes gone before --lookups get_peers lookups; their hops,
 *      queries and virtual time.
 */
import { createSocket } from 'node:dgram';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { encodeQuery } from '../src/dht/krpc.js';
import { DEFAULT_DHT_SCENARIO, runDhtSimulation } from '../src/sim/dht-sim.js';
import { spawnServer } from './spawn-server.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    window: { type: 'string', default: '64' },
    nodes: { type: 'string', default: '10000' },
    lookups: { type: 'string', default: '200' },
  },
});
const DURATION_MS = Number(args.duration) * 1000;
const WINDOW = Number(args.window);
const root = resolve(import.meta.dirname, '..');

const bittorrentDhtScript = `
import DHT from 'bittorrent-dht';
const dht = new DHT({ bootstrap: false, host: false });
dht.listen(0, '127.0.0.1', () => console.log('PORT ' + dht.address().port));
process.on('SIGTERM', () => dht.destroy(() => process.exit(0)));
`;

/** Fills the node's table, then keeps WINDOW queries in flight; answers per second. */
async function load(port: number): Promise<{ rps: number; lost: number }> {
  const s = createSocket('udp4');
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()));
  const id = (i: number) => {
    const b = Buffer.alloc(20);
    b.writeUInt32BE(Math.imul(i, 2654435761) >>> 0, 0);
    b.writeUInt32BE(i, 16);
    return b;
  };
  const pending = new Map<number, number>();
  let tid = 1;
  let answered = 0;
  let lost = 0;
  let onAnswer: (() => void) | null = null;
  s.on('message', (msg) => {
    // The transaction id is the only 4-byte `t` we send: find "1:t4:" and read it.
    const at = msg.indexOf('1:t4:');
    if (at < 0) return;
    const t = msg.readUInt32BE(at + 5);
    if (!pending.delete(t)) return;
    answered++;
    onAnswer?.();
  });
  const send = (i: number) => {
    const t = tid++ >>> 0;
    const tb = Buffer.alloc(4);
    tb.writeUInt32BE(t);
    const q =
      i % 2 === 0
        ? encodeQuery(tb, { q: 'get_peers', id: id(i % 300), infoHash: id(1_000_000 + (i % 1000)) })
        : encodeQuery(tb, { q: 'find_node', id: id(i % 300), target: id(2_000_000 + (i % 1000)) });
    pending.set(t, performance.now());
    s.send(q, port, '127.0.0.1');
  };
  for (let i = 0; i < 300; i++) {
    const t = tid++;
    const tb = Buffer.alloc(4);
    tb.writeUInt32BE(t);
    pending.set(t, performance.now());
    s.send(encodeQuery(tb, { q: 'ping', id: id(i) }), port, '127.0.0.1');
  }
  await new Promise((r) => setTimeout(r, 500));
  pending.clear();
  answered = 0;
  const t0 = performance.now();
  let i = 0;
  await new Promise<void>((done) => {
    const top = () => {
      const now = performance.now();
      for (const [t, at] of pending)
        if (now - at > 1000) {
          pending.delete(t);
          lost++;
        }
      if (now - t0 >= DURATION_MS) return done();
      while (pending.size < WINDOW) send(i++);
    };
    onAnswer = top;
    top();
    const timer = setInterval(top, 100);
    setTimeout(() => {
      clearInterval(timer);
      done();
    }, DURATION_MS + 50);
  });
  onAnswer = null;
  const secs = (performance.now() - t0) / 1000;
  s.close();
  return { rps: answered / secs, lost };
}

async function main(): Promise<void> {
  const cli = join(root, 'dist', 'cli', 'main.js');
  const ours = await spawnServer(
    'node',
    [cli, 'dht', '--port', '0', '--rate-limit', '0', '--status-every', '3600'],
    /on udp:\/\/[0-9.]+:(\d+)/,
    root,
  );
  const oursResult = await load(ours.port).finally(() => ours.stop());
  const base = await spawnServer(
    'node',
    ['--input-type=module', '-e', bittorrentDhtScript],
    /PORT (\d+)/,
    root,
  );
  const baseResult = await load(base.port).finally(() => base.stop());

  const scenario = { ...DEFAULT_DHT_SCENARIO, nodes: Number(args.nodes), lookups: Number(args.lookups) };
  const w0 = performance.now();
  const sim = runDhtSimulation(scenario);
  const wall = (performance.now() - w0) / 1000;

  console.log(`\nswarmshare DHT benchmark, node ${process.version}, loopback\n`);
  console.log(
    `Queries answered by one node (${WINDOW} in flight, ${DURATION_MS / 1000} s, get_peers and find_node alternating):\n`,
  );
  console.log('| node | queries/s | lost |');
  console.log('| --- | ---: | ---: |');
  console.log(`| swarmshare dht | ${oursResult.rps.toFixed(0)} | ${oursResult.lost} |`);
  console.log(`| bittorrent-dht@11.0.12 (baseline) | ${baseResult.rps.toFixed(0)} | ${baseResult.lost} |`);
  console.log(`ratio: ${(oursResult.rps / baseResult.rps).toFixed(2)}x\n`);
  console.log(
    `Simulation: ${scenario.nodes} nodes, latency ${scenario.latencyMs}+-${scenario.jitterMs} ms, loss ${scenario.loss * 100}%, churn ${scenario.churn * 100}%, ${scenario.lookups} lookups, seed ${scenario.seed} (${wall.toFixed(1)} s wall):\n`,
  );
  console.log('| measure | p50 | p90 | max | mean |');
  console.log('| --- | ---: | ---: | ---: | ---: |');
  console.log(`| hops | ${sim.hops.p50} | ${sim.hops.p90} | ${sim.hops.max} | ${sim.hops.mean.toFixed(2)} |`);
  console.log(`| queries | ${sim.queries.p50} | ${sim.queries.p90} | | ${sim.queries.mean.toFixed(1)} |`);
  console.log(
    `| time (ms) | ${sim.timeMs.p50.toFixed(0)} | ${sim.timeMs.p90.toFixed(0)} | ${sim.timeMs.max.toFixed(0)} | ${sim.timeMs.mean.toFixed(0)} |`,
  );
  console.log(
    `announced peer found: ${sim.found}/${scenario.lookups}; routing tables: min ${sim.table.min}, mean ${sim.table.mean.toFixed(1)}, max ${sim.table.max}; ${sim.packets} packets`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
