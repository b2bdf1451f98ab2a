/**
 * npm run bench:tracker [-- --duration 10 --connections 32 --swarm 10000 --registered 100000]
 *
 * In one run, on loopback, with wrk as the load generator (Debian package `wrk`):
 *   1. swarmshare /announce, numwant=50, from a swarm of --swarm peers;
 *   2. the npm bittorrent-tracker server (the baseline), the same load;
 *   3. a bare node:http server answering a fixed body (the ceiling for any Node HTTP server here);
 *   4. swarmshare /get_peers, numwant=50, from a swarm of --swarm JSON peers;
 *   5. memory: --registered peers in one swarm, heap bytes per peer (in-process, after GC) and the
 *      tracker process's peak RSS with that many peers announced over HTTP.
 *   1b. the same with the swarms in Redis (`tracker --store`, Debian's redis-server): one instance,
 *      then two instances on one Redis with the load split between them;
 *   6. UDP announces (BEP 15), numwant=50, from a swarm of --swarm peers: swarmshare's UDP tracker
 *      and Debian's opentracker (`opentracker`, the baseline), the same generator against each
 *      (bench/udp-load.ts, its own process, 64 announces in flight).
 * Prints a table; BENCHMARKS.md keeps the figures.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { applyAnnounce } from '../src/tracker/announce.js';
import { defaultLimits } from '../src/tracker/limits.js';
import { SwarmRegistry } from '../src/tracker/registry.js';
import { spawnServer } from './spawn-server.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    swarm: { type: 'string', default: '10000' },
    registered: { type: 'string', default: '100000' },
  },
});
const DURATION = Number(args.duration);
const CONNECTIONS = Number(args.connections);
const SWARM = Number(args.swarm);
const REGISTERED = Number(args.registered);
const BASELINE_VERSION = '11.2.3';
const root = resolve(import.meta.dirname, '..');
const work = join(root, 'node_modules', '.cache', 'swarmshare-bench');

function need(cmd: string, pkg: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
  } catch {
    console.error(`bench:tracker needs ${cmd}: apt-get install -y ${pkg}`);
    process.exit(2);
  }
}

interface UdpResult {
  answered: number;
  seconds: number;
  rps: number;
  lost: number;
}

/** The UDP load generator against 127.0.0.1:`port` (its own process). */
function udpLoad(port: number, hashHex: string): UdpResult {
  const out = execFileSync(
    'node',
    [
      '--import',
      'tsx',
      join(root, 'bench', 'udp-load.ts'),
      '--port',
      String(port),
      '--hash',
      hashHex,
      '--swarm',
      String(SWARM),
      '--duration',
      String(DURATION),
    ],
    { encoding: 'utf8', cwd: root },
  );
  return JSON.parse(out.trim().split('\n').pop() as string) as UdpResult;
}

/** A bare node:dgram server answering every packet with an announce-shaped reply: the ceiling for a Node UDP tracker. */
function bareUdpScript(): string {
  const script = join(work, 'bare-udp.mjs');
  mkdirSync(work, { recursive: true });
  writeFileSync(
    script,
    `import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';
const s = createSocket('udp4');
const reply = Buffer.alloc(320);
s.on('message', (m, r) => {
  if (m.length < 98) {
    const c = Buffer.alloc(16);
    m.copy(c, 4, 12, 16);
    return s.send(c, r.port, r.address);
  }
  reply.writeUInt32BE(1, 0);
  m.copy(reply, 4, 12, 16);
  s.send(reply, r.port, r.address);
});
s.bind(0, '127.0.0.1', () => console.log('PORT ' + s.address().port));
`,
  );
  return script;
}

function freeUdpPort(): Promise<number> {
  return new Promise((r) => {
    const s = createSocket('udp4');
    s.bind(0, '127.0.0.1', () => {
      const port = s.address().port;
      s.close(() => r(port));
    });
  });
}

