import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { StageContext, UpstreamRun } from '../../engine/stage-api.js';

/** A complete StageContext over a real workspace folder, recording what the stage logs and records. */
export interface FakeCtx<W> extends StageContext<W> {
  logs: string[];
  recorded: Record<string, unknown>;
  /** What the stage passed to recordExecution (timings, worker counts). */
  execution: Record<string, unknown>;
}

export function fakeCtx<W>(
  workspace: string,
  withValues: W,
  extra: Partial<Pick<StageContext<W>, 'stage' | 'key' | 'depHashes' | 'upstream' | 'pipeline' | 'params'>> = {},
): FakeCtx<W> {
  const logs: string[] = [];
  const recorded: Record<string, unknown> = {};
  const execution: Record<string, unknown> = {};
  return {
    stage: extra.stage ?? 'test-stage',
    workspace,
    with: withValues,
    params: extra.params ?? {},
    key: extra.key ?? 'k'.repeat(64),
    depHashes: extra.depHashes ?? {},
    upstream: extra.upstream ?? ([] as UpstreamRun[]),
    pipeline: extra.pipeline ?? { file: 'pipelines/test.yaml', name: 'test', pipeVersion: '0.0.0-test' },
    resolve: (rel: string) => resolve(workspace, rel),
    tmpDir: mkdtempSync(join(tmpdir(), 'pipe-stage-tmp-')),
    resources: { cpus: 1, memBytes: 1 << 30, gpus: 0, gpuIds: [] },
    signal: new AbortController().signal,
    log: (m: string) => void logs.push(m),
    progress: () => undefined,
    record: (info: Record<string, unknown>) => void Object.assign(recorded, info),
    recordExecution: (info: Record<string, unknown>) => void Object.assign(execution, info),
    logs,
    recorded,
    execution,
  };
}
