// `npm run bench -- hashstate [--files N] [--drop-caches]`: the no-op cost of hashing a 100,000-file directory
// (100 folders of 900 files plus a subfolder of 100).
//
// Figures (wall ms, and CPU ms = user+sys of this process, which is steadier on a shared machine):
//  - walk_stat_*: walking + stat'ing the tree alone, sync vs the promise API (why walk.ts is synchronous);
//  - hash_cold: an empty memo (first run): every file read and hashed;
//  - hash_warm_same_process: the memo hit for every file (walk + stat + lookup + manifest + its sha256);
//  - state_save / state_load / state_size: the persisted memo of 100,000 entries;
//  - noop_*: a later `pipe run`'s no-op, in a fresh child process: load state + hash the tree + flush (which writes
//    nothing), with that process's peak RSS.
// Baseline `vs full-rehash`: hashing the tree without a memo (what a tool without a stat memo does every run) =
// cold time / no-op time. `--drop-caches` also times a no-op with the OS dentry/inode/page caches dropped (root).
// Then the Store on 1,000 of the files: first put, a re-put that the memo answers, restores by copy and hardlink,
// and what verifying objects before serving them costs; and the incremental hash of the tree (watch mode).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { mapPool } from '../cache/pool.js';
import { openHashState } from '../cache/state.js';
import { openStore } from '../cache/store.js';
import { walk } from '../cache/walk.js';

const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
const N = Number(opt('--files') ?? 100_000);
const PER_DIR = 1000;
const root = `${tmpdir()}/pipe-bench-hashstate-v2-${N}`;
const tree = `${root}/tree`;
const stateFile = `${root}/state`;

/** One figure per line; `vs` (a baseline run in this script, ratio > 1 = we win) on the same line. */
function bench(figure: string, value: number, unit: string, vs?: { baseline: string; ratio: number }): void {
  const tail = vs ? ` vs ${vs.baseline} ${vs.ratio.toFixed(2)}` : '';
  console.log(`BENCH ${figure} ${Number(value.toFixed(value < 10 ? 2 : 1))} ${unit}${tail}`);
}

/** Time `fn`: best of `reps` for wall and CPU (the best is the least disturbed by other load). */
async function timed<T>(reps: number, fn: () => Promise<T> | T): Promise<{ wall: number; cpu: number; value: T }> {
  let wall = Infinity;
  let cpu = Infinity;
  let value!: T;
  for (let i = 0; i < reps; i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    value = await fn();
    wall = Math.min(wall, Number(process.hrtime.bigint() - t0) / 1e6);
    const c = process.cpuUsage(c0);
    cpu = Math.min(cpu, (c.user + c.system) / 1000);
  }
  return { wall, cpu, value };
}

function report(figure: string, t: { wall: number; cpu: number }, vs?: { baseline: string; wall: number; cpu: number }): void {
  bench(`${figure}_wall`, t.wall, 'ms', vs && { baseline: vs.baseline, ratio: vs.wall / t.wall });
  bench(`${figure}_cpu`, t.cpu, 'ms', vs && { baseline: vs.baseline, ratio: vs.cpu / t.cpu });
}

/** The fixture is kept between runs (creating 100k files is most of the bench's time). */
function makeTree(): void {
  if (existsSync(`${root}/.complete`)) return;
  rmSync(root, { recursive: true, force: true });
  for (let d = 0; d * PER_DIR < N; d++) {
    const dir = `${tree}/part-${String(d).padStart(4, '0')}`;
    mkdirSync(dir, { recursive: true });
    mkdirSync(`${dir}/aux`);
    for (let i = 0; i < PER_DIR && d * PER_DIR + i < N; i++) {
      // 10% in a subdirectory listed before the files: the walk and the memo must handle mixed levels.
      const f = i % 10 === 0 ? `${dir}/aux/img-${i}.bin` : `${dir}/img-${i}.bin`;
      writeFileSync(f, `file ${d}/${i} `.repeat(8));
    }
  }
  writeFileSync(`${root}/.complete`, '');
}

async function walkPromises(dir: string): Promise<number> {
  const ents = await readdir(dir, { withFileTypes: true });
  const files = ents.filter((e) => !e.isDirectory()).map((e) => `${dir}/${e.name}`);
  await mapPool(files, 64, (f) => stat(f, { bigint: true }));
  let n = files.length;
  for (const e of ents) if (e.isDirectory()) n += await walkPromises(`${dir}/${e.name}`);
  return n;
}

/** Child mode: one no-op run as `pipe run` would do it, printing its own figures. */
async function noopChild(): Promise<void> {
  const t = await timed(1, async () => {
    const s = await openHashState(stateFile);
    const h = await s.hashPath(tree);
    await s.flush();
    return { h, reads: s.stats.reads };
  });
  if (t.value.reads !== 0) throw new Error(`no-op read ${t.value.reads} files`);
  console.log(JSON.stringify({ wall: t.wall, cpu: t.cpu, rss: process.resourceUsage().maxRSS / 1024, hash: t.value.h.hash }));
}

