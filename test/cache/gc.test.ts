import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { asStageKey, collectGarbage, hashJson, listWorkspaces, openRunCache, openStore, registerWorkspace, type LockRefs, type StoredOutput } from '../../cache/index.js';
import { tempDir } from './helpers.js';

const sha = (b: string): string => createHash('sha256').update(b).digest('hex');
const DAY = 24 * 3600 * 1000;

function countObjects(root: string): number {
  if (!existsSync(`${root}/objects`)) return 0;
  return readdirSync(`${root}/objects`).reduce((n, s) => n + readdirSync(`${root}/objects/${s}`).length, 0);
}

async function setup(): Promise<{ d: string; kept: StoredOutput; recent: StoredOutput; old: StoredOutput; orphan: StoredOutput }> {
  const d = tempDir();
  const store = openStore(`${d}/cache`);
  const put = async (name: string, files: Record<string, string>): Promise<StoredOutput> => {
    mkdirSync(`${d}/ws/${name}`, { recursive: true });
    for (const [f, c] of Object.entries(files)) writeFileSync(`${d}/ws/${name}/${f}`, c);
    return store.put(`${d}/ws/${name}`, name);
  };
  const kept = await put('kept', { a: 'kept-a', shared: 'shared' }); // 3 objects (a, shared, manifest)
  const recent = await put('recent', { b: 'recent-b' }); // 2
  const old = await put('old', { c: 'old-c', shared: 'shared' }); // 2 new (c, manifest); shared is kept's
  const orphan = await put('orphan', { d: 'orphan-d' }); // 2
  const runs = openRunCache(`${d}/runs`);
  const rec = (stage: string, outputs: StoredOutput[], endedAt: number) => ({
    key: asStageKey(hashJson({ stage })),
    stage,
    fields: {},
    outputs,
    startedAt: new Date(endedAt).toISOString(),
    endedAt: new Date(endedAt).toISOString(),
    durationMs: 1,
    host: 'h',
    executor: 'local',
    pipeVersion: '0',
  });
  await runs.put(rec('recent', [recent], Date.now() - DAY));
  await runs.put(rec('old', [old], Date.now() - 60 * DAY));
  return { d, kept, recent, old, orphan };
}

