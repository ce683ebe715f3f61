// Issue 15: the paper's retrain section on the real single-node cluster with the README's overrides. A small test
// pipeline includes the real fragment (pipelines/paper/retrain.yaml) and shrinks only the phantom cohort; the
// overrides and the params file are the ones a cluster user types:
//   pipe run pipelines/paper.yaml --params-file cluster.yaml -S retrain.executor=slurm -S retrain.gpus=1
// preprocess, train and infer go through sbatch (--gres=gpu:1 for train and infer, the params file's partition and
// time), everything else stays local; the results are byte-identical to a local run; a second submission and a
// switch back to local run nothing.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { events, pipeAsync, repoRoot, runRecords, type CliResult, type Ev } from '../engine/helpers.js';
import { hasSlurm, requireSlurm, startCluster } from './cluster.js';

const suite = hasSlurm || requireSlurm ? describe : describe.skip;

const SMALL = `# The paper's retrain section (the real fragment), with a phantom cohort small enough for a test.
name: retrain-small
workdir: ..
include: [paper/retrain.yaml]
params:
  retrain: {image_size: 32, epochs: 1, batch_size: 16}
  bootstrap: {resamples: 200, seed: 42, confidence: 0.95}
vars:
  retrain:
    datasets: [{ name: vindr_cxr, layout: vindr_cxr, patients: 120, seed: 11 }]
    adult_names: [vindr_cxr]
    children: { name: vindr_pcxr, layout: vindr_pcxr, patients: 60, seed: 13 }
    eval_targets:
      - { name: vindr_pcxr, dset: vindr_pcxr, split: test }
      - { name: vindr_cxr, dset: vindr_cxr, split: test_healthy_adult }
    eval_sets: [vindr_pcxr, vindr_cxr]
`;

/** What a cluster user keeps beside the pipeline (pipelines/cluster.example.yaml), with the test cluster's values. */
const CLUSTER = `slurm:
  partition: debug
  account: null
  time: "00:20:00"
`;

const TARGETS = ['retrain-train*', 'retrain-infer*'];
const ON_CLUSTER = ['--params-file', 'pipelines/cluster.yaml', '-S', 'retrain.executor=slurm', '-S', 'retrain.gpus=1'];
/** The stages the overrides send to SLURM, and those of them that ask for a GPU. */
const SENT = /^retrain-(preprocess|train|infer)/;
const WITH_GPU = /^retrain-(train|infer)/;

interface Rec {
  stage: string;
  key: string;
  executor: string;
  jobId?: string;
  outputs: Array<{ path: string; hash: string | null }>;
}

function workspace(): string {
  const ws = mkdtempSync(join(tmpdir(), 'pipe-retrain-slurm-'));
  cpSync(join(repoRoot, 'pipelines'), join(ws, 'pipelines'), { recursive: true, filter: (src) => !src.endsWith('.lock.yaml') });
  writeFileSync(join(ws, 'pipelines/retrain-small.yaml'), SMALL);
  writeFileSync(join(ws, 'pipelines/cluster.yaml'), CLUSTER);
  return ws;
}

async function run(ws: string, extra: string[] = []): Promise<CliResult & { events: Ev[] }> {
  const r = await pipeAsync(ws, ['run', 'pipelines/retrain-small.yaml', ...TARGETS, '--json', ...extra]).done;
  return { ...r, events: events(r.stdout) };
}

const ended = (evs: Ev[]): Record<string, string> =>
  Object.fromEntries(evs.filter((e) => e.type === 'stage-end').map((e) => [e.stage!, e.status!]));
const started = (evs: Ev[]): Ev[] => evs.filter((e) => e.type === 'stage-start');
const records = (ws: string): Map<string, Rec> => new Map((runRecords(ws) as unknown as Rec[]).map((r) => [r.stage, r]));

/** Jobs SLURM ran with this workspace as their working directory (its completion log keeps every finished job). */
function jobsRunIn(ws: string): number {
  const log = existsSync('/var/log/slurm/jobcomp.log') ? readFileSync('/var/log/slurm/jobcomp.log', 'utf8') : '';
  return log.split('\n').filter((l) => l.includes(` WorkDir=${ws} `)).length;
}

