/** A hand-built StageContext, to run an evaluate kind's run(ctx) without the engine (tests and bench). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ProgressUpdate, StageContext } from '../../engine/stage-api.js';

export interface TestContext<W> extends StageContext<W> {
  logs: string[];
  progressUpdates: ProgressUpdate[];
  records: Record<string, unknown>;
  /** What the stage passed to recordExecution (timings, worker counts). */
  execution: Record<string, unknown>;
  cleanup(): void;
}

export function makeCtx<W>(workspace: string, stage: string, w: W): TestContext<W> {
  const tmp = mkdtempSync(join(tmpdir(), 'pipe-eval-ctx-'));
  const logs: string[] = [];
  const progressUpdates: ProgressUpdate[] = [];
  const records: Record<string, unknown> = {};
  const execution: Record<string, unknown> = {};
  return {
    stage,
    workspace,
    with: w,
    params: {},
    key: 'test',
    depHashes: {},
    upstream: [],
    pipeline: { file: 'pipelines/paper.yaml', name: 'test', pipeVersion: '0.0.0' },
    resolve: (rel: string) => join(workspace, rel),
    tmpDir: tmp,
    resources: { cpus: 1, memBytes: 1 << 30, gpus: 0, gpuIds: [] },
    signal: new AbortController().signal,
    log: (m: string) => logs.push(m),
    progress: (u: ProgressUpdate) => progressUpdates.push(u),
    record: (info: Record<string, unknown>) => Object.assign(records, info),
    recordExecution: (info: Record<string, unknown>) => void Object.assign(execution, info),
    logs,
    progressUpdates,
    records,
    execution,
    cleanup: () => rmSync(tmp, { recursive: true, force: true }),
  };
}
