import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { nodeHasher } from '../../src/net/system.js';
import { createTorrent } from '../../src/node/create-torrent.js';
import { PeerNode } from '../../src/node/peer-node.js';
import { systemPeerDeps } from '../../src/node/system-deps.js';

/** The peer driver uses the collaborators it is given, not the system's. */

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function seedDir() {
  const dir = await mkdtemp(join(tmpdir(), 'ss-deps-'));
  dirs.push(dir);
  const data = Buffer.alloc(100_000, 7);
  await writeFile(join(dir, 'f.bin'), data);
  const { meta } = await createTorrent(join(dir, 'f.bin'), { pieceLength: 32 * 1024 });
  return { dir, meta };
}

describe('PeerNode deps', () => {
  it('takes its peer id digits from the injected random bytes', () => {
    const deps = { ...systemPeerDeps(), randomBytes: (n: number) => new Uint8Array(n).fill(3) };
    const node = new PeerNode({ meta: {} as never, dir: '.', mode: 'seed' }, deps);
    expect(Buffer.from(node.peerId).toString('latin1')).toBe('-SS0001-333333333333');
  });

  it('checks its files with the injected hasher: one that disagrees makes a seed refuse to start', async () => {
    const { dir, meta } = await seedDir();
    const lying = { ...nodeHasher, sha1: () => new Uint8Array(20) };
    const node = new PeerNode(
      { meta, dir, mode: 'seed', trackers: [] },
      { ...systemPeerDeps(), hasher: lying },
    );
    await expect(node.start()).rejects.toThrow(/does not match the torrent: 4 of 4 pieces differ/);
    const honest = new PeerNode({ meta, dir, mode: 'seed', trackers: [] });
    await honest.start();
    expect(honest.core.complete).toBe(true);
    await honest.stop();
  });

  it('ticks on the injected timers, and stops them all on stop', async () => {
    const { dir, meta } = await seedDir();
    const running = new Set<() => void>();
    const timers = {
      after: (_ms: number, _fn: () => void) => {
        const c = () => running.delete(c);
        running.add(c);
        return c;
      },
      every: (_ms: number, _fn: () => void) => {
        const c = () => running.delete(c);
        running.add(c);
        return c;
      },
    };
    const node = new PeerNode({ meta, dir, mode: 'seed', trackers: [] }, { ...systemPeerDeps(), timers });
    await node.start();
    expect(running.size).toBeGreaterThan(0);
    await node.stop();
    expect(running.size).toBe(0);
  });
});