async function main(): Promise<void> {
  makeTree();
  let n = 0;
  report('walk_stat_sync', await timed(3, () => walk(tree, () => n++)));
  const p = await timed(3, () => walkPromises(tree));
  report('walk_stat_promises_pool64', p);
  if (p.value * 3 !== n) throw new Error('walks disagree');

  rmSync(stateFile, { force: true });
  // The files were written before this run; no racy window so every one of them is memoised by the cold pass.
  const state = await openHashState(stateFile, { racyWindowMs: 0 });
  const cold = await timed(1, () => state.hashPath(tree));
  report('hash_cold', cold);
  if (state.stats.reads !== p.value) throw new Error(`cold: expected ${p.value} reads, got ${state.stats.reads}`);
  const warm = await timed(3, () => state.hashPath(tree));
  report('hash_warm_same_process', warm);
  if (warm.value.hash !== cold.value.hash || state.stats.reads !== p.value) throw new Error('warm hash re-read files');

  report('state_save', await timed(1, () => state.flush()));
  bench('state_size', statSync(stateFile).size / 1024 / 1024, 'MiB');
  report('state_load', await timed(3, () => openHashState(stateFile)));

  const noopRun = (): { wall: number; cpu: number; rss: number; hash: string } => {
    const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1]!, '--files', String(N), '--noop-child'], {
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`no-op child failed: ${r.stderr}`);
    return JSON.parse(r.stdout) as { wall: number; cpu: number; rss: number; hash: string };
  };
  const runs = [0, 1, 2].map(() => noopRun());
  if (argv.includes('--drop-caches')) {
    // The no-op with the OS dentry/inode/page caches dropped (e.g. the first run after a reboot). Needs root, and
    // briefly slows everything else on the machine, hence opt-in.
    execFileSync('sh', ['-c', 'sync; echo 3 > /proc/sys/vm/drop_caches']);
    const c = noopRun();
    if (c.hash !== cold.value.hash) throw new Error('no-op hash differs');
    bench('noop_os_cold_wall', c.wall, 'ms');
    bench('noop_os_cold_cpu', c.cpu, 'ms');
  }
  if (runs.some((r) => r.hash !== cold.value.hash)) throw new Error('no-op hash differs');
  const noop = { wall: Math.min(...runs.map((r) => r.wall)), cpu: Math.min(...runs.map((r) => r.cpu)) };
  report('noop_load_hash_flush_100k', noop, { baseline: 'full-rehash', wall: cold.wall, cpu: cold.cpu });
  bench('noop_peak_rss', Math.max(...runs.map((r) => r.rss)), 'MiB');

  // The store on one 1,000-file part of the tree: first put (copies), re-put with the memo (stats only), restores.
  const part = `${tree}/part-0000`;
  const storeRoot = `${root}/store`;
  rmSync(storeRoot, { recursive: true, force: true });
  const store = openStore(storeRoot, { state });
  await state.hashPath(part);
  const put = await timed(1, () => store.put(part, 'part'));
  const files = put.value.files;
  report(`store_put_${files}_files`, put);
  report(`store_reput_${files}_files_memo`, await timed(3, () => store.put(part, 'part')));
  for (const mode of ['copy', 'hardlink'] as const) {
    report(`store_restore_${mode}_${files}_files`, await timed(3, () => store.restore(put.value, `${root}/restored-${mode}`, [mode])));
  }

  // What verifying objects before serving them costs a hard-linked restore (docs/cache.md "Verified before served").
  // A fresh memo reads every object once (what "always verify" would cost on every restore); once the memo vouches
  // for their identities, a restore is a stat per object. Baseline: link(2) alone, no verification at all.
  const fresh = await openHashState(`${root}/state-verify`, { racyWindowMs: 0 });
  rmSync(`${root}/state-verify`, { force: true });
  const vstore = openStore(storeRoot, { state: fresh });
  const always = await timed(1, () => vstore.restore(put.value, `${root}/restored-verify-first`, ['hardlink']));
  report(`store_restore_hardlink_${files}_files_read_verified`, always);
  const vouched = await timed(3, () => vstore.restore(put.value, `${root}/restored-verify-memo`, ['hardlink']));
  report(`store_restore_hardlink_${files}_files_memo_verified`, vouched, { baseline: 'read_every_object', ...always });
  const manifest = await vstore.readManifest(put.value.hash);
  const bare = await timed(3, () => {
    const dir = `${root}/restored-bare`;
    rmSync(dir, { recursive: true, force: true });
    for (const e of manifest) {
      if (e.length === 2) continue;
      mkdirSync(dirname(`${dir}/${e[0]}`), { recursive: true });
      linkSync(vstore.objectPath(e[1]), `${dir}/${e[0]}`);
    }
  });
  report(`link_only_${files}_files_unverified`, bare);

  // Incremental hashing of a tracked 100,000-file tree (watch mode): one file changed and reported, the hash
  // recombined from the in-memory view. Baseline: the full walk (what a watch cycle did before).
  const inc = await openHashState(stateFile);
  inc.track(tree);
  await inc.hashPath(tree); // the one full walk
  let k = 0;
  const one = `${tree}/part-0003/img-7.bin`;
  const incremental = await timed(5, async () => {
    writeFileSync(one, `changed ${k++} `.repeat(8));
    inc.changed(one);
    return inc.hashPath(tree);
  });
  const full = await timed(3, () => inc.hashPath(tree, { fresh: true }));
  if (incremental.value.hash !== full.value.hash) throw new Error('incremental hash differs from the full walk');
  report('hash_incremental_1_change_100k', incremental, { baseline: 'full_walk', ...full });
  report('hash_full_walk_100k', full);
  writeFileSync(one, `file 3/7 `.repeat(8)); // the fixture as made, for the next run
}

if (argv.includes('--noop-child')) await noopChild();
else await main();
