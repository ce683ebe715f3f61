// Incremental directory hashing (issue 12): a tracked directory is walked once; later hashes re-check only the paths
// a watcher reported, recombining the Merkle hash from the in-memory view — and fall back to a full walk whenever
// the view cannot be trusted.
import { linkSync, mkdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { asHash, hashBytes, manifestJson, openHashState, type ManifestEntry } from '../../cache/index.js';
import { ManifestView } from '../../cache/view.js';
import { settle, tempDir } from './helpers.js';

describe('ManifestView', () => {
  it('stays equal to manifestJson under random inserts, replacements and subtree removals', () => {
    const h = (s: string) => hashBytes(s);
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const names = ['a', 'a!b', 'a/x', 'a/y/z', 'b', 'b/c', 'c.txt', 'ä', 'a-1', 'a/x!'];
    const model = new Map<string, ManifestEntry>();
    for (let i = 0; i < 3000; i++) {
      const rel = `${names[rnd(names.length)]}/${rnd(40)}${rnd(3) === 0 ? `/${rnd(5)}` : ''}`;
      model.set(rel, [rel, asHash(h(rel)), rnd(100)]);
    }
    const sorted = () => [...model.values()].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
    const view = new ManifestView(sorted());
    expect(view.hash()).toBe(hashBytes(manifestJson(sorted())));
    for (let step = 0; step < 400; step++) {
      const op = rnd(3);
      if (op === 0) {
        const rel = `${names[rnd(names.length)]}/${rnd(60)}`;
        const e: ManifestEntry = rnd(5) === 0 ? [rel, 'target'] : [rel, asHash(h(`${rel}${step}`)), step];
        model.set(rel, e);
        view.upsert(e);
      } else if (op === 1) {
        const keys = [...model.keys()];
        const rel = keys[rnd(keys.length)]!;
        const e: ManifestEntry = [rel, asHash(h(`x${step}`)), 1];
        model.set(rel, e);
        view.upsert(e);
      } else {
        const prefix = names[rnd(names.length)]!;
        for (const k of [...model.keys()]) if (k === prefix || k.startsWith(`${prefix}/`)) model.delete(k);
        view.removeTree(prefix);
      }
      if (step % 25 === 0) {
        expect(view.entries()).toEqual(sorted());
        expect(view.hash()).toBe(hashBytes(manifestJson(sorted())));
      }
    }
    expect(view.length).toBe(model.size);
    expect(view.hash()).toBe(hashBytes(manifestJson(sorted())));
  });
});

async function tree(d: string): Promise<void> {
  for (let k = 0; k < 5; k++) {
    mkdirSync(`${d}/t/p${k}/sub`, { recursive: true });
    for (let i = 0; i < 40; i++) writeFileSync(`${d}/t/p${k}/${i % 4 === 0 ? 'sub/' : ''}f${i}`, `${k}-${i}`);
  }
  await settle();
}

describe('tracked directories', () => {
  it('re-check only reported paths and give the same hash as a full walk', async () => {
    const d = tempDir();
    await tree(d);
    const s = await openHashState(`${d}/state`, { racyWindowMs: 0 });
    const fresh = async () => (await (await openHashState(`${d}/other`, { racyWindowMs: 0 })).hashPath(`${d}/t`)).hash;
    s.track(`${d}/t`);
    const first = await s.hashPath(`${d}/t`);
    expect(first.hash).toBe(await fresh());
    expect(s.stats.incremental).toBe(0);

    // An edit, a new file, a deletion, a new folder with files, a renamed folder: each reported.
    writeFileSync(`${d}/t/p0/f1`, 'edited');
    writeFileSync(`${d}/t/p1/new`, 'new');
    rmSync(`${d}/t/p2/f3`);
    mkdirSync(`${d}/t/p3/fresh/deep`, { recursive: true });
    writeFileSync(`${d}/t/p3/fresh/deep/x`, 'x');
    renameSync(`${d}/t/p4`, `${d}/t/p5`);
    for (const p of ['p0/f1', 'p1/new', 'p2/f3', 'p3/fresh', 'p4', 'p5']) s.changed(`${d}/t/${p}`);
    const stats0 = { ...s.stats };
    const second = await s.hashPath(`${d}/t`);
    expect(second.hash).toBe(await fresh());
    expect(s.stats.incremental).toBe(1);
    expect(s.stats.rechecked - stats0.rechecked).toBe(6);
    expect(s.stats.hits - stats0.hits).toBeLessThan(60); // p5's 40 files (memo hits) and p3/fresh, not all 200
    expect(second.files).toBe(201); // 200 + p1/new + p3/fresh/deep/x - p2/f3

    // Nothing reported: nothing stat'ed, the same hash.
    const stats1 = { ...s.stats };
    expect((await s.hashPath(`${d}/t`)).hash).toBe(second.hash);
    expect(s.stats.hits).toBe(stats1.hits);

    // `fresh` walks anyway (the engine's dep check after a stage ran), and sees an unreported edit.
    writeFileSync(`${d}/t/p0/f2`, 'not reported');
    expect((await s.hashPath(`${d}/t`)).hash).toBe(second.hash); // the view trusts the reports
    expect((await s.hashPath(`${d}/t`, { fresh: true })).hash).toBe(await fresh());
  });

  it('concurrent hashes of one tracked tree never see a half-updated view', async () => {
    const d = tempDir();
    await tree(d);
    const s = await openHashState(`${d}/state`, { racyWindowMs: 0 });
    s.track(`${d}/t`);
    await s.hashPath(`${d}/t`);
    for (let i = 0; i < 40; i++) {
      writeFileSync(`${d}/t/p1/f${i}`, `v2-${i}`.repeat(100));
      s.changed(`${d}/t/p1/f${i}`);
    }
    const [a, b] = await Promise.all([s.hashPath(`${d}/t`), s.hashPath(`${d}/t`)]);
    const expected = (await (await openHashState(`${d}/other`)).hashPath(`${d}/t`)).hash;
    expect(a.hash).toBe(expected);
    expect(b.hash).toBe(expected);
  });

  it('falls back to a full walk where events cannot be trusted: links, hard links, too many reports, untracked', async () => {
    const d = tempDir();
    await tree(d);
    writeFileSync(`${d}/outside`, 'o');
    const s = await openHashState(`${d}/state`, { racyWindowMs: 0, maxChanges: 10 });
    s.track(`${d}/t`);
    await s.hashPath(`${d}/t`);

    // A symlink appears: a change of its target raises no event in this tree, so the tree is walked from now on.
    symlinkSync(`${d}/outside`, `${d}/t/p0/link`);
    s.changed(`${d}/t/p0/link`);
    await s.hashPath(`${d}/t`);
    const walked = s.stats.incremental;
    writeFileSync(`${d}/outside`, 'changed behind the link');
    const h = await s.hashPath(`${d}/t`); // nothing reported, still right
    expect(s.stats.incremental).toBe(walked);
    expect(h.hash).toBe((await (await openHashState(`${d}/o1`)).hashPath(`${d}/t`)).hash);
    rmSync(`${d}/t/p0/link`);

    // A second hard link to a file inside: likewise.
    linkSync(`${d}/t/p1/f1`, `${d}/hard`);
    s.changed(`${d}/t/p1/f1`);
    await s.hashPath(`${d}/t`); // walks (and finds the hard link: no view)
    writeFileSync(`${d}/hard`, 'edited through the other name');
    expect((await s.hashPath(`${d}/t`)).hash).toBe((await (await openHashState(`${d}/o2`)).hashPath(`${d}/t`)).hash);
    rmSync(`${d}/hard`);
    await s.hashPath(`${d}/t`, { fresh: true }); // a clean tree again: a view again
    const inc = s.stats.incremental;
    await s.hashPath(`${d}/t`);
    expect(s.stats.incremental).toBe(inc + 1);

    // More reports than maxChanges (a burst that may have overflowed the kernel queue): a full walk.
    for (let i = 0; i < 11; i++) s.changed(`/elsewhere/${i}`);
    writeFileSync(`${d}/t/p2/f2`, 'unreported, lost in the burst');
    expect((await s.hashPath(`${d}/t`)).hash).toBe((await (await openHashState(`${d}/o3`)).hashPath(`${d}/t`)).hash);
    expect(s.stats.incremental).toBe(inc + 1);

    // Untracked (the watcher stopped): always walked.
    s.untrack(`${d}/t`);
    writeFileSync(`${d}/t/p3/f2`, 'unreported');
    expect((await s.hashPath(`${d}/t`)).hash).toBe((await (await openHashState(`${d}/o4`)).hashPath(`${d}/t`)).hash);
  });
});

describe('watch mode keeps a big dep folder\'s hash from its events', () => {
  it('a save inside re-checks that file only, and the stage runs on the right hash', async () => {
    const { WatchSession } = await import('../../engine/watch.js');
    const d = tempDir();
    for (let k = 0; k < 20; k++) {
      mkdirSync(`${d}/data/big/d${k}`, { recursive: true });
      for (let i = 0; i < 100; i++) writeFileSync(`${d}/data/big/d${k}/f${i}.txt`, `${k}-${i}`);
    }
    writeFileSync(`${d}/p.yaml`, 'name: w\nstages:\n  s:\n    cmd: cat data/big/d3/f7.txt > out/s.txt\n    deps: [data/big/]\n    outs: [out/s.txt]\n');
    const events: Array<{ type: string; cycle?: number; stage?: string; status?: string }> = [];
    const s = new WatchSession({ file: `${d}/p.yaml`, targets: [], emit: (e) => events.push(e as (typeof events)[number]) });
    const until = async (what: string, f: () => boolean): Promise<void> => {
      const t0 = Date.now();
      while (!f()) {
        if (Date.now() - t0 > 60_000) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(events.slice(-5))}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      s.start();
      await until('cycle 1', () => events.some((e) => e.type === 'cycle-end' && e.cycle === 1));
      const state = (s as unknown as { ws: { state: { stats: { hits: number; reads: number; incremental: number; rechecked: number } } } }).ws.state;
      const before = { ...state.stats };
      writeFileSync(`${d}/data/big/d3/f7.txt`, 'edited');
      await until('cycle 2', () => events.some((e) => e.type === 'cycle-end' && e.cycle === 2));
      expect(events.find((e) => e.type === 'stage-end' && e.cycle === 2)).toMatchObject({ stage: 's', status: 'ran' });
      expect(readFileSync(`${d}/out/s.txt`, 'utf8')).toBe('edited');
      // The decision re-checked the one reported file; the dep check after the run walked the folder (2,000 stats).
      expect(state.stats.incremental - before.incremental).toBe(1);
      expect(state.stats.rechecked - before.rechecked).toBe(1);
      // And what it recorded is the folder's true hash (a fresh walk by another memo agrees).
      const truth = (await (await openHashState(`${d}/truth`)).hashPath(`${d}/data/big`)).hash!;
      expect(readFileSync(`${d}/p.lock.yaml`, 'utf8')).toContain(truth);
    } finally {
      await s.stop('quit');
    }
  });
});
