/**
 * `pipe`: thin wiring from argv to the commands (engine/commands/*). Start-up is part of every no-op run, so each
 * command's module is imported only when that command runs, and nothing heavy (listr2, tfjs, sharp, vega) is
 * imported here at all.
 *
 * Exit codes: 0 ok; 1 a stage failed (or the workspace is locked with --no-wait); 2 invalid pipeline or usage;
 * 130 interrupted; 141 the reader of the output went away (`| head`: quietly, as SIGPIPE would).
 */
import { existsSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { DiagnosticsError } from './commands/load.js';
import { ExitError, UsageError } from './commands/errors.js';
import { CLOSED_OUTPUT_EXIT, outputClosed, watchForClosedOutput } from './commands/closed-output.js';
import { pipeVersion } from './commands/version.js';

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

function program(): Command {
  const p = new Command('pipe')
    .description('Declarative pipelines: content-hashed, cached, parallel, GPU-aware stage runs (local or SLURM).')
    .version(pipeVersion())
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();

  p.command('run')
    .description('Bring stages up to date: run what changed, restore what the cache has, skip the rest.')
    .argument('<file>', 'pipeline YAML')
    .argument('[targets...]', 'stage names, declaration names or globs (default: every stage); their upstream is included')
    .option('-j, --jobs <n>', 'run at most n local stages at once (default: number of cores)')
    .option('-S, --set <key=value>', 'override a param (dotted keys for nested ones); repeatable', collect)
    .option('--params-file <file>', 'a YAML/JSON params file merged over the defaults; repeatable', collect)
    .option('-f, --force <stage>', 'run this stage (name or glob) even when up to date; repeatable', collect)
    .option('--downstream', 'also run every stage downstream of the targets (instead of their upstream)')
    .option('-n, --dry-run', 'print what would run and why; run nothing')
    .option('-k, --keep-going', 'after a failure, keep running stages that do not depend on it')
    .option('--gpus <ids>', 'GPU device ids to schedule on, e.g. 0,1 (default: detected by nvidia-smi; "none" for none)')
    .option('--mem <size>', 'memory available to stages, e.g. 8G (default: all of it)')
    .option('--json', 'print events as JSON lines (for tools)')
    .option('--no-wait', 'if another pipe holds the workspace, exit at once naming it instead of waiting')
    .option('-v, --verbose', 'plain output with every stage line and log line')
    .addOption(new Option('--resource-usage', 'print peak memory when done (benchmarks)').hideHelp())
    .action(async (file: string, targets: string[], opts: Record<string, unknown>) => {
      const { runCommand } = await import('./commands/run.js');
      process.exitCode = await runCommand(file, targets, opts);
      if (opts.resourceUsage) process.stderr.write(`PEAK_RSS_KB ${process.resourceUsage().maxRSS}\n`);
    });

  p.command('verify')
    .description("Re-run recorded stages in a scratch copy and compare every output with its record (Nix's --check); the workspace and its cache are only read.")
    .argument('<file>', 'pipeline YAML')
    .argument('[targets...]', 'stage names, declaration names or globs (default: every stage); their upstream is included')
    .option('-j, --jobs <n>', 'run at most n stages at once (default: number of cores)')
    .option('-S, --set <key=value>', 'override a param; repeatable', collect)
    .option('--params-file <file>', 'params file; repeatable', collect)
    .option('--scratch-dir <dir>', 'where the scratch copy is made (default: the system temp folder)')
    .option('--keep-scratch', 'keep the scratch copy for inspection (its path is printed)')
    .option('--json', 'print events as JSON lines, one verify-stage event per stage, and verify-end')
    .option('-v, --verbose', 'plain output with every stage line and log line')
    .action(async (file: string, targets: string[], opts: Record<string, unknown>) => {
      const { verifyCommand } = await import('./commands/verify.js');
      process.exitCode = await verifyCommand(file, targets, opts);
    });

  p.command('status')
    .description('List stale stages and the reason each would run (runs nothing; exit 0).')
    .argument('<file>', 'pipeline YAML')
    .argument('[targets...]', 'limit to these stages (and their upstream)')
    .option('-S, --set <key=value>', 'override a param; repeatable', collect)
    .option('--params-file <file>', 'params file; repeatable', collect)
    .option('--json', 'machine-readable output')
    .addOption(new Option('--resource-usage').hideHelp())
    .action(async (file: string, targets: string[], opts: Record<string, unknown>) => {
      const { statusCommand } = await import('./commands/status.js');
      process.exitCode = await statusCommand(file, targets, opts);
      if (opts.resourceUsage) process.stderr.write(`PEAK_RSS_KB ${process.resourceUsage().maxRSS}\n`);
    });

  p.command('why')
    .description('Explain a stage: the field-by-field difference from its nearest earlier run (params, deps, env...).')
    .argument('<file>', 'pipeline YAML')
    .argument('<stage>', 'stage name')
    .option('-S, --set <key=value>', 'override a param; repeatable', collect)
    .option('--params-file <file>', 'params file; repeatable', collect)
    .option('--json', 'machine-readable output')
    .action(async (file: string, stage: string, opts: Record<string, unknown>) => {
      const { whyCommand } = await import('./commands/why.js');
      process.exitCode = await whyCommand(file, stage, opts);
    });

  p.command('dag')
    .description('Print the stage graph.')
    .argument('<file>', 'pipeline YAML')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'mermaid', 'dot']).default('text'))
    .addOption(new Option('--resource-usage').hideHelp())
    .action(async (file: string, opts: { format?: string; resourceUsage?: boolean }) => {
      const { dagCommand } = await import('./commands/dag.js');
      process.exitCode = await dagCommand(file, opts);
      if (opts.resourceUsage) process.stderr.write(`PEAK_RSS_KB ${process.resourceUsage().maxRSS}\n`);
    });

  p.command('metrics')
    .description("Tabulate the stages' metrics files (outs with metric: true), flattened.")
    .argument('<file>', 'pipeline YAML')
    .option('--all', 'include earlier runs from the run cache')
    .option('--json', 'machine-readable output')
    .action(async (file: string, opts: { all?: boolean; json?: boolean }) => {
      const { metricsCommand } = await import('./commands/metrics.js');
      process.exitCode = await metricsCommand(file, opts);
    });

  p.command('gc')
    .description('Delete cached outputs that no given pipeline lock file and no recent run references.')
    .argument('<files...>', 'pipeline YAMLs whose lock files say what to keep')
    .option('-n, --dry-run', 'report what would be deleted; delete nothing')
    .option('--keep-days <n>', 'keep outputs of runs from the last n days (default 30)')
    .option('--grace-seconds <n>', 'never delete objects younger than this, e.g. being stored by a running pipe (default 3600)')
    .option('--json', 'machine-readable output')
    .action(async (files: string[], opts: { dryRun?: boolean; json?: boolean; keepDays?: string; graceSeconds?: string }) => {
      const { gcCommand } = await import('./commands/gc.js');
      process.exitCode = await gcCommand(files, opts);
    });

  p.command('cancel')
    .description('Cancel (scancel) every SLURM job this workspace submitted that is still pending or running.')
    .argument('<file>', 'pipeline YAML')
    .option('--json', 'machine-readable output')
    .action(async (file: string, opts: { json?: boolean }) => {
      const { cancelCommand } = await import('./commands/cancel.js');
      process.exitCode = await cancelCommand(file, opts);
    });

  p.command('schema')
    .description('Print the JSON Schema of pipeline YAML files (for editors).')
    .action(async () => {
      const { schemaCommand } = await import('./commands/schema.js');
      process.exitCode = await schemaCommand();
    });

  return p;
}

