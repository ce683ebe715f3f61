// Helpers for the watch suites: temp workspaces and a REAL `pipe watch --json` process whose events are parsed as
// they arrive. Everything waits by polling for an event (never a fixed sleep standing in for an assertion).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

// Temp workspaces and the CLI's location are the engine suites' (one implementation for every suite).
export { pipeBin, repoRoot, workspace, type Ws } from '../engine/helpers.js';
import { pipeBin, workspace, type Ws } from '../engine/helpers.js';
import { onTestFinished } from 'vitest';
import { jsonLines } from '../support/cli.js';

export interface Ev {
  type: string;
  cycle?: number;
  stage?: string;
  status?: string;
  code?: string;
  reason?: string;
  codes?: string[];
  reasons?: string[];
  files?: string[];
  stages?: unknown[];
  held?: string[];
  trigger?: string;
  formatted?: string[];
  restarted?: string[];
  at: number;
  [k: string]: unknown;
}

export async function until<T>(what: string, probe: () => T | undefined | false, ms = 20_000, dump: () => string = () => ''): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}\n${dump()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface Watcher {
  child: ChildProcessWithoutNullStreams;
  events: Ev[];
  stderr: () => string;
  /** The first event (from index `from`) matching `pred`. */
  next(what: string, pred: (e: Ev) => boolean, from?: number, ms?: number): Promise<Ev>;
  /** Wait for the end of cycle `n` (and return the events of that cycle, cycle-start to cycle-end). */
  cycle(n: number, ms?: number): Promise<Ev[]>;
  /** The events carrying `cycle: n` plus its cycle-start/-end. */
  ofCycle(n: number): Ev[];
  started(n: number): string[];
  key(k: string): void;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Watchers started and not stopped yet: `watchWorkspace`'s teardown stops them. */
const live = new Set<Watcher>();

/**
 * A workspace for one test, torn down when the test ends, pass or fail: every watcher still running is stopped
 * first (so none sees its folder vanish), then the folder is removed.
 */
export function watchWorkspace(files: Record<string, string> = {}): Ws {
  const ws = workspace(files, 'pipe-watch-');
  onTestFinished(async () => {
    await Promise.all([...live].map((w) => w.stop()));
    ws.cleanup();
  });
  return ws;
}

/** Start `pipe watch <args> --json` in `cwd`. */
export function startWatch(cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): Watcher {
  const child = spawn(process.execPath, [pipeBin, 'watch', ...args, '--json'], {
    cwd,
    env: { ...process.env, CI: 'true', NO_COLOR: '1', PIPE_KILL_GRACE_MS: '2000', ...env },
  });
  const events: Ev[] = [];
  let stderr = '';
  jsonLines<Ev>(child.stdout, (e) => events.push(e));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const dump = (): string => `events:\n${events.map((e) => JSON.stringify(e)).join('\n')}\nstderr:\n${stderr}`;
  const ofCycle = (n: number): Ev[] => events.filter((e) => e.cycle === n);
  const w: Watcher = {
    child,
    events,
    stderr: () => stderr,
    next: (what, pred, from = 0, ms = 20_000) => until(what, () => events.slice(from).find(pred), ms, dump),
    async cycle(n, ms = 20_000) {
      await w.next(`end of cycle ${n}`, (e) => e.type === 'cycle-end' && e.cycle === n, 0, ms);
      return ofCycle(n);
    },
    ofCycle,
    started: (n) => ofCycle(n).filter((e) => e.type === 'stage-start').map((e) => e.stage!),
    key: (k) => void child.stdin.write(`${k}\n`),
    async stop(signal = 'SIGINT') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      // Never leave a watcher behind: one that has not exited 15 s after the signal is killed (and the test fails
      // on its exit code or events).
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      try {
        return await done;
      } finally {
        clearTimeout(timer);
      }
    },
    done,
  };
  live.add(w);
  void done.then(() => live.delete(w));
  return w;
}

/** The highest cycle number seen so far. */
export function lastCycle(w: Watcher): number {
  return Math.max(0, ...w.events.filter((e) => e.type === 'cycle-start').map((e) => e.cycle ?? 0));
}
