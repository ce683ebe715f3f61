// `pipe exp apply` of a variant whose stage depends on a folder that upstream outputs fill (issue 13): planning in
// the workspace cannot know that folder's hash before the upstream outputs are restored, so the variant's own folder
// vouches for it; apply restores everything (bytes as the variant made them) and runs nothing. A stage changed since
// the variant ran is refused before anything is touched.
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pipeAsync, runPipe, workspace, type Ws } from '../engine/helpers.js';
import { snapshot, sweepWorkspace } from './helpers.js';

let ws: Ws | undefined;
afterEach(() => {
  ws?.cleanup();
  ws = undefined;
});

const PIPELINE = `name: parts
params: {scale: 1}
stages:
  part:
    foreach: [a, b]
    do:
      cmd: mkdir -p out/parts && echo "\${item} \${params.scale}" > out/parts/\${item}.txt
      deps: [in.txt]
      outs: [out/parts/\${item}.txt]
  summary:
    cmd: sh summary.sh
    deps: [out/parts/, summary.sh]
    outs: [out/all.txt]
    metrics: [out/summary.json]
`;
const SUMMARY = 'cat out/parts/*.txt > out/all.txt\necho "{\\"lines\\": $(wc -l < out/all.txt)}" > out/summary.json\n';

describe('pipe exp apply', () => {
  it('restores a stage whose folder dep its upstream fills, from a workspace that never ran; refuses a changed stage', async () => {
    ws = workspace({ 'p.yaml': PIPELINE, 'in.txt': 'x\n', 'summary.sh': SUMMARY });
    const r = await runPipe(ws.dir, ['exp', 'run', 'p.yaml', '-S', 'scale=2', '--name', 'two']);
    expect(r.code, r.stderr).toBe(0);
    const root = (JSON.parse((await runPipe(ws.dir, ['exp', 'show', 'p.yaml', '--json'])).stdout) as { rows: Array<{ name: string }> }).rows.map((x) => x.name);
    expect(root).toEqual(['workspace', 'two']);
    const variantDir = (await runPipe(ws.dir, ['exp', 'run', 'p.yaml', '-S', 'scale=2', '--name', 'two', '--dry-run'])).stdout.match(/each in (\S+)\/<name>\//)![1]!;

    // A changed stage: refused, nothing written.
    const before = snapshot(ws.dir, ['.pipe', 'p.yaml']); // p.yaml: edited and put back by this test
    ws.write('p.yaml', PIPELINE.replace('cmd: sh summary.sh', 'cmd: sh summary.sh && true'));
    const refused = await runPipe(ws.dir, ['exp', 'apply', 'p.yaml', 'two']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/1 stage\(s\) have no cached result for its params[^]*summary:/);
    expect(refused.stderr).toMatch(/nothing was changed/);
    ws.write('p.yaml', PIPELINE);
    expect(snapshot(ws.dir, ['.pipe', 'p.yaml'])).toEqual(before);

    const applied = await runPipe(ws.dir, ['exp', 'apply', 'p.yaml', 'two']);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toMatch(/^applied two: 3 restored, 0 already in place; its params are in p\.params\.yaml/);
    expect(applied.stderr).not.toMatch(/definition changed/);
    for (const f of ['out/parts/a.txt', 'out/parts/b.txt', 'out/all.txt', 'out/summary.json']) {
      expect(ws.read(f), f).toBe(readFileSync(join(variantDir, 'two', f), 'utf8'));
    }
    expect(ws.read('out/all.txt')).toBe('a 2\nb 2\n');
    const status = await runPipe(ws.dir, ['status', 'p.yaml']);
    expect(status.stdout + status.stderr).toMatch(/All 3 stage\(s\) are up to date/);
  });
});

describe('pipe exp apply and a running sweep', () => {
  it('waits for the experiments of the pipeline (--no-wait: exits 1 naming the sweep), changing nothing', async () => {
    const sw = sweepWorkspace();
    ws = sw;
    expect((await runPipe(sw.dir, ['exp', 'run', 'p.yaml', '-S', 'scale=2', '--name', 'two'], sw.env())).code).toBe(0);
    // A sweep whose training waits at a barrier for a second training that never comes: it holds the lock meanwhile.
    const env = sw.env(2);
    const held = pipeAsync(sw.dir, ['exp', 'run', 'p.yaml', '-S', 'scale=4', '--name', 'held'], env);
    try {
      await held.until(() => existsSync(join(env.SYNC!, 'started.4')), 60_000);
      const before = snapshot(sw.dir, ['.pipe']);
      const r = await runPipe(sw.dir, ['exp', 'apply', 'p.yaml', 'two', '--no-wait']);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/the experiments of this pipeline is locked by `pipe exp run p\.yaml -S scale=4 --name held`/);
      expect(snapshot(sw.dir, ['.pipe'])).toEqual(before);
      expect(existsSync(join(sw.dir, 'p.params.yaml'))).toBe(false);
    } finally {
      held.child.kill('SIGINT');
      await held.done;
    }
  });
});

