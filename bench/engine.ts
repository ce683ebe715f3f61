// `npm run bench -- engine [--sizes 1000,10000] [--no-big-dir]`: engine speed and memory on trivial `cp` stages.
//
// For each size N: a generated pipeline of N stages, each copying one seed file to out/N.txt (every stage depends on
// seed.txt), run through the full CLI process (`node bin/pipe.js run x.yaml`): first-run wall time, no-op wall time
// (median of 3 after one warm-up run), and peak RSS (reported by the CLI's hidden --resource-usage flag). Then a
// no-op `pipe status` of a stage whose dep is a 100,000-file directory. Where `snakemake` is installed, the same DAG
// runs under it (`-j` equal) and `vs snakemake <baseline/ours>` follows our figure (above 1: we are faster).
//
// Targets (2 cores): no-op of 1,000 stages < 0.3 s; first run of 1,000 < 6 s; first run of 10,000 < 60 s;
// 100,000-file no-op status < 1 s; peak memory < 500 MB.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const pipeBin = fileURLToPath(new URL('../bin/pipe.js', import.meta.url));
const args = process.argv.slice(2);
const sizesArg = args.includes('--sizes') ? args[args.indexOf('--sizes') + 1]! : '1000,10000';
const sizes = sizesArg.split(',').map(Number);
const bigDir = !args.includes('--no-big-dir');
const jobs = availableParallelism();
const env = { ...process.env, CI: 'true', PIPE_CACHE_HOME: '' };

function bench(figure: string, value: number, unit: string): void {
  console.log(`BENCH ${figure} ${unit === 'MB' ? value.toFixed(0) : value.toFixed(3)} ${unit}`);
}

function timed(cmd: string, argv: string[], cwd: string, extraEnv: Record<string, string> = {}): { s: number; rssMb: number; ok: boolean; err: string } {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, argv, { cwd, encoding: 'utf8', env: { ...env, ...extraEnv }, maxBuffer: 1 << 28 });
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const m = /PEAK_RSS_KB (\d+)/.exec(r.stderr ?? '');
  return { s, rssMb: m ? Number(m[1]) / 1024 : NaN, ok: r.status === 0, err: `${r.stderr ?? ''}`.slice(-2000) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function hasSnakemake(): boolean {
  return spawnSync('sh', ['-c', 'command -v snakemake'], { encoding: 'utf8' }).status === 0;
}

function pipeWorkspace(n: number): string {
  const dir = mkdtempSync(join(tmpdir(), `pipe-bench-${n}-`));
  writeFileSync(join(dir, 'seed.txt'), 'seed\n');
  const lines = ['name: bench', 'stages:'];
  for (let i = 0; i < n; i++) lines.push(`  s${i}:`, `    cmd: cp seed.txt out/${i}.txt`, '    deps: [seed.txt]', `    outs: [out/${i}.txt]`);
  writeFileSync(join(dir, 'x.yaml'), `${lines.join('\n')}\n`);
  writeFileSync(
    join(dir, 'Snakefile'),
    `rule all:\n    input: expand("out/{i}.txt", i=range(${n}))\n\nrule cp:\n    input: "seed.txt"\n    output: "out/{i}.txt"\n    shell: "cp {input} {output}"\n`,
  );
  return dir;
}

const pipeCache = mkdtempSync(join(tmpdir(), 'pipe-bench-cache-'));
env.PIPE_CACHE_HOME = pipeCache;
const snake = hasSnakemake();
if (!snake) console.log('# snakemake not installed: no baseline (apt-get install snakemake)');

for (const n of sizes) {
  const dir = pipeWorkspace(n);
  try {
    const first = timed(process.execPath, [pipeBin, 'run', 'x.yaml', '--resource-usage'], dir);
    if (!first.ok) throw new Error(`pipe run failed:\n${first.err}`);
    bench(`first_run_${n}_stages`, first.s, 's');
    let snakeFirst: number | undefined;
    if (snake && (n <= 1000 || process.env.BENCH_SNAKEMAKE_BIG === '1')) {
      const sdir = pipeWorkspace(n);
      const r = timed('snakemake', ['-j', String(jobs), '--quiet'], sdir);
      snakeFirst = r.s;
      const again = timed('snakemake', ['-j', String(jobs), '--quiet'], sdir);
      console.log(`vs snakemake ${(snakeFirst / first.s).toFixed(2)}`);
      (globalThis as { snakeNoop?: number }).snakeNoop = again.s;
      rmSync(sdir, { recursive: true, force: true });
    }
    timed(process.execPath, [pipeBin, 'run', 'x.yaml'], dir); // warm-up: fills the validated-pipeline cache
    const noops = [0, 1, 2].map(() => timed(process.execPath, [pipeBin, 'run', 'x.yaml', '--resource-usage'], dir));
    bench(`noop_${n}_stages`, median(noops.map((x) => x.s)), 's');
    const snakeNoop = (globalThis as { snakeNoop?: number }).snakeNoop;
    if (snakeFirst !== undefined && snakeNoop !== undefined) console.log(`vs snakemake ${(snakeNoop / median(noops.map((x) => x.s))).toFixed(2)}`);
    (globalThis as { snakeNoop?: number }).snakeNoop = undefined;
    bench(`peak_rss_${n}_stages`, Math.max(first.rssMb, ...noops.map((x) => x.rssMb)), 'MB');
    // A no-op after an edit of the YAML (validated-pipeline cache miss): the cost a user sees after saving.
    writeFileSync(join(dir, 'x.yaml'), `# edited\n${require_text(join(dir, 'x.yaml'))}`);
    bench(`noop_${n}_stages_after_yaml_edit`, timed(process.execPath, [pipeBin, 'run', 'x.yaml'], dir).s, 's');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function require_text(path: string): string {
  return spawnSync('cat', [path], { encoding: 'utf8', maxBuffer: 1 << 28 }).stdout;
}

if (bigDir) {
  const dir = mkdtempSync(join(tmpdir(), 'pipe-bench-bigdir-'));
  try {
    const files = 100_000;
    for (let d = 0; d < 100; d++) {
      const sub = join(dir, 'data', 'big', `d${d}`);
      mkdirSync(sub, { recursive: true });
      for (let f = 0; f < files / 100; f++) writeFileSync(join(sub, `f${f}.txt`), `${d}-${f}\n`);
    }
    writeFileSync(join(dir, 'x.yaml'), 'name: big\nstages:\n  count:\n    cmd: find data/big -type f | wc -l > out/count.txt\n    deps: [data/big/]\n    outs: [out/count.txt]\n');
    const first = timed(process.execPath, [pipeBin, 'run', 'x.yaml', '--resource-usage'], dir);
    if (!first.ok) throw new Error(`pipe run failed:\n${first.err}`);
    bench('first_run_100k_file_dep', first.s, 's');
    // The hash memo only trusts files older than its racy window (2 s): wait it out, then a run memoises them all.
    spawnSync('sleep', ['2.5']);
    timed(process.execPath, [pipeBin, 'run', 'x.yaml'], dir);
    timed(process.execPath, [pipeBin, 'status', 'x.yaml'], dir);
    const st = [0, 1, 2].map(() => timed(process.execPath, [pipeBin, 'status', 'x.yaml', '--resource-usage'], dir));
    bench('noop_status_100k_file_dep', median(st.map((x) => x.s)), 's');
    bench('peak_rss_100k_file_dep', Math.max(first.rssMb, ...st.map((x) => x.rssMb)), 'MB');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
rmSync(pipeCache, { recursive: true, force: true });
