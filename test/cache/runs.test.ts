import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { asStageKey, hashJson, openRunCache, openStore, safeStageName, type RunRecord } from '../../cache/index.js';
import { startChild, tempDir } from './helpers.js';

function record(stage: string, n: number, endedAt: string, extra: Partial<RunRecord> = {}): RunRecord {
  return {
    key: asStageKey(hashJson({ stage, n })),
    stage,
    fields: { params: { lr: n } },
    outputs: [],
    startedAt: endedAt,
    endedAt,
    durationMs: 10,
    host: 'h',
    executor: 'local',
    pipeVersion: '0.1.0',
    ...extra,
  };
}

describe('RunCache', () => {
  it('get returns any earlier run by key, not only the last', async () => {
    const d = tempDir();
    const runs = openRunCache(`${d}/runs`);
    const a = record('train@x', 1, '2026-01-01T00:00:00.000Z');
    const b = record('train@x', 2, '2026-01-02T00:00:00.000Z');
    await runs.put(a);
    await runs.put(b);
    expect(await runs.get(a.key)).toEqual(a);
    expect(await runs.get(b.key)).toEqual(b);
    expect(await runs.get(asStageKey(hashJson('unknown')))).toBeUndefined();
    expect(readFileSync(`${d}/runs/${a.key.slice(0, 2)}/${a.key}.json`, 'utf8')).toContain('"train@x"');
  });

  it('history is newest first, per stage, limited, one entry per key at its newest run', async () => {
    const d = tempDir();
    const runs = openRunCache(`${d}/runs`);
    const r1 = record('fpr@model=a,split=test', 1, '2026-01-01T00:00:00.000Z');
    const r2 = record('fpr@model=a,split=test', 2, '2026-01-03T00:00:00.000Z');
    const r3 = record('fpr@model=a,split=test', 3, '2026-01-02T00:00:00.000Z');
    const other = record('train', 9, '2026-01-05T00:00:00.000Z');
    for (const r of [r1, r2, r3, other]) await runs.put(r);
    expect((await runs.history('fpr@model=a,split=test')).map((r) => r.key)).toEqual([r2.key, r3.key, r1.key]);
    expect((await runs.history('fpr@model=a,split=test', 2)).map((r) => r.key)).toEqual([r2.key, r3.key]);
    expect((await runs.history('train')).map((r) => r.key)).toEqual([other.key]);
    expect(await runs.history('never-ran')).toEqual([]);
    // r1 run again later: it moves to the front, listed once
    const r1again = { ...r1, endedAt: '2026-01-09T00:00:00.000Z' };
    await runs.put(r1again);
    expect((await runs.history('fpr@model=a,split=test')).map((r) => r.key)).toEqual([r1.key, r2.key, r3.key]);
  });

  it('a FIFO, a directory or an oversized file where a record belongs (a shared store others write) reads as absent, without blocking', async () => {
    const d = tempDir();
    const runs = openRunCache(`${d}/runs`);
    const [fifo, dir, big] = [1, 2, 3].map((n) => record('s', n, '2026-01-01T00:00:00.000Z'));
    for (const r of [fifo!, dir!, big!]) await runs.put(r);
    const at = (r: RunRecord) => `${d}/runs/${r.key.slice(0, 2)}/${r.key}.json`;
    rmSync(at(fifo!));
    expect(spawnSync('mkfifo', [at(fifo!)]).status).toBe(0); // a plain read of it would block forever (no writer)
    rmSync(at(dir!));
    mkdirSync(at(dir!));
    writeFileSync(at(big!), Buffer.alloc(64 * 1024 * 1024 + 1, 0x20));
    for (const r of [fifo!, dir!, big!]) expect(await runs.get(r.key)).toBeUndefined();
    // A record written again replaces the planted file.
    await runs.put(fifo!, { replace: true });
    expect((await runs.get(fifo!.key))?.key).toBe(fifo!.key);
  });

  it('a link a stage put at a history marker\'s name is not opened: nothing is created where it points, and recording the same run again is harmless', async () => {
    const d = tempDir();
    const runs = openRunCache(`${d}/runs`);
    const r = record('s', 1, '2026-01-01T00:00:00.000Z');
    const marker = `${runs.historyDir('s')}/${String(Date.parse(r.endedAt)).padStart(15, '0')}-${r.key}`;
    mkdirSync(runs.historyDir('s'), { recursive: true });
    symlinkSync(`${d}/outside.txt`, marker); // dangling: a plain 'w' open would create outside.txt
    await runs.put(r);
    expect(existsSync(`${d}/outside.txt`)).toBe(false);
    expect(await runs.get(r.key)).toEqual(r);
    rmSync(marker);
    await runs.put(r);
    await runs.put(r);
    expect((await runs.history('s')).map((x) => x.key)).toEqual([r.key]);
  });

  it('a damaged record is treated as absent', async () => {
    const d = tempDir();
    const runs = openRunCache(`${d}/runs`);
    const r = record('s', 1, '2026-01-01T00:00:00.000Z');
    await runs.put(r);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(`${d}/runs/${r.key.slice(0, 2)}/${r.key}.json`, '{"key": "trunc');
    expect(await runs.get(r.key)).toBeUndefined();
    expect(await runs.history('s')).toEqual([]);
  });

  it('stage names become safe, distinct folder names', () => {
    expect(safeStageName('fpr@model=a,split=test')).not.toContain('/');
    expect(safeStageName('a/b')).not.toBe(safeStageName('a_b'));
    expect(safeStageName('..')).not.toBe('..');
    const long1 = safeStageName('x'.repeat(300) + '1');
    const long2 = safeStageName('x'.repeat(300) + '2');
    expect(long1.length).toBeLessThanOrEqual(180);
    expect(long1).not.toBe(long2);
  });

  it('two processes recording runs of one stage at once lose nothing', async () => {
    const d = tempDir();
    const body = `
      const runs = cache.openRunCache(args.dir);
      for (let i = 0; i < 40; i++) {
        const endedAt = new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();
        await runs.put({ key: cache.hashJson({ who: args.who, i }), stage: 'train', fields: {}, outputs: [],
          startedAt: endedAt, endedAt, durationMs: 1, host: 'h', executor: 'local', pipeVersion: '0' });
      }`;
    const kids = ['a', 'b'].map((who) => startChild(d, body, { dir: `${d}/runs`, who }).done);
    for (const r of await Promise.all(kids)) expect(r.code, r.stderr).toBe(0);
    const hist = await openRunCache(`${d}/runs`).history('train');
    expect(hist).toHaveLength(80);
    expect(readdirSync(`${d}/runs/by-stage/train`)).toHaveLength(80);
    const ended = hist.map((r) => r.endedAt);
    expect([...ended].sort().reverse()).toEqual(ended);
  });
});