suite('the paper\'s retrain section on SLURM (-S retrain.executor=slurm -S retrain.gpus=1)', () => {
  let local: string;
  let cluster: string;
  let localRun: Awaited<ReturnType<typeof run>>;
  let clusterRun: Awaited<ReturnType<typeof run>>;

  beforeAll(async () => {
    startCluster();
    local = workspace();
    cluster = workspace();
    // Side by side: separate workspaces and caches, so the cluster run computes everything itself.
    [localRun, clusterRun] = await Promise.all([run(local), run(cluster, ON_CLUSTER)]);
  }, 600_000);

  afterAll(() => {
    for (const ws of [local, cluster]) if (ws) rmSync(ws, { recursive: true, force: true });
  });

  it('sends preprocess, train and infer through sbatch with --gres=gpu:1 and the params file\'s options; the rest stays local', () => {
    expect(localRun.code, localRun.stderr + localRun.stdout.slice(-3000)).toBe(0);
    expect(clusterRun.code, clusterRun.stderr + clusterRun.stdout.slice(-3000)).toBe(0);
    const statuses = ended(clusterRun.events);
    expect(Object.keys(statuses).sort()).toEqual([
      'retrain-infer-calib@vindr_cxr',
      'retrain-infer@model=vindr_cxr,target=vindr_cxr',
      'retrain-infer@model=vindr_cxr,target=vindr_pcxr',
      'retrain-preprocess-children',
      'retrain-preprocess@vindr_cxr',
      'retrain-split-children',
      'retrain-split@vindr_cxr',
      'retrain-synth-children',
      'retrain-synth@vindr_cxr',
      'retrain-train@vindr_cxr',
    ]);
    expect(new Set(Object.values(statuses))).toEqual(new Set(['ran']));
    for (const s of started(clusterRun.events)) expect([s.stage, s.executor]).toEqual([s.stage, SENT.test(s.stage!) ? 'slurm' : 'local']);
    for (const s of started(localRun.events)) expect([s.stage, s.executor]).toEqual([s.stage, 'local']);

    const recs = records(cluster);
    for (const [stage, rec] of recs) {
      if (!SENT.test(stage)) {
        expect([stage, rec.executor]).toEqual([stage, 'local']);
        continue;
      }
      expect([stage, rec.executor, rec.jobId]).toEqual([stage, 'slurm', expect.stringMatching(/^\d+(_\d+)?$/)]);
      // What SLURM itself says about the job (it keeps finished jobs for MinJobAge = 10 minutes).
      const job = execFileSync('scontrol', ['show', 'job', rec.jobId!], { encoding: 'utf8' });
      expect(job, stage).toMatch(/\bPartition=debug\b/);
      expect(job, stage).toMatch(/\bTimeLimit=00:20:00\b/);
      expect(job, stage).toMatch(/\bJobState=COMPLETED\b/);
      if (WITH_GPU.test(stage)) expect(job, stage).toMatch(/\bTresPerNode=gres:gpu:1\b/);
      else expect(job, stage).not.toMatch(/gres:gpu/);
    }
    expect([...recs.keys()].filter((s) => SENT.test(s))).toHaveLength(6);
    expect(jobsRunIn(cluster)).toBe(6);
    expect(jobsRunIn(local)).toBe(0);
  });

  it('runs train and infer inside their allocation, with CUDA_VISIBLE_DEVICES set by SLURM', () => {
    const gpuStages = started(clusterRun.events).filter((s) => WITH_GPU.test(s.stage!));
    expect(gpuStages).toHaveLength(4);
    for (const s of gpuStages) {
      const log = readFileSync(s.logFile as string, 'utf8');
      expect(log, s.stage).toMatch(/"type":"slurm","job":"\d+(_\d+)?"/);
      expect(log, s.stage).toMatch(/GPUs: CUDA_VISIBLE_DEVICES=[01]"/);
    }
    // Locally, with retrain.gpus at its default 0, the same stages ask for no GPU.
    for (const s of started(localRun.events).filter((x) => WITH_GPU.test(x.stage!))) {
      expect(readFileSync(s.logFile as string, 'utf8'), s.stage).not.toContain('CUDA_VISIBLE_DEVICES');
    }
  });

  it('computes byte-identical results to a local run (same backend, same seed), under the same keys', () => {
    const a = records(local);
    const b = records(cluster);
    expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
    for (const [stage, rec] of a) {
      // Where a stage runs is not part of its key.
      expect([stage, b.get(stage)!.key]).toEqual([stage, rec.key]);
      // Every output, byte for byte (timings live in the run record's execution facts, not in files).
      const theirs = new Map(b.get(stage)!.outputs.map((o) => [o.path, o.hash]));
      for (const o of rec.outputs) expect([stage, o.path, theirs.get(o.path)]).toEqual([stage, o.path, o.hash]);
    }
    const backend = (ws: string) => (records(ws).get('retrain-train@vindr_cxr') as unknown as { extra: { backend: string } }).extra.backend;
    expect(backend(cluster)).toBe(backend(local));
    const predictions = 'out/retrain/inference/exp_cardiomegaly-vindr_cxr-mixup-imb_sampler/vindr_pcxr/test/best/predictions.csv';
    expect(readFileSync(join(cluster, predictions)).equals(readFileSync(join(local, predictions)))).toBe(true);
  });

  it('submits nothing the second time, and back on local restores from the cache without running anything', async () => {
    const again = await run(cluster, ON_CLUSTER);
    expect(again.code, again.stderr).toBe(0);
    expect(started(again.events)).toEqual([]);
    expect(new Set(Object.values(ended(again.events)))).toEqual(new Set(['up-to-date']));
    expect(jobsRunIn(cluster)).toBe(6); // no sbatch

    const back = await run(cluster);
    expect(back.code, back.stderr).toBe(0);
    expect(started(back.events)).toEqual([]);
    expect(new Set(Object.values(ended(back.events)))).toEqual(new Set(['up-to-date']));

    for (const d of ['train_runs', 'train_metrics', 'inference']) rmSync(join(cluster, 'out/retrain', d), { recursive: true });
    const restored = await run(cluster);
    expect(restored.code, restored.stderr).toBe(0);
    expect(started(restored.events)).toEqual([]);
    const statuses = ended(restored.events);
    for (const [stage, status] of Object.entries(statuses)) expect([stage, status]).toEqual([stage, WITH_GPU.test(stage) ? 'restored' : 'up-to-date']);
    const predictions = 'out/retrain/inference/exp_cardiomegaly-vindr_cxr-mixup-imb_sampler/vindr_cxr/test_healthy_adult/best/predictions.csv';
    expect(readFileSync(join(cluster, predictions)).equals(readFileSync(join(local, predictions)))).toBe(true);
    expect(jobsRunIn(cluster)).toBe(6);
  });
});