function freeTcpPort(): Promise<number> {
  return new Promise((r) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => r(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

function ensureBaseline(): string {
  const dir = join(work, `bittorrent-tracker-${BASELINE_VERSION}`);
  if (!existsSync(join(dir, 'node_modules', 'bittorrent-tracker'))) {
    mkdirSync(dir, { recursive: true });
    console.log(`installing bittorrent-tracker@${BASELINE_VERSION} (baseline, --ignore-scripts) into ${dir}`);
    execFileSync(
      'npm',
      [
        'install',
        '--prefix',
        dir,
        '--ignore-scripts',
        '--no-audit',
        '--no-fund',
        `bittorrent-tracker@${BASELINE_VERSION}`,
      ],
      {
        stdio: 'inherit',
      },
    );
  }
  const script = join(dir, 'serve.mjs');
  writeFileSync(
    script,
    `import Server from 'bittorrent-tracker/server';
const server = new Server({ udp: false, ws: false, http: true, stats: false, interval: 3600000 });
server.on('error', (e) => console.error(e.message));
server.on('warning', () => {});
server.on('listening', () => console.log('PORT ' + server.http.address().port));
server.listen(0, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
`,
  );
  return script;
}

function bareServerScript(): string {
  mkdirSync(work, { recursive: true });
  const script = join(work, 'bare.mjs');
  writeFileSync(
    script,
    `import { createServer } from 'node:http';
const body = Buffer.from('d8:completei1e10:incompletei1e8:intervali1800e5:peers0:e');
const s = createServer((req, res) => { res.writeHead(200, { 'content-type': 'text/plain' }); res.end(body); });
s.listen(0, '127.0.0.1', () => console.log('PORT ' + s.address().port));
process.on('SIGTERM', () => s.close(() => process.exit(0)));
`,
  );
  return script;
}

const INFO_HASH = '%AB'.repeat(20);
const peerId = (i: number) => `-BE0001-${String(i).padStart(12, '0')}`;
const announcePath = (i: number) =>
  `/announce?info_hash=${INFO_HASH}&peer_id=${peerId(i)}&port=${10000 + (i % 50000)}&uploaded=0&downloaded=0&left=100&numwant=50&compact=1`;

async function populate(
  port: number,
  count: number,
  pathOf: (i: number) => string | { post: unknown },
): Promise<void> {
  let next = 0;
  let errors = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      const p = pathOf(i);
      const res = await send(p).catch(() => send(p)); // one retry: a pooled connection may close under us
      await res.arrayBuffer();
      if (res.status !== 200) errors++;
    }
  };
  const send = (p: string | { post: unknown }) =>
    typeof p === 'string'
      ? fetch(`http://127.0.0.1:${port}${p}`)
      : fetch(`http://127.0.0.1:${port}/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(p.post),
        });
  await Promise.all(Array.from({ length: 32 }, worker));
  if (errors > 0) throw new Error(`${errors} populate requests failed`);
}

interface WrkResult {
  rps: number;
  p99ms: number;
  errors: number;
}

function wrk(port: number, lua: string): WrkResult {
  const script = join(work, `wrk-${Date.now()}.lua`);
  writeFileSync(script, lua);
  const out = execFileSync(
    'wrk',
    ['-t2', `-c${CONNECTIONS}`, `-d${DURATION}s`, '--latency', '-s', script, `http://127.0.0.1:${port}`],
    { encoding: 'utf8' },
  );
  return wrkResult(out);
}

/** wrk against several ports at once (each its own wrk, half the connections each); rates summed, worst p99. */
async function wrkTogether(ports: number[], lua: string): Promise<WrkResult> {
  const script = join(work, `wrk-${Date.now()}.lua`);
  writeFileSync(script, lua);
  const each = Math.max(1, Math.floor(CONNECTIONS / ports.length));
  const runs = await Promise.all(
    ports.map(
      (port) =>
        new Promise<WrkResult>((done, fail) =>
          execFile(
            'wrk',
            ['-t1', `-c${each}`, `-d${DURATION}s`, '--latency', '-s', script, `http://127.0.0.1:${port}`],
            { encoding: 'utf8' },
            (e, out) => (e ? fail(e) : done(wrkResult(out))),
          ),
        ),
    ),
  );
  return {
    rps: runs.reduce((a, r) => a + r.rps, 0),
    p99ms: Math.max(...runs.map((r) => r.p99ms)),
    errors: runs.reduce((a, r) => a + r.errors, 0),
  };
}

function wrkResult(out: string): WrkResult {
  const rps = Number(/Requests\/sec:\s+([0-9.]+)/.exec(out)?.[1]);
  const p99 = /99%\s+([0-9.]+)(us|ms|s)/.exec(out);
  const unit = p99?.[2] === 'us' ? 0.001 : p99?.[2] === 's' ? 1000 : 1;
  const errs = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const sockErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  return { rps, p99ms: Number(p99?.[1]) * unit, errors: Number(errs?.[1] ?? 0) + sockErrors };
}

const announceLua = `
local ih = "${INFO_HASH}"
math.randomseed(7)
request = function()
  local i = math.random(0, ${SWARM - 1})
  local pid = string.format("-BE0001-%012d", i)
  return wrk.format("GET", "/announce?info_hash=" .. ih .. "&peer_id=" .. pid .. "&port=" .. (10000 + i % 50000) .. "&uploaded=0&downloaded=0&left=100&numwant=50&compact=1")
end
`;
const getPeersLua = `
math.randomseed(7)
request = function()
  local i = math.random(0, ${SWARM - 1})
  return wrk.format("GET", "/get_peers?file=bench.bin&numwant=50&exclude=p" .. i)
end
`;

function peakRssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]);
}

