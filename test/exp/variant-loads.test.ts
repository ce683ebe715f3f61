// `pipe exp run` loads every variant as a whole pipeline before anything runs, all of them over the files the
// command read and parsed once (engine/dsl/files.ts ParsedFiles; the experiments' variants are made once per parsed
// node, engine/dsl/experiments.ts). What each variant's load says must be what a load of its own says: a value that
// breaks a stage is exit 2 naming that variant with the same located error `pipe run -n -S` gives, the variants
// loaded around it are unaffected, and a valid variant's stage keys are those `pipe run -n -S` computes.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { events, runPipe, workspace, type Ws } from '../engine/helpers.js';

// Two ways for a variant to break a stage, in two files: `scale: 0` its cpus (p.yaml), a `tag` leading out of the
// workspace the report's out (part.yaml). The `rates` experiment's grid reads a param that the `empties` experiment
// sets: its values depend on each variant's params, so each variant's load makes it anew.
const PIPELINE = `name: mixed
params: {scale: 1, tag: base, rates: [0.1, 0.2]}
include: [part.yaml]
experiments:
  mixed:
    grid: {scale: [1, 0, 2], tag: [a, ../up]}
  ok:
    list:
      - {scale: 1, tag: a}
      - {scale: 2, tag: b}
      - {scale: 0.5}
  rates:
    grid: {scale: \${params.rates}}
  empties:
    list:
      - {rates: [0.3]}
      - {rates: []}
stages:
  prep:
    cmd: seq 1 5 > out/prep.txt; cat in.txt >> out/prep.txt
    deps: [in.txt]
    outs: [out/prep.txt]
  train:
    cmd: awk -v s=\${params.scale} '{print $1*s}' out/prep.txt > out/model.txt; echo \${params.rates} >> out/model.txt
    deps: [out/prep.txt]
    outs: [out/model.txt]
    resources: {cpus: \${params.scale}}
`;
const PART = `stages:
  report:
    cmd: cat out/model.txt > \${params.tag}/report.txt
    deps: [out/model.txt]
    outs: [\${params.tag}/report.txt]
`;

let ws: Ws | undefined;
afterEach(() => {
  ws?.cleanup();
  ws = undefined;
});

/** The workspace, with a validated-pipeline cache of its own (no entry written by another test can answer a load). */
function mixedWorkspace(): { ws: Ws; env: NodeJS.ProcessEnv } {
  const w = workspace({ 'p.yaml': PIPELINE, 'part.yaml': PART, 'in.txt': '7\n', 'out/.keep': '' }, 'pipe-exp-loads-');
  return { ws: w, env: { PIPE_CACHE_HOME: join(w.dir, '.cache-home') } };
}

/** `variant NAME (overrides):` → the diagnostics printed under it. */
function problemsByVariant(stderr: string): Map<string, string> {
  const out = new Map<string, string>();
  let current: string | undefined;
  for (const line of stderr.split('\n')) {
    const head = /^variant (\S+) \((.*)\):$/.exec(line);
    if (head) {
      current = `${head[1]} (${head[2]})`;
      out.set(current, '');
    } else if (line.startsWith('pipe: ')) current = undefined;
    else if (current !== undefined) out.set(current, `${out.get(current)}${line}\n`);
  }
  return out;
}

/** What `pipe run -n -S ...` says is wrong with the pipeline under those params: its diagnostics, as printed. */
async function runDiagnostics(dir: string, env: NodeJS.ProcessEnv, sets: string[]): Promise<string> {
  const r = await runPipe(dir, ['run', 'p.yaml', '-n', ...sets.flatMap((s) => ['-S', s])], env);
  expect(r.code, r.stderr).toBe(2);
  return r.stderr.slice(0, r.stderr.indexOf('pipe: '));
}

