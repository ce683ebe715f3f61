/**
 * The one CLI runner: the REAL `node bin/pipe.js` (built by the global setup) in a workspace, with the environment
 * every suite wants (plain output, CI mode, a short kill grace). `pipe` waits for it; `pipeAsync` gives the running
 * child (Ctrl-C, lock and watch tests); `runPipe` is `pipeAsync(...).done`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { until } from './gate.js';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
export const pipeBin = join(repoRoot, 'bin', 'pipe.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** stdout then stderr, for tests that look for a line in either. */
  out: string;
}

export interface CliOptions {
  /** Killed after this long (default 120 s): a hung CLI fails its test instead of the whole run. */
  timeoutMs?: number;
}

const baseEnv = (): NodeJS.ProcessEnv => ({ ...process.env, CI: 'true', NO_COLOR: '1', PIPE_KILL_GRACE_MS: '2000' });

const result = (code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string): CliResult => ({ code, signal, stdout, stderr, out: `${stdout}${stderr}` });

export function pipe(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}, opts: CliOptions = {}): CliResult {
  // SIGKILL: a CLI blocked in a system call (an open of a FIFO) never runs its SIGTERM handler, and spawnSync would
  // wait for it forever.
  const r = spawnSync(process.execPath, [pipeBin, ...args], { cwd, encoding: 'utf8', env: { ...baseEnv(), ...env }, timeout: opts.timeoutMs ?? 120_000, killSignal: 'SIGKILL' });
  return result(r.status, r.signal, r.stdout, r.stderr);
}

/** A running CLI. */
export function pipeAsync(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}, opts: CliOptions = {}) {
  const child = spawn(process.execPath, [pipeBin, ...args], { cwd, env: { ...baseEnv(), ...env }, ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}) });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve(result(code, signal, stdout, stderr)));
  });
  return {
    child,
    done,
    out: () => stdout,
    err: () => stderr,
    /** Resolves when `pred(stdout, stderr)` holds, or fails after `ms` showing both. */
    until: (pred: (out: string, err: string) => boolean, ms = 20_000): Promise<void> =>
      until(() => pred(stdout, stderr), () => `the CLI; stdout:\n${stdout}\nstderr:\n${stderr}`, ms),
  };
}

/** Runs the CLI without blocking the test's event loop (a server in the test must keep answering). */
export function runPipe(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}, opts: CliOptions = {}): Promise<CliResult> {
  return pipeAsync(cwd, args, env, opts).done;
}

/** Calls `onValue` with each JSON line `stream` prints (`--json` events), as the lines arrive. */
export function jsonLines<T>(stream: NodeJS.ReadableStream, onValue: (v: T) => void): void {
  let buf = '';
  stream.on('data', (d: Buffer) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      if (line.trim()) onValue(JSON.parse(line) as T);
    }
  });
}
