import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const PURE = ['core', 'wire', 'swarm', 'tracker'];
const FORBIDDEN = [
  /from 'node:(net|http|https|fs|fs\/promises|dgram|child_process|worker_threads|timers)'/,
  /\bDate\.now\(/,
  /\bMath\.random\(/,
  /\bsetTimeout\(|\bsetInterval\(/,
  /\bconsole\.log\(/,
];

describe('architecture: the protocol logic knows no sockets, files or clock', () => {
  for (const dir of PURE) {
    it(`src/${dir} imports no I/O and reads no real clock or randomness`, () => {
      const files = readdirSync(join('src', dir)).filter((f) => f.endsWith('.ts'));
      expect(files.length).toBeGreaterThan(0);
      for (const f of files) {
        const text = readFileSync(join('src', dir, f), 'utf8');
        for (const rule of FORBIDDEN) expect(text, `${dir}/${f} matches ${rule}`).not.toMatch(rule);
      }
    });
  }
});
