import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWebOrigin, type WebOrigin } from '../../src/demo/web-origin.js';
import { type RunningTracker, startTracker } from '../../src/tracker-server/server.js';
import { aria2Seeds } from '../support/aria2-seed.js';
import { type Nginx, startNginx } from '../support/nginx.js';
import { aria2Flags, freePort, randomFile, sha256File, start, stopAll, waitFor } from '../support/proc.js';

/**
 * Web seeds (BEP 19) against real HTTP servers: Debian's nginx (ranges, keep-alive), and a server
 * of our own that misbehaves (404, 416, short and over-long bodies, 5xx, a redirect loop, slow).
 * `get` downloads from a web seed alone (single and multi-file, names with spaces and UTF-8),
 * beside an aria2c peer, drops a web seed that sends wrong bytes and completes from peers; aria2c
 * reads a torrent made by `create --web-seed`.
 */

const CLI = 'dist/cli/main.js';

describe('web seeds (BEP 19)', () => {
  let dir = '';
  let www = '';
  let nginx: Nginx;
  let tracker: RunningTracker;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-webseed-'));
    www = join(dir, 'www');
    await mkdir(www);
    nginx = await startNginx(join(dir, 'nginx'), www);
    tracker = await startTracker({ port: 0 }, { interval: 2 });
  }, 30_000);
  afterAll(async () => {
    await stopAll();
    await tracker?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const run = async (args: string[], timeoutMs = 60_000) => {
    const p = start('node', [CLI, ...args]);
    const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
    const code = await p.exited;
    clearTimeout(timer);
    return { code, out: p.output() };
  };
  const create = async (path: string, out: string, extra: string[]) => {
    const r = await run(['create', path, '--piece-size', '64KiB', '-o', out, ...extra]);
    expect(r.code, r.out).toBe(0);
    return /Info hash: ([0-9a-f]{40})/.exec(r.out)?.[1] as string;
  };

  it('downloads a single file from a web seed alone (no tracker, no peer), byte-identical', async () => {
    await randomFile(join(www, 'alone.bin'), 3_000_000);
    const t = join(dir, 'alone.torrent');
    await create(join(www, 'alone.bin'), t, ['--web-seed', `${nginx.url}/alone.bin`]);
    const info = await run(['info', t]);
    expect(info.out).toContain(`Web seeds: ${nginx.url}/alone.bin`);
    const before = await nginx.bytesSent();
    const out = join(dir, 'out-alone');
    // Seeding after, with its metrics: the bytes by source.
    const g = start('node', [CLI, 'get', t, '-o', out, '--no-dht', '--seed', '--metrics-port', '0']);
    const url = await waitFor(
      'the metrics URL',
      () => /Metrics: +(http:\/\/\S+)/.exec(g.output())?.[1],
      20_000,
    );
    await waitFor(
      'the download',
      () => (g.output().includes('Seeding (Ctrl-C to stop)') ? true : undefined),
      30_000,
    );
    expect(g.output()).toMatch(/; 2\.9 MiB from web seeds, 0 B from peers/);
    expect(await sha256File(join(out, 'alone.bin'))).toBe(await sha256File(join(www, 'alone.bin')));
    const metrics = await (await fetch(url)).text();
    expect(metrics).toMatch(/^swarmshare_peer_downloaded_bytes_total\{source="webseed"\} 3000000$/m);
    expect(metrics).toMatch(/^swarmshare_peer_downloaded_bytes_total\{source="peer"\} 0$/m);
    g.child.kill('SIGINT');
    await g.exited;
    // The origin sent one copy (no block asked twice).
    expect((await nginx.bytesSent()) - before).toBe(3_000_000);
  }, 90_000);

  it('downloads a multi-file torrent with spaces and UTF-8 in its names (URL/<name>/<path>, percent-encoded)', async () => {
    const album = join(www, 'Mein Album – ünïcode');
    await mkdir(join(album, 'sub dir'), { recursive: true });
    await randomFile(join(album, '01 Intro #1.bin'), 700_000);
    await randomFile(join(album, 'sub dir', 'b ß.bin'), 500_001);
    await writeFile(join(album, 'empty.txt'), '');
    const t = join(dir, 'album.torrent');
    // A URL ending in /: the folder holding the torrent's folder.
    await create(album, t, ['--web-seed', `${nginx.url}/`]);
    const out = join(dir, 'out-album');
    const r = await run(['get', t, '-o', out, '--no-dht']);
    expect(r.code, r.out).toBe(0);
    for (const f of ['01 Intro #1.bin', 'sub dir/b ß.bin'])
      expect(await sha256File(join(out, 'Mein Album – ünïcode', f))).toBe(await sha256File(join(album, f)));
    expect((await readFile(join(out, 'Mein Album – ünïcode', 'empty.txt'))).length).toBe(0);
  }, 90_000);

  it('uses a web seed beside an aria2c peer; completes byte-identical with bytes from both', async () => {
    // An origin slower than the peer (1 MiB/s in all: nginx's limit_rate lets a short range go at
    // once), so that both are used: the demo's origin server.
    let slow: WebOrigin | undefined;
    const a = await aria2Seeds(dir, tracker, 'both.bin', 12_000_000, [], async (file) => {
      slow = await startWebOrigin(file, 12_000_000, 1024 * 1024);
      return ['--web-seed', slow.url];
    });
    const out = join(dir, 'out-both');
    const r = await run(['get', a.torrent, '-o', out, '--no-dht', '--min-announce-interval', '1']);
    expect(r.code, r.out).toBe(0);
    expect(await sha256File(join(out, 'both.bin'))).toBe(await sha256File(a.file));
    const m = /; (\S+ \S+) from web seeds, (\S+ \S+) from peers/.exec(r.out);
    expect(m, r.out).not.toBeNull();
    expect(m?.[1]).not.toMatch(/^0 B/);
    expect(m?.[2]).not.toMatch(/^0 B/);
    expect(slow?.bytesSent).toBeLessThan(12_000_000);
    await slow?.close();
    a.seeder.child.kill('SIGTERM');
    await a.seeder.exited;
  }, 120_000);

  it('drops a web seed whose bytes fail their hash, says why, and completes from an aria2c peer', async () => {
    // nginx serves a copy with a byte changed every 4 KiB.
    const a = await aria2Seeds(dir, tracker, 'bad.bin', 2_000_000, [], async (file) => {
      const wrong = Buffer.from(await readFile(file));
      for (let i = 0; i < wrong.length; i += 4096) wrong[i] = (wrong[i] as number) ^ 0xff;
      await writeFile(join(www, 'bad.bin'), wrong);
      return ['--web-seed', `${nginx.url}/bad.bin`];
    });
    const out = join(dir, 'out-bad');
    const r = await run(['get', a.torrent, '-o', out, '--no-dht', '--min-announce-interval', '1']);
    expect(r.code, r.out).toBe(0);
    expect(r.out).toMatch(new RegExp(`web seed ${nginx.url}/bad.bin dropped: .*hash`, 'i'));
    expect(await sha256File(join(out, 'bad.bin'))).toBe(await sha256File(a.file));
    a.seeder.child.kill('SIGTERM');
    await a.seeder.exited;
  }, 120_000);

  it('aria2c downloads a torrent made by `create --web-seed` from the web seed alone', async () => {
    await randomFile(join(www, 'for-aria2.bin'), 1_500_000);
    const t = join(dir, 'for-aria2.torrent');
    await create(join(www, 'for-aria2.bin'), t, ['--web-seed', `${nginx.url}/for-aria2.bin`]);
    const out = join(dir, 'out-aria2');
    await mkdir(out);
    const a = start('aria2c', [...aria2Flags(out, await freePort()), '--seed-time=0', t]);
    expect(await a.exited, a.output()).toBe(0);
    expect(await sha256File(join(out, 'for-aria2.bin'))).toBe(await sha256File(join(www, 'for-aria2.bin')));
  }, 60_000);

  describe('a web seed that misbehaves, beside a good one', () => {
    let bad: Server;
    let badUrl = '';
    /** The good web seed, slowed (300 KiB/s a connection) so that the bad one is asked before it is done. */
    let good: Nginx;
    const data = Buffer.alloc(1_000_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) % 251;

    beforeAll(async () => {
      await writeFile(join(www, 'mis.bin'), data);
      good = await startNginx(join(dir, 'nginx-good'), www, { rateLimit: '300k' });
      // Its behaviour is the first path component: /<mode>/mis.bin.
      bad = createServer((req, res) => {
        const mode = (req.url ?? '/').split('/')[1];
        const m = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
        const a = Number(m?.[1] ?? 0);
        const b = Number(m?.[2] ?? data.length - 1);
        const body = data.subarray(a, b + 1);
        if (mode === '404') return res.writeHead(404).end('gone');
        if (mode === '416') return res.writeHead(416).end();
        if (mode === '500') return res.writeHead(503).end();
        if (mode === 'loop') return res.writeHead(302, { location: `/loop2/${a}` }).end();
        if (mode === 'loop2') return res.writeHead(302, { location: '/loop/mis.bin' }).end();
        if (mode === 'short')
          return res.writeHead(206, { 'content-length': body.length - 100 }).end(body.subarray(100));
        if (mode === 'long') return res.writeHead(206).end(Buffer.concat([body, Buffer.alloc(5000)]));
        if (mode === 'slow') {
          res.writeHead(206, { 'content-length': body.length });
          res.write(body.subarray(0, 10));
          return; // never finishes
        }
        res.writeHead(404).end();
      });
      await new Promise<void>((r) => bad.listen(0, '127.0.0.1', () => r()));
      const addr = bad.address();
      badUrl = `http://127.0.0.1:${typeof addr === 'object' && addr !== null ? addr.port : 0}`;
    });
    afterAll(async () => {
      bad.closeAllConnections();
      await new Promise((r) => bad.close(r));
    });

    const cases: [mode: string, said: RegExp][] = [
      ['404', /HTTP 404.*not asked for mis\.bin again|dropped: HTTP 404/],
      ['416', /HTTP 416/],
      ['500', /HTTP 503.*asked again in 2 s/],
      ['loop', /redirects in a loop|redirected more than/],
      ['short', /bytes for .* \(\d+ asked\)|cut short/],
      ['long', /more than \d+ bytes/],
      ['slow', /.*/],
    ];
    for (const [mode, said] of cases)
      it(`${mode}: the download completes from the good one, and says what went wrong`, async () => {
        const t = join(dir, `mis-${mode}.torrent`);
        await create(join(www, 'mis.bin'), t, [
          '--web-seed',
          `${badUrl}/${mode}/mis.bin`,
          '--web-seed',
          `${good.url}/mis.bin`,
        ]);
        const out = join(dir, `out-mis-${mode}`);
        const r = await run(['get', t, '-o', out, '--no-dht'], 45_000);
        if (!said.test(r.out)) console.log(mode, r.out);
        expect(r.code, r.out).toBe(0);
        expect(
          createHash('sha256')
            .update(await readFile(join(out, 'mis.bin')))
            .digest('hex'),
        ).toBe(createHash('sha256').update(data).digest('hex'));
        expect(r.out).toMatch(said);
      }, 60_000);
  });
});
