/**
 * Starts job processes for the local executor. Two ways, one interface (ProcessEvents):
 *
 * - through the spawner, a long-lived Python process (spawner-script.ts) that posix_spawns each job: the default
 *   where `python3` is on PATH. Node's child_process.spawn forks pipe's whole process and blocks its main thread
 *   until the child has exec'd; that is 6–20 ms of a 2-core machine per job (more with more memory resident), more
 *   than a trivial stage itself. posix_spawn does not copy page tables, and it happens off pipe's thread.
 * - with child_process.spawn in this process: `PIPE_SPAWNER=node`, no python3, or the spawner could not start (it
 *   exited before saying READY: its queued jobs start here instead).
 *
 * Either way the job leads its own process group; when it exits that group is sent SIGKILL; stdout and stderr
 * arrive as output chunks in order. The spawner SIGKILLs the groups of its unfinished jobs when pipe's end of its
 * stdin closes, so jobs die with pipe even when pipe is SIGKILLed.
 */
import { spawn, type ChildProcess, type ChildProcessByStdio } from 'node:child_process';
import type { Readable } from 'node:stream';
import { accessSync, constants as fsConstants } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { delimiter, join } from 'node:path';
import { SPAWNER_SCRIPT } from './spawner-script.js';

export interface ProcessRequest {
  file: string;
  args: readonly string[];
  cwd: string;
  env: Readonly<Record<string, string>>;
}

/** What happens to a started process, in this order: started → output* → exited → closed; or startFailed; or lost. */
export interface ProcessEvents {
  /** Running as `pid`, the leader of its own process group. */
  started(pid: number): void;
  /** It could not be started (not found, not executable, no such cwd): nothing ran. */
  startFailed(error: Error): void;
  output(chunk: Buffer): void;
  /** It exited; its process group has been sent SIGKILL. Output may still arrive until `closed`. */
  exited(code: number | null, signal: NodeJS.Signals | null): void;
  /** Its output ended (or was dropped): nothing more comes. */
  closed(): void;
  /** The spawner died under it: its group has been sent SIGKILL and its exit status is unknown. */
  lost(reason: string): void;
}

export interface StartedProcess {
  /** Stop reading its output (something outside its group holds it open); `closed` follows. */
  dropOutput(): void;
}

/** Starts a process the fastest way available (see the header). */
export function startProcess(req: ProcessRequest, events: ProcessEvents): StartedProcess {
  // The spawner starts with the first job of a run (~40 ms), never for a run that starts none.
  if (spawnerUsable(req)) return (shared ??= new Spawner(interpreter()!)).start(req, events);
  return startInProcess(req, events);
}

// ---------------------------------------------------------------------------------------------------------------

/** Why the spawner is not used (set once it failed to start), or undefined. */
let spawnerBroken: string | undefined;
let shared: Spawner | undefined;
let python: string | null | undefined; // undefined = not looked up yet

function spawnerUsable(req: ProcessRequest): boolean {
  if (spawnerBroken !== undefined || process.env.PIPE_SPAWNER === 'node' || process.platform === 'win32') return false;
  if (interpreter() === null) return false;
  // A NUL cannot be passed to exec, and a variable name cannot be empty or hold '=': child_process.spawn has its
  // own ways with those (an error, or dropping the variable), so they stay its.
  const fields = [req.cwd, req.file, ...req.args, ...Object.values(req.env)];
  return !fields.some((f) => f.includes('\0')) && Object.keys(req.env).every((k) => k !== '' && !/[=\0]/.test(k));
}

/** `PIPE_SPAWNER=/path/to/python3` names the interpreter; else findPython's. */
function interpreter(): string | null {
  const named = process.env.PIPE_SPAWNER;
  return named?.startsWith('/') ? named : (python ??= findPython());
}

/**
 * A python3 to run the spawner: any 3.8+ will do, so the system's own comes first (a version manager's shim on PATH,
 * pyenv's, takes ~250 ms more to start); then the first on PATH. `PIPE_SPAWNER=node` not to use one.
 */
