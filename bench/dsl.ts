/**
 * DSL load speed: loadPipeline + buildDag on generated pipelines (1,000 explicit stages; a foreach of 10,000 items),
 * and a 100 × 1,000 matrix (100,000 stages), cold (first call in the process, JIT not warm) and warm (best of 20;
 * of 3 for the matrix), plus the YAML parse alone with pipe's fast subset parser vs the `yaml` package (the baseline
 * it replaces). Targets: a 1,000-stage load well under 100 ms; the 100,000-stage matrix a fraction of the 4 s that
 * `pipe status` of it may take (bench/engine.ts).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadPipeline } from '../engine/dsl/index.js';
import { parseYaml } from '../engine/dsl/load.js';
import { buildDag } from '../engine/graph.js';

const dir = mkdtempSync(path.join(tmpdir(), 'pipe-bench-dsl-'));
writeFileSync(path.join(dir, 'seed.txt'), 'x');

const explicit: string[] = ['name: explicit', 'params: {lr: 0.1}', 'stages:'];
for (let i = 0; i < 1000; i++) {
  const dep = i ? `out/s${i - 1}.txt` : 'seed.txt';
  explicit.push(`  s${i}:`, `    cmd: cp ${dep} out/s${i}.txt # lr \${params.lr}`, `    deps: [${dep}]`, `    outs: [out/s${i}.txt]`, '    resources: {cpus: 1, mem: 1G}');
}
const items = Array.from({ length: 10_000 }, (_, i) => `    - it${i}`).join('\n');
const foreach = `name: foreach\nvars:\n  items:\n${items}\nstages:\n  t:\n    foreach: \${vars.items}\n    do:\n      cmd: cp seed.txt out/\${item}.txt\n      deps: [seed.txt]\n      outs: [out/\${item}.txt]\n  all:\n    cmd: cat out/* > all.txt\n    deps: [out/]\n    outs: [all.txt]\n`;
const axis = (p: string, n: number) => `[${Array.from({ length: n }, (_, i) => `${p}${i}`).join(', ')}]`;
const matrix = `name: matrix\nstages:\n  m:\n    matrix:\n      a: ${axis('a', 100)}\n      b: ${axis('b', 1000)}\n    do:\n      cmd: cp seed.txt out/\${item.a}/\${item.b}.txt\n      deps: [seed.txt]\n      outs: [out/\${item.a}/\${item.b}.txt]\n`;
const files = { '1k': path.join(dir, 'explicit.yaml'), '10k-foreach': path.join(dir, 'foreach.yaml'), '100k-matrix': path.join(dir, 'matrix.yaml') };
writeFileSync(files['1k'], explicit.join('\n') + '\n');
writeFileSync(files['10k-foreach'], foreach);
writeFileSync(files['100k-matrix'], matrix);

const opts = { resolveKind: async () => undefined };
async function once(file: string): Promise<number> {
  const t0 = performance.now();
  const r = await loadPipeline(file, opts);
  if (!r.ok) throw new Error(r.error.map((d) => d.message).join('\n'));
  const d = buildDag(r.value);
  if (!d.ok) throw new Error('cycle');
  return performance.now() - t0;
}

for (const [name, file] of Object.entries(files)) {
  const cold = await once(file);
  let warm = Infinity;
  for (let i = 0; i < (name === '100k-matrix' ? 3 : 20); i++) warm = Math.min(warm, await once(file));
  console.log(`BENCH dsl-load-${name}-cold ${cold.toFixed(1)} ms`);
  console.log(`BENCH dsl-load-${name}-warm ${warm.toFixed(1)} ms`);
}

const { readFileSync } = await import('node:fs');
const text = readFileSync(files['1k'], 'utf8');
const best = (fn: () => void) => {
  let b = Infinity;
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    fn();
    b = Math.min(b, performance.now() - t0);
  }
  return b;
};
const fast = best(() => parseYaml('/bench.yaml', text));
const lib = best(() => parseYaml('/bench.yaml', text, { parser: 'yaml' }));
console.log(`BENCH dsl-parse-1k-fast ${fast.toFixed(2)} ms vs yaml-package ${(lib / fast).toFixed(1)}`);
