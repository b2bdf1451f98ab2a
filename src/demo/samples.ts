import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeDir } from '../storage/make-dir.js';

/**
 * The generated sample set: text files a person can open, of a known number of chunks.
 * file2.txt has 20 chunks, like the original project's file2.txt.
 */
export const SAMPLE_CHUNKS: Record<string, number> = { 'file1.txt': 10, 'file2.txt': 20, 'file3.txt': 40 };
export const DEFAULT_SAMPLE = 'file2.txt';

/** Deterministic text of exactly `size` bytes. */
export function sampleText(name: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let at = 0;
  for (let line = 1; at < size; line++) {
    const text = `${name} line ${String(line).padStart(7, '0')}: every peer ends with these same bytes, checked by SHA-256.\n`;
    at += out.write(text, at, 'latin1');
  }
  return out;
}

export async function writeSamples(dir: string, pieceSize: number, sizeOverride?: number): Promise<string[]> {
  await makeDir(dir);
  const paths: string[] = [];
  for (const [name, chunks] of Object.entries(SAMPLE_CHUNKS)) {
    const size = name === DEFAULT_SAMPLE && sizeOverride !== undefined ? sizeOverride : chunks * pieceSize;
    const p = join(dir, name);
    await writeFile(p, sampleText(name, size));
    paths.push(p);
  }
  return paths;
}