function heapBytesPerPeer(n: number): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) throw new Error('run with --expose-gc');
  const reg = new SwarmRegistry(
    { ...defaultLimits(), maxPeersPerSwarm: n + 1 },
    { random: Math.random, newKey: () => 'k' },
  );
  const infoHash = '\xab'.repeat(20);
  gc();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < n; i++) {
    const a = 1 + (i >>> 16);
    applyAnnounce(
      reg,
      {
        infoHash,
        peerId: peerId(i),
        port: 10000 + (i % 50000),
        uploaded: 0,
        downloaded: 0,
        left: 100,
        event: 'started',
        numwant: 50,
        compact: true,
        noPeerId: false,
        key: null,
        ip: `10.${a}.${(i >>> 8) & 255}.${i & 255}`,
      },
      0,
    );
  }
  gc();
  const after = process.memoryUsage().heapUsed;
  if (reg.peerCount !== n) throw new Error('population failed');
  return (after - before) / n;
}

async function main(): Promise<void> {
  need('wrk', 'wrk');
  const baselineScript = ensureBaseline();
  const cli = join(root, 'dist', 'cli', 'main.js');
  const rows: string[][] = [];
  const line = (what: string, r: WrkResult) =>
    rows.push([what, r.rps.toFixed(0), r.p99ms.toFixed(2), String(r.errors)]);

  // 1. swarmshare /announce
  const ours = await spawnServer(
    'node',
    [cli, 'tracker', '--port', '0', '--quiet', '--interval', '3600', '--rate-limit', '0'],
    /listening on http:\/\/[0-9.]+:(\d+)/,
  );
  await populate(ours.port, SWARM, announcePath);
  const oursAnnounce = wrk(ours.port, announceLua);
  line(`swarmshare /announce (swarm ${SWARM}, numwant 50)`, oursAnnounce);
  // 4. swarmshare /get_peers (same process, its own swarm of JSON peers)
  await populate(ours.port, SWARM, (i) => ({
    post: {
      peer_id: `p${i}`,
      port: 10000 + (i % 50000),
      files: { 'bench.bin': { chunks: [i % 20], pieces: 20 } },
    },
  }));
  const oursGetPeers = wrk(ours.port, getPeersLua);
  await ours.stop();

  // 1b. swarmshare /announce with its swarms in Redis (a real redis-server): one instance, then two
  // instances on the same Redis, the load split between them.
  need('redis-server', 'redis-server');
  const redisPort = await freeTcpPort();
  const redis = await spawnServer(
    'redis-server',
    ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    /(Ready) to accept connections/,
  );
  const store = `redis://127.0.0.1:${redisPort}`;
  const trackerArgs = [
    cli,
    'tracker',
    '--port',
    '0',
    '--quiet',
    '--interval',
    '3600',
    '--rate-limit',
    '0',
    '--no-udp',
  ];
  const r1 = await spawnServer(
    'node',
    [...trackerArgs, '--store', store],
    /listening on http:\/\/[0-9.]+:(\d+)/,
  );
  await populate(r1.port, SWARM, announcePath);
  const redisOne = wrk(r1.port, announceLua);
  line(`swarmshare /announce, Redis store, 1 instance (swarm ${SWARM}, numwant 50)`, redisOne);
  const r2 = await spawnServer(
    'node',
    [...trackerArgs, '--store', store],
    /listening on http:\/\/[0-9.]+:(\d+)/,
  );
  const redisTwo = await wrkTogether([r1.port, r2.port], announceLua);
  line(`swarmshare /announce, Redis store, 2 instances on one Redis (same swarm)`, redisTwo);
  await r1.stop();
  await r2.stop();
  await redis.stop();

  // 2. bittorrent-tracker
  const base = await spawnServer('node', [baselineScript], /PORT (\d+)/);
  await populate(base.port, SWARM, announcePath);
  const baseAnnounce = wrk(base.port, announceLua);
  line(`bittorrent-tracker@${BASELINE_VERSION} /announce (same load)`, baseAnnounce);
  await base.stop();

  // 3. bare node:http
  const bare = await spawnServer('node', [bareServerScript()], /PORT (\d+)/);
  line('bare node:http, fixed body (ceiling)', wrk(bare.port, announceLua));
  await bare.stop();
  line(`swarmshare /get_peers (swarm ${SWARM}, numwant 50)`, oursGetPeers);

  // 6. UDP: ours, then opentracker, the same generator.
  const UDP_HASH = 'cd'.repeat(20);
  const oursUdp = await spawnServer(
    'node',
    [cli, 'tracker', '--port', '0', '--udp-port', '0', '--quiet', '--interval', '3600', '--rate-limit', '0'],
    /UDP tracker on udp:\/\/[0-9.]+:(\d+)/,
  );
  const oursUdpResult = udpLoad(oursUdp.port, UDP_HASH);
  await oursUdp.stop();
  need('opentracker', 'opentracker');
  const otDir = join(work, 'opentracker');
  mkdirSync(otDir, { recursive: true });
  chmodSync(otDir, 0o755);
  writeFileSync(join(otDir, 'whitelist'), `${UDP_HASH}\n`);
  const otPort = await freeUdpPort();
  const ot = spawn(
    'opentracker',
    [
      '-i',
      '127.0.0.1',
      '-p',
      String(await freeUdpPort()),
      '-P',
      String(otPort),
      '-w',
      'whitelist',
      '-u',
      'nobody',
      '-d',
      otDir,
    ],
    { stdio: 'ignore' },
  );
  await new Promise((r) => setTimeout(r, 500));
  const otResult = udpLoad(otPort, UDP_HASH);
  ot.kill('SIGTERM');
  await new Promise((r) => ot.once('exit', r));
  const bareUdp = await spawnServer('node', [bareUdpScript()], /PORT (\d+)/);
  const bareUdpResult = udpLoad(bareUdp.port, UDP_HASH);
  await bareUdp.stop();

  // 5. memory
  const perPeer = heapBytesPerPeer(REGISTERED);
  const mem = await spawnServer(
    'node',
    [cli, 'tracker', '--port', '0', '--quiet', '--interval', '3600', '--rate-limit', '0'],
    /listening on http:\/\/[0-9.]+:(\d+)/,
  );
  const idle = peakRssKiB(mem.pid);
  await populate(mem.port, REGISTERED, announcePath);
  const peak = peakRssKiB(mem.pid);
  await mem.stop();

  console.log(
    `\nswarmshare tracker benchmark: wrk -t2 -c${CONNECTIONS} -d${DURATION}s on 127.0.0.1, node ${process.version}\n`,
  );
  console.log('| load | req/s | p99 ms | errors |');
  console.log('| --- | ---: | ---: | ---: |');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  console.log(
    `\n/announce ratio swarmshare / bittorrent-tracker: ${(oursAnnounce.rps / baseAnnounce.rps).toFixed(2)}x (target >= 3x)`,
  );
  console.log(
    `\nUDP announces (bench/udp-load.ts: 64 in flight, swarm ${SWARM}, numwant 50, ${DURATION} s):\n`,
  );
  console.log('| tracker | announces/s | lost |');
  console.log('| --- | ---: | ---: |');
  console.log(`| swarmshare UDP | ${oursUdpResult.rps.toFixed(0)} | ${oursUdpResult.lost} |`);
  console.log(`| opentracker UDP (Debian) | ${otResult.rps.toFixed(0)} | ${otResult.lost} |`);
  console.log(
    `| bare node:dgram, fixed reply (ceiling for Node; the generator's too) | ${bareUdpResult.rps.toFixed(0)} | ${bareUdpResult.lost} |`,
  );
  console.log(
    `| swarmshare HTTP /announce (wrk, above) | ${oursAnnounce.rps.toFixed(0)} | ${oursAnnounce.errors} |`,
  );
  console.log(
    `UDP ratio swarmshare / opentracker: ${(oursUdpResult.rps / otResult.rps).toFixed(2)}x (goal >= 1x per core)`,
  );
  console.log(
    `heap per registered peer (${REGISTERED} announce peers, after GC): ${perPeer.toFixed(0)} bytes (target <= 300)`,
  );
  console.log(
    `tracker process peak RSS: idle ${(idle / 1024).toFixed(1)} MiB, with ${REGISTERED} peers announced over HTTP ${(peak / 1024).toFixed(1)} MiB`,
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
