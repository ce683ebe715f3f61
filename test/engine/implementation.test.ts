// Computed implementation keys (issue 10.1/10.2): a built-in kind's key covers exactly the import closure of its
// compiled run module (plus the runner, the stage API, workers and stages/lib helpers it reaches) and nothing else
// of dist/. Run against a private copy of dist/ (other suites use the real one at the same time).
import { appendFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from './helpers.js';
import type * as KindsModule from '../../engine/kinds.js';
import type * as StateModule from '../../cache/state.js';

let copy: string;
let kinds: typeof KindsModule;
let state: Awaited<ReturnType<typeof StateModule.openHashState>>;

beforeAll(async () => {
  copy = mkdtempSync(join(tmpdir(), 'pipe-impl-'));
  cpSync(join(repoRoot, 'dist'), join(copy, 'dist'), { recursive: true, filter: (src) => !src.endsWith('.map') });
  cpSync(join(repoRoot, 'package.json'), join(copy, 'package.json'));
  symlinkSync(join(repoRoot, 'node_modules'), join(copy, 'node_modules'));
  kinds = (await import(pathToFileURL(join(copy, 'dist/engine/kinds.js')).href)) as typeof KindsModule;
  const st = (await import(pathToFileURL(join(copy, 'dist/cache/state.js')).href)) as typeof StateModule;
  // No racy window: a file edited within the same second must still be re-read.
  state = await st.openHashState(join(copy, 'hashstate'), { racyWindowMs: 60_000 });
  await kinds.loadKinds();
});
afterAll(() => rmSync(copy, { recursive: true, force: true }));

async function fingerprint(kind: string) {
  kinds.resetImplementationHashes();
  return kinds.kindFingerprint(kind, state);
}

async function implementation(kind: string) {
  kinds.resetImplementationHashes();
  return kinds.implementationHashes(kind, state);
}

describe('implementation closure', () => {
  it('synth/cxr reaches stages/lib/png.js through render.js and its worker through new URL(); paths are repo-relative', async () => {
    const f = await fingerprint('synth/cxr');
    const files = Object.keys(f.implementation);
    expect(files).toEqual(expect.arrayContaining(['dist/stages/synth/cxr/run.js', 'dist/stages/lib/png.js', 'dist/stages/synth/cxr/worker.js', 'dist/engine/runner.js', 'dist/engine/stage-api.js']));
    // preprocess/images does not reach the tfjs kernels
    expect(Object.keys((await fingerprint('preprocess/images')).implementation).some((p) => p.includes('/lib/tf/'))).toBe(false);
    expect(files.every((p) => p.startsWith('dist/'))).toBe(true);
  });

  it('every built-in kind: an edit of any closure file changes its fingerprint; an edit outside, or a leftover .js, does not', async () => {
    const all = kinds.knownKinds();
    expect(all.length).toBeGreaterThan(10);
    const before = new Map<string, Record<string, string | null>>();
    for (const k of all) before.set(k, await implementation(k));
    // A leftover compiled file in every kind's own folder (what an incremental build leaves after a source is deleted).
    for (const k of all) writeFileSync(join(copy, 'dist/stages', k, 'leftover.js'), 'export const x = 1;\n');
    for (const k of all) expect(await implementation(k), k).toEqual(before.get(k));

    const every = new Set<string>([...before.values()].flatMap((m) => Object.keys(m)));
    for (const file of every) {
      const abs = join(copy, file);
      const original = readFileSync(abs);
      appendFileSync(abs, '\n// an edit\n');
      try {
        for (const k of all) {
          const now = await implementation(k);
          if (file in before.get(k)!) {
            expect(now[file], `${k}: ${file} edited`).not.toBe(before.get(k)![file]);
            expect({ ...now, [file]: before.get(k)![file] }, `${k}: only ${file} changed`).toEqual(before.get(k));
          } else expect(now, `${k} must not depend on ${file}`).toEqual(before.get(k));
        }
      } finally {
        writeFileSync(abs, original);
      }
    }
  });

  it('the toolchain names Node, the platform and the packages the closure reaches, transitively', async () => {
    const train = (await fingerprint('train/classifier')).toolchain;
    expect(train.node).toBe(process.version);
    expect(train.platform).toBe(`${process.platform}-${process.arch}`);
    // Each package the code names, with a digest of its installed dependency tree (tfjs-core is in @tensorflow/tfjs's).
    expect(train.packages['@tensorflow/tfjs']).toMatch(/^\d+\.\d+\.\d+ tree [0-9a-f]{12}$/);
    expect(train.packages['@tensorflow/tfjs-backend-wasm']).toMatch(/^\d+\.\d+\.\d+ tree [0-9a-f]{12}$/);
    expect(train.packages['@tensorflow/tfjs-core']).toBeUndefined();
    expect(train.packages.exceljs).toBeUndefined();
    const echo = (await fingerprint('testing/echo')).toolchain;
    expect(echo.packages).toEqual({});
  });

  it('a manifest may list data files no import reaches, and worker entry points', async () => {
    const extra = mkdtempSync(join(tmpdir(), 'pipe-kinds-'));
    const dir = join(extra, 'local', 'k');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'manifest.js'), "export const manifest = { kind: 'local/k', description: '', with: {}, data: ['table.csv'], workers: ['w.ts'] };\n");
    writeFileSync(join(dir, 'run.js'), 'export async function run() {}\n');
    writeFileSync(join(dir, 'w.js'), "import './w-helper.js';\n");
    writeFileSync(join(dir, 'w-helper.js'), 'export {};\n');
    writeFileSync(join(dir, 'table.csv'), 'a,b\n');
    process.env.PIPE_KINDS_PATH = extra;
    try {
      // A fresh module instance reads PIPE_KINDS_PATH.
      const fresh = (await import(`${pathToFileURL(join(copy, 'dist/engine/kinds.js')).href}?extra`)) as typeof KindsModule;
      await fresh.loadKinds();
      const f = await fresh.kindFingerprint('local/k', state);
      expect(Object.keys(f.implementation).sort()).toEqual(
        ['PIPE_KINDS_PATH/local/k/run.js', 'PIPE_KINDS_PATH/local/k/table.csv', 'PIPE_KINDS_PATH/local/k/w-helper.js', 'PIPE_KINDS_PATH/local/k/w.js', 'dist/engine/runner.js', 'dist/engine/stage-api.js', 'dist/cache/atomic.js', 'dist/cache/read.js', 'dist/cache/dir.js', 'dist/cache/errors.js'].sort(),
      );
    } finally {
      delete process.env.PIPE_KINDS_PATH;
      rmSync(extra, { recursive: true, force: true });
    }
  });
});

