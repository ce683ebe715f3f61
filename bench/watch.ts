// `npm run bench -- watch [--saves N] [--files N] [--idle-s S] [--no-baseline]`
//
// 1. Save → stage start: a real `pipe watch --json` on a temp workspace; each of N saves of a dep is timed from just
//    before the write to the stage-start event. Baseline: what a user does without watch mode — start a fresh
//    `pipe run` after each save — timed the same way (write → its stage-start).
// 2. Idle CPU: `pipe watch` on a pipeline whose stage depends on a directory of 100,000 files; after the first cycle,
//    the watcher's CPU time (/proc/<pid>/stat utime+stime) over S idle seconds. Also printed: the watcher's set-up
//    time (watch-ready) and, as a baseline for that, chokidar's own recursive watch of the same folder (one fs.watch
//    per file). Then `--saves-100k N` (7) saves deep inside the folder, save → stage start (median; the folder's
//    hash is kept incrementally from the events), against a fresh `pipe run` after a save (which re-stats it all).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsonLines } from '../test/support/cli.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const pipeBin = join(repo, 'bin', 'pipe.js');
const args = process.argv.slice(2);
const opt = (name: string, dflt: number): number => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const SAVES = opt('saves', 30);
const FILES = opt('files', 100_000);
const IDLE_S = opt('idle-s', 10);
const BASELINE = !args.includes('--no-baseline');
const SAVES_100K = opt('saves-100k', 7);

interface Ev {
  type: string;
  stage?: string;
  cycle?: number;
  at: number;
  [k: string]: unknown;
}

const env = { ...process.env, CI: 'true', NO_COLOR: '1' };

function watchProcess(cwd: string, extra: string[] = []): { child: ChildProcess; events: Ev[]; stderr: () => string } {
  const child = spawn(process.execPath, [pipeBin, 'watch', 'p.yaml', '--json', ...extra], { cwd, env, stdio: ['pipe', 'pipe', 'pipe'] });
  const events: Ev[] = [];
  let err = '';
  jsonLines<Ev>(child.stdout!, (e) => events.push(e));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return { child, events, stderr: () => err };
}

async function until<T>(what: string, probe: () => T | undefined, ms: number): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() - t0 > ms) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const done = new Promise((r) => child.once('close', r));
  child.kill('SIGINT');
  await done;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const i = (s.length - 1) * p;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return s[lo]! + (s[hi]! - s[lo]!) * (i - lo);
}

/** The baseline without watch mode: save `file`, start a fresh `pipe run`; ms from the write to its stage-start. */
async function runAfterSave(dir: string, file: string, content: string): Promise<number | undefined> {
  const t0 = Date.now();
  writeFileSync(file, content);
  const r = spawn(process.execPath, [pipeBin, 'run', 'p.yaml', '--json'], { cwd: dir, env });
  let out = '';
  r.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((res) => r.once('close', res));
  const ev = out
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Ev)
    .find((e) => e.type === 'stage-start');
  return ev ? ev.at - t0 : undefined;
}

const pipelineYaml = `name: bench
stages:
  s:
    cmd: cat data/in.txt > out/s.txt
    deps: [data/in.txt]
    outs: [out/s.txt]
`;