describe('same key, different bytes', () => {
  async function setup() {
    const d = tempDir();
    const store = openStore(`${d}/cache`);
    const put = async (name: string, text: string) => {
      writeFileSync(`${d}/${name}`, text);
      return store.put(`${d}/${name}`, 'out/x.txt');
    };
    const runs = openRunCache(`${d}/runs`, { store });
    const base = record('train', 1, '2026-01-01T00:00:00.000Z');
    return { d, store, put, runs, base };
  }

  it('keeps the first result, records the disagreement, and says which output differs', async () => {
    const { put, runs, base } = await setup();
    const first = { ...base, outputs: [await put('a', 'first')] };
    expect(await runs.put(first)).toEqual({ record: first, disagreements: [] });
    const later = { ...base, endedAt: '2026-01-02T00:00:00.000Z', host: 'h2', outputs: [{ ...(await put('b', 'second')), path: 'out/x.txt' }] };
    const r = await runs.put(later);
    expect(r.record.outputs).toEqual(first.outputs); // the first result stays in force
    expect(r.disagreements).toEqual([
      { key: base.key, stage: 'train', path: 'out/x.txt', first: first.outputs[0]!.hash, second: later.outputs[0]!.hash, at: later.endedAt, host: 'h2', kept: 'first' },
    ]);
    expect((await runs.get(base.key))!.outputs).toEqual(first.outputs);
    expect([...(await runs.nondeterministicKeys())]).toEqual([base.key]);
    expect(await runs.disagreements(base.key)).toEqual(r.disagreements);
    // The same bytes again is no news.
    expect((await runs.put({ ...first, endedAt: '2026-01-03T00:00:00.000Z' })).disagreements).toEqual([]);
    // A fresh reader (another process) sees the record too.
    const again = openRunCache(runs.dir);
    expect(await again.disagreements(base.key)).toHaveLength(1);
    expect((await again.nondeterministicKeys()).has(base.key)).toBe(true);
  });

  it('a first result that can no longer be served is replaced (and the disagreement still recorded)', async () => {
    const { store, put, runs, base } = await setup();
    const first = { ...base, outputs: [await put('a', 'first')] };
    await runs.put(first);
    rmSync(store.objectPath(first.outputs[0]!.hash));
    const later = { ...base, outputs: [await put('b', 'second')] };
    const r = await runs.put(later);
    expect(r.record).toEqual(later);
    expect(r.disagreements[0]).toMatchObject({ kept: 'second' });
    expect((await runs.get(base.key))!.outputs).toEqual(later.outputs);
  });

  it('a first result that lacks an output of the later run (outputs: [], another path) is not kept in force', async () => {
    const { d, put, runs, base } = await setup();
    const later = { ...base, outputs: [await put('b', 'second')] };
    for (const outputs of [[], [{ ...later.outputs[0]!, path: 'out/other.txt' }]]) {
      // What anyone who can write the store (or a stage, .pipe/runs) can leave under a key: kept as "the first
      // result", it was restored in place of every later run, which then failed ("did not store out/x.txt").
      mkdirSync(`${d}/cache/runs/${base.key.slice(0, 2)}`, { recursive: true });
      writeFileSync(`${d}/cache/runs/${base.key.slice(0, 2)}/${base.key}.json`, JSON.stringify({ ...base, fields: {}, outputs }));
      const r = await runs.put(later);
      expect(r.record, JSON.stringify(outputs)).toEqual(later);
      expect(r.disagreements.length).toBeGreaterThan(0);
      expect((await runs.get(base.key))!.outputs).toEqual(later.outputs);
    }
  });

  it('always_run stages replace their record (replace: true)', async () => {
    const { put, runs, base } = await setup();
    await runs.put({ ...base, outputs: [await put('a', 'one')] });
    const later = { ...base, outputs: [await put('b', 'two')] };
    expect(await runs.put(later, { replace: true })).toEqual({ record: later, disagreements: [] });
    expect((await runs.get(base.key))!.outputs).toEqual(later.outputs);
  });

  it('records are shared through the store: another workspace restores through them, and its first result stands', async () => {
    const { d, store, put, runs, base } = await setup();
    const first = { ...base, fields: { env: { TOKEN: 'secret' } }, outputs: [await put('a', 'first')] };
    await runs.put(first);
    const other = openRunCache(`${d}/other-ws/runs`, { store });
    const seen = await other.get(base.key);
    expect(seen!.outputs).toEqual(first.outputs);
    expect(seen!.fields).toEqual({}); // key fields (env values) stay in the workspace
    expect(readFileSync(`${d}/cache/runs/${base.key.slice(0, 2)}/${base.key}.json`, 'utf8')).not.toContain('secret');
    // The other workspace's own run of the key gives other bytes: the store's first result is kept there too.
    const r = await other.put({ ...base, outputs: [await put('b', 'second')] });
    expect(r.record.outputs).toEqual(first.outputs);
    expect(r.disagreements).toHaveLength(1);
    // Both workspaces see the disagreement (it is recorded in the store as well).
    expect(await openRunCache(runs.dir, { store }).disagreements(base.key)).toHaveLength(1);
  });

  it('a record with malformed outputs reads as absent', async () => {
    const { d, runs, base } = await setup();
    await runs.put(base);
    const p = `${d}/runs/${base.key.slice(0, 2)}/${base.key}.json`;
    writeFileSync(p, JSON.stringify({ ...base, outputs: [{ path: 'x', kind: 'file', hash: '../../etc/passwd', size: 1, files: 1 }] }));
    rmSync(`${d}/cache/runs`, { recursive: true });
    expect(await runs.get(base.key)).toBeUndefined();
  });

  it('the executable bits of outputs are kept with the record; exec fields that are not what pipe writes make it absent', async () => {
    const { d, runs, base, put } = await setup();
    const o = await put('x', 'x');
    const rec = { ...base, outputs: [{ ...o, executable: true as const }] };
    await runs.put(rec);
    expect((await runs.get(base.key))?.outputs[0]).toEqual({ ...o, executable: true });
    const p = `${d}/runs/${base.key.slice(0, 2)}/${base.key}.json`;
    rmSync(`${d}/cache/runs`, { recursive: true });
    for (const bad of [{ executable: 'yes' }, { executable: false }, { executables: ['x'] }, { kind: 'dir', executable: true }, { kind: 'dir', executables: 'bin/x' }, { kind: 'dir', executables: [1] }]) {
      writeFileSync(p, JSON.stringify({ ...base, outputs: [{ ...o, ...bad }] }));
      expect(await runs.get(base.key), JSON.stringify(bad)).toBeUndefined();
    }
    writeFileSync(p, JSON.stringify({ ...base, outputs: [{ ...o, kind: 'dir', executables: ['bin/x'] }] }));
    expect((await runs.get(base.key))?.outputs[0]?.executables).toEqual(['bin/x']);
  });

  it('a record whose fields, times or place are of another type reads as absent', async () => {
    const { d, runs, base } = await setup();
    await runs.put(base);
    rmSync(`${d}/cache/runs`, { recursive: true });
    const p = `${d}/runs/${base.key.slice(0, 2)}/${base.key}.json`;
    expect(await runs.get(base.key)).toEqual(base);
    // `pipe why` read fields, `pipe metrics --all` endedAt: null there, or a number, crashed them with a stack trace.
    for (const bad of [{ fields: null }, { fields: [] }, { fields: 'x' }, { endedAt: 5 }, { startedAt: {} }, { durationMs: 'x' }, { host: null }, { executor: 1 }, { jobId: 7 }, { extra: 5 }, { execution: [] }]) {
      writeFileSync(p, JSON.stringify({ ...base, ...bad }));
      expect(await runs.get(base.key), JSON.stringify(bad)).toBeUndefined();
      expect(await runs.history(base.stage), JSON.stringify(bad)).toEqual([]);
    }
  });
});