describe('pipe exp run: each variant loaded on its own terms, over files parsed once', () => {
  it('a grid where some variants break a stage: exit 2 naming each of them with its located error (as `pipe run -n -S` gives it), the others not; nothing ran', async () => {
    let env: NodeJS.ProcessEnv;
    ({ ws, env } = mixedWorkspace());
    const r = await runPipe(ws.dir, ['exp', 'run', 'p.yaml', 'mixed', '-n'], env);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/pipe: a variant's params make the pipeline invalid; nothing was run\.\n$/);
    const problems = problemsByVariant(r.stderr);
    // The four variants with scale 0 or tag ../up, in the grid's order; scale=1/2 with tag=a are not named.
    expect([...problems.keys()].map((k) => k.replace(/^mixed-[0-9a-f]{6} /, ''))).toEqual([
      '(scale=1, tag=../up)',
      '(scale=0, tag=a)',
      '(scale=0, tag=../up)',
      '(scale=2, tag=../up)',
    ]);
    const cpus = /^p\.yaml:\d+:\d+: error: stage `train`, field `resources\.cpus`: `cpus` must be a number > 0, not `0`$/m;
    const outside = /^part\.yaml:\d+:\d+: error: stage `report`, field `outs\[0\]`: .*outside the workspace/m;
    const [up1, zeroA, zeroUp, up2] = [...problems.values()];
    expect(up1).toMatch(outside);
    expect(up1).not.toMatch(cpus);
    expect(zeroA).toMatch(cpus);
    expect(zeroA).not.toMatch(outside);
    expect(zeroUp).toMatch(cpus);
    expect(zeroUp).toMatch(outside);
    // Each variant's diagnostics are, line for line (source line and marker included), those of a load of its own.
    expect(zeroUp).toBe(await runDiagnostics(ws.dir, env, ['scale=0', 'tag=../up']));
    expect(up2).toBe(await runDiagnostics(ws.dir, env, ['scale=2', 'tag=../up']));
    expect(zeroA).toBe(await runDiagnostics(ws.dir, env, ['scale=0', 'tag=a']));
    expect(ws.exists('.pipe/exp')).toBe(false);

    // A param another experiment's values read: the variant that empties it breaks that experiment, located there.
    const e = await runPipe(ws.dir, ['exp', 'run', 'p.yaml', 'empties', '-n'], env);
    expect(e.code, e.stderr).toBe(2);
    const emptied = problemsByVariant(e.stderr);
    expect([...emptied.keys()]).toEqual([expect.stringMatching(/^empties-[0-9a-f]{6} \(rates=\[\]\)$/)]);
    const [rates] = [...emptied.values()];
    expect(rates).toMatch(/^p\.yaml:13:19: error: field `experiments\.rates\.grid\.scale`: grid axis `scale` is a non-empty list/m);
    expect(rates).toBe(await runDiagnostics(ws.dir, env, ['rates=[]']));
  });

  it("a valid variant's stage keys are those `pipe run -n -S` computes for its params", async () => {
    let env: NodeJS.ProcessEnv;
    ({ ws, env } = mixedWorkspace());
    const r = await runPipe(ws.dir, ['exp', 'run', 'p.yaml', 'ok'], env);
    expect(r.code, r.stderr).toBe(0);
    const expDir = join(ws.dir, '.pipe', 'exp', readdirSync(join(ws.dir, '.pipe', 'exp'))[0]!);
    const records = readdirSync(expDir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(readFileSync(join(expDir, f), 'utf8')) as { overrides: Record<string, unknown>; stages: Record<string, { key: string }> });
    expect(records.map((x) => x.overrides).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)))).toEqual([
      { scale: 0.5 },
      { scale: 1, tag: 'a' },
      { scale: 2, tag: 'b' },
    ]);
    const keysOf = new Set<string>();
    for (const rec of records) {
      const sets = Object.entries(rec.overrides).flatMap(([k, v]) => ['-S', `${k}=${JSON.stringify(v)}`]);
      const plan = await runPipe(ws.dir, ['run', 'p.yaml', '-n', '--json', ...sets], env);
      expect(plan.code, plan.stderr).toBe(0);
      // The variant's results are in the shared cache: the workspace's plan restores each stage, under its key.
      const planned = Object.fromEntries(events(plan.stdout).filter((x) => x.type === 'plan').map((x) => [x.stage, { action: x.action, key: x.key }]));
      const recorded = Object.fromEntries(Object.entries(rec.stages).map(([s, x]) => [s, { action: 'restore', key: x.key }]));
      expect(planned).toEqual(recorded);
      keysOf.add(rec.stages.train!.key);
    }
    expect(keysOf.size).toBe(3); // three params sets, three trainings
  });
});

describe('a variant that sets a param a cmd stage only lists under `params:`', () => {
  let w: Ws | undefined;
  afterEach(() => w?.cleanup());

  it('is exit 2 naming the variant: its command reads the params file, which the variant does not change', async () => {
    w = workspace({
      'p.yaml': 'name: lst\nparams_files: [params.yaml]\nexperiments:\n  lrs:\n    grid: {lr: [0.001, 0.5]}\nstages:\n  t:\n    cmd: grep lr params.yaml > model.txt\n    params: [lr]\n    outs: [model.txt]\n',
      'params.yaml': 'lr: 0.001\n',
    });
    const r = await runPipe(w.dir, ['exp', 'run', 'p.yaml', 'lrs']);
    // Before: both variants ran the same command on the same file, and their records said lr=0.001 and lr=0.5.
    expect(r.code, r.stdout + r.stderr).toBe(2);
    expect(r.stderr).toMatch(/variant lrs-\w+ \(lr=0\.5\):\n.*p\.yaml:9:14: error: stage `t`, field `params`: `params` lists `lr`, which the command reads from a file itself, but -S lr=0\.5 sets it for pipe only/);
    expect(r.stderr).not.toMatch(/lr=0\.001\):/);
    expect(readdirSync(w.dir)).not.toContain('model.txt');
  });
});
