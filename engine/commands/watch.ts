/**
 * `pipe watch FILE [targets...]`: keep the selected stages up to date while files are edited (engine/watch.ts).
 *
 * This module is imported by the CLI on every start, so it holds only the commander registration; the watcher, the
 * engine and chokidar load when the command runs.
 *
 * Keys (stdin a terminal: single key presses; stdin a pipe: lines): `a` runs the stale manual stages, `r` re-checks
 * everything, `q` quits, Ctrl-C interrupts. Exit: 0 after `q`, 130 after Ctrl-C/SIGTERM/SIGHUP (the running cycle is
 * cancelled and the engine has removed every half-written output before the process exits; a second Ctrl-C kills
 * the running stages without a grace period, a third exits at once).
 */
import { outputClosed } from './closed-output.js';
import type { Command } from 'commander';

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

export interface WatchCommandOptions {
  all?: boolean;
  jobs?: string;
  set?: string[];
  paramsFile?: string[];
  gpus?: string;
  mem?: string;
  json?: boolean;
  /** Debounce window in ms (hidden option, for tests and benchmarks). */
  debounce?: string;
}

export function registerWatchCommand(program: Command): void {
  program
    .command('watch')
    .description('Re-run what each saved edit makes stale; cancel and restart stages a change makes stale mid-run.')
    .argument('<file>', 'pipeline YAML')
    .argument('[targets...]', 'stage names, declaration names or globs (default: every stage); their upstream is included')
    .option('--all', 'also run manual stages (GPU, SLURM, watch: manual) automatically')
    .option('-j, --jobs <n>', 'run at most n local stages at once (default: number of cores)')
    .option('-S, --set <key=value>', 'override a param (dotted keys for nested ones); repeatable', collect)
    .option('--params-file <file>', 'a YAML/JSON params file merged over the defaults; repeatable', collect)
    .option('--gpus <ids>', 'GPU device ids to schedule on, e.g. 0,1 (default: detected by nvidia-smi; "none" for none)')
    .option('--mem <size>', 'memory available to stages, e.g. 8G (default: all of it)')
    .option('--json', 'print events as JSON lines (for tools)')
    .option('--debounce <ms>', 'quiet time that ends a burst of saves (default 60)')
    .action(async (file: string, targets: string[], opts: WatchCommandOptions) => {
      process.exitCode = await watchCommand(file, targets, opts);
    });
}

/** Runs until `q` (0) or Ctrl-C/SIGTERM (130). Returns the exit code. */
export async function watchCommand(file: string, targets: string[], opts: WatchCommandOptions): Promise<number> {
  const [{ WatchSession }, { watchScreen }, { UsageError }] = await Promise.all([
    import('../watch.js'),
    import('../ui/watch-screen.js'),
    import('./errors.js'),
  ]);
  let quietMs: number | undefined;
  if (opts.debounce !== undefined) {
    quietMs = Number(opts.debounce);
    if (!Number.isFinite(quietMs) || quietMs < 0) throw new UsageError(`--debounce expects milliseconds, got ${JSON.stringify(opts.debounce)}`);
  }
  const ci = process.env.CI === 'true' || process.env.CI === '1';
  const tty = Boolean(process.stderr.isTTY) && !ci && !opts.json;
  // Keys are advertised on a terminal; a pipe of lines (tools, tests) works too.
  const screen = watchScreen({ mode: opts.json ? 'json' : tty ? 'tty' : 'plain', keys: Boolean(process.stdin.isTTY) });
  const session = new WatchSession({
    file,
    targets,
    all: opts.all ?? false,
    set: opts.set ?? [],
    paramsFile: opts.paramsFile ?? [],
    ...(opts.jobs !== undefined ? { jobs: opts.jobs } : {}),
    ...(opts.gpus !== undefined ? { gpus: opts.gpus } : {}),
    ...(opts.mem !== undefined ? { mem: opts.mem } : {}),
    ...(quietMs !== undefined ? { quietMs } : {}),
    emit: screen.listener,
  });

  let exitCode: number | undefined;
  let stopped!: () => void;
  const done = new Promise<void>((r) => (stopped = r));
  let interrupts = 0;
  const stop = (reason: 'quit' | 'interrupt'): void => {
    if (reason === 'interrupt') interrupts += 1;
    // As `pipe run`: a second Ctrl-C kills the running stages at once (their half outputs are still removed, the
    // lock released); a third exits at once (the exit hooks kill what runs and remove the lock).
    if (interrupts === 2) session.kill();
    if (interrupts > 2) process.exit(130);
    if (exitCode !== undefined) return;
    exitCode = reason === 'quit' ? 0 : 130;
    void session.stop(reason).then(stopped, stopped);
  };
  const onSignal = (): void => stop('interrupt');
  // A reader that went away (`pipe watch --json | head`): stop cleanly (the CLI exits 141).
  const onOutputClosed = (): void => stop('quit');
  outputClosed.addEventListener('abort', onOutputClosed, { once: true });
  // SIGHUP: the terminal pipe watch runs in was closed.
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const s of signals) process.on(s, onSignal);
  const stopKeys = listenForKeys({
    a: () => session.runManual(),
    r: () => session.refresh(),
    q: () => stop('quit'),
    interrupt: () => stop('interrupt'),
  });
  try {
    session.start();
    await done;
  } finally {
    stopKeys();
    outputClosed.removeEventListener('abort', onOutputClosed);
    for (const s of signals) process.off(s, onSignal);
    screen.close();
  }
  return exitCode ?? 0;
}

/**
 * Keys: raw single key presses on a terminal; on a pipe, one command per line (`a`, `r`, `q`), which is how tools
 * and tests drive it. End of input is not a quit (a watcher started with stdin closed keeps watching).
 */
function listenForKeys(on: { a: () => void; r: () => void; q: () => void; interrupt: () => void }): () => void {
  const stdin = process.stdin;
  const raw = Boolean(stdin.isTTY);
  const handle = (k: string): void => {
    if (k === 'a' || k === 'A') on.a();
    else if (k === 'r' || k === 'R') on.r();
    else if (k === 'q' || k === 'Q') on.q();
    else if (k === '\u0003') on.interrupt(); // Ctrl-C in raw mode sends no SIGINT
  };
  let buf = '';
  const onData = (chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    if (raw) {
      for (const ch of text) handle(ch);
      return;
    }
    buf += text;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      handle(buf.slice(0, i).trim());
      buf = buf.slice(i + 1);
    }
  };
  if (raw) stdin.setRawMode(true);
  stdin.on('data', onData);
  stdin.on('error', () => undefined);
  stdin.resume();
  return () => {
    stdin.off('data', onData);
    if (raw) stdin.setRawMode(false);
    stdin.pause();
  };
}
