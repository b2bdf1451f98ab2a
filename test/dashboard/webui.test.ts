import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningTracker, startTracker } from '../../src/tracker-server/server.js';
import { aria2Seeds } from '../support/aria2-seed.js';
import { freePort, type Started, sha256File, start, stopAll, waitFor } from '../support/proc.js';

/**
 * The daemon's web UI in a real browser (Debian's Chromium): a torrent added by magnet with the
 * keyboard, its page while it downloads from a rate-capped aria2c seeder (files, peers, piece
 * map), 100%, pause and resume, removed with its data after the confirmation; a phone-sized
 * window; no page errors. Screenshots in test-artifacts/.
 */

const CLI = 'dist/cli/main.js';
const ARTIFACTS = 'test-artifacts';

describe('the daemon web UI in Chromium', () => {
  let dir = '';
  let tracker: RunningTracker;
  let daemon: Started;
  let browser: Browser | null = null;
  let base = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-webui-'));
    await mkdir(ARTIFACTS, { recursive: true });
    tracker = await startTracker({ port: 0 }, { interval: 2 });
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    daemon = start('node', [
      CLI,
      'daemon',
      '--state',
      join(dir, 'state'),
      '--download-dir',
      join(dir, 'dl'),
      '--api-port',
      String(port),
      '--no-dht',
      '--min-announce-interval',
      '1',
    ]);
    await waitFor('the daemon API', () => (daemon.output().includes('API:') ? true : undefined), 20_000);
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-sync'],
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await stopAll();
    await tracker?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('adds by magnet, shows the download live to 100%, pauses, resumes, shows its page, removes it', async () => {
    // 6 MB at 1.5 MiB/s: about four seconds of downloading to watch.
    const seed = await aria2Seeds(dir, tracker, 'movie.bin', 6_000_000, ['--max-upload-limit=1500K']);
    const page = await (browser as Browser).newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(base);
    await page.waitForSelector('#status:text("live")', { timeout: 10_000 });
    expect(await page.isVisible('#no-torrents')).toBe(true);

    // Keyboard only: focus the field, type the magnet link, Enter.
    await page.focus('#add-link');
    await page.keyboard.type(seed.magnet);
    await page.keyboard.press('Enter');
    const row = `#torrents tr[data-id="${seed.hex}"]`;
    await page.waitForSelector(row, { timeout: 30_000 });
    expect(await page.textContent('#add-message')).toMatch(/Added movie\.bin/);

    // Its page while it downloads: the aria2c peer, the file, the piece map.
    await page.click(`${row} a`);
    await page.waitForSelector('#torrent-view:not([hidden])');
    await page.waitForSelector('#t-peers tbody tr', { timeout: 20_000 });
    expect(await page.textContent('#t-peers tbody')).toMatch(/aria2/i);
    expect(await page.textContent('#t-files tbody')).toContain('movie.bin');
    expect(await page.textContent('#t-trackers tbody')).toContain(`${tracker.url}/announce`);
    const partial = Number(await page.getAttribute('#t-grid', 'data-have'));
    const pieces = Math.ceil(6_000_000 / 65_536);
    expect(partial).toBeLessThan(pieces);
    await page.screenshot({ path: join(ARTIFACTS, 'webui-torrent-downloading.png'), fullPage: true });
    await page.waitForSelector('#t-summary[data-state="seeding"]', { timeout: 60_000 });
    await waitFor(
      'the piece map full',
      async () => (Number(await page.getAttribute('#t-grid', 'data-have')) === pieces ? true : undefined),
      10_000,
    );
    const grid = await page.$eval('#t-grid', (c) => (c as HTMLCanvasElement).height);
    expect(grid).toBeGreaterThan(0);
    expect(await page.$$eval('#t-availability rect', (r) => r.length)).toBe(pieces);
    await page.screenshot({ path: join(ARTIFACTS, 'webui-torrent.png'), fullPage: true });

    // Back to the list: 100%, seeding; pause and resume from its row.
    await page.click('a[href="#/"] >> nth=0');
    await page.waitForSelector(`${row}[data-progress="1"][data-state="seeding"]`, { timeout: 10_000 });
    expect(await page.textContent(`${row} [role=progressbar] + .pct`)).toBe('100%');
    expect(await sha256File(join(dir, 'dl', 'movie.bin'))).toBe(await sha256File(seed.file));
    await page.screenshot({ path: join(ARTIFACTS, 'webui-list.png'), fullPage: true });
    await page.click(`${row} button[data-action="pause"]`);
    await page.waitForSelector(`${row}[data-state="paused"]`, { timeout: 10_000 });
    await page.click(`${row} button[data-action="resume"]`);
    await page.waitForSelector(`${row}[data-state="seeding"]`, { timeout: 20_000 });

    // Sorting by a column marks it.
    await page.click('#torrents th button[data-sort="name"]');
    expect(await page.getAttribute('#torrents th:has(button[data-sort="name"])', 'aria-sort')).toBe(
      'ascending',
    );

    // A phone-sized window: nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 800 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1)).toBe(
      true,
    );
    await page.screenshot({ path: join(ARTIFACTS, 'webui-phone.png'), fullPage: true });
    await page.setViewportSize({ width: 1200, height: 900 });

    // Remove: the dialog asks first; cancelling keeps it; confirming with "delete files" removes both.
    await page.click(`${row} button[data-action="remove"]`);
    await page.click('#rm-cancel');
    expect(await page.isVisible(row)).toBe(true);
    await page.click(`${row} button[data-action="remove"]`);
    await page.check('#rm-data');
    expect(await page.textContent('#rm-ok')).toBe('Remove and delete files');
    await page.click('#rm-ok');
    await page.waitForSelector(row, { state: 'detached', timeout: 10_000 });
    await waitFor(
      'movie.bin deleted',
      () =>
        readFile(join(dir, 'dl', 'movie.bin')).then(
          () => undefined,
          () => true,
        ),
      10_000,
    );
    expect(await page.isVisible('#no-torrents')).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  }, 150_000);

  it('refuses a bad link with a message, and adds a .torrent chosen as a file', async () => {
    const seed = await aria2Seeds(dir, tracker, 'doc.bin', 300_000);
    const page = await (browser as Browser).newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(base);
    await page.fill('#add-link', 'magnet:?xt=urn:btih:nothex');
    await page.click('#add-button');
    await page.waitForSelector('#add-message.bad', { timeout: 10_000 });
    expect(await page.textContent('#add-message')).toMatch(/Not added/);
    await page.setInputFiles('#add-file', seed.torrent);
    await page.waitForSelector(`#torrents tr[data-id="${seed.hex}"][data-state="seeding"]`, {
      timeout: 30_000,
    });
    expect(errors).toEqual([]);
    await page.close();
  }, 60_000);
});
