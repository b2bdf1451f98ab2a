import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, type Started, start, waitFor } from './proc.js';

/** A real redis-server (Debian's) on a free loopback port, no persistence, for one test file. */
export interface TestRedis {
  port: number;
  url: string;
  proc: Started;
  /** Stops it (SIGTERM by PID, SIGKILL after 5 s). */
  stop(): Promise<void>;
  /** Starts it again on the same port (after `stop`). */
  restart(): Promise<void>;
  /** Stops it for good and removes its folder. */
  dispose(): Promise<void>;
}

export async function startRedis(port?: number): Promise<TestRedis> {
  // A free port can be taken between our check and redis-server's bind (tests run in parallel):
  // then it exits at once, and we try another port (a few times).
  for (let attempt = 1; ; attempt++) {
    try {
      return await startRedisOn(port ?? (await freePort()));
    } catch (e) {
      if (port !== undefined || attempt >= 3) throw e;
    }
  }
}

async function startRedisOn(p: number): Promise<TestRedis> {
  const dir = await mkdtemp(join(tmpdir(), 'ss-redis-'));
  const launch = async () => {
    const proc = start('redis-server', [
      '--port',
      String(p),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ]);
    await waitFor('redis-server to accept connections', () => {
      if (proc.output().includes('Ready to accept connections')) return true;
      if (proc.child.exitCode !== null)
        throw new Error(`redis-server exited on port ${p}: ${proc.output().slice(-300)}`);
      return undefined;
    }).catch(async (e: Error) => {
      proc.child.kill('SIGKILL');
      await rm(dir, { recursive: true, force: true }).catch(() => {});
      throw e;
    });
    return proc;
  };
  const r: TestRedis = {
    port: p,
    url: `redis://127.0.0.1:${p}`,
    proc: await launch(),
    async stop() {
      const c = r.proc.child;
      if (c.exitCode === null && c.signalCode === null) {
        const t = setTimeout(() => c.kill('SIGKILL'), 5000);
        c.kill('SIGTERM');
        await r.proc.exited;
        clearTimeout(t);
      }
    },
    async restart() {
      r.proc = await launch();
    },
    dispose: async () => {},
  };
  r.dispose = async () => {
    await r.stop();
    await rm(dir, { recursive: true, force: true }).catch(() => {});
  };
  return r;
}
