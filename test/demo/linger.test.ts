import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { start, stopAll, waitFor } from '../support/proc.js';

const CLI = 'dist/cli/main.js';

describe('swarmshare demo --linger', () => {
  let dir = '';
  afterAll(async () => {
    await stopAll();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('keeps the finished swarm, its dashboard and its report up until Ctrl-C', async () => {
    dir = await mkdtemp(join(tmpdir(), 'ss-linger-'));
    const p = start('node', [CLI, 'demo', '--peers', '3', '--out', join(dir, 'swarm'), '--linger', '120s']);
    await waitFor('the demo to finish and linger', () => p.output().includes('Dashboard stays up'), 60_000);
    const url = /Dashboard: (http:\/\/\S+?)\/\s/.exec(p.output())?.[1];
    expect(url).toBeDefined();
    // The page, the finished swarm (every peer a seed) and the run's report.
    expect((await fetch(`${url}/`)).status).toBe(200);
    const { report } = (await (await fetch(`${url}/api/report`)).json()) as { report: any };
    expect(report).toMatchObject({ success: true });
    expect(report.peers).toHaveLength(3);
    const { swarms } = (await (await fetch(`${url}/api/swarms`)).json()) as { swarms: any[] };
    expect(swarms[0]).toMatchObject({ seeds: 3, leechers: 0 });
    // Still up a few seconds later; Ctrl-C ends it, with the run's exit code.
    await new Promise((r) => setTimeout(r, 1500));
    expect((await fetch(`${url}/api/report`)).status).toBe(200);
    const t0 = Date.now();
    p.child.kill('SIGINT');
    expect(await p.exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
  }, 90_000);

  it('without --linger (and no terminal) exits as soon as the swarm completes', async () => {
    if (!dir) dir = await mkdtemp(join(tmpdir(), 'ss-linger-'));
    const p = start('node', [CLI, 'demo', '--peers', '3', '--out', join(dir, 'swarm2')]);
    expect(await p.exited).toBe(0);
    expect(p.output()).not.toContain('Dashboard stays up');
  }, 60_000);
});
