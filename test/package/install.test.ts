import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, start, stopAll, waitFor } from '../support/proc.js';

/**
 * What users install is what we test: the package as `npm pack` makes it, installed with
 * `npm install -g` into a temporary prefix, its command run from an empty folder.
 */

const root = resolve(import.meta.dirname, '..', '..');
let tmp = '';
let bin = '';
let empty = '';

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ss-pack-'));
  execFileSync('npm', ['pack', '--pack-destination', tmp, '--silent'], { cwd: root, stdio: 'pipe' });
  const tarball = (await readdir(tmp)).find((f) => f.endsWith('.tgz'));
  if (tarball === undefined) throw new Error('npm pack made no tarball');
  const prefix = join(tmp, 'prefix');
  execFileSync(
    'npm',
    ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', join(tmp, tarball)],
    { cwd: tmp, stdio: 'pipe' },
  );
  bin = join(prefix, 'bin', 'swarmshare');
  empty = join(tmp, 'empty');
  await mkdir(empty);
}, 240_000);

afterAll(async () => {
  await stopAll();
  await rm(tmp, { recursive: true, force: true });
});

describe('the packed package, installed with npm install -g', () => {
  it('installs a swarmshare command that prints its help', () => {
    expect(existsSync(bin)).toBe(true);
    const help = execFileSync(bin, ['--help'], { cwd: empty, encoding: 'utf8' });
    for (const cmd of [
      'tracker',
      'share',
      'get',
      'create',
      'demo',
      'simulate',
      'replay',
      'dht',
      'simulate-dht',
      'daemon',
      'add',
      'ls',
      'show',
      'pause',
      'resume',
      'rm',
    ])
      expect(help).toContain(cmd);
    // The installed package finds its own package.json for --version.
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    expect(execFileSync(bin, ['--version'], { cwd: empty, encoding: 'utf8' }).trim()).toBe(version);
  });

  it('runs the tracker from an empty folder: the dashboard page and its assets answer 200', async () => {
    const t = start(bin, ['tracker', '--port', '0', '--quiet'], { cwd: empty });
    const url = await waitFor(
      'the tracker to listen',
      () => /listening on (http:\/\/\S+)/.exec(t.output())?.[1],
    );
    const page = await fetch(`${url}/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toContain('text/html');
    const html = await page.text();
    expect(html).toContain('dashboard/app.js');
    for (const asset of [
      '/dashboard/app.js',
      '/dashboard/style.css',
      '/shared/grid.js',
      '/shared/grid.css',
    ]) {
      const r = await fetch(`${url}${asset}`);
      expect(r.status, asset).toBe(200);
      expect((await r.text()).length, asset).toBeGreaterThan(100);
    }
    t.child.kill('SIGTERM');
    expect(await t.exited).toBe(0);
  }, 30_000);

  it('runs a DHT node and a trackerless demo from the installed package', async () => {
    const n = start(bin, ['dht', '--port', '0'], { cwd: empty });
    await waitFor('the DHT node', () =>
      /DHT node [0-9a-f]{40} on udp:\/\//.test(n.output()) ? true : undefined,
    );
    n.child.kill('SIGINT');
    expect(await n.exited).toBe(0);
    const d = start(bin, ['demo', '--trackerless', '--peers', '4', '--timeout', '60s'], { cwd: empty });
    expect(await d.exited, d.output().slice(-2000)).toBe(0);
    expect(d.output()).toContain('Trackerless: the peers found each other through the DHT');
  }, 90_000);

  it('runs `swarmshare demo --peers 4` to completion from an empty folder', async () => {
    const d = start(bin, ['demo', '--peers', '4', '--timeout', '60s'], { cwd: empty });
    expect(await d.exited, d.output().slice(-2000)).toBe(0);
    expect(d.output()).toContain('Every peer has a verified copy.');
  }, 90_000);

  it('runs the daemon and adds a torrent with the installed CLI; it seeds the file already there; its web UI and RPC answer', async () => {
    const data = join(tmp, 'data');
    await mkdir(data);
    await writeFile(join(data, 'p.bin'), Buffer.alloc(200_000, 9));
    const made = start(bin, ['create', join(data, 'p.bin'), '-o', join(tmp, 'p.torrent')], { cwd: empty });
    expect(await made.exited).toBe(0);
    const port = await freePort();
    const api = `http://127.0.0.1:${port}`;
    const d = start(
      bin,
      [
        'daemon',
        '--state',
        join(tmp, 'state'),
        '--download-dir',
        data,
        '--api-port',
        String(port),
        '--no-dht',
      ],
      { cwd: empty },
    );
    await waitFor('the daemon', () => (d.output().includes('API:') ? true : undefined), 20_000);
    const add = start(bin, ['add', join(tmp, 'p.torrent'), '--api', api], { cwd: empty });
    expect(await add.exited, add.output()).toBe(0);
    await waitFor(
      'p.bin seeding',
      () => {
        const ls = start(bin, ['ls', '--api', api], { cwd: empty });
        return ls.exited.then((code) =>
          code === 0 && /seeding\s+100\.0%.*p\.bin/.test(ls.output()) ? true : undefined,
        );
      },
      20_000,
      300,
    );
    // Its web UI and the files it loads, from the package.
    const ui = await fetch(`${api}/`);
    expect(ui.status).toBe(200);
    const html = await ui.text();
    expect(html).toContain('/webui/app.js');
    for (const asset of ['/webui/app.js', '/webui/style.css', '/shared/grid.js', '/shared/grid.css']) {
      const r = await fetch(`${api}${asset}`);
      expect(r.status, asset).toBe(200);
      expect((await r.text()).length, asset).toBeGreaterThan(100);
    }
    // Transmission's RPC answers its handshake.
    const rpc = await fetch(`${api}/transmission/rpc`, { method: 'POST', body: '{"method":"session-get"}' });
    expect(rpc.status).toBe(409);
    expect(rpc.headers.get('x-transmission-session-id')).toBeTruthy();
    d.child.kill('SIGTERM');
    expect(await d.exited).toBe(0);
  }, 60_000);
});
