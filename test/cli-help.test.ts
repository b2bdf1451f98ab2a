import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { buildCli } from '../src/cli/program.js';

describe('help', () => {
  it('shows every default as it is written on the command line (sizes, rates, times), never a parsed number', () => {
    const program = buildCli();
    const helps = program.commands.map((c) => c.helpInformation().replace(/\s+/g, ' '));
    const all = helps.join('\n');
    // A size, rate or time shown as the bare number it was parsed into (262144, 120000); an empty
    // list shown as [].
    expect(all).not.toMatch(/<(size|rate|time)> [^(]*\(default: [0-9]+\)/);
    expect(all).not.toMatch(/\(default: \[\]\)/);
    expect(all).toContain('--piece-size <size> chunk size (default: 256KiB)');
    expect(all).toContain('--upload-rate <rate> upload cap per peer (default: 4MiB/s)');
    expect(all).toContain('--timeout <time> give up after this long (default: 120s)');
  });
});

describe('--version', () => {
  it("prints the package's version, as -V too", async () => {
    const { version } = JSON.parse(await readFile('package.json', 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = spawnSync(process.execPath, ['dist/cli/main.js', flag], {
        encoding: 'utf8',
        timeout: 10_000,
      });
      expect(r.status).toBe(0);
      expect(r.stdout.trim()).toBe(version);
    }
  });
});
