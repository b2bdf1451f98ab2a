import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * The architecture, checked (docs/architecture.md): the protocol logic knows no sockets, files,
 * clock or randomness; imports between folders run one way, down the layers; no import circle.
 */

/** Each folder's layer: a folder may import only from folders on lower layers (and itself). */
const LAYER: Record<string, number> = {
  core: 0,
  wire: 1,
  swarm: 2,
  tracker: 2,
  dht: 2,
  storage: 2,
  net: 3,
  node: 4,
  sim: 4,
  'tracker-server': 4,
  dashboard: 5,
  session: 5,
  api: 6,
  demo: 6,
  cli: 7,
};
const PURE = ['core', 'wire', 'swarm', 'tracker', 'dht'];
const FORBIDDEN = [
  /from 'node:(net|http|https|fs|fs\/promises|dgram|child_process|worker_threads|timers|crypto)'/,
  /\bDate\.now\(/,
  /\bMath\.random\b/,
  /\bperformance\.now\(/,
  /\bsetTimeout\(|\bsetInterval\(/,
  /\bconsole\.log\(/,
];

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

/** Every relative import of `file` (value and type imports, and re-exports), as source paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/g)) {
    out.push(normalize(join(dirname(file), (m[1] as string).replace(/\.js$/, '.ts'))));
  }
  return out;
}

const folderOf = (file: string) => relative('src', file).split('/')[0] as string;

const files = sourceFiles('src');
const graph = new Map(files.map((f) => [f, importsOf(f)]));

describe('architecture', () => {
  it('knows every folder under src/ and its layer', () => {
    const folders = new Set(files.map(folderOf));
    expect([...folders].sort()).toEqual(Object.keys(LAYER).sort());
  });

  for (const dir of PURE) {
    it(`src/${dir} imports no I/O and reads no real clock, timer or randomness`, () => {
      const inDir = files.filter((f) => folderOf(f) === dir);
      expect(inDir.length).toBeGreaterThan(0);
      for (const f of inDir) {
        const text = readFileSync(f, 'utf8');
        for (const rule of FORBIDDEN) expect(text, `${f} matches ${rule}`).not.toMatch(rule);
      }
    });
  }

  it("src/net is the peer's side: the tracker server's I/O (HTTP framework, Redis, metrics) lives in src/tracker-server", () => {
    const serverSide =
      /from '(fastify|@fastify\/[a-z-]+|ioredis|prom-client)'|\bcreateServer\b[^\n]*from 'node:http'/;
    const net = files.filter((f) => folderOf(f) === 'net');
    expect(net.length).toBeGreaterThan(5);
    for (const f of net) expect(readFileSync(f, 'utf8'), f).not.toMatch(serverSide);
    const server = files.filter((f) => folderOf(f) === 'tracker-server');
    expect(server.some((f) => serverSide.test(readFileSync(f, 'utf8')))).toBe(true);
  });

  it('functions a screen or two long and files under 500 lines', () => {
    const long = files.flatMap((f) => longFunctions(f, MAX_FUNCTION_LINES));
    expect(long).toEqual([]);
    const big = files
      .map((f) => [f, readFileSync(f, 'utf8').split('\n').length - 1] as const)
      .filter(([, n]) => n > MAX_FILE_LINES)
      .map(([f, n]) => `${f}: ${n} lines`);
    expect(big).toEqual([]);
    // The measure itself finds a long function.
    const sample = `function f() {\n${'  x();\n'.repeat(MAX_FUNCTION_LINES)}}\n`;
    expect(functionLengths('sample.ts', sample)).toEqual([
      { name: 'f', line: 1, lines: MAX_FUNCTION_LINES + 2 },
    ]);
  });

  it('imports run down the layers: no folder imports from its own layer or above', () => {
    expect(upwardImports(graph)).toEqual([]);
  });

  it('every relative import names a file that exists', () => {
    const missing = [...graph].flatMap(([f, deps]) =>
      deps.filter((d) => !graph.has(d)).map((d) => `${f} -> ${d}`),
    );
    expect(missing).toEqual([]);
  });

  it('has no import circle between files', () => {
    expect(circles(graph)).toEqual([]);
  });

  it('the checks catch what they look for: an upward import, a sideways one, a circle', () => {
    expect(graph.get(join('src', 'cli', 'program.ts'))?.length ?? 0).toBeGreaterThan(3);
    const a = join('src', 'net', 'a.ts');
    const b = join('src', 'dashboard', 'b.ts');
    const c = join('src', 'sim', 'c.ts');
    const d = join('src', 'node', 'd.ts');
    expect(
      upwardImports(
        new Map([
          [a, [b]],
          [b, []],
        ]),
      ),
    ).toEqual([`${a} -> ${b}`]);
    expect(
      upwardImports(
        new Map([
          [c, [d]],
          [d, []],
        ]),
      ),
    ).toEqual([`${c} -> ${d}`]);
    expect(
      upwardImports(
        new Map([
          [b, [a]],
          [a, []],
        ]),
      ),
    ).toEqual([]);
    expect(
      circles(
        new Map([
          [a, [b]],
          [b, [a]],
        ]),
      ),
    ).toHaveLength(1);
  });
});

/** Longest function (or method, or arrow function) allowed, in lines: about two screens. */
const MAX_FUNCTION_LINES = 120;
/** Longest file allowed: past it, a file holds more than one concept. */
const MAX_FILE_LINES = 500;

/** Every function-like node of a source text with its name, first line and length in lines. */
function functionLengths(file: string, text: string): { name: string; line: number; lines: number }[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: { name: string; line: number; lines: number }[] = [];
  const visit = (n: ts.Node) => {
    if (ts.isFunctionLike(n) && 'body' in n && n.body !== undefined) {
      const start = sf.getLineAndCharacterOfPosition(n.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(n.getEnd()).line;
      const named = (n as { name?: ts.Node }).name;
      const name =
        named !== undefined
          ? named.getText(sf)
          : ts.isVariableDeclaration(n.parent)
            ? n.parent.name.getText(sf)
            : '(anonymous)';
      out.push({ name, line: start + 1, lines: end - start + 1 });
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

function longFunctions(file: string, max: number): string[] {
  return functionLengths(file, readFileSync(file, 'utf8'))
    .filter((f) => f.lines > max)
    .map((f) => `${file}:${f.line} ${f.name}: ${f.lines} lines`);
}

function upwardImports(g: Map<string, string[]>): string[] {
  const wrong: string[] = [];
  for (const [f, deps] of g) {
    const from = folderOf(f);
    for (const d of deps) {
      const to = folderOf(d);
      if (to !== from && !((LAYER[to] as number) < (LAYER[from] as number))) wrong.push(`${f} -> ${d}`);
    }
  }
  return wrong;
}

function circles(g: Map<string, string[]>): string[] {
  const state = new Map<string, 'open' | 'done'>();
  const found: string[] = [];
  const visit = (f: string, path: string[]): void => {
    if (state.get(f) === 'done') return;
    if (state.get(f) === 'open') {
      found.push([...path.slice(path.indexOf(f)), f].join(' -> '));
      return;
    }
    state.set(f, 'open');
    for (const d of g.get(f) ?? []) visit(d, [...path, f]);
    state.set(f, 'done');
  };
  for (const f of g.keys()) visit(f, []);
  return found;
}
