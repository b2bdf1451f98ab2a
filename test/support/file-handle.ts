import { open } from 'node:fs/promises';
import { onTestFinished } from 'vitest';

type Method = (...a: unknown[]) => Promise<unknown>;

/**
 * Puts `wrap(real)` in place of the real FileHandle method `name` for every handle (the store's
 * included) until the returned function is called, or the test ends. Tests watch the real calls
 * this way, or make one fail as a broken disk would.
 */
export async function patchFileHandle(name: string, wrap: (real: Method) => Method): Promise<() => void> {
  const probe = await open(process.execPath, 'r');
  const proto = Object.getPrototypeOf(probe) as Record<string, Method>;
  await probe.close();
  const real = proto[name] as Method;
  proto[name] = wrap(real);
  const restore = () => {
    proto[name] = real;
  };
  onTestFinished(restore);
  return restore;
}
