import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, utimesSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { asStageKey, collectGarbage, hashJson, openRunCache, openStore, type StoredOutput } from '../../cache/index.js';
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
    writeFileSync(`${d}/cache/tmp/123-old`, 'partial');
    writeFileSync(`${d}/cache/tmp/456-fresh`, 'in progress');
    const old = new Date(Date.now() - 2 * DAY);
    utimesSync(`${d}/cache/tmp/123-old`, old, old);
    await collectGarbage({ store: `${d}/cache`, runsDir: `${d}/runs`, keep: [], dryRun: true });
    expect(readdirSync(`${d}/cache/tmp`).sort()).toEqual(['123-old', '456-fresh']);
    await collectGarbage({ store: `${d}/cache`, runsDir: `${d}/runs`, keep: [], dryRun: false });
    expect(readdirSync(`${d}/cache/tmp`)).toEqual(['456-fresh']);
  });
});
