import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERRORS, type ErrorCode, type ErrorInfo } from '../src/core/errors.js';

/** docs/errors.md lists exactly the codes of the error table, with their consequences, and the code raises each. */

/** What docs/errors.md must say follows from `code`. */
function consequence(code: ErrorCode): string {
  const e: ErrorInfo = ERRORS[code];
  switch (e.layer) {
    case 'tracker':
      return `HTTP ${e.http}`;
    case 'link':
      return e.ban
        ? 'link closed; peer banned'
        : e.redial
          ? 'link closed; may be dialled again'
          : 'link closed; address not dialled again';
    case 'client':
      return 'retried with backoff';
    default:
      return 'the command fails with the message';
  }
}

function docRows(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of readFileSync('docs/errors.md', 'utf8').split('\n')) {
    const m = /^\| `(ERR_[A-Z_]+)` \| ([^|]+) \|/.exec(line);
    if (m) {
      expect(rows.has(m[1] as string), `${m[1]} listed twice`).toBe(false);
      rows.set(m[1] as string, (m[2] as string).trim());
    }
  }
  return rows;
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('the error model', () => {
  const codes = Object.keys(ERRORS).sort();

  it('docs/errors.md lists exactly the codes of the table', () => {
    expect([...docRows().keys()].sort()).toEqual(codes);
  });

  it('docs/errors.md states each code’s consequence as the table does', () => {
    const rows = docRows();
    for (const code of codes) expect(rows.get(code), code).toBe(consequence(code as ErrorCode));
  });

  it('every code is raised somewhere in src/, and src/ raises no code outside the table', () => {
    const used = new Set<string>();
    for (const f of sources('src')) {
      if (f === join('src', 'core', 'errors.ts')) continue;
      for (const m of readFileSync(f, 'utf8').matchAll(/'(ERR_[A-Z_]+)'/g)) used.add(m[1] as string);
    }
    expect([...used].sort()).toEqual(codes);
  });

  it('link codes are the only ones that close links; tracker codes all have an HTTP status', () => {
    for (const code of codes) {
      const e: ErrorInfo = ERRORS[code as ErrorCode];
      expect(e.layer === 'tracker', code).toBe(typeof e.http === 'number');
      expect(e.layer === 'link', code).toBe(typeof e.ban === 'boolean' && typeof e.redial === 'boolean');
      expect(!(e.ban && e.redial), `${code} both bans and allows redial`).toBe(true);
    }
  });
});
