// Helpers for the engine suites: reading `--json` events and run records. The workspace fixture and the CLI runner
// are test/support's, re-exported here for the engine and watch suites.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { EndCode, PlanCode } from '../../engine/events.js';

export { repoRoot, pipeBin, pipe, pipeAsync, runPipe, type CliResult } from '../support/cli.js';
export { workspace, type Ws } from '../support/workspace.js';

export interface Ev {
  type: string;
  stage?: string;
  status?: string;
  code?: EndCode;
  reason?: string;
  codes?: PlanCode[];
  reasons?: string[];
  action?: string;
  [k: string]: unknown;
}

/** Parse `--json` output into events. */
export function events(stdout: string): Ev[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Ev);
}

/** stage → status from a `run --json` output. */
export function statuses(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of events(stdout)) if (e.type === 'stage-end') out[e.stage!] = e.status!;
  return out;
}

/** stage → plan reasons from a `run --json` output. */
export function reasons(stdout: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const e of events(stdout)) if (e.type === 'plan') out[e.stage!] = e.reasons ?? [];
  return out;
}

/** stage → plan reason codes from a `run --json` output. */
export function codes(stdout: string): Record<string, PlanCode[]> {
  const out: Record<string, PlanCode[]> = {};
  for (const e of events(stdout)) if (e.type === 'plan') out[e.stage!] = e.codes ?? [];
  return out;
}

/** stage → its stage-end (status, code, words) from a `run --json` output. */
export function ends(stdout: string): Record<string, { status: string; code: EndCode; reason: string }> {
  const out: Record<string, { status: string; code: EndCode; reason: string }> = {};
  for (const e of events(stdout)) if (e.type === 'stage-end') out[e.stage!] = { status: e.status!, code: e.code!, reason: e.reason! };
  return out;
}

/** Run records stored in a workspace. */
export function runRecords(dir: string): Array<{ stage: string; key: string }> {
  const runs = join(dir, '.pipe', 'runs');
  if (!existsSync(runs)) return [];
  const out: Array<{ stage: string; key: string }> = [];
  for (const shard of readdirSync(runs)) {
    if (!/^[0-9a-f]{2}$/.test(shard)) continue;
    for (const f of readdirSync(join(runs, shard))) {
      if (f.endsWith('.json')) out.push(JSON.parse(readFileSync(join(runs, shard, f), 'utf8')) as { stage: string; key: string });
    }
  }
  return out;
}
