import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomFile, type Started, sha256File, start, stopAll, waitFor } from '../support/proc.js';
import { startTransmission } from '../support/transmission.js';

/**
 * Transmission (Debian's transmission-daemon 3.00) and swarmshare, both ways, on loopback.
 * Transmission never dials a peer at 127.0.0.0/8 that a tracker or PEX names (its "martian"
 * address filter; docs/interop.md), but it accepts connections from one: so our side dials it
 * (`share --peer`, `get --peer`). Transmission listens on 127.0.0.2, we on 127.0.0.1 and .3.
 */

const CLI = 'dist/cli/main.js';
const exec = promisify(execFile);
const within = <T>(p: Promise<T>, ms: number) =>
  Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms))]);

describe('swarmshare and Transmission trade both ways (loopback)', () => {
  let dir = '';
  let daemon: Started;
  let rpc = 0;
  let peerPort = 0;
  const remote = (...args: string[]) =>
    exec('transmission-remote', [String(rpc), ...args], { timeout: 10_000 });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-transmission-'));
    // Nothing leaves loopback: no DHT, LPD, PEX, uTP, port mapping; RPC on 127.0.0.1 only.
    ({ daemon, rpc, peerPort } = await startTransmission(dir));
    await waitFor(
      'transmission-daemon to answer RPC',
      async () =>
        (await remote('-l').then(
          () => true,
          () => undefined,
        )) ?? undefined,
      20_000,
      200,
    );
  }, 40_000);

  afterAll(async () => {
    daemon?.child.kill('SIGTERM');
    await within(daemon.exited, 10_000);
    await stopAll();
    await rm(dir, { recursive: true, force: true });
  });

  /** Transmission's percent done for torrent `id`. */
  const percent = async (id: number) => {
    const { stdout } = await remote('-t', String(id), '-i');
    const m = /Percent Done:\s+([0-9.]+)%/.exec(stdout);
    return m === null ? -1 : Number(m[1]);
  };

  it('Transmission downloads from `swarmshare share` (which dials it)', async () => {
    const src = join(dir, 'a-src');
    await mkdir(src);
    await randomFile(join(src, 'clip.bin'), 3 * 1024 * 1024 + 333);
    const torrent = join(dir, 'clip.torrent');
    // The torrent names a tracker nobody runs: the link comes from --peer alone.
    const share = start('node', [
      CLI,
      'share',
      join(src, 'clip.bin'),
      '--tracker',
      'http://127.0.0.1:9/announce',
      '-o',
      torrent,
      '--peer',
      `127.0.0.2:${peerPort}`,
    ]);
    await waitFor(
      'the seeder to listen',
      () => (share.output().includes('Listening:') ? true : undefined),
      20_000,
    );
    await remote('-a', torrent);
    await waitFor(
      'Transmission to complete',
      async () => ((await percent(1)) === 100 ? true : undefined),
      // Transmission starts slowly on loopback (docs/interop.md); slower still on a loaded machine.
      120_000,
      500,
    );
    expect(await sha256File(join(dir, 'tr-dl', 'clip.bin'))).toBe(await sha256File(join(src, 'clip.bin')));
    share.child.kill('SIGINT');
    expect(await within(share.exited, 10_000)).toBe(0);
  }, 150_000);

  it('`swarmshare get` downloads from a Transmission seed', async () => {
    const src = join(dir, 'b-src');
    const out = join(dir, 'b-out');
    await mkdir(src);
    await randomFile(join(src, 'song.bin'), 2 * 1024 * 1024 + 99);
    const torrent = join(dir, 'song.torrent');
    const made = await exec('node', [
      CLI,
      'create',
      join(src, 'song.bin'),
      '--tracker',
      'http://127.0.0.1:9/announce',
      '-o',
      torrent,
    ]);
    expect(made.stdout).toMatch(/Info hash: [0-9a-f]{40}/);
    // Transmission seeds the content it finds in its download folder (checked on adding).
    await copyFile(join(src, 'song.bin'), join(dir, 'tr-dl', 'song.bin'));
    await remote('-a', torrent);
    await waitFor(
      'Transmission to verify its copy',
      async () => ((await percent(2)) === 100 ? true : undefined),
      30_000,
      300,
    );
    const get = start('node', [
      CLI,
      'get',
      torrent,
      '-o',
      out,
      '--host',
      '127.0.0.3',
      '--peer',
      `127.0.0.2:${peerPort}`,
    ]);
    expect(await within(get.exited, 60_000), get.output()).toBe(0);
    expect(await sha256File(join(out, 'song.bin'))).toBe(await sha256File(join(src, 'song.bin')));
  }, 90_000);

  it('with encryption required (Transmission `encryption: 2`), both ways, our side requiring it too', async () => {
    await remote('--encryption-required');
    const { stdout } = await remote('-si');
    expect(stdout).toMatch(/Encryption: required/);
    // Transmission downloads from `share --encryption require` (which dials it).
    const src = join(dir, 'e-src');
    await mkdir(src);
    await randomFile(join(src, 'sealed.bin'), 2 * 1024 * 1024 + 41);
    const torrent = join(dir, 'sealed.torrent');
    const share = start('node', [
      CLI,
      'share',
      join(src, 'sealed.bin'),
      '--tracker',
      'http://127.0.0.1:9/announce',
      '-o',
      torrent,
      '--peer',
      `127.0.0.2:${peerPort}`,
      '--encryption',
      'require',
      '--no-dht',
    ]);
    await waitFor(
      'the seeder to listen',
      () => (share.output().includes('Listening:') ? true : undefined),
      20_000,
    );
    await remote('-a', torrent);
    await waitFor(
      'Transmission to complete',
      async () => ((await percent(3)) === 100 ? true : undefined),
      120_000,
      500,
    );
    expect(await sha256File(join(dir, 'tr-dl', 'sealed.bin'))).toBe(
      await sha256File(join(src, 'sealed.bin')),
    );
    share.child.kill('SIGINT');
    expect(await within(share.exited, 10_000)).toBe(0);
    // `get --encryption require` downloads from Transmission, which now seeds it.
    const out = join(dir, 'e-out');
    const get = start('node', [
      CLI,
      'get',
      torrent,
      '-o',
      out,
      '--host',
      '127.0.0.3',
      '--peer',
      `127.0.0.2:${peerPort}`,
      '--encryption',
      'require',
      '--no-dht',
    ]);
    expect(await within(get.exited, 60_000), get.output()).toBe(0);
    expect(await sha256File(join(out, 'sealed.bin'))).toBe(await sha256File(join(src, 'sealed.bin')));
  }, 200_000);
});
