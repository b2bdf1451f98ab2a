import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { registerDashboard } from '../../src/dashboard/routes.js';
import { type DemoRun, startDemo } from '../../src/demo/run-demo.js';
import { sampleText } from '../../src/demo/samples.js';
import { ReplayRecorder } from '../../src/sim/replay.js';
import { DEFAULT_SCENARIO, runSimulation } from '../../src/sim/simulator.js';
import { startTracker } from '../../src/tracker-server/server.js';
import { start, stopAll, waitFor } from '../support/proc.js';

const ARTIFACTS = 'test-artifacts';
const CLI = 'dist/cli/main.js';

const postJson = (base: string, path: string, body: object) =>
  fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

const launch = () =>
  chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });

describe('dashboard in real headless Chromium', () => {
  let browser: Browser | undefined;
  let run: DemoRun | undefined;
  let dir = '';
  afterAll(async () => {
    await browser?.close();
    await run?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('shows a demo swarm filling up to 100% for every peer, with its numbers and charts', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-dash-'));
    const file = join(dir, 'file2.txt');
    await writeFile(file, sampleText('file2.txt', 20 * 64 * 1024));
    run = await startDemo({
      file,
      peers: 10,
      pieceSize: 64 * 1024,
      strategy: 'rarest-first',
      maxChunks: 5,
      uploadRate: 512 * 1024,
      out: join(dir, 'swarm'),
      timeoutMs: 60_000,
      log: () => {},
      trackerLog: false,
    });
    browser = await launch();
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await page.goto(`${run.tracker.url}/`);
    // The swarm appears and is selected; the grid starts filling while the demo runs.
    await page.waitForSelector('#swarms tbody tr[data-swarm]', { timeout: 20_000 });
    await page.waitForFunction(
      () => {
        const rows = [...document.querySelectorAll('#peers tbody tr[data-peer]')];
        return rows.length === 10 && rows.every((r) => r.getAttribute('data-progress') === '100');
      },
      undefined,
      { timeout: 60_000, polling: 250 },
    );
    const report = await run.finished;
    expect(report.success).toBe(true);
    // The swarm list carries the run's numbers: 10 seeds now, no leechers, 9 completed downloads.
    await page.waitForFunction(
      () => document.querySelector('#swarms [data-completed]')?.getAttribute('data-completed') === '9',
      undefined,
      {
        timeout: 10_000,
      },
    );
    expect(await page.getAttribute('#swarms [data-seeds]', 'data-seeds')).toBe('10');
    expect(await page.getAttribute('#swarms [data-leechers]', 'data-leechers')).toBe('0');
    expect(await page.textContent('#swarm-title')).toContain('file2.txt: 10 peers, 20 chunks');
    // Availability: every chunk held by all 10 peers.
    const counts = await page.$$eval('#availability rect', (rs) =>
      rs.map((r) => r.getAttribute('data-count')),
    );
    expect(counts).toHaveLength(20);
    expect(new Set(counts)).toEqual(new Set(['10']));
    // Throughput chart: several points, a peak above zero; who-sends-to-whom lists transfers.
    expect(Number(await page.getAttribute('#throughput', 'data-points'))).toBeGreaterThan(1);
    expect(Number(await page.getAttribute('#throughput', 'data-max'))).toBeGreaterThan(0);
    expect(await page.$$eval('#transfers tbody tr', (rs) => rs.length)).toBeGreaterThan(0);
    // The run's report appears on the page once the swarm has finished.
    await page.waitForSelector('#report[data-success="true"]', { timeout: 10_000 });
    expect(await page.textContent('#report')).toContain('every peer holds a verified copy');
    expect(await page.textContent('#report')).toContain('10 of 10 peers hold file2.txt');
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });
  }, 120_000);

  it('shows an idle swarm as idle: peak 0, no invented figure, no report panel on a plain tracker', async () => {
    const tracker = await startTracker({ port: 0 }, { routes: registerDashboard });
    try {
      const reg = await fetch(`${tracker.url}/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({
          peer_id: 'idle1',
          port: 7001,
          files: { 'idle.bin': { chunks: [0, 1], pieces: 4 } },
        }),
      });
      expect(reg.status).toBe(200);
      browser ??= await launch();
      const page = await browser.newPage();
      await page.goto(`${tracker.url}/`);
      await page.waitForSelector('#swarms tbody tr[data-swarm]', { timeout: 10_000 });
      await page.waitForFunction(
        () => Number(document.querySelector('#throughput')?.getAttribute('data-points')) >= 3,
        undefined,
        { timeout: 10_000, polling: 200 },
      );
      expect(await page.getAttribute('#throughput', 'data-max')).toBe('0');
      const text = (await page.textContent('#throughput-now')) ?? '';
      expect(text).toContain('idle');
      expect(text).not.toMatch(/peak 1 B/);
      expect(await page.isHidden('#report')).toBe(true);
      await page.close();
    } finally {
      await tracker.close();
    }
  }, 60_000);

  it('keeps the grid readable at 20, 256 and 2,000 chunks: rows as tall as their labels, labels apart, the panel spanned', async () => {
    const tracker = await startTracker({ port: 0 }, { routes: registerDashboard });
    try {
      const post = (path: string, body: object) => postJson(tracker.url, path, body);
      for (const pieces of [20, 256, 2000]) {
        for (let i = 0; i < 10; i++) {
          const chunks = Array.from({ length: pieces }, (_, k) => k).filter((k) => (k + i) % 3 !== 0);
          const r = await post('/register', {
            peer_id: `peer${i + 1}-${pieces}`,
            port: 7000 + i,
            files: { [`g${pieces}.bin`]: { chunks, pieces } },
          });
          expect(r.status).toBe(200);
        }
      }
      browser ??= await launch();
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await mkdir(ARTIFACTS, { recursive: true });
      for (const pieces of [20, 256, 2000]) {
        await page.goto(`${tracker.url}/?swarm=${encodeURIComponent(`name:g${pieces}.bin`)}`);
        await page.waitForFunction(
          (n) => document.querySelector('#swarm-title')?.textContent?.includes(`${n} chunks`) === true,
          pieces,
          { timeout: 10_000, polling: 200 },
        );
        const g = await page.$eval('#grid', (c) => {
          const canvas = c as HTMLCanvasElement;
          const wrap = canvas.parentElement as HTMLElement;
          const cs = getComputedStyle(wrap);
          return {
            rowHeight: Number(canvas.dataset.rowHeight),
            labelHeight: Number(canvas.dataset.labelHeight),
            group: Number(canvas.dataset.group),
            labels: JSON.parse(canvas.dataset.labels ?? '[]') as {
              x: number;
              y: number;
              w: number;
              h: number;
            }[],
            canvasWidth: canvas.getBoundingClientRect().width,
            panelWidth: wrap.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight),
          };
        });
        expect(g.labels).toHaveLength(10);
        expect(g.rowHeight).toBeGreaterThanOrEqual(g.labelHeight);
        for (let i = 1; i < g.labels.length; i++) {
          const a = g.labels[i - 1] as { y: number; h: number };
          const b = g.labels[i] as { y: number; h: number };
          expect(b.y, `labels ${i - 1} and ${i} overlap at ${pieces} chunks`).toBeGreaterThanOrEqual(
            a.y + a.h,
          );
        }
        expect(g.canvasWidth).toBeGreaterThanOrEqual(g.panelWidth - 2);
        // Past what fits at 3 px a cell, chunks are grouped into runs.
        expect(g.group > 1).toBe(pieces * 3 > g.panelWidth - 96);
        await page.screenshot({ path: join(ARTIFACTS, `dashboard-grid-${pieces}.png`) });
      }
      await page.close();
    } finally {
      await tracker.close();
    }
  }, 60_000);

  it('a page opened 10 s after a swarm stopped moving shows what moved, from the tracker, and does not say idle', async () => {
    const tracker = await startTracker({ port: 0 }, { routes: registerDashboard });
    try {
      const post = (path: string, body: object) =>
        postJson(tracker.url, path, body).then((r) => r.json() as Promise<{ key: string }>);
      const keys: string[] = [];
      for (let i = 0; i < 3; i++)
        keys.push(
          (
            await post('/register', {
              peer_id: `tp${i}`,
              port: 7100 + i,
              files: { 'tp.bin': { chunks: [], pieces: 40 } },
            })
          ).key,
        );
      // The tracker's sampler sees the peers at 0 first; then 4 s of reports, 1 MiB per peer per 0.5 s.
      await new Promise((r) => setTimeout(r, 1500));
      let reported = 0;
      for (let step = 1; step <= 8; step++) {
        for (let i = 0; i < 3; i++)
          await post('/update', {
            peer_id: `tp${i}`,
            key: keys[i],
            file: 'tp.bin',
            stats: { downloaded: step * 1024 * 1024 },
          });
        reported = 3 * step * 1024 * 1024;
        await new Promise((r) => setTimeout(r, 500));
      }
      await new Promise((r) => setTimeout(r, 10_000));
      browser ??= await launch();
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(`${tracker.url}/`);
      await page.waitForFunction(
        () => Number(document.querySelector('#throughput')?.getAttribute('data-points')) >= 10,
        undefined,
        { timeout: 10_000, polling: 200 },
      );
      const total = Number(await page.getAttribute('#throughput', 'data-total'));
      expect(
        Math.abs(total - reported) / reported,
        `chart ${total} B, peers reported ${reported} B`,
      ).toBeLessThan(0.1);
      const peak = Number(await page.getAttribute('#throughput', 'data-max'));
      // 3 MiB every 0.5 s: 6 MiB/s, seen in one-second steps (one or two reports a step).
      expect(peak).toBeGreaterThanOrEqual(3 * 1024 * 1024);
      expect(peak).toBeLessThanOrEqual(13 * 1024 * 1024);
      const text = (await page.textContent('#throughput-now')) ?? '';
      expect(text).not.toContain('idle');
      expect(text).toMatch(/now 0 B\/s, peak .* s ago/);
      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-throughput.png'), fullPage: true });
      await page.close();
    } finally {
      await tracker.close();
    }
  }, 60_000);

  it('replays a recorded simulation: the grid fills to 100% frame by frame, with its charts', async () => {
    // 30 peers + 1 seed, 20 pieces, recorded every 0.5 s of virtual time.
    const scenario = { ...DEFAULT_SCENARIO, peers: 30, pieces: 20, seed: 5 };
    const recorder = new ReplayRecorder(500);
    const report = runSimulation(scenario, undefined, recorder);
    expect(report.lastCompletionMs).not.toBeNull();
    if (!dir) dir = await mkdtemp(join(tmpdir(), 'ss-dash-'));
    const file = join(dir, 'sim.replay.json');
    await writeFile(file, JSON.stringify(recorder.replay(scenario)));
    const frames = recorder.frames.length;
    expect(frames).toBeGreaterThan(5);
    const server = start('node', [CLI, 'replay', file, '--port', '0', '--speed', '20']);
    try {
      const url = await waitFor(
        'the replay URL',
        () => /at (http:\/\/\S+)/.exec(server.output())?.[1],
        10_000,
      );
      const b = await launch();
      try {
        const page = await b.newPage({ viewport: { width: 1280, height: 1400 } });
        await page.goto(url);
        await page.waitForSelector('#swarms tbody tr[data-swarm]', { timeout: 10_000 });
        // Early frames: some peer is short of 100%; the last frame: all 31 rows at 100%.
        await page.waitForFunction(
          () =>
            [...document.querySelectorAll('#peers tbody tr[data-peer]')].some(
              (r) => r.getAttribute('data-progress') !== '100',
            ),
          undefined,
          { timeout: 10_000, polling: 50 },
        );
        await page.waitForFunction(
          (n) => document.getElementById('status')?.getAttribute('data-frame') === String(n),
          frames,
          { timeout: 30_000, polling: 100 },
        );
        const progress = await page.$$eval('#peers tbody tr[data-peer]', (rs) =>
          rs.map((r) => r.getAttribute('data-progress')),
        );
        expect(progress).toHaveLength(31);
        expect(new Set(progress)).toEqual(new Set(['100']));
        expect(await page.textContent('#status')).toContain('virtual');
        expect(await page.getAttribute('#swarms [data-completed]', 'data-completed')).toBe('30');
        const counts = await page.$$eval('#availability rect', (rs) =>
          rs.map((r) => r.getAttribute('data-count')),
        );
        expect(counts).toHaveLength(20);
        expect(new Set(counts)).toEqual(new Set(['31']));
        expect(Number(await page.getAttribute('#throughput', 'data-points'))).toBeGreaterThan(3);
        expect(Number(await page.getAttribute('#throughput', 'data-max'))).toBeGreaterThan(0);
        await mkdir(ARTIFACTS, { recursive: true });
        await page.screenshot({ path: join(ARTIFACTS, 'replay.png'), fullPage: true });
      } finally {
        await b.close();
      }
    } finally {
      await stopAll();
    }
  }, 90_000);
});
