/**
 * The one fake StageContext: runs a kind's `run(ctx)` without the engine (tests and bench), over a real workspace
 * folder, keeping what the stage logged, reported and recorded. The engine's runner (engine/runner.ts) builds the
 * real one; this one has the same fields, with test defaults that any of them can override.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ProgressUpdate, StageContext, UpstreamRun } from '../../engine/stage-api.js';

export interface FakeContext<W> extends StageContext<W> {
  /** ctx.log lines. */
  logs: string[];
  /** ctx.progress updates. */
  progressUpdates: ProgressUpdate[];
  /** What the stage passed to ctx.record (provenance that reaches stages below). */
  records: Record<string, unknown>;
  /** What the stage passed to ctx.recordExecution (timings, worker counts). */
  execution: Record<string, unknown>;
  /** Removes the scratch folder (tmpDir). */
  cleanup(): void;
}

export interface FakeContextOptions extends Partial<Pick<StageContext, 'stage' | 'key' | 'depHashes' | 'upstream' | 'pipeline' | 'params' | 'signal' | 'tmpDir'>> {
  /** Granted cpus (default 2) and memory (default 2 GiB). */
  cpus?: number;
  memBytes?: number;
}

export function fakeContext<W>(workspace: string, w: W, opts: FakeContextOptions = {}): FakeContext<W> {
  const stage = opts.stage ?? 'test-stage';
  // The engine hands a stage an existing, private scratch folder (outside what a stage may list in the workspace).
  const tmpDir = opts.tmpDir ?? mkdtempSync(join(tmpdir(), 'pipe-stage-tmp-'));
  mkdirSync(tmpDir, { recursive: true });
  const logs: string[] = [];
  const progressUpdates: ProgressUpdate[] = [];
  const records: Record<string, unknown> = {};
  const execution: Record<string, unknown> = {};
  return {
    stage,
    workspace,
    with: w,
    params: opts.params ?? {},
    key: opts.key ?? 'test-key',
    depHashes: opts.depHashes ?? {},
    upstream: opts.upstream ?? ([] as UpstreamRun[]),
    pipeline: opts.pipeline ?? { file: 'pipelines/test.yaml', name: 'test', pipeVersion: '0.0.0-test' },
    resolve: (rel: string) => resolve(workspace, rel),
    tmpDir,
    resources: { cpus: opts.cpus ?? 2, memBytes: opts.memBytes ?? 2 ** 31, gpus: 0, gpuIds: [] },
    signal: opts.signal ?? new AbortController().signal,
    log: (m: string) => void logs.push(m),
    progress: (u: ProgressUpdate) => void progressUpdates.push(u),
    record: (info: Record<string, unknown>) => void Object.assign(records, info),
    recordExecution: (info: Record<string, unknown>) => void Object.assign(execution, info),
    logs,
    progressUpdates,
    records,
    execution,
    cleanup: () => rmSync(tmpDir, { recursive: true, force: true }),
  };
}
