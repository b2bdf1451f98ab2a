/**
 * npm run bench:load [-- --announcers 1000 --duration 10 --leechers 200 --size 4MiB]
 *
 * 1. --announcers concurrent peers announcing to one tracker (wrk, one connection each, every request
 *    a real announce of one of them): errors, requests/s, p50/p99 latency, the tracker's peak RSS.
 * 2. --leechers concurrent leechers (each its own address 127.0.1.x, all in this process) on one
 *    seeder (`swarmshare share`, its own process): errors (leechers that did not finish), the
 *    seeder's peak RSS, and its latency under that load: each leecher's time to its first block
 *    and to completion (p50/p99).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { parseTorrent } from '../src/core/metainfo.js';
import { nodeHasher } from '../src/net/system.js';
import { parseSize } from '../src/node/create-torrent.js';
import { PeerNode } from '../src/node/peer-node.js';

const { values: args } = parseArgs({
  options: {
    announcers: { type: 'string', default: '1000' },
    duration: { type: 'string', default: '10' },
    leechers: { type: 'string', default: '200' },
    size: { type: 'string', default: '4MiB' },
  },
});
const ANNOUNCERS = Number(args.announcers);
const LEECHERS = Number(args.leechers);
const SIZE = parseSize(args.size as string);
const root = resolve(import.meta.dirname, '..');
const cli = join(root, 'dist', 'cli', 'main.js');
const dir = join(tmpdir(), `swarmshare-bench-load-${process.pid}`);

function spawnWait(
  argv: string[],
  pattern: RegExp,
): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  return new Promise((res, rej) => {
    const child = spawn('node', argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const timer = setTimeout(() => rej(new Error(`no start: ${out}`)), 20_000);
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const m = pattern.exec(out);
      if (m) {
        clearTimeout(timer);
        res({ child, match: m });
      }
    });
  });
}

const peakRss = (pid: number | undefined) =>
  Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};
const stop = (c: ChildProcess) =>
  new Promise<void>((r) => {
    if (c.exitCode !== null) return r();
    c.once('exit', () => r());
    c.kill('SIGTERM');
    setTimeout(() => c.kill('SIGKILL'), 5000).unref();
  });

async function announceLoad(): Promise<string[]> {
  const { child, match } = await spawnWait(
    [cli, 'tracker', '--port', '0', '--quiet', '--rate-limit', '0'],
    /listening on (http:\/\/[0-9.]+:\d+)/,
  );
  const url = match[1] as string;
  const lua = join(dir, 'announce.lua');
  writeFileSync(
    lua,
    `math.randomseed(11)
request = function()
  local i = math.random(0, ${ANNOUNCERS - 1})
  return wrk.format("GET", "/announce?info_hash=" .. string.rep("%CD", 20) .. "&peer_id=" .. string.format("-LD0001-%012d", i) .. "&port=" .. (20000 + i) .. "&uploaded=0&downloaded=0&left=" .. (i % 3) .. "&numwant=50&compact=1")
end
`,
  );
  // A 10 s timeout: with 1,000 busy connections on 2 cores a few connections wait over wrk's default
  // 2 s (a bare node:http server shows the same), and a late answer is not an error.
  const out = execFileSync(
    'wrk',
    ['-t2', `-c${ANNOUNCERS}`, `-d${args.duration}s`, '--timeout', '10s', '--latency', '-s', lua, url],
    {
      encoding: 'utf8',
    },
  );
  const rss = peakRss(child.pid);
  await stop(child);
  const num = (re: RegExp) => /([0-9.]+)(us|ms|s)/.exec(re.exec(out)?.[1] ?? '');
  const ms = (m: RegExpExecArray | null) =>
    m ? Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1) : Number.NaN;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors = non2xx + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return [
    `| ${ANNOUNCERS} peers announcing (wrk, ${ANNOUNCERS} connections, ${args.duration} s) | ${errors} | ${Number(/Requests\/sec:\s+([0-9.]+)/.exec(out)?.[1]).toFixed(0)} req/s | p50 ${ms(num(/^\s+50%\s+(\S+)/m)).toFixed(1)} ms, p99 ${ms(num(/^\s+99%\s+(\S+)/m)).toFixed(1)} ms | tracker ${rss.toFixed(0)} MiB |`,
  ];
}

async function leecherLoad(): Promise<string[]> {
  const src = join(dir, 'src');
  mkdirSync(src, { recursive: true });
  writeFileSync(join(src, 'load.bin'), randomBytes(SIZE));
  const tracker = await spawnWait(
    [cli, 'tracker', '--port', '0', '--quiet', '--rate-limit', '0', '--interval', '5'],
    /listening on (http:\/\/[0-9.]+:\d+)/,
  );
  const url = `${tracker.match[1]}/announce`;
  const torrent = join(dir, 'load.torrent');
  const seeder = await spawnWait(
    [
      cli,
      'share',
      join(src, 'load.bin'),
      '--tracker',
      url,
      '-o',
      torrent,
      '--max-connections',
      String(LEECHERS + 20),
      '--max-per-ip',
      '4',
    ],
    /Listening: [0-9.]+:(\d+)/,
  );
  const meta = parseTorrent(readFileSync(torrent), nodeHasher.sha1);
  const nodes: PeerNode[] = [];
  const firstBlock: number[] = [];
  const done: number[] = [];
  let failed = 0;
  let rss = Number.NaN;
  const t0 = Date.now();
  try {
    await Promise.all(
      Array.from({ length: LEECHERS }, async (_, i) => {
        // A few connections each: 200 leechers share this one process.
        const node = new PeerNode({
          meta,
          dir: join(dir, `l${i}`),
          mode: 'download',
          trackers: [url],
          host: `127.0.1.${i + 1}`,
          maxConnections: 8,
        });
        nodes.push(node);
        node.once('block', () => firstBlock.push(Date.now() - t0));
        await node.start();
        try {
          await Promise.race([
            node.done,
            new Promise((_, r) => setTimeout(() => r(new Error('timeout')), 120_000)),
          ]);
          done.push(Date.now() - t0);
        } catch {
          failed++;
        }
      }),
    );
  } finally {
    rss = peakRss(seeder.child.pid);
    await Promise.all(nodes.map((n) => n.stop().catch(() => {})));
    await stop(seeder.child);
    await stop(tracker.child);
  }
  const heap = process.memoryUsage().rss / 2 ** 20;
  return [
    `| ${LEECHERS} leechers on one seeder (${(SIZE / 2 ** 20).toFixed(0)} MiB) | ${failed} | all done in ${((Math.max(...done) || Number.NaN) / 1000).toFixed(1)} s | first block p50 ${pct(firstBlock, 50)} ms, p99 ${pct(firstBlock, 99)} ms; done p50 ${(pct(done, 50) / 1000).toFixed(1)} s, p99 ${(pct(done, 99) / 1000).toFixed(1)} s | seeder ${rss.toFixed(0)} MiB (leechers' process ${heap.toFixed(0)} MiB) |`,
  ];
}

async function main(): Promise<void> {
  try {
    execFileSync('sh', ['-c', 'command -v wrk'], { stdio: 'ignore' });
  } catch {
    console.error('bench:load needs wrk: apt-get install -y wrk');
    process.exit(2);
  }
  mkdirSync(dir, { recursive: true });
  const rows: string[] = [];
  try {
    rows.push(...(await announceLoad()));
    rows.push(...(await leecherLoad()));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`\nload benchmark on loopback, node ${process.version}\n`);
  console.log('| load | errors | throughput | latency | peak RSS |');
  console.log('| --- | ---: | --- | --- | --- |');
  for (const r of rows) console.log(r);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