function findPython(): string | null {
  const dirs = ['/usr/bin', '/usr/local/bin', ...(process.env.PATH ?? '').split(delimiter)];
  for (const dir of dirs) {
    if (!dir.startsWith('/')) continue;
    const file = join(dir, 'python3');
    try {
      accessSync(file, fsConstants.X_OK);
      return file;
    } catch {
      // Not here.
    }
  }
  return null;
}

interface SpawnerJob {
  req: ProcessRequest;
  events: ProcessEvents;
  /** What the caller holds; re-pointed when the job had to start in this process after all. */
  handle: { target?: StartedProcess };
  pid?: number;
  exited: boolean;
  eof: boolean;
}

/** pipe's end of one spawner process. */
class Spawner {
  private readonly proc: ChildProcess;
  private readonly jobs = new Map<number, SpawnerJob>();
  private nextId = 1;
  private ready = false;
  private dead = false;
  private pending: Buffer = Buffer.alloc(0);
  private stderr = '';

  constructor(pythonPath: string) {
    // Its own process group: a Ctrl-C or a kill of pipe's group leaves it alive long enough to see its stdin end
    // and take the jobs with it. -I -S: no PYTHON* variables, no user site, no site import (a faster start).
    this.proc = spawn(pythonPath, ['-I', '-S', '-c', SPAWNER_SCRIPT], { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    this.proc.stdout!.on('data', (chunk: Buffer) => this.read(chunk));
    this.proc.stderr!.on('data', (chunk: Buffer) => (this.stderr = (this.stderr + chunk.toString('utf8')).slice(-2000)));
    // Writes to a spawner that has died fail here; its 'exit' handles the jobs.
    this.proc.stdin!.on('error', () => {});
    this.proc.on('error', (e) => this.died(e.message));
    this.proc.on('exit', (code, signal) => this.died(signal ? `killed by ${signal}` : `exit code ${code}`));
    this.idle();
  }

  start(req: ProcessRequest, events: ProcessEvents): StartedProcess {
    const id = this.nextId++;
    if (this.jobs.size === 0) this.busy();
    const handle: { target?: StartedProcess } = {};
    this.jobs.set(id, { req, events, handle, exited: false, eof: false });
    // Sent at once, before READY too: the spawner reads its stdin once it has started.
    const payload = Buffer.from([req.cwd, req.file, String(req.args.length), ...req.args, ...Object.entries(req.env).map(([k, v]) => `${k}=${v}`)].join('\0'));
    this.send(Buffer.concat([Buffer.from(`R ${id} ${payload.length}\n`), payload]));
    return {
      dropOutput: () => {
        if (handle.target) handle.target.dropOutput();
        else if (this.jobs.has(id)) this.send(`D ${id}\n`);
      },
    };
  }

  /** Commands of one tick go in one write (the jobs a finished stage releases start together). */
  private send(command: string | Buffer): void {
    const stdin = this.proc.stdin!;
    if (!this.corked) {
      this.corked = true;
      stdin.cork();
      process.nextTick(() => {
        this.corked = false;
        stdin.uncork();
      });
    }
    stdin.write(command);
  }
  private corked = false;

  /** Parses `pending` + chunk into messages (spawner-script.ts). */
  private read(chunk: Buffer): void {
    const buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let at = 0;
    for (;;) {
      const nl = buf.indexOf(10, at);
      if (nl < 0) break;
      const [op, idText, a, b] = buf.toString('latin1', at, nl).split(' ');
      if (op === 'O' || op === 'F') {
        const end = nl + 1 + Number(a);
        if (end > buf.length) break;
        const body = buf.subarray(nl + 1, end);
        at = end;
        const job = this.jobs.get(Number(idText));
        if (!job) continue;
        if (op === 'O') job.events.output(body);
        else {
          this.forget(Number(idText));
          job.events.startFailed(new Error(body.toString('utf8')));
        }
        continue;
      }
      at = nl + 1;
      if (op === 'READY') {
        this.ready = true;
        continue;
      }
      const id = Number(idText);
      const job = this.jobs.get(id);
      if (!job) continue;
      if (op === 'S') {
        job.pid = Number(a);
        job.events.started(job.pid);
      } else if (op === 'X') {
        job.exited = true;
        job.events.exited(a === '-' ? null : Number(a), b === '-' ? null : signalName(Number(b)));
        if (job.eof) this.close(id, job);
      } else if (op === 'E') {
        // The output can end before the exit is reaped; `closed` comes after both.
        job.eof = true;
        if (job.exited) this.close(id, job);
      }
    }
    this.pending = at < buf.length ? Buffer.from(buf.subarray(at)) : Buffer.alloc(0);
  }

  private close(id: number, job: SpawnerJob): void {
    this.forget(id);
    job.events.closed();
  }

  private forget(id: number): void {
    this.jobs.delete(id);
    if (this.jobs.size === 0) this.idle();
  }

  /** The spawner is gone. Before READY: it does not work here; its jobs, and all later ones, start in this process. */
  private died(why: string): void {
    // 'error' and 'exit' may both come: the first says why.
    if (this.dead) return;
    this.dead = true;
    if (shared === this) shared = undefined;
    const jobs = [...this.jobs.values()];
    this.jobs.clear();
    const detail = this.stderr.trim() ? `: ${this.stderr.trim()}` : '';
    if (!this.ready) {
      spawnerBroken = `the job spawner (${this.proc.spawnfile}) did not start (${why}${detail})`;
      for (const job of jobs) job.handle.target = startInProcess(job.req, job.events);
      return;
    }
    for (const job of jobs) {
      if (job.pid) killGroup(job.pid, 'SIGKILL');
      // Without a pid it may not have started, or started with nobody left to say so: not run again (twice at once).
      job.events.lost(
        job.pid
          ? `pipe's job spawner exited (${why}${detail}) while the job ran; its processes were killed`
          : `pipe's job spawner exited (${why}${detail}) before it said whether the job started`,
      );
    }
  }

  // While it has jobs, the spawner keeps pipe's event loop alive; idle, it must not keep pipe from exiting.
  private busy(): void {
    this.proc.ref();
    for (const s of [this.proc.stdin, this.proc.stdout, this.proc.stderr] as Array<{ ref?(): void } | null>) s?.ref?.();
  }
  private idle(): void {
    this.proc.unref();
    for (const s of [this.proc.stdin, this.proc.stdout, this.proc.stderr] as Array<{ unref?(): void } | null>) s?.unref?.();
  }
}

function signalName(n: number): NodeJS.Signals | null {
  for (const [name, num] of Object.entries(osConstants.signals)) if (num === n) return name as NodeJS.Signals;
  return null;
}

/** Why pipe starts jobs in its own process, or undefined (the tests check which way this machine goes). */
export function spawnerUnusedReason(): string | undefined {
  if (process.env.PIPE_SPAWNER === 'node') return 'PIPE_SPAWNER=node';
  if (spawnerBroken) return spawnerBroken;
  if (interpreter() === null) return 'no python3 found';
  return undefined;
}

// ---------------------------------------------------------------------------------------------------------------

/** child_process.spawn in this process, with the same events. */
function startInProcess(req: ProcessRequest, events: ProcessEvents): StartedProcess {
  let spawnError: Error | undefined;
  let child: ChildProcessByStdio<null, Readable, Readable>;
  try {
    child = spawn(req.file, req.args, {
      cwd: req.cwd,
      env: req.env,
      detached: true, // own process group: a group kill reaches grandchildren (sh → python → workers)
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    // Some failures are thrown rather than emitted (E2BIG: arguments over the kernel's limit): the same event.
    setImmediate(() => events.startFailed(e as Error));
    return { dropOutput: () => {} };
  }
  const group = child.pid;
  if (group) events.started(group);
  child.stdout.on('data', (c: Buffer) => events.output(c));
  child.stderr.on('data', (c: Buffer) => events.output(c));
  // A read error ends that stream; the exit status still decides the job.
  child.stdout.on('error', () => {});
  child.stderr.on('error', () => {});
  child.on('error', (e) => (spawnError ??= e));
  child.on('exit', (code, signal) => {
    if (!group) return;
    killGroup(group, 'SIGKILL');
    events.exited(code, signal);
  });
  child.on('close', () => {
    if (group) events.closed();
    else events.startFailed(spawnError ?? new Error('no process id'));
  });
  return {
    dropOutput: () => {
      child.stdout.destroy();
      child.stderr.destroy();
    },
  };
}

export function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}
