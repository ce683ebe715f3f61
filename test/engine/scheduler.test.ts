import { describe, expect, it } from 'vitest';
import { fitRequest, formatBytes, parseBytes, ReadyTracker, ResourcePool, WaitQueue, type Machine } from '../../engine/scheduler.js';
import type { Resources } from '../../engine/stage-api.js';

const G = 1024 ** 3;
const req = (r: Partial<Resources>): Resources => ({ cpus: 1, memBytes: 0, gpus: 0, ...r });
const machine = (m: Partial<Machine> = {}): Machine => ({ jobs: 8, cpus: 4, memBytes: 16 * G, gpuIds: [], ...m });

describe('fitRequest', () => {
  it('clamps cpus and memory beyond the machine, with a warning', () => {
    const f = fitRequest('train', req({ cpus: 64, memBytes: 100 * G }), machine());
    expect(f.ok).toBe(true);
    if (!f.ok) return;
    expect(f.request.cpus).toBe(4);
    expect(f.request.memBytes).toBe(16 * G);
    expect(f.warnings.join('\n')).toMatch(/train asks for 64 cpus but this machine has 4/);
    expect(f.warnings.join('\n')).toMatch(/100G of memory/);
  });
  it('refuses GPUs the machine does not have, naming the stage and the fix', () => {
    const f = fitRequest('train@a', req({ gpus: 1 }), machine());
    expect(f.ok).toBe(false);
    if (f.ok) return;
    expect(f.error).toMatch(/train@a needs 1 GPU\(s\) but no GPUs were found/);
    expect(f.error).toMatch(/--gpus/);
    const g = fitRequest('t', req({ gpus: 3 }), machine({ gpuIds: ['0', '1'] }));
    expect(g.ok).toBe(false);
  });
});

describe('ResourcePool and WaitQueue', () => {
  it('gives 3 one-GPU stages on --gpus 0,1 never more than 2 devices at once and never the same id', () => {
    const pool = new ResourcePool(machine({ gpuIds: ['0', '1'] }));
    const q = new WaitQueue<string>();
    for (const s of ['a', 'b', 'c']) q.push(s, req({ gpus: 1 }));
    const first = q.take(pool);
    expect(first.map((x) => x.item)).toEqual(['a', 'b']);
    expect(first.map((x) => x.grant.gpuIds)).toEqual([['0'], ['1']]);
    expect(q.take(pool)).toEqual([]); // c waits: both devices busy
    pool.release(first[1]!.grant); // b done, device 1 free
    const second = q.take(pool);
    expect(second).toEqual([{ item: 'c', grant: { cpus: 1, memBytes: 0, gpuIds: ['1'] } }]);
    // a (device 0) and c (device 1) run together: distinct ids.
    expect(new Set([...first[0]!.grant.gpuIds, ...second[0]!.grant.gpuIds]).size).toBe(2);
  });

  it('hands out N distinct ids for gpus: N', () => {
    const pool = new ResourcePool(machine({ gpuIds: ['0', '1', '2', '3'] }));
    const a = pool.tryAcquire(req({ gpus: 3 }))!;
    expect(a.gpuIds).toEqual(['0', '1', '2']);
    expect(pool.tryAcquire(req({ gpus: 2 }))).toBeUndefined();
    expect(pool.tryAcquire(req({ gpus: 1 }))!.gpuIds).toEqual(['3']);
  });

  it('respects -j, cpus and memory, and backfills past a stage that does not fit', () => {
    const pool = new ResourcePool(machine({ jobs: 3, cpus: 4, memBytes: 8 * G }));
    const q = new WaitQueue<string>();
    q.push('big', req({ cpus: 3, memBytes: 6 * G }));
    q.push('huge', req({ cpus: 2, memBytes: 4 * G })); // does not fit next to big (mem)
    q.push('small', req({ cpus: 1, memBytes: 1 * G }));
    q.push('small2', req({ cpus: 1, memBytes: 1 * G })); // cpus exhausted
    const started = q.take(pool).map((x) => x.item);
    expect(started).toEqual(['big', 'small']);
    expect(q.size).toBe(2);
    const jobsOnly = new ResourcePool(machine({ jobs: 2, cpus: 100 }));
    expect(jobsOnly.tryAcquire(req({}))).toBeDefined();
    expect(jobsOnly.tryAcquire(req({}))).toBeDefined();
    expect(jobsOnly.tryAcquire(req({}))).toBeUndefined();
  });

  it('drain empties the queue', () => {
    const q = new WaitQueue<string>();
    q.push('a', req({}));
    q.push('b', req({}));
    expect(q.drain()).toEqual(['a', 'b']);
    expect(q.size).toBe(0);
  });
});

describe('ReadyTracker', () => {
  it('releases a stage when all it waits for are complete', () => {
    const ups: Record<string, string[]> = { a: [], b: ['a'], c: ['a'], d: ['b', 'c'] };
    const t = new ReadyTracker(Object.keys(ups), (s) => ups[s]!);
    expect(t.initial()).toEqual(['a']);
    expect(t.complete('a').sort()).toEqual(['b', 'c']);
    expect(t.complete('b')).toEqual([]);
    expect(t.complete('c')).toEqual(['d']);
  });
});

describe('bytes', () => {
  it('parses and formats sizes', () => {
    expect(parseBytes('8G')).toBe(8 * G);
    expect(parseBytes('512M')).toBe(512 * 1024 ** 2);
    expect(parseBytes('1.5GiB')).toBe(1.5 * G);
    expect(parseBytes('100')).toBe(100);
    expect(parseBytes('lots')).toBeUndefined();
    expect(formatBytes(8 * G)).toBe('8G');
  });
});