/** `pipe watch` lives in its own module (engine/commands/watch.ts, the watch engineer's); registered when present. */
async function registerOptional(p: Command): Promise<void> {
  const watch = new URL('./commands/watch.js', import.meta.url);
  if (!existsSync(watch)) return;
  const mod = (await import(watch.href)) as { registerWatchCommand?: (program: Command) => void };
  mod.registerWatchCommand?.(p);
}

async function main(): Promise<void> {
  watchForClosedOutput();
  try {
    const p = program();
    await registerOptional(p);
    await p.parseAsync(process.argv);
  } catch (e) {
    process.exitCode = exitCodeFor(e);
  }
  if (outputClosed.aborted) process.exitCode = CLOSED_OUTPUT_EXIT;
}

function exitCodeFor(e: unknown): number {
  if (e instanceof CommanderError) {
    // Help and version are exit 0; bad usage is 2 (commander already printed the message).
    return e.exitCode === 0 ? 0 : 2;
  }
  if (e instanceof DiagnosticsError) {
    if (process.argv.includes('--json')) {
      process.stdout.write(`${JSON.stringify({ type: 'diagnostics', formatted: e.formatted, diagnostics: e.diagnostics, at: Date.now() })}\n`);
    }
    for (const f of e.formatted) process.stderr.write(`${f}\n`);
    process.stderr.write(`pipe: ${e.diagnostics.length} problem(s); nothing was run.\n`);
    return 2;
  }
  if (e instanceof UsageError) {
    process.stderr.write(`pipe: ${e.message}\n`);
    return 2;
  }
  if (e instanceof ExitError) {
    process.stderr.write(`${e.message}\n`);
    return e.code;
  }
  const err = e as NodeJS.ErrnoException;
  if (err && typeof err === 'object' && err.code && err.syscall) {
    // A file-system problem we did not anticipate (permissions, disk full): one line, no stack.
    process.stderr.write(`pipe: ${err.message}\n`);
    return 1;
  }
  process.stderr.write(`pipe: internal error (a bug; please report it):\n${err instanceof Error ? (err.stack ?? err.message) : String(e)}\n`);
  return 70;
}

await main();
