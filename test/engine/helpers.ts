// Helpers for the engine suites: temp workspaces and the REAL CLI (`node bin/pipe.js`, built by the global setup).
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EndCode, PlanCode } from '../../engine/events.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const pipeBin = join(repoRoot, 'bin', 'pipe.js');

export interface Ws {
  dir: string;
  write(rel: string, text: string): void;
  read(rel: string): string;
  exists(rel: string): boolean;
  rm(rel: string): void;
  cleanup(): void;
}

export function workspace(files: Record<string, string> = {}): Ws {
  const dir = mkdtempSync(join(tmpdir(), 'pipe-engine-'));
  const ws: Ws = {
    dir,
    write(rel, text) {
      mkdirSync(dirname(join(dir, rel)), { recursive: true });
      writeFileSync(join(dir, rel), text);
    },
    read: (rel) => readFileSync(join(dir, rel), 'utf8'),
    exists: (rel) => existsSync(join(dir, rel)),
    rm: (rel) => rmSync(join(dir, rel), { recursive: true, force: true }),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
  for (const [rel, text] of Object.entries(files)) ws.write(rel, text);
  return ws;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const baseEnv = (): NodeJS.ProcessEnv => ({ ...process.env, CI: 'true', NO_COLOR: '1', PIPE_KILL_GRACE_MS: '2000' });

export function pipe(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): CliResult {
  const r = spawnSync(process.execPath, [pipeBin, ...args], { cwd, encoding: 'utf8', env: { ...baseEnv(), ...env }, timeout: 60_000 });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

/** A running CLI, for Ctrl-C and lock tests. */
export function pipeAsync(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const child = spawn(process.execPath, [pipeBin, ...args], { cwd, env: { ...baseEnv(), ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return {
    child,
    done,
    out: () => stdout,
    err: () => stderr,
    /** Resolve when `pred(stdout, stderr)` holds (polling), or fail after `ms`. */
    async until(pred: (out: string, err: string) => boolean, ms = 20_000): Promise<void> {
      const t0 = Date.now();
      while (!pred(stdout, stderr)) {
        if (Date.now() - t0 > ms) throw new Error(`timed out waiting; stdout:\n${stdout}\nstderr:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
  };
}

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