// A params file is merged over the pipeline's params (mappings merge key by key): it cannot drop a key or empty a
// mapping. A variant that did (`-S 'opt={a: 1}'` over `opt: {a: 1, b: 2}`) was "applied" with exit 0 while the
// workspace kept the pipeline's params and outputs, or got the variant's outputs under the pipeline's params.
const MAPPED = `name: mapped
params:
  opt: {a: 1, b: 2}
  lr: 1
stages:
  s:
    cmd: 'mkdir -p out && echo "\${params.opt} \${params.lr}" > out/r.txt'
    outs: [out/r.txt]
`;

describe('pipe exp apply of params a params file cannot express', () => {
  it.each([
    ['drops a key of a mapping', 'opt={a: 1}', /opt\.b/],
    ['empties a mapping', 'opt={}', /opt/],
  ])('refuses a variant that %s, changing nothing', async (_what, set, names) => {
    ws = workspace({ 'p.yaml': MAPPED });
    expect((await runPipe(ws.dir, ['run', 'p.yaml'])).code).toBe(0);
    expect((await runPipe(ws.dir, ['exp', 'run', 'p.yaml', '-S', set, '--name', 'v'])).code).toBe(0);
    const before = snapshot(ws.dir, ['.pipe']);
    const r = await runPipe(ws.dir, ['exp', 'apply', 'p.yaml', 'v']);
    expect(r.code, r.stdout).toBe(1);
    expect(r.stderr).toMatch(/cannot be written as a params file/);
    expect(r.stderr).toMatch(names);
    expect(r.stderr).toMatch(/Nothing was changed/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(snapshot(ws.dir, ['.pipe'])).toEqual(before);
    expect(existsSync(join(ws.dir, 'p.params.yaml'))).toBe(false);
  });

  it('applies a variant that sets a mapping to a scalar and back (a params file can say that)', async () => {
    ws = workspace({ 'p.yaml': MAPPED });
    expect((await runPipe(ws.dir, ['exp', 'run', 'p.yaml', '-S', 'opt=5', '--name', 'v'])).code).toBe(0);
    const r = await runPipe(ws.dir, ['exp', 'apply', 'p.yaml', 'v']);
    expect(r.code, r.stderr).toBe(0);
    expect(ws.read('out/r.txt')).toBe('5 1\n');
    const status = await runPipe(ws.dir, ['status', 'p.yaml']);
    expect(status.stdout + status.stderr).toMatch(/All 1 stage\(s\) are up to date/);
  });
});

// A restore that fails half way (an object found corrupt on the way) leaves the workspace with the variant's params
// and only some of its outputs: said as such ("did not complete", what is where, how to finish or go back), never
// "applied two" above an exit 1, and the restore's own reason shown rather than "no cached result".
const TWO_STAGES = `name: two
params: {lr: 1}
stages:
  a:
    cmd: 'mkdir -p out && echo "a \${params.lr}" > out/a.txt'
    outs: [out/a.txt]
  b:
    cmd: 'cat out/a.txt > out/b.txt; echo "{\\"score\\": \${params.lr}0}" > out/m.json'
    deps: [out/a.txt]
    outs: [out/b.txt]
    metrics: [out/m.json]
`;

describe('pipe exp apply that cannot restore a stage', () => {
  it('says the workspace is half applied, with the restore\'s reason, and exits 1', async () => {
    ws = workspace({ 'p.yaml': TWO_STAGES });
    expect((await runPipe(ws.dir, ['run', 'p.yaml'])).code).toBe(0);
    expect((await runPipe(ws.dir, ['exp', 'run', 'p.yaml', '-S', 'lr=2', '--name', 'two'])).code).toBe(0);
    const hash = createHash('sha256').update('{"score": 20}\n').digest('hex');
    const object = join(ws.dir, '.pipe/cache/objects', hash.slice(0, 2), hash.slice(2));
    chmodSync(object, 0o644);
    writeFileSync(object, '{"score": 99}\n');
    const r = await runPipe(ws.dir, ['exp', 'apply', 'p.yaml', 'two']);
    expect(r.code).toBe(1);
    expect(r.stdout).not.toMatch(/applied two/);
    expect(r.stderr).toMatch(/could not restore b from the cache \(.*\)/);
    expect(r.stderr).toMatch(/exp apply two did not complete: 1 of 2 stage\(s\) restored, b not/);
    expect(r.stderr).toMatch(/Its params are in p\.params\.yaml.*`pipe run p\.yaml` computes the rest with them, or delete p\.params\.yaml/s);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(ws.read('out/a.txt')).toBe('a 2\n');
  });
});

// A stage whose outs are `cache: false` has nothing in the cache to restore: the variant's folder vouched for its key
// all the same, so apply wrote the variant's params and then failed half way. And a refusal listed its stages'
// reasons as `[object Object]`.
const UNCACHED = `name: uncached
params: {lr: 1}
stages:
  prep:
    cmd: echo data > big.txt
    outs: [{path: big.txt, cache: false}]
  s:
    cmd: 'mkdir -p out && cat big.txt > out/r.txt && echo "\${params.lr}" >> out/r.txt'
    deps: [big.txt]
    outs: [out/r.txt]
`;

describe('pipe exp apply of a stage it cannot restore', () => {
  it('refuses a stage with `cache: false` outs before anything is changed, saying why; reasons are words', async () => {
    ws = workspace({ 'p.yaml': UNCACHED });
    expect((await runPipe(ws.dir, ['exp', 'run', 'p.yaml', '-S', 'lr=2', '--name', 'two'])).code).toBe(0);
    const before = snapshot(ws.dir, ['.pipe']);
    const r = await runPipe(ws.dir, ['exp', 'apply', 'p.yaml', 'two']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/\n {2}prep: its outs are not cached \(`cache: false`\): nothing to restore\n/);
    expect(r.stderr).toMatch(/nothing was changed/);
    expect(r.stderr).not.toMatch(/object Object/);
    expect(snapshot(ws.dir, ['.pipe'])).toEqual(before);
    expect(existsSync(join(ws.dir, 'p.params.yaml'))).toBe(false);

    ws.write('p.yaml', UNCACHED.replace('outs: [{path: big.txt, cache: false}]', 'outs: [big.txt]'));
    const changed = await runPipe(ws.dir, ['exp', 'apply', 'p.yaml', 'two']);
    expect(changed.code).toBe(1);
    expect(changed.stderr).not.toMatch(/object Object/);
    expect(changed.stderr).toMatch(/\n {2}prep: out big\.txt: cache false → true\n {2}s: upstream stage prep will re-run\n/);
  });
});
