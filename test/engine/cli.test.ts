// The explaining and housekeeping commands: --dry-run, status, why, targets/--force/--downstream, dag, metrics, gc.
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { events, pipe, pipeBin, statuses, workspace, type Ws } from './helpers.js';

let ws: Ws;
afterEach(() => ws?.cleanup());

const pipeline = `name: demo
params: {lr: 0.1, seed: 1}
stages:
  prep:
    cmd: cat data/raw.csv > out/prep.csv
    deps: [data/raw.csv]
    outs: [out/prep.csv]
  train:
    foreach: [a, b]
    do:
      cmd: "cat out/prep.csv > out/model-\${item}.txt; echo \${params.lr} $SEED >> out/model-\${item}.txt"
      deps: [out/prep.csv]
      outs: [out/model-\${item}.txt]
      env: {SEED: "7"}
  eval:
    cmd: "cat out/model-a.txt out/model-b.txt > out/eval.txt; echo '{\\"auc\\": {\\"a\\": 0.9, \\"b\\": 0.8}, \\"n\\": 3}' > out/metrics.json"
    deps: [out/model-a.txt, out/model-b.txt]
    outs: [out/eval.txt, {path: out/metrics.json, metric: true}]
`;

const setup = () => {
  ws = workspace({ 'p.yaml': pipeline, 'data/raw.csv': 'x,y\n1,2\n' });
  const r = pipe(ws.dir, ['run', 'p.yaml']);
  expect(r.code, r.stderr).toBe(0);
};

