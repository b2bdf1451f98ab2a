import { connect } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { start, stopAll, waitFor } from '../support/proc.js';

const CLI = 'dist/cli/main.js';

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port }, () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

describe('swarmshare tracker (CLI, real HTTP)', () => {
  afterAll(() => stopAll());

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`serves the API over HTTP, logs the original lines, and stops cleanly on ${signal}`, async () => {
      const proc = start('node', [CLI, 'tracker', '--port', '0', '--interval', '5']);
      const url = await waitFor(
        'the listening line',
        () => /listening on (http:\/\/[0-9.:]+)/.exec(proc.output())?.[1],
      );
      const reg = await fetch(`${url}/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ peer_id: 'peer2', port: 6001, files: { 'file2.txt': [0, 1, 2] } }),
      });
      expect(reg.status).toBe(200);
      const peers = (await (await fetch(`${url}/get_peers?file=file2.txt`)).json()) as { peers: object };
      expect(Object.keys(peers.peers)).toEqual(['peer2']);
      const ann = await fetch(
        `${url}/announce?info_hash=${'%41'.repeat(20)}&peer_id=${'B'.repeat(20)}&port=7000&left=0`,
      );
      expect(ann.status).toBe(200);
      expect(Buffer.from(await ann.arrayBuffer()).toString('latin1')).toMatch(/^d8:completei1e/);
      await waitFor(
        'the log lines',
        () => proc.output().includes("Available peers for 'file2.txt':\npeer2: [0, 1, 2]") || undefined,
      );
      expect(proc.output()).toContain(
        "Peer registered: peer2 at 127.0.0.1:6001 with files: {'file2.txt': [0, 1, 2]}",
      );
      const port = Number(new URL(url).port);
      proc.child.kill(signal);
      expect(await proc.exited).toBe(0);
      expect(await portOpen(port)).toBe(false);
    });
  }

  it('rejects a bad option with a clear message and a non-zero exit', async () => {
    const proc = start('node', [CLI, 'tracker', '--port', 'abc']);
    expect(await proc.exited).not.toBe(0);
    expect(proc.output()).toMatch(/--port.*integer/);
  });
});