async function saveToStart(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pipe-bench-watch-'));
  try {
    mkdirSync(join(dir, 'data'));
    writeFileSync(join(dir, 'p.yaml'), pipelineYaml);
    writeFileSync(join(dir, 'data', 'in.txt'), 'v0\n');
    const w = watchProcess(dir);
    await until('the first cycle', () => w.events.find((e) => e.type === 'cycle-end'), 30_000);
    const lat: number[] = [];
    for (let i = 1; i <= SAVES; i++) {
      const n = w.events.length;
      const t0 = Date.now();
      writeFileSync(join(dir, 'data', 'in.txt'), `v${i}\n`);
      const start = await until('stage-start', () => w.events.slice(n).find((e) => e.type === 'stage-start'), 10_000);
      lat.push(start.at - t0);
      await until('cycle-end', () => w.events.slice(n).find((e) => e.type === 'cycle-end'), 10_000);
      await new Promise((r) => setTimeout(r, 30)); // let the watcher settle: saves are separate edits here
    }
    await stop(w.child);
    const p50 = percentile(lat, 0.5);
    const p90 = percentile(lat, 0.9);

    if (BASELINE) {
      // A fresh `pipe run` after each save (a shell loop or an editor hook): write → its stage-start.
      const base: number[] = [];
      for (let i = 1; i <= Math.min(SAVES, 15); i++) {
        const ms = await runAfterSave(dir, join(dir, 'data', 'in.txt'), `b${i}\n`);
        if (ms !== undefined) base.push(ms);
      }
      const b50 = percentile(base, 0.5);
      process.stdout.write(`BENCH watch_save_to_start_p50 ${p50.toFixed(1)} ms vs pipe_run_per_save ${(b50 / p50).toFixed(2)}\n`);
      process.stdout.write(`BENCH watch_save_to_start_p90 ${p90.toFixed(1)} ms vs pipe_run_per_save ${(percentile(base, 0.9) / p90).toFixed(2)}\n`);
    } else {
      process.stdout.write(`BENCH watch_save_to_start_p50 ${p50.toFixed(1)} ms\n`);
      process.stdout.write(`BENCH watch_save_to_start_p90 ${p90.toFixed(1)} ms\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** utime+stime of a process in ms (Linux /proc). */
function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function idleCpu(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pipe-bench-watch-big-'));
  try {
    const perDir = 1000;
    for (let d = 0; d * perDir < FILES; d++) {
      const sub = join(dir, 'data', 'big', `d${String(d).padStart(3, '0')}`);
      mkdirSync(sub, { recursive: true });
      for (let i = 0; i < perDir && d * perDir + i < FILES; i++) writeFileSync(join(sub, `f${i}.txt`), `${d}-${i}\n`);
    }
    writeFileSync(
      join(dir, 'p.yaml'),
      `name: big\nstages:\n  count:\n    cmd: find data/big -type f | wc -l > out/count.txt\n    deps: [data/big/]\n    outs: [out/count.txt]\n`,
    );
    const w = watchProcess(dir);
    const pid = w.child.pid!;
    const ready = await until('watch-ready', () => w.events.find((e) => e.type === 'watch-ready'), 120_000);
    const end = await until('the first cycle', () => w.events.find((e) => e.type === 'cycle-end'), 300_000);
    if (!BASELINE) process.stdout.write(`BENCH watch_startup_100k ${ready.startupMs as number} ms\n`);
    process.stdout.write(`BENCH watch_first_cycle_100k ${(end.durationMs as number)} ms\n`);
    await new Promise((r) => setTimeout(r, 500)); // let the first cycle's GC and timers settle
    const c0 = cpuMs(pid);
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, IDLE_S * 1000));
    const used = cpuMs(pid) - c0;
    const pct = (100 * used) / (Date.now() - t0);
    process.stdout.write(`BENCH watch_idle_cpu_100k ${pct.toFixed(2)} %\n`);
    process.stdout.write(`BENCH watch_rss_100k ${rssMb(pid).toFixed(0)} MB\n`);
    // And it still sees a change deep inside, after all that idling: save → stage start, the dep's hash kept
    // incrementally from the events (cache/state.ts `track`) instead of re-statting 100,000 files.
    const deep: number[] = [];
    for (let i = 0; i < SAVES_100K; i++) {
      const n = w.events.length;
      const tw = Date.now();
      writeFileSync(join(dir, 'data', 'big', `d${String(i % 100).padStart(3, '0')}`, 'f7.txt'), `changed ${i}\n`);
      const st = await until('stage-start after a deep edit', () => w.events.slice(n).find((e) => e.type === 'stage-start'), 120_000);
      deep.push(st.at - tw);
      await until('cycle-end after a deep edit', () => w.events.slice(n).find((e) => e.type === 'cycle-end'), 300_000);
      await new Promise((r) => setTimeout(r, 100));
    }
    await stop(w.child);
    const deep50 = percentile(deep, 0.5);
    if (!BASELINE) process.stdout.write(`BENCH watch_save_to_start_100k ${deep50.toFixed(1)} ms\n`);
    else {
      // Without watch mode: a fresh `pipe run` after the save walks and stats the whole folder.
      const base: number[] = [];
      for (let i = 0; i < 3; i++) {
        const ms = await runAfterSave(dir, join(dir, 'data', 'big', 'd050', 'f9.txt'), `run ${i}\n`);
        if (ms !== undefined) base.push(ms);
      }
      process.stdout.write(`BENCH watch_save_to_start_100k ${deep50.toFixed(1)} ms vs pipe_run_per_save ${(percentile(base, 0.5) / deep50).toFixed(2)}\n`);
      process.stdout.write(`BENCH watch_save_to_start_100k_max ${Math.max(...deep).toFixed(1)} ms\n`);
      // chokidar's recursive watch of the same folder: one fs.watch (and stat) per file.
      const { watch } = await import('chokidar');
      const t1 = Date.now();
      const cw = watch(join(dir, 'data', 'big'), { ignoreInitial: true });
      await new Promise<void>((r) => cw.once('ready', () => r()));
      const chokidarMs = Date.now() - t1;
      await cw.close();
      process.stdout.write(`BENCH watch_startup_100k ${ready.startupMs as number} ms vs chokidar_recursive_startup ${(chokidarMs / (ready.startupMs as number)).toFixed(2)}\n`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await saveToStart();
await idleCpu();