describe('explaining', () => {
  it('--dry-run and status name the changed param, file and env, and run nothing', () => {
    setup();
    let s = pipe(ws.dir, ['status', 'p.yaml']);
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/All 4 stage\(s\) are up to date/);

    ws.write('data/raw.csv', 'x,y\n1,3\n');
    s = pipe(ws.dir, ['status', 'p.yaml']);
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/prep: stale, will run\n\s+dep data\/raw\.csv changed \(hash [0-9a-f]{8}→[0-9a-f]{8}\)/);
    expect(s.stdout).toMatch(/train@a: stale, will run\n\s+upstream stage prep will re-run/);
    expect(s.stdout).toMatch(/eval: stale, will run\n\s+upstream stages train@a, train@b will re-run/);
    ws.write('data/raw.csv', 'x,y\n1,2\n');

    const d = pipe(ws.dir, ['run', 'p.yaml', '--dry-run', '-S', 'lr=0.5']);
    expect(d.code).toBe(0);
    expect(d.stdout).toMatch(/train@a: would run\n\s+param lr: 0\.1 → 0\.5/);
    expect(d.stdout).toMatch(/prep: up to date/);
    expect(ws.read('out/model-a.txt')).toMatch(/0\.1 7/); // nothing ran

    ws.write('p.yaml', pipeline.replace('SEED: "7"', 'SEED: "8"'));
    const j = pipe(ws.dir, ['status', 'p.yaml', '--json']);
    const st = JSON.parse(j.stdout) as { stages: Array<{ stage: string; action: string; codes: string[]; reasons: string[] }> };
    expect(st.stages.find((x) => x.stage === 'train@b')).toMatchObject({ action: 'run', codes: ['env-changed'], reasons: ['env SEED changed: 7 → 8'] });
  });

  it('dry-run computes downstream keys through restorable upstreams', () => {
    setup();
    pipe(ws.dir, ['run', 'p.yaml', '-S', 'lr=0.2']);
    // Back to lr=0.1: train@* restorable, so eval's deps are known and it is restorable too.
    const d = pipe(ws.dir, ['run', 'p.yaml', '--dry-run', '--json']);
    const plan = Object.fromEntries(events(d.stdout).filter((e) => e.type === 'plan').map((e) => [e.stage, e.action]));
    expect(plan).toEqual({ prep: 'up-to-date', 'train@a': 'restore', 'train@b': 'restore', eval: 'restore' });
  });

  it('never calls a stage up to date whose dep an upstream restore will change: a file inside the restored folder, or the folder spelled without its slash', () => {
    const yaml = `name: inside
params: {v: 1}
stages:
  a:
    cmd: mkdir -p o && echo \${params.v} > o/x
    outs: [o/]
  b:
    cmd: cat o/x > b.txt
    deps: [o/x]
    outs: [b.txt]
  c:
    cmd: cat o/x > c.txt
    deps: [o]
    outs: [c.txt]
`;
    ws = workspace({ 'p.yaml': yaml });
    expect(pipe(ws.dir, ['run', 'p.yaml']).code).toBe(0);
    expect(pipe(ws.dir, ['run', 'p.yaml', '-S', 'v=2']).code).toBe(0);
    // Back to v=1: a is restored, and with it o/x, which b and c read; the disk still holds v=2's o/x.
    type Planned = Record<string, { action?: string; reasons?: string[] }>;
    const dry: Planned = Object.fromEntries(events(pipe(ws.dir, ['run', 'p.yaml', '--dry-run', '--json']).stdout).filter((e) => e.type === 'plan').map((e) => [e.stage, e]));
    const status = JSON.parse(pipe(ws.dir, ['status', 'p.yaml', '--json']).stdout) as { stages: Array<{ stage: string; action: string; reasons: string[] }> };
    for (const plan of [dry, Object.fromEntries(status.stages.map((s) => [s.stage, s])) as Planned]) {
      expect(plan.a!.action).toBe('restore');
      // o/x is inside what a restores: its hash is known only once a is restored, so b is not up to date.
      expect(plan.b!.action).toBe('run');
      expect(plan.b!.reasons).toEqual(['upstream stage a will be restored first; its deps are known then']);
      // `o` is a's out `o/`: its restored hash stands in, so c's plan is exact.
      expect(plan.c!.action).toBe('restore');
    }
    const r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    expect(statuses(r.stdout)).toEqual({ a: 'restored', b: 'restored', c: 'restored' });
    expect(ws.read('b.txt')).toBe('1\n');
  });

  it('dry-run --json lists plan events in the pipeline\'s order, whatever order the decisions finish in', () => {
    // Even stages hash a 4 MB dep, odd ones a byte: their decisions finish out of order.
    const n = 24;
    const files: Record<string, string> = { 'big.bin': 'x'.repeat(4 << 20), 'small.txt': 'y' };
    const stages = Array.from({ length: n }, (_, i) => `  s${i}:\n    cmd: cp ${i % 2 ? 'small.txt' : 'big.bin'} out/s${i}\n    deps: [${i % 2 ? 'small.txt' : 'big.bin'}]\n    outs: [out/s${i}]\n`);
    ws = workspace({ ...files, 'p.yaml': `name: order\nstages:\n${stages.join('')}` });
    const order = () => events(pipe(ws.dir, ['run', 'p.yaml', '-n', '--json']).stdout).filter((e) => e.type === 'plan').map((e) => e.stage);
    const want = Array.from({ length: n }, (_, i) => `s${i}`);
    expect(order()).toEqual(want);
    expect(order()).toEqual(want);
  });

  it('why prints the field-by-field difference from the nearest earlier run', () => {
    setup();
    ws.write('data/raw.csv', 'x,y\n5,5\n');
    pipe(ws.dir, ['run', 'p.yaml', 'prep']);
    let w = pipe(ws.dir, ['why', 'p.yaml', 'train@a', '-S', 'lr=0.3']);
    expect(w.code).toBe(0);
    expect(w.stdout).toMatch(/^train@a: will run \[param-changed, dep-changed\]$/m);
    expect(w.stdout).toMatch(/param lr: 0\.1 → 0\.3/);
    expect(w.stdout).toMatch(/dep out\/prep\.csv changed \(hash/);
    const j0 = JSON.parse(pipe(ws.dir, ['why', 'p.yaml', 'train@a', '-S', 'lr=0.3', '--json']).stdout) as { codes: string[]; reasons: string[]; changes: Array<{ code: string; field: string }> };
    expect(j0.codes).toEqual(['param-changed', 'dep-changed']);
    expect(j0.reasons[0]).toBe('param lr: 0.1 → 0.3');
    expect(j0.changes.map((c) => [c.code, c.field])).toEqual([['param-changed', 'param'], ['dep-changed', 'dep']]);
    w = pipe(ws.dir, ['why', 'p.yaml', 'prep', '--json']);
    const j = JSON.parse(w.stdout) as { action: string; codes: string[]; changes: unknown[] };
    expect(j.action).toBe('up-to-date');
    expect(j.codes).toEqual([]);
    expect(j.changes).toEqual([]);
    w = pipe(ws.dir, ['why', 'p.yaml', 'trian@a']);
    expect(w.code).toBe(2);
  });
});

