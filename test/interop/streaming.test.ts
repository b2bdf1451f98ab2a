import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningTracker, startTracker } from '../../src/tracker-server/server.js';
import { aria2Flags, freePort, randomFile, type Started, start, stopAll, waitFor } from '../support/proc.js';

/**
 * Streaming a file while it downloads (`get --serve`) from a rate-capped aria2c seeder: ranged
 * reads at several offsets come back byte-identical before the download completes (the window of
 * deadlines moves to each), and Chromium plays a WebM (made here by ffmpeg) from the URL before 100%.
 */

const CLI = 'dist/cli/main.js';
const exec = promisify(execFile);
const within = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms))]);

describe('streaming while downloading (get --serve)', () => {
  let dir = '';
  let tracker: RunningTracker;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-stream-'));
    tracker = await startTracker({ port: 0 }, { interval: 2 });
  });
  afterAll(async () => {
    await stopAll();
    await tracker.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** `file` in `src`, a torrent for it, aria2c seeding it at `limit`, and `get --serve` fetching it. */
  async function streamed(name: string, src: string, limit: string) {
    const torrent = join(dir, `${name}.torrent`);
    await exec('node', [
      CLI,
      'create',
      join(src, name),
      '--piece-size',
      '64KiB',
      '--tracker',
      'http://127.0.0.1:9/announce',
      '-o',
      torrent,
    ]);
    const port = await freePort();
    start('aria2c', [
      ...aria2Flags(src, port),
      '--seed-ratio=0.0',
      `--max-upload-limit=${limit}`,
      '--check-integrity=true',
      torrent,
    ]);
    // aria2c checks its copy first: give it a moment to listen.
    await new Promise((r) => setTimeout(r, 1500));
    const get = start('node', [
      CLI,
      'get',
      torrent,
      '-o',
      join(dir, `out-${name}`),
      '--peer',
      `127.0.0.1:${port}`,
      '--no-dht',
      '--serve',
      '0',
    ]);
    const url = await waitFor('the file URL', () => /Serving: +(\S+)/.exec(get.output())?.[1], 20_000);
    return { get, url };
  }
  const done = (get: Started) => get.output().includes('Done:');

  it('ranged reads at several offsets, byte-identical, before the download completes; HEAD, 416', async () => {
    const src = join(dir, 'src-a');
    await mkdir(src);
    const size = 6 * 1024 * 1024 + 123;
    await randomFile(join(src, 'movie.bin'), size);
    const want = await readFile(join(src, 'movie.bin'));
    // 6 MiB at 512 KiB/s: about 12 s to download whole.
    const { get, url } = await streamed('movie.bin', src, '512K');
    const head = await fetch(url, { method: 'HEAD' });
    expect(head.headers.get('accept-ranges')).toBe('bytes');
    expect(head.headers.get('content-length')).toBe(String(size));
    expect(head.headers.get('content-type')).toBe('application/octet-stream');
    for (const at of [5_000_000, 300_000, size - 1000]) {
      const end = Math.min(at + 200_000, size - 1);
      const r = await fetch(url, { headers: { range: `bytes=${at}-${end}` } });
      expect(r.status).toBe(206);
      expect(r.headers.get('content-range')).toBe(`bytes ${at}-${end}/${size}`);
      expect(Buffer.from(await r.arrayBuffer()).equals(want.subarray(at, end + 1))).toBe(true);
      // The reads jumped the queue: the whole file is not there yet.
      expect(done(get)).toBe(false);
    }
    const past = await fetch(url, { headers: { range: `bytes=${size}-` } });
    expect(past.status).toBe(416);
    expect(past.headers.get('content-range')).toBe(`bytes */${size}`);
    // Read whole, it is the file (waiting for the rest as it comes).
    const whole = await fetch(url);
    expect(whole.status).toBe(200);
    expect(Buffer.from(await whole.arrayBuffer()).equals(want)).toBe(true);
    get.child.kill('SIGINT');
    expect(await within(get.exited, 10_000)).toBe(0);
  }, 90_000);

  it('Chromium plays a WebM from the streaming URL while the torrent is still downloading', async () => {
    const src = join(dir, 'src-v');
    await mkdir(src);
    await exec('ffmpeg', [
      '-loglevel',
      'error',
      '-f',
      'lavfi',
      '-i',
      'testsrc=duration=40:size=320x240:rate=25,noise=alls=30:allf=t',
      '-c:v',
      'libvpx',
      '-b:v',
      '500k',
      '-g',
      '25',
      '-deadline',
      'realtime',
      '-cpu-used',
      '8',
      join(src, 'clip.webm'),
    ]);
    // About 2.5 MB (noise keeps it from compressing; 500 kbit/s) at 80 KiB/s: some 30 s to download
    // whole, a little faster than it plays, so the browser starts once it has a little (at 128 KiB/s
    // a loaded machine once finished the download before Chromium had played a second).
    const { get, url } = await streamed('clip.webm', src, '80K');
    let browser: Browser | undefined;
    try {
      browser = await chromium.launch({
        executablePath: '/usr/bin/chromium',
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--autoplay-policy=no-user-gesture-required', '--mute-audio'],
      });
      const page = await browser.newPage();
      // The page records the video's events from the start (setContent returns after they fire).
      await page.setContent(
        `<video id="v" src="${url}" muted autoplay></video><script>
          window.events = [];
          const v = document.getElementById('v');
          for (const e of ['canplay', 'playing', 'error']) v.addEventListener(e, () => window.events.push(e));
        </script>`,
        { waitUntil: 'commit' },
      );
      await page.waitForFunction(
        () => (document.getElementById('v') as HTMLVideoElement).currentTime > 1,
        undefined,
        { timeout: 40_000, polling: 100 },
      );
      const played = await page.evaluate(() => ({
        canplay: (window as unknown as { events: string[] }).events.includes('canplay'),
        time: (document.getElementById('v') as HTMLVideoElement).currentTime,
      }));
      expect(played.canplay).toBe(true);
      expect(played.time).toBeGreaterThan(1);
      // Playing, and the torrent is not complete yet.
      expect(done(get)).toBe(false);
    } finally {
      await browser?.close();
    }
    // Interrupted before it completed: 130, as documented (0 had it just completed).
    get.child.kill('SIGINT');
    const code = await within(get.exited, 10_000);
    expect(code).toBe(done(get) ? 0 : 130);
  }, 120_000);
});
