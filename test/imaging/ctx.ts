// A hand-built StageContext for calling a kind's run(ctx) directly (the engine's runner builds the real one).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import type { ProgressUpdate, StageContext } from '../../engine/stage-api.js';

export interface TestContext<W> extends StageContext<W> {
  logs: string[];
  progressUpdates: ProgressUpdate[];
  records: Record<string, unknown>;
  /** What the stage passed to recordExecution (timings, worker counts). */
  execution: Record<string, unknown>;
}

export async function makeWorkspace(prefix = 'pipe-imaging-'): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export function makeCtx<W>(workspace: string, w: W, opts: { stage?: string; cpus?: number; signal?: AbortSignal } = {}): TestContext<W> {
  const logs: string[] = [];
  const progressUpdates: ProgressUpdate[] = [];
  const records: Record<string, unknown> = {};
  const execution: Record<string, unknown> = {};
  return {
    stage: opts.stage ?? 'test-stage',
    workspace,
    with: w,
    params: {},
    key: 'test-key',
    depHashes: {},
    upstream: [],
    pipeline: { file: 'test.yaml', name: 'test', pipeVersion: '0.0.0' },
    resolve: (rel: string) => (isAbsolute(rel) ? rel : join(workspace, rel)),
    tmpDir: join(workspace, '.tmp'),
    resources: { cpus: opts.cpus ?? 2, memBytes: 2 ** 31, gpus: 0, gpuIds: [] },
    signal: opts.signal ?? new AbortController().signal,
    log: (m: string) => void logs.push(m),
    progress: (u: ProgressUpdate) => void progressUpdates.push(u),
    record: (info: Record<string, unknown>) => void Object.assign(records, info),
    recordExecution: (info: Record<string, unknown>) => void Object.assign(execution, info),
    logs,
    progressUpdates,
    records,
    execution,
  };
}