describe('execution facts (ctx.recordExecution)', () => {
  it('are kept in the run record and printed by why, but never reach a stage below (only ctx.record does)', () => {
    ws = workspace({
      'in.txt': 'x\n',
      'p.yaml': `stages:
  a: {uses: testing/echo, with: {src: in.txt, out: out/a.txt, message: hello}}
  b: {uses: testing/echo, with: {src: out/a.txt, out: out/b.txt, message: bye}}
`,
    });
    const r = pipe(ws.dir, ['run', 'p.yaml']);
    expect(r.code, r.stderr).toBe(0);
    const w = pipe(ws.dir, ['why', 'p.yaml', 'a', '--json']);
    const j = JSON.parse(w.stdout) as { compared: { recorded: Record<string, unknown>; execution: Record<string, unknown> } };
    expect(j.compared.recorded).toMatchObject({ echoed: 'hello' });
    expect(j.compared.execution).toEqual({ pid: expect.any(Number) });
    const text = pipe(ws.dir, ['why', 'p.yaml', 'a']).stdout;
    expect(text).toMatch(/that run took [\d.]+ s on .+ \(local[^)]*\)\n\s+recorded: echoed=hello, .*\n\s+execution: pid=\d+/);
    // b saw a's provenance, not a's execution facts: a's pid cannot leak into b's bytes.
    const seen = JSON.parse(ws.read('out/b.txt').trim().split('\n').at(-1)!) as { upstream: Array<{ stage: string; extra: Record<string, unknown> }> };
    expect(seen.upstream).toEqual([{ stage: 'a', outputs: [{ path: 'out/a.txt', hash: expect.stringMatching(/^[0-9a-f]{64}$/) }], extra: { echoed: 'hello', upstream: [], gpus: [] } }]);
    expect(ws.read('out/b.txt')).not.toContain('pid');
  });
});

describe('selecting stages', () => {
  it('targets (names, declaration names, globs) bring their upstream; --downstream; --force with a glob', () => {
    ws = workspace({ 'p.yaml': pipeline, 'data/raw.csv': 'x\n' });
    let r = pipe(ws.dir, ['run', 'p.yaml', 'train@a', '--json']);
    expect(statuses(r.stdout)).toEqual({ prep: 'ran', 'train@a': 'ran' });
    r = pipe(ws.dir, ['run', 'p.yaml', 'train@*', '--json']);
    expect(statuses(r.stdout)).toEqual({ prep: 'up-to-date', 'train@a': 'up-to-date', 'train@b': 'ran' });
    r = pipe(ws.dir, ['run', 'p.yaml', '--json', '--force', 'train@*']);
    expect(statuses(r.stdout)).toEqual({ prep: 'up-to-date', 'train@a': 'ran', 'train@b': 'ran', eval: 'ran' });
    expect(events(r.stdout).find((e) => e.type === 'plan' && e.stage === 'train@a')).toMatchObject({ codes: ['forced'], reasons: ['--force'] });
    ws.write('data/raw.csv', 'y\n');
    r = pipe(ws.dir, ['run', 'p.yaml', 'train@b', '--downstream', '--json']);
    // prep is not selected: train@b and eval use its outputs as they are.
    expect(statuses(r.stdout)).toEqual({ 'train@b': 'up-to-date', eval: 'up-to-date' });
    r = pipe(ws.dir, ['run', 'p.yaml', 'prep', '--downstream', '--json']);
    expect(statuses(r.stdout)).toEqual({ prep: 'ran', 'train@a': 'ran', 'train@b': 'ran', eval: 'ran' });
    r = pipe(ws.dir, ['run', 'p.yaml', '--force', 'nomatch*']);
    expect(r.code).toBe(2);
  });

  it('--json emits typed events from run-start to run-end', () => {
    ws = workspace({ 'p.yaml': pipeline, 'data/raw.csv': 'x\n' });
    const r = pipe(ws.dir, ['run', 'p.yaml', '--json']);
    const ev = events(r.stdout);
    expect(ev[0]!.type).toBe('run-start');
    expect(ev.at(-1)).toMatchObject({ type: 'run-end', ok: true, counts: { ran: 4 } });
    expect(new Set(ev.map((e) => e.type))).toEqual(new Set(['run-start', 'plan', 'stage-start', 'stage-end', 'run-end']));
  });
});

