import { randomFillSync } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';

/**
 * `size` random bytes at `path`, on disk before anything is measured (otherwise the kernel writes
 * the file back in the middle of the runs, and whichever runs then pays for it).
 */
export function writeRandomFile(path: string, size: number): void {
  const fd = openSync(path, 'w');
  const chunk = Buffer.allocUnsafe(16 * 2 ** 20);
  for (let left = size; left > 0; left -= chunk.length) {
    randomFillSync(chunk);
    writeSync(fd, chunk, 0, Math.min(chunk.length, left));
  }
  fsyncSync(fd);
  closeSync(fd);
}
