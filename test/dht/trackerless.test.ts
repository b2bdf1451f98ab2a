import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  aria2Flags,
  freePort,
  randomFile,
  type Started,
  sha256File,
  start,
  stopAll,
  waitFor,
} from '../support/proc.js';

/**
 * Trackerless swarms over a loopback DHT: `swarmshare dht` is the bootstrap node; `share` announces
 * there; `get` given only a magnet link (no tr, no x.pe) finds the seed through the DHT. And with
 * aria2 both ways: aria2 seeds through the DHT and `get` finds it; `share` announces and aria2,
 * given only the magnet link, finds us.
 */

const CLI = 'dist/cli/main.js';
const within = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms))]);

describe('trackerless: the DHT (BEP 5) over loopback', () => {
  let dir = '';
  let boot: Started;
  let bootAddr = '';
  let state = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-dht-'));
    state = join(dir, 'dht-state.json');
    boot = start('node', [CLI, 'dht', '--port', '0', '--status-every', '1', '--state', state]);
    bootAddr = await waitFor('the DHT node', () => /on udp:\/\/([0-9.]+:\d+)/.exec(boot.output())?.[1]);
  }, 20_000);
  afterAll(async () => {
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  });

  it('share announces to the DHT; get finds it from a bare magnet link', async () => {
    const src = join(dir, 's');
    await mkdir(src);
    await randomFile(join(src, 'doc.bin'), 3 * 1024 * 1024 + 5);
    const share = start('node', [
      CLI,
      'share',
      join(src, 'doc.bin'),
      '-o',
      join(dir, 'doc.torrent'),
      '--dht-bootstrap',
      bootAddr,
      '--dht-interval',
      '1',
    ]);
    await waitFor(
      'the seeder to listen',
      () => (share.output().includes('Listening:') ? true : undefined),
      20_000,
    );
    expect(share.output()).toMatch(/DHT:\s+udp:\/\/127\.0\.0\.1:\d+/);
    const hash = /Info hash: ([0-9a-f]{40})/.exec(share.output())?.[1] as string;
    const get = start('node', [
      CLI,
      'get',
      `magnet:?xt=urn:btih:${hash}&dn=doc.bin`,
      '-o',
      join(dir, 'out'),
      '--host',
      '127.0.0.3',
      '--dht-bootstrap',
      bootAddr,
      '--dht-interval',
      '1',
      '--timeout',
      '60',
    ]);
    expect(await within(get.exited, 60_000), get.output()).toBe(0);
    expect(await sha256File(join(dir, 'out', 'doc.bin'))).toBe(await sha256File(join(src, 'doc.bin')));
    share.child.kill('SIGINT');
    expect(await within(share.exited, 10_000)).toBe(0);
    // The bootstrap node saw the swarm: its status counts a peer in a torrent.
    await waitFor(
      'the status line',
      () => (/peers [1-9]\d* in [1-9]/.test(boot.output()) ? true : undefined),
      5000,
    );
  }, 90_000);

  it('aria2 seeds through the DHT; get finds it from a bare magnet link', async () => {
    const src = join(dir, 'a');
    await mkdir(src);
    await randomFile(join(src, 'song.bin'), 2 * 1024 * 1024 + 7);
    const made = start('node', [CLI, 'create', join(src, 'song.bin'), '-o', join(dir, 'song.torrent')]);
    expect(await made.exited).toBe(0);
    const hash = /Info hash: ([0-9a-f]{40})/.exec(made.output())?.[1] as string;
    const dhtPort = await freePort();
    const aria = start('aria2c', [
      ...aria2Flags(src, await freePort()).filter((f) => !f.startsWith('--enable-dht')),
      '--enable-dht=true',
      `--dht-listen-port=${dhtPort}`,
      `--dht-entry-point=${bootAddr}`,
      `--dht-file-path=${join(dir, 'aria-dht.dat')}`,
      '--seed-ratio=0',
      '--check-integrity=true',
      join(dir, 'song.torrent'),
    ]);
    const get = start('node', [
      CLI,
      'get',
      `magnet:?xt=urn:btih:${hash}`,
      '-o',
      join(dir, 'a-out'),
      '--host',
      '127.0.0.4',
      '--dht-bootstrap',
      bootAddr,
      '--dht-interval',
      '1',
      '--timeout',
      '80',
    ]);
    expect(await within(get.exited, 90_000), get.output()).toBe(0);
    expect(await sha256File(join(dir, 'a-out', 'song.bin'))).toBe(await sha256File(join(src, 'song.bin')));
    aria.child.kill('SIGTERM');
    await within(aria.exited, 10_000);
  }, 120_000);

  it('share announces to the DHT; aria2 given only the magnet link finds us there', async () => {
    const src = join(dir, 'r');
    await mkdir(src);
    await randomFile(join(src, 'clip.bin'), 2 * 1024 * 1024 + 11);
    const share = start('node', [
      CLI,
      'share',
      join(src, 'clip.bin'),
      '-o',
      join(dir, 'clip.torrent'),
      '--dht-bootstrap',
      bootAddr,
      '--dht-interval',
      '1',
    ]);
    await waitFor(
      'the seeder to listen',
      () => (share.output().includes('Listening:') ? true : undefined),
      20_000,
    );
    const hash = /Info hash: ([0-9a-f]{40})/.exec(share.output())?.[1] as string;
    const out = join(dir, 'r-out');
    await mkdir(out);
    const aria = start('aria2c', [
      ...aria2Flags(out, await freePort()).filter((f) => !f.startsWith('--enable-dht')),
      '--enable-dht=true',
      `--dht-listen-port=${await freePort()}`,
      `--dht-entry-point=${bootAddr}`,
      `--dht-file-path=${join(dir, 'aria-dht2.dat')}`,
      '--seed-time=0',
      `magnet:?xt=urn:btih:${hash}`,
    ]);
    expect(await within(aria.exited, 90_000), aria.output()).toBe(0);
    expect(await sha256File(join(out, 'clip.bin'))).toBe(await sha256File(join(src, 'clip.bin')));
    share.child.kill('SIGINT');
    expect(await within(share.exited, 10_000)).toBe(0);
  }, 120_000);

  it('the bootstrap node keeps its id and nodes across a restart (--state)', async () => {
    const id = /DHT node ([0-9a-f]{40})/.exec(boot.output())?.[1];
    boot.child.kill('SIGINT');
    expect(await within(boot.exited, 10_000), boot.output()).toBe(0);
    expect(existsSync(state)).toBe(true);
    const saved = JSON.parse(await readFile(state, 'utf8')) as { id: string; nodes: unknown[] };
    expect(saved.id).toBe(id);
    const again = start('node', [CLI, 'dht', '--port', '0', '--state', state]);
    await waitFor('the node again', () =>
      /State:\s+.*\(\d+ nodes\)/.test(again.output()) ? true : undefined,
    );
    expect(again.output()).toContain(`DHT node ${id}`);
  }, 30_000);
});