describe('terminal renderer', () => {
  it('draws one listr2 line per stage on a TTY (run under script(1))', () => {
    ws = workspace({ 'in.txt': 'x\n', 'p.yaml': `name: t\nstages:\n  a:\n    uses: testing/echo\n    with: {src: in.txt, out: out/a.txt}\n  b:\n    cmd: cp out/a.txt out/b.txt\n    deps: [out/a.txt]\n    outs: [out/b.txt]\n  c:\n    cmd: echo broken; exit 3\n    outs: [out/c.txt]\n` });
    const r = spawnSync('script', ['-qec', `stty cols 120; ${process.execPath} ${pipeBin} run p.yaml -k`, '/dev/null'], {
      cwd: ws.dir,
      encoding: 'utf8',
      env: { ...process.env, CI: '', TERM: 'xterm' },
      timeout: 60_000,
    });
    const text = r.stdout.replace(/\x1b\[[0-9;?]*[a-zA-Z]/g, '');
    expect(r.status).toBe(1);
    expect(text).toMatch(/✔ a .*done in/);
    expect(text).toMatch(/✔ b .*done in/);
    expect(text).toMatch(/✖ c: exit code 3/);
    expect(text).toMatch(/│ broken/); // the failed stage's log tail
    expect(text).toMatch(/failed: 2 ran, 1 failed/);
  });
});

describe('dag, metrics, gc', () => {
  it('dag prints text, mermaid and dot', () => {
    ws = workspace({ 'p.yaml': pipeline, 'data/raw.csv': 'x\n' });
    expect(pipe(ws.dir, ['dag', 'p.yaml']).stdout).toMatch(/eval {2}← train@a, train@b/);
    const m = pipe(ws.dir, ['dag', 'p.yaml', '--format', 'mermaid']).stdout;
    expect(m).toMatch(/^flowchart TD/);
    expect(m).toMatch(/s0\["prep"\]/);
    expect(m).toMatch(/s0 --> s1/);
    const d = pipe(ws.dir, ['dag', 'p.yaml', '--format', 'dot']).stdout;
    expect(d).toMatch(/"train@b" -> "eval";/);
    expect(pipe(ws.dir, ['dag', 'p.yaml', '--format', 'png']).code).toBe(2);
  });

  it('metrics tabulates flattened keys, across runs with --all', () => {
    setup();
    ws.write('p.yaml', pipeline.replace('\\"n\\": 3', '\\"n\\": 4'));
    pipe(ws.dir, ['run', 'p.yaml']);
    const t = pipe(ws.dir, ['metrics', 'p.yaml']).stdout;
    expect(t).toMatch(/stage\s+file\s+run\s+auc\.a\s+auc\.b\s+n/);
    expect(t).toMatch(/eval\s+out\/metrics\.json\s+current\s+0\.9\s+0\.8\s+4/);
    const all = JSON.parse(pipe(ws.dir, ['metrics', 'p.yaml', '--all', '--json']).stdout) as { rows: Array<{ run: string; metrics: { n: number } }> };
    expect(all.rows.map((r) => r.metrics.n)).toEqual([4, 4, 3]);
  });

  it('gc --dry-run counts, gc deletes only what no lock file references', () => {
    ws = workspace({ 'p.yaml': `name: g\nparams: {v: 1}\nstages:\n  s:\n    cmd: echo \${params.v} > out/s.txt\n    outs: [out/s.txt]\n` });
    pipe(ws.dir, ['run', 'p.yaml', '-S', 'v=1']);
    pipe(ws.dir, ['run', 'p.yaml', '-S', 'v=2']); // the lock file now references v=2's output only
    let g = pipe(ws.dir, ['gc', 'p.yaml', '--dry-run', '--keep-days', '0']);
    expect(g.code, g.stderr).toBe(0);
    expect(g.stdout).toMatch(/would remove 0 object/); // both objects are younger than the grace period
    g = pipe(ws.dir, ['gc', 'p.yaml', '--dry-run', '--keep-days', '0', '--grace-seconds', '0']);
    expect(g.stdout).toMatch(/would remove 1 object\(s\) \(2B\) and 2 old run record/);
    g = pipe(ws.dir, ['gc', 'p.yaml', '--json', '--keep-days', '0', '--grace-seconds', '0']);
    expect(JSON.parse(g.stdout)).toMatchObject([{ objects: 1, runs: 2, kept: 1 }]);
    expect(pipe(ws.dir, ['gc', 'p.yaml', '--dry-run', '--keep-days', '0', '--grace-seconds', '0']).stdout).toMatch(/would remove 0 object/);
    // What the lock file references is still restorable: its workspace run record is gone, but the store keeps its
    // shared record (the lock file names the key), which vouches for the outputs; the lock file itself never does.
    ws.rm('out/s.txt');
    let r = pipe(ws.dir, ['run', 'p.yaml', '-S', 'v=2', '--json']);
    expect(statuses(r.stdout).s).toBe('restored');
    expect(ws.read('out/s.txt')).toBe('2\n');
    // v=1's output was collected: it runs again.
    r = pipe(ws.dir, ['run', 'p.yaml', '-S', 'v=1', '--json']);
    expect(statuses(r.stdout).s).toBe('ran');
  });

  it('schema prints a JSON Schema; --help works everywhere', () => {
    ws = workspace();
    const s = pipe(ws.dir, ['schema']);
    expect(s.code).toBe(0);
    expect(JSON.parse(s.stdout)).toHaveProperty('$schema');
    for (const c of ['run', 'status', 'why', 'dag', 'metrics', 'gc', 'schema']) {
      const h = pipe(ws.dir, [c, '--help']);
      expect(h.code).toBe(0);
      expect(h.stdout).toMatch(/Usage: pipe/);
    }
  });
});
