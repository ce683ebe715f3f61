// A real pipeline in a temp workspace, loaded by the real DSL, with its real .pipe/ (hash state, store, run cache):
// what the run parts (decide, dispatch, commit, report) are tested against.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadPipeline, formatDiagnostic } from '../../../engine/dsl/index.js';
import { knownKinds, loadKinds, resolveKind } from '../../../engine/kinds.js';
import type { Pipeline, StageSpec } from '../../../engine/model.js';
import { openWorkspace, type Workspace } from '../../../engine/workspace.js';
import type { EventInput } from '../../../engine/events.js';

export interface Fixture {
  dir: string;
  pipeline: Pipeline;
  ws: Workspace;
  stage(name: string): StageSpec;
  write(rel: string, text: string): void;
  read(rel: string): string;
  exists(rel: string): boolean;
  cleanup(): void;
}

export async function fixture(yaml: string, files: Record<string, string> = {}): Promise<Fixture> {
  const dir = mkdtempSync(join(tmpdir(), 'pipe-run-'));
  const write = (rel: string, text: string): void => {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), text);
  };
  write('p.yaml', yaml);
  for (const [rel, text] of Object.entries(files)) write(rel, text);
  await loadKinds();
  const r = await loadPipeline(join(dir, 'p.yaml'), { resolveKind, knownKinds });
  if (!r.ok) throw new Error(r.error.map((d) => formatDiagnostic(d)).join('\n'));
  const pipeline = r.value;
  const ws = await openWorkspace(pipeline);
  return {
    dir,
    pipeline,
    ws,
    stage: (name) => pipeline.stages.find((s) => s.name === name)!,
    write,
    read: (rel) => readFileSync(join(dir, rel), 'utf8'),
    exists: (rel) => existsSync(join(dir, rel)),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** An event sink that keeps what it is given. */
export function recorder(): { events: EventInput[]; emit: (e: EventInput) => void } {
  const events: EventInput[] = [];
  return { events, emit: (e) => events.push(e) };
}
