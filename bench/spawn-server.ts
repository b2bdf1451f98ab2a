import { spawn } from 'node:child_process';

/** A server process a benchmark started: its port (read from its output), its pid, and how to stop it. */
export interface Server {
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/**
 * Starts `cmd argv` and resolves once its standard output matches `portPattern` (the first group
 * is the port); rejects if it exits first or says nothing matching within 20 s. `stop` sends
 * SIGTERM, then SIGKILL after 3 s.
 */
export function spawnServer(cmd: string, argv: string[], portPattern: RegExp, cwd?: string): Promise<Server> {
  return new Promise((resolveServer, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'inherit'], cwd });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start: ${out}`)), 20_000);
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const m = portPattern.exec(out);
      if (m) {
        clearTimeout(timer);
        resolveServer({
          port: Number(m[1]),
          pid: child.pid as number,
          stop: () =>
            new Promise((r) => {
              if (child.exitCode !== null) return r();
              child.once('exit', () => r());
              child.kill('SIGTERM');
              setTimeout(() => child.kill('SIGKILL'), 3000).unref();
            }),
        });
      }
    });
    child.once('exit', (code) => reject(new Error(`${cmd} exited with ${code}: ${out}`)));
  });
}