describe('collectGarbage', () => {
  it('dry run counts what would go and deletes nothing', async () => {
    const { d } = await setup();
    const before = countObjects(`${d}/cache`);
    expect(before).toBe(9);
    const r = await collectGarbage({ store: `${d}/cache`, runsDir: `${d}/runs`, keep: [], dryRun: true, graceMs: 0 });
    // not live: kept's 3 objects (no lock file keeps them), old's c + manifest, orphan's d + manifest
    expect(r).toEqual({ objects: 7, bytes: expect.any(Number), kept: 2, runs: 1, sharedRuns: 0, keptFor: [], dropped: [], unknown: [] });
    expect(countObjects(`${d}/cache`)).toBe(before);
    expect(await openRunCache(`${d}/runs`).history('old')).toHaveLength(1);
  });

  it('an aborted signal stops it before anything is judged: nothing deleted, and it says it was interrupted', async () => {
    const { d } = await setup();
    const ac = new AbortController();
    // Aborted while the run records are swept (the keep list is read first): objects are never judged against a
    // live set that is missing records.
    const keep = (function* () {
      ac.abort();
    })();
    const r = await collectGarbage({ store: `${d}/cache`, runsDir: `${d}/runs`, keep, dryRun: false, graceMs: 0, signal: ac.signal });
    expect(r).toMatchObject({ objects: 0, runs: 0, interrupted: true });
    expect(countObjects(`${d}/cache`)).toBe(9);
    expect(await openRunCache(`${d}/runs`).history('old')).toHaveLength(1);
    const done = await collectGarbage({ store: `${d}/cache`, runsDir: `${d}/runs`, keep: [], dryRun: false, graceMs: 0 });
    expect(done.interrupted).toBeUndefined();
    expect(done.objects).toBe(7);
  });

  it('deletes unreferenced objects and old run records, keeps lock-file and recent-run outputs', async () => {
    const { d, kept, recent, old, orphan } = await setup();
    const store = openStore(`${d}/cache`);
    const dry = await collectGarbage({ store: `${d}/cache`, runsDir: `${d}/runs`, keep: [kept], dryRun: true, graceMs: 0 });
    const r = await collectGarbage({ store: `${d}/cache`, runsDir: `${d}/runs`, keep: [kept], dryRun: false, graceMs: 0 });
    expect(r).toEqual(dry);
    expect(r.objects).toBe(4); // old: c + manifest; orphan: d + manifest
    expect(r.bytes).toBeGreaterThan(0);
    expect(r.kept).toBe(5);
    expect(r.runs).toBe(1);
    expect(await store.has(kept)).toBe(true);
    expect(await store.has(recent)).toBe(true);
    expect(await store.has(old)).toBe(false);
    expect(await store.has(orphan)).toBe(false);
    expect(existsSync(store.objectPath(kept.hash))).toBe(true);
    expect(existsSync(`${d}/cache/objects/${sha('shared').slice(0, 2)}/${sha('shared').slice(2)}`)).toBe(true);
    const runs = openRunCache(`${d}/runs`);
    expect(await runs.history('old')).toEqual([]);
    expect(readdirSync(`${d}/runs/by-stage/old`)).toEqual([]);
    expect(await runs.history('recent')).toHaveLength(1);
    // idempotent
    expect(await collectGarbage({ store: `${d}/cache`, runsDir: `${d}/runs`, keep: [kept], dryRun: false, graceMs: 0 })).toMatchObject({
      objects: 0,
      runs: 0,
    });
  });

  it('keepRunsNewerThanMs widens or narrows what runs protect; young objects get a grace period', async () => {
    const { d, old } = await setup();
    const keepAll = await collectGarbage({ store: `${d}/cache`, runsDir: `${d}/runs`, keep: [], dryRun: true, graceMs: 0, keepRunsNewerThanMs: 365 * DAY });
    expect(keepAll.runs).toBe(0);
    expect(keepAll.objects).toBe(4); // kept's a + manifest (shared stays: old's run keeps it), orphan's 2
    // Everything is younger than the default 1 h grace: nothing is deleted.
    const graced = await collectGarbage({ store: `${d}/cache`, runsDir: `${d}/runs`, keep: [], dryRun: false, keepRunsNewerThanMs: 0 });
    expect(graced.objects).toBe(0);
    expect(await openStore(`${d}/cache`).has(old)).toBe(true);
    // Age the objects past the grace period: now they go.
    const past = new Date(Date.now() - 2 * 3600 * 1000);
    for (const s of readdirSync(`${d}/cache/objects`)) {
      for (const o of readdirSync(`${d}/cache/objects/${s}`)) utimesSync(`${d}/cache/objects/${s}/${o}`, past, past);
    }
    const r = await collectGarbage({ store: `${d}/cache`, runsDir: `${d}/runs`, keep: [], dryRun: false, keepRunsNewerThanMs: 0 });
    expect(r.objects).toBe(9);
    expect(countObjects(`${d}/cache`)).toBe(0);
  });

  it('putting an existing object again refreshes it, so gc spares it until its record exists', async () => {
    const { d } = await setup();
    const past = new Date(Date.now() - 2 * 3600 * 1000);
    for (const s of readdirSync(`${d}/cache/objects`)) {
      for (const o of readdirSync(`${d}/cache/objects/${s}`)) utimesSync(`${d}/cache/objects/${s}/${o}`, past, past);
    }
    const again = await openStore(`${d}/cache`).put(`${d}/ws/orphan`, 'orphan');
    await collectGarbage({ store: `${d}/cache`, runsDir: `${d}/runs`, keep: [], dryRun: false, keepRunsNewerThanMs: 0 });
    expect(await openStore(`${d}/cache`).has(again)).toBe(true);
  });

  it('a store shared by two workspaces keeps what either workspace\'s recent runs reference', async () => {
    const { d, recent } = await setup(); // its runs live in d/runs
    const other = openRunCache(`${d}/other-runs`); // the second workspace: no runs of its own
    expect(await other.history('x')).toEqual([]);
    const past = new Date(Date.now() - 2 * 3600 * 1000);
    for (const s of readdirSync(`${d}/cache/objects`)) {
      for (const o of readdirSync(`${d}/cache/objects/${s}`)) utimesSync(`${d}/cache/objects/${s}/${o}`, past, past);
    }
    const both = await collectGarbage({ store: `${d}/cache`, runsDir: [`${d}/other-runs`, `${d}/runs`], keep: [], dryRun: true });
    const onlyOther = await collectGarbage({ store: `${d}/cache`, runsDir: `${d}/other-runs`, keep: [], dryRun: true });
    expect(onlyOther.objects).toBe(9);
    expect(both.objects).toBe(7); // recent's b + manifest survive
    await collectGarbage({ store: `${d}/cache`, runsDir: [`${d}/other-runs`, `${d}/runs`], keep: [], dryRun: false });
    expect(await openStore(`${d}/cache`).has(recent)).toBe(true);
  });

  it('removes temp files of crashed puts once a day old, never fresh ones (a put in progress)', async () => {
    const { d } = await setup();
    mkdirSync(`${d}/cache/tmp`, { recursive: true });
    const crashed = '123-0123456789abcdef';
    const fresh = '456-fedcba9876543210';
    writeFileSync(`${d}/cache/tmp/${crashed}`, 'partial');
    writeFileSync(`${d}/cache/tmp/${fresh}`, 'in progress');
    const old = new Date(Date.now() - 2 * DAY);
    utimesSync(`${d}/cache/tmp/${crashed}`, old, old);
    await collectGarbage({ store: `${d}/cache`, runsDir: `${d}/runs`, keep: [], dryRun: true });
    expect(readdirSync(`${d}/cache/tmp`).sort()).toEqual([crashed, fresh]);
    await collectGarbage({ store: `${d}/cache`, runsDir: `${d}/runs`, keep: [], dryRun: false });
    expect(readdirSync(`${d}/cache/tmp`)).toEqual([fresh]);
  });

  it('deletes only what the store itself writes: a cache_dir that already held a tmp/ (say $HOME) keeps its files', async () => {
    const { d } = await setup();
    // `settings.cache_dir: ~` — the user's own ~/tmp and ~/objects/ab/ are not the store's to collect.
    mkdirSync(`${d}/cache/tmp/thesis`, { recursive: true });
    writeFileSync(`${d}/cache/tmp/thesis/ch1.tex`, 'chapter 1');
    writeFileSync(`${d}/cache/tmp/notes.txt`, 'notes');
    mkdirSync(`${d}/cache/objects/ab`, { recursive: true });
    writeFileSync(`${d}/cache/objects/ab/README`, 'mine');
    const old = new Date(Date.now() - 30 * DAY);
    for (const p of ['tmp/thesis/ch1.tex', 'tmp/thesis', 'tmp/notes.txt', 'objects/ab/README']) utimesSync(`${d}/cache/${p}`, old, old);
    await collectGarbage({ store: `${d}/cache`, runsDir: `${d}/runs`, keep: [], dryRun: false, graceMs: 0 });
    expect(readFileSync(`${d}/cache/tmp/thesis/ch1.tex`, 'utf8')).toBe('chapter 1');
    expect(readFileSync(`${d}/cache/tmp/notes.txt`, 'utf8')).toBe('notes');
    expect(readFileSync(`${d}/cache/objects/ab/README`, 'utf8')).toBe('mine');
  });
});

