import type { ChildProcess } from 'node:child_process';

/** Stops a benchmark's child process: `signal`, then SIGKILL after `killAfterMs`; waits for its exit. */
export async function stopChild(
  c: ChildProcess,
  signal: NodeJS.Signals = 'SIGTERM',
  killAfterMs = 5000,
): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const done = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill(signal);
  const t = setTimeout(() => c.kill('SIGKILL'), killAfterMs);
  await done;
  clearTimeout(t);
}
