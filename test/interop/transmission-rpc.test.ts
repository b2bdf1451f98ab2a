import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningTracker, startTracker } from '../../src/tracker-server/server.js';
import { aria2Seeds } from '../support/aria2-seed.js';
import { freePort, type Started, sha256File, start, stopAll, waitFor } from '../support/proc.js';
import { startTransmission } from '../support/transmission.js';

/**
 * Transmission's own command-line remote (Debian's transmission-remote 3.00) drives swarmshare's
 * daemon through its Transmission RPC: add a .torrent and a magnet, list them with their
 * progress, stop, start, remove. The same script runs against transmission-daemon as a control
 * of the test itself (what it expects of the remote's output is what Transmission gives).
 */

const CLI = 'dist/cli/main.js';
const exec = promisify(execFile);

interface Row {
  id: number;
  done: string;
  status: string;
  name: string;
}

/** transmission-remote -l's table: ID, Done, Have, ETA, Up, Down, Ratio, Status, Name. */
function parseList(out: string): Row[] {
  const rows: Row[] = [];
  for (const line of out.split('\n').slice(1)) {
    const m =
      /^\s*(\d+)\*?\s+(\S+%|n\/a)\s+.*?\s{2,}(Idle|Stopped|Seeding|Downloading|Up & Down|Verifying|Will Verify|Queued)\s+(.+)$/.exec(
        line,
      );
    if (m)
      rows.push({
        id: Number(m[1]),
        done: m[2] as string,
        status: m[3] as string,
        name: (m[4] as string).trim(),
      });
  }
  return rows;
}

describe('transmission-remote drives the daemon (and, as a control, transmission-daemon)', () => {
  let dir = '';
  let tracker: RunningTracker;
  let ours: Started;
  let theirs: Started;
  let oursRpc = 0;
  let theirsRpc = 0;
  let a: Awaited<ReturnType<typeof aria2Seeds>>;
  let c: Awaited<ReturnType<typeof aria2Seeds>>;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-trpc-'));
    tracker = await startTracker({ port: 0 }, { interval: 2 });
    a = await aria2Seeds(dir, tracker, 'a.bin', 2_000_000);
    c = await aria2Seeds(dir, tracker, 'c.bin', 1_000_000);
    oursRpc = await freePort();
    ours = start('node', [
      CLI,
      'daemon',
      '--state',
      join(dir, 'state'),
      '--download-dir',
      join(dir, 'dl'),
      '--api-port',
      String(oursRpc),
      '--no-dht',
      '--min-announce-interval',
      '1',
    ]);
    // Transmission's daemon with nothing leaving loopback, RPC without auth on 127.0.0.1.
    ({ daemon: theirs, rpc: theirsRpc } = await startTransmission(dir));
    for (const port of [oursRpc, theirsRpc])
      await waitFor(
        `RPC on ${port}`,
        () =>
          remote(port, '-l').then(
            () => true,
            () => undefined,
          ),
        20_000,
        200,
      );
  }, 90_000);

  afterAll(async () => {
    theirs?.child.kill('SIGTERM');
    await stopAll();
    await tracker?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const remote = async (port: number, ...args: string[]) =>
    (await exec('transmission-remote', [`127.0.0.1:${port}`, ...args], { timeout: 20_000 })).stdout;
  const list = async (port: number) => parseList(await remote(port, '-l'));
  const row = async (port: number, name: string) => (await list(port)).find((r) => r.name === name);

  /** The script both daemons answer the same way; `downloads`: wait for both torrents to complete. */
  async function script(port: number, downloads: boolean) {
    expect(await remote(port, '-a', a.torrent)).toMatch(/responded: "success"/);
    expect(await remote(port, '-a', c.magnet)).toMatch(/responded: "success"/);
    const names = (await list(port)).map((r) => r.name).sort();
    expect(names).toEqual(['a.bin', 'c.bin']);
    if (downloads) {
      await waitFor(
        'both at 100% in -l',
        async () => ((await list(port)).every((r) => r.done === '100%') ? true : undefined),
        60_000,
        300,
      );
    }
    // Stopped once it has checked its files (Transmission starts a torrent again when its check ends).
    const id = await waitFor(
      'a.bin checked',
      async () => {
        const r = await row(port, 'a.bin');
        return r !== undefined && !/Verify/.test(r.status) ? r.id : undefined;
      },
      10_000,
    );
    expect(id).toBeGreaterThan(0);
    expect(await remote(port, '-t', String(id), '-S')).toMatch(/success/);
    await waitFor(
      'a.bin stopped',
      async () => ((await row(port, 'a.bin'))?.status === 'Stopped' ? true : undefined),
      10_000,
    );
    expect(await remote(port, '-t', String(id), '-s')).toMatch(/success/);
    await waitFor(
      'a.bin started',
      async () => ((await row(port, 'a.bin'))?.status !== 'Stopped' ? true : undefined),
      10_000,
    );
    expect(await remote(port, '-t', String(id), '-r')).toMatch(/success/);
    await waitFor(
      'a.bin removed',
      async () => ((await row(port, 'a.bin')) === undefined ? true : undefined),
      10_000,
    );
    expect((await list(port)).map((r) => r.name)).toEqual(['c.bin']);
  }

  it('control: transmission-daemon answers the script as expected', async () => {
    await script(theirsRpc, false);
  }, 60_000);

  it('our daemon: added by .torrent and magnet, both download from aria2c, listed at 100%, stopped, started, removed', async () => {
    await script(oursRpc, true);
    expect(await sha256File(join(dir, 'dl', 'c.bin'))).toBe(await sha256File(c.file));
    // The numbers stay across a restart; the removed torrent's is not given again.
    const before = await row(oursRpc, 'c.bin');
    ours.child.kill('SIGTERM');
    expect(await ours.exited).toBe(0);
    ours = start('node', [
      CLI,
      'daemon',
      '--state',
      join(dir, 'state'),
      '--api-port',
      String(oursRpc),
      '--no-dht',
    ]);
    await waitFor(
      'RPC again',
      () =>
        remote(oursRpc, '-l').then(
          () => true,
          () => undefined,
        ),
      20_000,
      200,
    );
    expect((await row(oursRpc, 'c.bin'))?.id).toBe(before?.id);
    // The download folder was not given this time: the saved setting is used.
    const settings = await fetch(`http://127.0.0.1:${oursRpc}/api/v1/session`).then((r) => r.json());
    expect(settings.session.settings.downloadDir).toBe(join(dir, 'dl'));
    expect(await remote(oursRpc, '-a', a.torrent)).toMatch(/success/);
    expect((await row(oursRpc, 'a.bin'))?.id).toBeGreaterThan(before?.id as number);
  }, 120_000);
});
