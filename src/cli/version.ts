import { readFileSync } from 'node:fs';

/**
 * The package's version, from its package.json: two folders up both from the bundle (dist/cli/)
 * and from the source (src/cli/).
 */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}
