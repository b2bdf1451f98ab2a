import bencode from 'bencode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Bitfield } from '../../src/core/bitfield.js';
import { UdpTrackerClient } from '../../src/net/udp-tracker-client.js';
import { type Started, start, stopAll, waitFor } from '../support/proc.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { announceUrl, compactPeers, hashOf, peerIdOf } from '../support/tracker.js';

/**
 * Two `swarmshare tracker --store redis://...` processes on one real redis-server: a peer announced
 * at one is given by the other (HTTP and UDP); one killed with SIGKILL, the other still serves
 * its announce and JSON API peers;
 * Redis stopped, the tracker refuses clearly and stays up; Redis back, it serves again.
 */

const CLI = 'dist/cli/main.js';

interface Instance {
  proc: Started;
  url: string;
  udp: string;
}

async function instance(store: string): Promise<Instance> {
  const proc = start('node', [
    CLI,
    'tracker',
    '--port',
    '0',
    '--udp-port',
    '0',
    '--interval',
    '5',
    '--store',
    store,
    '--quiet',
  ]);
  // A failure says what the process printed.
  const said = (e: Error) => {
    throw new Error(`${e.message}; the tracker printed: ${proc.output()}`);
  };
  const url = await waitFor(
    'the listening line',
    () => /listening on (http:\/\/[0-9.:]+)/.exec(proc.output())?.[1],
    30_000,
  ).catch(said);
  const udp = await waitFor(
    'the UDP line',
    () => /UDP tracker on (udp:\/\/\S+)/.exec(proc.output())?.[1],
    30_000,
  ).catch(said);
  expect(proc.output()).toContain(`Swarms kept in ${store}`);
  return { proc, url, udp };
}

async function announce(t: Instance, n: number, left = 100) {
  const res = await fetch(
    `${t.url}${announceUrl({ infoHash: hashOf(77), peerId: peerIdOf(n), port: 7000 + n, left, ip: `10.0.0.${n}` })}`,
  );
  expect(res.status).toBe(200);
  return bencode.decode(Buffer.from(await res.arrayBuffer())) as Record<string, any>;
}

describe('tracker instances sharing one Redis', () => {
  let redis: TestRedis;
  let a: Instance;
  let b: Instance;
  beforeAll(async () => {
    redis = await startRedis();
    a = await instance(redis.url);
    b = await instance(redis.url);
  }, 70_000);
  afterAll(async () => {
    await stopAll();
    await redis?.dispose();
  });

  it('a peer announced at one instance is given by the other, over HTTP and UDP', async () => {
    const first = await announce(a, 1, 0);
    expect(first).toMatchObject({ complete: 1, incomplete: 0 });
    const second = await announce(b, 2);
    expect(second).toMatchObject({ complete: 1, incomplete: 1 });
    expect(compactPeers(second.peers)).toEqual(['10.0.0.1:7001']);
    // The same swarm through b's UDP tracker (BEP 15).
    const client = new UdpTrackerClient(
      b.udp,
      {
        infoHash: hashOf(77),
        peerId: Buffer.from(peerIdOf(3), 'latin1'),
        ip: '127.0.0.1',
        port: 7003,
        name: 'x',
        pieceCount: 1,
        length: 1,
      },
      'k3',
      { retransmitMs: 500 },
    );
    const u = await client.announce({
      uploaded: 0,
      downloaded: 0,
      left: 100,
      event: 'started',
      have: new Bitfield(1),
    });
    expect(u.peers.map((p) => `${p.ip}:${p.port}`).sort()).toEqual(['10.0.0.1:7001', '10.0.0.2:7002']);
    const scrape = bencode.decode(
      Buffer.from(
        await (
          await fetch(`${a.url}/scrape?info_hash=${escape(hashOf(77).toString('latin1'))}`)
        ).arrayBuffer(),
      ),
    ) as { files: Record<string, { complete: number; incomplete: number }> };
    expect(Object.values(scrape.files)[0]).toMatchObject({ complete: 1, incomplete: 2 });
    // Metrics on either instance show the whole store.
    const metrics = await (await fetch(`${b.url}/metrics`)).text();
    expect(metrics).toMatch(/swarmshare_tracker_peers \d+/);
    expect(Number(/swarmshare_tracker_peers (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(3);
  });

  it('an instance killed with SIGKILL loses nothing the other cannot serve', async () => {
    // A JSON API peer registered at a, just before a dies.
    const reg = await fetch(`${a.url}/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ peer_id: 'json-peer', port: 6500, files: { 'f.bin': [0, 2] } }),
    });
    expect(reg.status).toBe(200);
    a.proc.child.kill('SIGKILL');
    await a.proc.exited;
    const r = await announce(b, 4);
    expect(compactPeers(r.peers).sort()).toEqual(expect.arrayContaining(['10.0.0.1:7001', '10.0.0.2:7002']));
    const peers = (await (await fetch(`${b.url}/get_peers?file=f.bin`)).json()) as {
      peers: Record<string, { port: number; chunks: number[] }>;
    };
    expect(peers.peers['json-peer']).toMatchObject({ port: 6500, chunks: [0, 2] });
  });

  it('with Redis down, announces are refused at once with a clear reason; back up, they are served', async () => {
    await redis.stop();
    const t0 = Date.now();
    const down = await announce(b, 5);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(Buffer.from(down['failure reason']).toString()).toMatch(/tracker store unavailable/);
    // The process stays up: its health answers.
    expect((await fetch(`${b.url}/health`)).status).toBe(200);
    const metrics = await (await fetch(`${b.url}/metrics`)).text();
    expect(Number(/swarmshare_tracker_store_errors_total (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(
      1,
    );
    await redis.restart();
    // It reconnects by itself (the restarted Redis is empty: no persistence in this test).
    const back = await waitFor(
      'announces to be served again',
      async () => {
        const r = await announce(b, 6, 0);
        return r['failure reason'] === undefined ? r : undefined;
      },
      15_000,
      250,
    );
    expect(back).toMatchObject({ complete: 1 });
  }, 30_000);
});