describe('collectGarbage with the store\'s registry of workspaces', () => {
  /** Two workspaces A and B on one store, each with a "lock file" (JSON here: the reader is the caller's). */
  async function shared() {
    const d = tempDir();
    const storeRoot = `${d}/cache`;
    const store = openStore(storeRoot);
    const ws = async (name: string, content: string) => {
      const root = `${d}/${name}`;
      mkdirSync(`${root}/.pipe`, { recursive: true });
      writeFileSync(`${root}/out.txt`, content);
      const out = await store.put(`${root}/out.txt`, 'out.txt');
      const lock = `${root}/p.lock.json`;
      writeFileSync(lock, JSON.stringify({ keys: [], outputs: [{ hash: out.hash }] }));
      await registerWorkspace(storeRoot, { root, pipeDir: `${root}/.pipe`, pipeline: `${root}/p.yaml`, lock });
      return { root, pipeDir: `${root}/.pipe`, out, lock };
    };
    const a = await ws('a', 'result of a');
    const b = await ws('b', 'result of b');
    const readLock = async (file: string): Promise<LockRefs | undefined> => {
      try {
        return JSON.parse(readFileSync(file, 'utf8')) as LockRefs;
      } catch {
        return undefined;
      }
    };
    const gcA = (extra: Partial<Parameters<typeof collectGarbage>[0]> = {}) =>
      collectGarbage({ store: storeRoot, runsDir: `${a.pipeDir}/runs`, keep: [], readLock, self: a.pipeDir, dryRun: false, graceMs: 0, keepRunsNewerThanMs: 0, ...extra });
    return { d, storeRoot, store, a, b, gcA, readLock };
  }

  it('keeps what another workspace\'s lock file references, and says so', async () => {
    const { store, a, b, gcA } = await shared();
    const r = await gcA();
    expect(r.objects).toBe(0);
    expect(r.keptFor).toEqual([{ root: b.root, host: hostname(), objects: 1 }]);
    expect(await store.has(b.out)).toBe(true);
    expect(await store.has(a.out)).toBe(true); // a's own lock file (registered) keeps its output too
    // Without the registry (the old behaviour), b's output would have gone.
    const { store: s2, gcA: gc2, b: b2 } = await shared();
    await gc2({ readLock: undefined, keep: [] });
    expect(await s2.has(b2.out)).toBe(false);
  });

  it('drops a workspace that no longer exists, and collects what only it referenced', async () => {
    const { storeRoot, store, b, gcA } = await shared();
    rmSync(b.root, { recursive: true });
    const dry = await gcA({ dryRun: true });
    expect(dry.dropped).toEqual([{ root: b.root, host: hostname() }]);
    expect(await listWorkspaces(storeRoot)).toHaveLength(2);
    const r = await gcA();
    expect(r.dropped).toEqual([{ root: b.root, host: hostname() }]);
    expect(r.objects).toBe(1);
    expect(await store.has(b.out)).toBe(false);
    expect((await listWorkspaces(storeRoot)).map((w) => w.root)).toEqual([expect.stringMatching(/\/a$/)]);
    expect((await gcA()).dropped).toEqual([]); // said once
  });

  it('a workspace on another host that cannot be seen from here stops gc from deleting any object', async () => {
    const { d, storeRoot, store, gcA } = await shared();
    mkdirSync(`${storeRoot}/workspaces/${'f'.repeat(24)}`, { recursive: true });
    writeFileSync(
      `${storeRoot}/workspaces/${'f'.repeat(24)}/0123456789abcdef.json`,
      JSON.stringify({ version: 1, id: 'f'.repeat(24), host: 'cluster-node-7', root: '/scratch/ws', pipeDir: '/scratch/ws/.pipe', pipeline: '/scratch/ws/p.yaml', lock: '/scratch/ws/p.lock.yaml' }),
    );
    writeFileSync(`${d}/orphan`, 'orphan');
    const orphan = await store.put(`${d}/orphan`, 'orphan');
    const r = await gcA();
    expect(r.unknown).toEqual([{ root: '/scratch/ws', host: 'cluster-node-7' }]);
    expect(r.objects).toBe(0);
    expect(await store.has(orphan)).toBe(true);
  });

  it('a registry entry naming a FIFO as its workspace.json (a store others can write) does not hang gc: that workspace is unknown', async () => {
    const { d, storeRoot, store, gcA } = await shared();
    const id = 'e'.repeat(24);
    mkdirSync(`${d}/trap/.pipe`, { recursive: true });
    expect(spawnSync('mkfifo', [`${d}/trap/.pipe/workspace.json`]).status).toBe(0);
    mkdirSync(`${storeRoot}/workspaces/${id}`, { recursive: true });
    writeFileSync(
      `${storeRoot}/workspaces/${id}/0123456789abcdef.json`,
      JSON.stringify({ version: 1, id, host: hostname(), root: `${d}/trap`, pipeDir: `${d}/trap/.pipe`, pipeline: `${d}/trap/p.yaml`, lock: `${d}/trap/p.lock.yaml` }),
    );
    // and a FIFO among the registry's own entries
    expect(spawnSync('mkfifo', [`${storeRoot}/workspaces/${id}/fedcba9876543210.json`]).status).toBe(0);
    writeFileSync(`${d}/orphan`, 'orphan');
    const orphan = await store.put(`${d}/orphan`, 'orphan');
    const r = await gcA();
    expect(r.unknown).toEqual([{ root: `${d}/trap`, host: hostname() }]);
    expect(r.objects).toBe(0);
    expect(await store.has(orphan)).toBe(true);
  });

  it('the store\'s shared run records live while recent or named by a lock file', async () => {
    const { d, storeRoot, store, a, gcA } = await shared();
    const runs = openRunCache(`${a.pipeDir}/runs`, { store });
    const rec = (stage: string, outputs: StoredOutput[]) => ({
      key: asStageKey(hashJson({ stage })), stage, fields: {}, outputs, startedAt: '2020-01-01T00:00:00.000Z', endedAt: '2020-01-01T00:00:00.000Z',
      durationMs: 1, host: 'h', executor: 'local', pipeVersion: '0',
    });
    writeFileSync(`${d}/named`, 'named by the lock');
    writeFileSync(`${d}/unnamed`, 'named by nothing');
    const named = rec('named', [await store.put(`${d}/named`, 'named')]);
    const unnamed = rec('unnamed', [await store.put(`${d}/unnamed`, 'unnamed')]);
    await runs.put(named);
    await runs.put(unnamed);
    writeFileSync(a.lock, JSON.stringify({ keys: [named.key], outputs: [{ hash: a.out.hash }] }));
    const r = await gcA();
    expect(r.sharedRuns).toBe(1);
    expect(r.runs).toBe(2); // a's own old records
    const other = openRunCache(`${d}/fresh-clone/.pipe/runs`, { store });
    expect(await other.get(named.key)).toBeDefined(); // a fresh clone still restores what the lock file names
    expect(await other.get(unnamed.key)).toBeUndefined();
    expect(await store.has(named.outputs[0]!)).toBe(true);
    expect(await store.has(unnamed.outputs[0]!)).toBe(false);
    expect(existsSync(`${storeRoot}/runs/${named.key.slice(0, 2)}/${named.key}.json`)).toBe(true);
  });
});