describe('across processes (the closure memo in .pipe/kinds.json)', () => {
  it('an import added to a kind brings the imported file into its key; editing that file re-runs the stage', async () => {
    const { codes, pipe, reasons, statuses, workspace } = await import('./helpers.js');
    const w = workspace({ 'in.txt': 'x\n', 'p.yaml': 'name: k\nstages:\n  c:\n    uses: local/copy\n    with: {src: in.txt, out: out/c.txt}\n' });
    try {
      const dir = join(w.dir, 'kinds', 'local', 'copy');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'manifest.js'), "export const manifest = { kind: 'local/copy', description: '', with: { src: { type: 'path', role: 'dep', required: true, description: '' }, out: { type: 'path', role: 'out', required: true, description: '' } } };\n");
      writeFileSync(join(dir, 'helper.js'), "export const tag = 'h1';\n");
      const body = "export async function run(ctx) { writeFileSync(ctx.resolve(ctx.with.out), readFileSync(ctx.resolve(ctx.with.src), 'utf8') + tag); }\n";
      writeFileSync(join(dir, 'run.js'), `import { readFileSync, writeFileSync } from 'node:fs';\nconst tag = 'none';\n${body}`);
      const go = () => pipe(w.dir, ['run', 'p.yaml', '--json'], { PIPE_KINDS_PATH: join(w.dir, 'kinds') });
      expect(statuses(go().stdout).c).toBe('ran');
      expect(w.exists('.pipe/kinds.json')).toBe(true);
      expect(statuses(go().stdout).c).toBe('up-to-date');
      writeFileSync(join(dir, 'run.js'), `import { readFileSync, writeFileSync } from 'node:fs';\nimport { tag } from './helper.js';\n${body}`);
      let r = go();
      expect(statuses(r.stdout).c).toBe('ran');
      expect(codes(r.stdout).c).toEqual(['implementation-changed']);
      // The words name the files: the one added and the one edited.
      expect(reasons(r.stdout).c).toEqual(['implementation of local/copy changed: PIPE_KINDS_PATH/local/copy/helper.js added, PIPE_KINDS_PATH/local/copy/run.js']);
      expect(w.read('out/c.txt')).toBe('x\nh1');
      writeFileSync(join(dir, 'helper.js'), "export const tag = 'h2';\n");
      r = go();
      expect(reasons(r.stdout).c).toEqual(['implementation of local/copy changed: PIPE_KINDS_PATH/local/copy/helper.js']);
      expect(w.read('out/c.txt')).toBe('x\nh2');
    } finally {
      w.cleanup();
    }
  });
});
