import { describe, expect, it } from 'vitest';
import { formatDiagnostic } from '../../engine/dsl/index.js';
import { load, loadErr } from './helpers.js';

describe('validation: every error at once, each at its line:col', () => {
  it('unknown keys, with a suggestion of the nearest known key', async () => {
    const e = await loadErr(`
name: x
stagse: {}
settings: {cache_dri: c, executor: local}
stages:
  s:
    cmd: run
    dpes: [a]
    outs: [{path: o, cahce: false}]
    resources: {cpu: 2, mem: 1G}
    retries: {count: 1, mem_factr: 2}
    slurm: {partiton: gpu}
  t:
    foreach: [a]
    cmd: run
    do: {cmd: "run \${item}", outs: ["t-\${item}"]}
`);
    expect(e.lines).toEqual([
      '3:1 unknown key `stagse` in the pipeline (did you mean `stages`?)',
      '4:12 unknown key `cache_dri` in `settings:` (did you mean `cache_dir`?)',
      '8:5 unknown key `dpes` in stage `s` (did you mean `deps`?)',
      '9:22 unknown key `cahce` in an entry of `outs:` (did you mean `cache`?)',
      '10:17 unknown key `cpu` in `resources:` (did you mean `cpus`?)',
      '11:25 unknown key `mem_factr` in `retries:` (did you mean `mem_factor`?)',
      '12:13 unknown key `partiton` in `slurm:` (did you mean `partition`?)',
      '15:5 unknown key `cmd` in stage `t` (with `foreach:`, stage fields go under `do:`)',
    ]);
    expect(e.errors.find((d) => d.message.includes('dpes'))).toMatchObject({ stage: 's', field: 'dpes' });
  });

  it('wrong types and bad values', async () => {
    const e = await loadErr(`
stages:
  s:
    cmd: 42
    deps: [{path: a}]
    outs: [o]
    resources: {cpus: many, mem: 8X, gpus: 0.5, time: soon}
    retries: -1
    always_run: "yes"
    executor: cloud
    watch: sometimes
    env: {1BAD: x}
  t: [not, a, mapping]
  u@v: {cmd: x}
`);
    expect(e.lines).toEqual([
      '4:10 `cmd` must be a non-empty string (or a list of them), not a number',
      '5:12 a dep is a path string (a trailing `/` for a directory), not a mapping',
      '7:23 `cpus` must be a number > 0, not `many`',
      '7:34 `mem: 8X` is not a memory size: write bytes or a number with K, M, G or T (e.g. `512M`, `8G`)',
      '7:44 `gpus` must be a whole number ≥ 0, not `0.5`',
      '7:55 `time: soon` is not a duration: write seconds, `90m`, `1h30m` or `01:30:00`',
      '8:14 `retries` must be a whole number ≥ 0 or `{count, mem_factor, time_factor}`, not a number',
      '9:17 `always_run` must be true or false, not a string',
      '10:15 `executor` must be `local` or `slurm`, not `cloud`',
      '11:12 `watch` must be `auto` or `manual`, not `sometimes`',
      '12:11 `1BAD` is not a valid environment variable name',
      '13:6 a stage must be a mapping (with `cmd:` or `uses:`), not a list',
      '14:3 stage name `u@v` may use only letters, digits, `_`, `.` and `-` (`@` is added by foreach/matrix)',
    ]);
    expect(e.errors.find((d) => d.message.startsWith('`mem'))).toMatchObject({ stage: 's', field: 'resources.mem' });
  });

  it('cmd and uses: both, neither; with: on a cmd stage', async () => {
    const e = await loadErr(`
stages:
  both: {cmd: x, uses: evaluate/fpr, outs: [a]}
  neither: {outs: [b]}
  withcmd: {cmd: x, with: {a: 1}, outs: [c]}
`);
    expect(e.lines).toEqual([
      '3:18 a stage has either `cmd:` or `uses:`, not both',
      '4:13 a stage needs `cmd:` (a shell command) or `uses:` (a built-in stage kind)',
      '5:21 `with:` configures a `uses:` stage; a `cmd:` stage has no `with:`',
    ]);
  });

  it('undefined variables point at the exact column of the `${`', async () => {
    const e = await loadErr(`
params: {lr: 0.1, model: {depth: 3}}
vars: {sets: [a]}
stages:
  s:
    cmd: train --lr \${params.lrr} --d \${params.model.dpth} \${vars.nope} \${item} \${foo.bar}
    outs: ["o-\${params.lr}", 'q-\${key}']
    env: {A: "x \${params.model.depth.z}"}
  t:
    cmd: |
      echo one
      echo \${params.missing} two
    outs: [t]
  u:
    cmd: echo \${a b} \${params.lr
    outs: [u]
`);
    expect(e.lines).toEqual([
      '6:21 undefined variable `${params.lrr}`: `params` has no `lrr` (did you mean `lr`?)',
      '6:39 undefined variable `${params.model.dpth}`: `params.model` has no `dpth` (did you mean `depth`?)',
      '6:60 undefined variable `${vars.nope}`: `vars` has no `nope`',
      '6:73 `${item}` is only defined inside the `do:` of a `foreach:` or `matrix:`',
      '6:81 undefined variable `${foo.bar}`: names start with `params.`, `vars.`, `item` or `key`',
      '7:33 `${key}` is only defined inside the `do:` of a `foreach:` over a mapping',
      '8:17 undefined variable `${params.model.depth.z}`: `params.model.depth` is `3`, not a mapping or list',
      '12:12 undefined variable `${params.missing}`: `params` has no `missing`',
      '15:15 malformed interpolation `${a b}`: expected a dotted name like `${params.lr}` or `${item.model}`',
      '15:22 unclosed `${` (write `$${` for a literal `${`)',
    ]);
    const r = e.errors[0]!;
    expect(r).toMatchObject({ stage: 's', field: 'cmd', span: { line: 6, col: 21, endLine: 6, endCol: 34 } });
  });

  it('a template error is reported once, not once per foreach item', async () => {
    const items = Array.from({ length: 50 }, (_, i) => `i${i}`).join(', ');
    const e = await loadErr(`
stages:
  s:
    foreach: [${items}]
    do:
      cmd: run \${item} \${params.nope}
      outs: [o/\${item}]
`);
    expect(e.lines).toEqual(['6:24 undefined variable `${params.nope}`: `params` has no `nope`']);
    expect(e.errors[0]!.stage).toBe('s@i0');
  });

  it('two stages writing one path, an out inside another out, outs outside the workspace', async () => {
    const e = await loadErr(`
stages:
  a: {cmd: x, outs: [data/, shared.csv]}
  b: {cmd: x, outs: [data/sub/file.csv]}
  c: {cmd: x, outs: [shared.csv, /etc/passwd, ../up.txt, x/../../up2]}
  d: {cmd: x, outs: [same, same/]}
`);
    expect(e.lines).toEqual([
      '4:22 out `data/sub/file.csv` is inside `data/`, which stage `a` writes (one stage owns a directory and all that is in it) [pipeline.yaml:3:22]',
      '5:22 `shared.csv` is written by two stages: `a` and `c` (each path has one writer) [pipeline.yaml:3:29]',
      '5:34 out `/etc/passwd` is outside the workspace (.); outs must be workspace-relative paths (no absolute paths, no `..` escaping it)',
      '5:47 out `../up.txt` is outside the workspace (.); outs must be workspace-relative paths (no absolute paths, no `..` escaping it)',
      '5:58 out `x/../../up2` is outside the workspace (.); outs must be workspace-relative paths (no absolute paths, no `..` escaping it)',
      '6:28 out `same/` is listed twice',
    ]);
  });

  it('deps nobody writes that do not exist; a stage reading its own out; stage params that are not params', async () => {
    const e = await loadErr(`
params: {lr: 1}
stages:
  a: {cmd: x, deps: [input.csv, data/raw/, script.py, table/], outs: [outs/a.txt]}
  b: {cmd: x, deps: [outs/a.txt, outs/b.txt], outs: [outs/b.txt], params: [lr, lrr]}
  c: {cmd: x, deps: [outs/a.tx], outs: [c]}
`, { 'script.py': '', 'data/': '', table: '' });
    expect(e.lines).toEqual([
      '4:22 dep `input.csv` does not exist and no stage writes it (looked for input.csv)',
      '4:33 dep `data/raw/` does not exist and no stage writes it (looked for data/raw/)',
      '4:55 dep `table/` names a folder (it ends in /), but table is a file: drop the trailing / to depend on the file',
      '5:34 `outs/b.txt` is both a dep and an out of this stage (a stage cannot read what it writes)',
      '5:80 `params` names `lrr`, which is not a param (did you mean `lr`?)',
      '6:22 dep `outs/a.tx` does not exist and no stage writes it (did you mean `outs/a.txt`, written by `a`?) (looked for outs/a.tx)',
    ]);
  });

  it('a dep directory holding the stage\'s own out, or a dep inside its own out directory', async () => {
    const e = await loadErr(`
stages:
  a: {cmd: x, deps: [data/], outs: [data/processed/]}
  b: {cmd: x, deps: [work/in.txt], outs: [work/]}
`, { 'data/': '', 'work/in.txt': '' });
    expect(e.lines).toEqual([
      "3:22 dep `data/` contains this stage's own out `data/processed/`, so every run would change its own input; list the input files or subdirectories separately",
      "4:22 dep `work/in.txt` is inside this stage's own out `work/`, which is cleared before the stage runs; list the input files or subdirectories separately",
    ]);
  });

  it('cycles print their path', async () => {
    const e = await loadErr(`
stages:
  prep: {cmd: x, deps: [eval.json], outs: [prep.csv]}
  train: {cmd: x, deps: [prep.csv], outs: [model/]}
  eval: {cmd: x, deps: [model/weights.bin], outs: [eval.json]}
  ok: {cmd: x, deps: [prep.csv], outs: [ok]}
`);
    expect(e.lines).toEqual([
      '4:26 dependency cycle: `prep` → `train` → `eval` → `prep` (`train` reads `prep.csv` written by `prep`; ' +
        '`eval` reads `model/weights.bin` written by `train`; `prep` reads `eval.json` written by `eval`)',
    ]);
  });

  it('uses: unknown kind, unknown/missing/mistyped with fields, enum values', async () => {
    const e = await loadErr(`
stages:
  a:
    uses: evaluate/fp
    with: {model: m/}
  b:
    uses: evaluate/fpr
    with:
      model: m/
      split: tset
      threshold: high
      seeds: 1.5
      tags: [a, 1]
      verbose: "no"
      spec: [1]
      extra_inputs: [x, 3]
      modle: m/
  c:
    uses: train/cnn
`, { 'm/': '' });
    expect(e.lines).toEqual([
      '4:11 unknown stage kind `evaluate/fp` (a kind `x/y` lives in stages/x/y/)',
      '8:5 `evaluate/fpr` needs `with.out` (path): Result JSON.',
      '10:14 `split` must be one of `test`, `calib`, not `tset` (did you mean `test`?)',
      '11:18 `threshold` must be a number, not a string `high`',
      '12:14 `seeds` must be a whole number, not a number',
      '13:13 `tags` must be a list of strings, not a list',
      '14:16 `verbose` must be true or false, not a string `no`',
      '15:13 `spec` must be a mapping, not a list',
      '16:21 `extra_inputs` must be a list of paths, not a list',
      '17:7 `evaluate/fpr` has no field `modle` (did you mean `model`?); its fields: `model`, `split`, `out`, `threshold`, `seeds`, `extra_inputs`, `tags`, `verbose`, `spec`, `label`',
      '19:11 `train/cnn` needs `with.data` (path): Dataset dir.',
      '19:11 `train/cnn` needs `with.out` (path): Model dir.',
      '19:11 `train/cnn` needs `with.epochs` (integer): Epochs.',
    ]);
    expect(e.errors[0]).toMatchObject({ stage: 'a', field: 'uses' });
    const k = await loadErr(`stages:\n  a: {uses: evaluate/fp, with: {}}\n`, {}, { knownKinds: () => ['evaluate/fpr', 'train/cnn'] });
    expect(k.lines).toEqual(['2:13 unknown stage kind `evaluate/fp` (did you mean `evaluate/fpr`?) (a kind `x/y` lives in stages/x/y/)']);
  });

  it('foreach/matrix shape errors and duplicate expanded names', async () => {
    const e = await loadErr(`
vars: {s: abc}
stages:
  a:
    foreach: \${vars.s}
    do: {cmd: x, outs: [a]}
  b:
    matrix: {m: [1], n: 2}
    do: {cmd: x, outs: [b]}
  c:
    foreach: [x, x]
    do: {cmd: "x \${item}", outs: ["c-\${item}"]}
  d:
    foreach: [1]
  e:
    cmd: x
    do: {cmd: y}
`);
    expect(e.lines).toEqual([
      '5:14 `foreach:` needs a list or a mapping, got a string',
      '8:25 matrix axis `n` must be a list, got a number',
      '10:3 two stages are named `c@x` after expansion (foreach/matrix items must give distinct names; give object items a `name:` field)',
      '13:3 `foreach:` needs a `do:` with the stage template',
      '17:5 `do:` belongs to a `foreach:` or `matrix:` stage',
    ]);
  });

  it('a workdir that does not exist', async () => {
    const e = await loadErr(`workdir: ../nope\nstages: {}\n`);
    const parent = e.dir.replace(/\/[^/]+$/, '');
    expect(e.lines).toEqual([`1:10 workdir \`../nope\` does not exist (${parent}/nope); it is relative to the pipeline file's folder`]);
  });

  it('YAML syntax errors have positions', async () => {
    const e = await loadErr(`stages:\n  a: {cmd: x\n  b: [\n`);
    expect(e.errors.length).toBeGreaterThan(0);
    expect(e.errors[0]!.span!.line).toBeGreaterThanOrEqual(2);
  });

  it('recursive aliases and alias bombs are errors, not crashes', async () => {
    const rec = await loadErr(`a: &a [x, *a]\nstages: {}\n`);
    expect(rec.lines[0]).toMatch(/^\d+:\d+ YAML nested more than 100 levels deep/);
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 8; i++) bomb.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(10).fill(`*${String.fromCharCode(96 + i)}`).join(', ')}]`);
    const b = await loadErr(bomb.join('\n') + '\nstages: {}\n');
    expect(b.lines[0]).toMatch(/more than 10000 alias expansions/);
  });

  it('duplicate keys are errors', async () => {
    const e = await loadErr(`stages:\n  a: {cmd: x, outs: [a]}\n  a: {cmd: y, outs: [b]}\n`);
    expect(e.lines).toEqual(['3:3 Map keys must be unique']);
  });
});

describe('rendered diagnostics', () => {
  it('shows file:line:col, stage and field, the YAML line and a marker under the culprit', async () => {
    const e = await loadErr(`
params: {lr: 0.001}
stages:
  train:
    foreach: [vindr_cxr, padchest]
    do:
      cmd: node train.js --lr \${params.lrr} --out models/\${item}
      outs: [models/\${item}/]
      resources: {gpus: 1, mem: 8X}
`);
    expect(e.rendered).toBe(
      [
        'pipeline.yaml:7:31: error: stage `train@vindr_cxr`, field `cmd`: undefined variable `${params.lrr}`: `params` has no `lrr` (did you mean `lr`?)',
        ' 7 |       cmd: node train.js --lr ${params.lrr} --out models/${item}',
        '   |                               ^~~~~~~~~~~~~',
        // Reported once for the template, not once per item.
        'pipeline.yaml:9:33: error: stage `train@vindr_cxr`, field `resources.mem`: `mem: 8X` is not a memory size: write bytes or a number with K, M, G or T (e.g. `512M`, `8G`)',
        ' 9 |       resources: {gpus: 1, mem: 8X}',
        '   |                                 ^~',
      ].join('\n'),
    );
  });

  it('a two-digit line number widens the gutter; color adds ANSI codes; no span gives a plain line', async () => {
    const e = await loadErr(`${'\n'.repeat(9)}stages:\n  a: {cmd: x, outs: [/abs]}\n`);
    expect(e.rendered).toBe(
      [
        'pipeline.yaml:11:22: error: stage `a`, field `outs[0]`: out `/abs` is outside the workspace (.); outs must be workspace-relative paths (no absolute paths, no `..` escaping it)',
        ' 11 |   a: {cmd: x, outs: [/abs]}',
        '    |                      ^~~~',
      ].join('\n'),
    );
    const colored = formatDiagnostic(e.errors[0]!, { color: true });
    expect(colored).toContain('\x1b[1;31merror\x1b[0m');
    expect(formatDiagnostic({ severity: 'warning', message: 'hm' })).toBe('warning: hm');
  });

  it('warnings do not fail a load; they come with errors when there are any', async () => {
    const r = await load(`stages:\n  a: {foreach: [], do: {cmd: x}}\n  b: {cmd: x, outs: [b]}\n`);
    expect(r.ok).toBe(true);
    const { pipelineWarnings } = await import('../../engine/dsl/index.js');
    if (r.ok) expect(pipelineWarnings(r.pipeline).map((d) => d.message)).toEqual(['`foreach:` over an empty list: no stages']);
  });
});
