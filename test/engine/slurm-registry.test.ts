// The SLURM job records (.pipe/slurm/jobs) live inside the workspace, where a running job's command can write. A link
// it puts at `.pipe/slurm` or `jobs` must not have pipe write, list, read or delete records through it: the files it
// points at stay byte-identical and unlisted, and a write is refused naming the link. No cluster needed.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SlurmRegistry, type SubmittedJob } from '../../engine/executors/slurm-registry.js';
import { pipe, workspace } from './helpers.js';

let root: string;
let outside: string;
const record = (key: string): SubmittedJob => ({
  key,
  stage: 'train',
  jobId: '42',
  marker: '/m',
  slurmOutput: '/o',
  logFile: '/l',
  submittedAt: '2026-12-07T00:00:00Z',
});
const outsideRecord = JSON.stringify(record('k'));

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'pipe-registry-'));
  outside = mkdtempSync(join(tmpdir(), 'pipe-outside-'));
  writeFileSync(join(outside, 'k.json'), outsideRecord);
  mkdirSync(join(root, '.pipe', 'slurm'), { recursive: true });
});
afterEach(() => {
  rmSync(root, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

const intact = () => {
  expect(readdirSync(outside)).toEqual(['k.json']);
  expect(readFileSync(join(outside, 'k.json'), 'utf8')).toBe(outsideRecord);
};

describe('SlurmRegistry', () => {
  it('keeps, lists and removes records in its own folder', async () => {
    const reg = SlurmRegistry.of(join(root, '.pipe', 'slurm'));
    expect(await reg.any()).toBe(false);
    await reg.put(record('a'));
    expect(await reg.any()).toBe(true);
    expect((await reg.get('a'))?.jobId).toBe('42');
    expect((await reg.all()).map((j) => j.key)).toEqual(['a']);
    await reg.remove('a');
    expect(await reg.all()).toEqual([]);
  });

  for (const at of ['jobs', 'slurm'] as const) {
    it(`never reads, writes or deletes through a link a job put at ${at === 'jobs' ? '.pipe/slurm/jobs' : '.pipe/slurm'}`, async () => {
      const stateDir = join(root, '.pipe', 'slurm');
      if (at === 'jobs') symlinkSync(outside, join(stateDir, 'jobs'));
      else {
        rmSync(stateDir, { recursive: true });
        mkdirSync(join(outside, 'jobs'));
        writeFileSync(join(outside, 'jobs', 'k.json'), outsideRecord);
        symlinkSync(outside, stateDir);
      }
      const reg = SlurmRegistry.of(stateDir);
      expect(await reg.any()).toBe(false);
      expect(await reg.all()).toEqual([]);
      expect(await reg.get('k')).toBeUndefined();
      await reg.remove('k');
      const linked = at === 'jobs' ? join(stateDir, 'jobs') : stateDir;
      await expect(reg.put(record('new'))).rejects.toThrow(`${linked} is a link, not the folder pipe keeps its files in`);
      if (at === 'jobs') intact();
      else {
        expect(readdirSync(join(outside, 'jobs'))).toEqual(['k.json']);
        expect(readdirSync(outside).sort()).toEqual(['jobs', 'k.json']);
      }
    });
  }

  it('a record naming another key than its own, or not of a record\'s shape, is no record: pipe cancel deletes nothing it names', async () => {
    // What a job's command can write into .pipe/slurm/jobs: `pipe cancel` removed each record by the key written in
    // it, so `<that key>.json` was deleted wherever the key led, outside the workspace too.
    const w = workspace({ 'p.yaml': 'name: c\nstages:\n  a:\n    cmd: echo a > out/a.txt\n    outs: [out/a.txt]\n' });
    try {
      writeFileSync(join(outside, 'victim.json'), 'precious\n');
      const jobs = join(w.dir, '.pipe/slurm/jobs');
      mkdirSync(jobs, { recursive: true });
      const victim = join(outside, 'victim').split('/').length;
      writeFileSync(join(jobs, 'x.json'), JSON.stringify({ ...record('x'), key: `${'../'.repeat(victim + 4)}${join(outside, 'victim').slice(1)}`, jobId: 'none' }));
      writeFileSync(join(jobs, 'y.json'), JSON.stringify(5));
      writeFileSync(join(jobs, 'z.json'), JSON.stringify({ ...record('z'), jobId: 42 }));
      const r = pipe(w.dir, ['cancel', 'p.yaml']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect(readFileSync(join(outside, 'victim.json'), 'utf8')).toBe('precious\n');
      expect(r.stdout).toBe('No SLURM jobs of this workspace are pending or running.\n');
      const reg = SlurmRegistry.of(join(w.dir, '.pipe/slurm'));
      expect(await reg.all()).toEqual([]);
      expect(await reg.get('x')).toBeUndefined();
      // Its own records it still finds by their names.
      await reg.put(record('k1'));
      expect((await reg.all()).map((j) => j.key)).toEqual(['k1']);
    } finally {
      w.cleanup();
    }
  });
});
