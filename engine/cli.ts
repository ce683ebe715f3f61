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
    // Options after a subcommand are that subcommand's (`pipe metrics diff F --all`), never its parent's.
    .enablePositionalOptions()
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

  const metrics = p
    .command('metrics')
    .enablePositionalOptions()
    .description("The stages' metrics files (outs with metric: true): one row per file when that fits, else one per metric. `pipe metrics diff` compares with a git revision.")
    .argument('<file>', 'pipeline YAML')
    .option('--all', 'include earlier runs from the run cache')
    .option('--long', 'one line per metric (stage, file, metric, value) even when a row per file would fit')
    .option('--json', 'machine-readable output')
    .action(async (file: string, opts: { all?: boolean; json?: boolean; long?: boolean }) => {
      const { metricsCommand } = await import('./commands/metrics.js');
      process.exitCode = await metricsCommand(file, opts);
    });
  metrics
    .command('diff')
    .description("The workspace's metrics against those of the lock file committed at a git revision (as DVC's metrics diff).")
    .argument('<file>', 'pipeline YAML')
    .option('--rev <ref>', 'git revision to compare with (default HEAD)')
    .option('--all', 'list unchanged metrics too')
    .option('--md', 'a Markdown table')
    .option('--csv', 'CSV')
    .option('--json', 'machine-readable output')
    .action(async (file: string, opts: Record<string, unknown>) => {
      const { metricsDiffCommand } = await import('./commands/metrics.js');
      process.exitCode = await metricsDiffCommand(file, opts);
    });

  const exp = p.command('exp').description('Experiments: run parameter sets in scratch workspaces sharing the cache, compare them, apply one (docs/experiments.md).');
  exp
    .command('run')
    .description('Run the variants of the named experiments (or one variant made of -S params), each in its own scratch workspace, in parallel; the workspace is not touched.')
    .argument('<file>', 'pipeline YAML')
    .argument('[experiments...]', 'names under `experiments:` in the pipeline')
    .option('-S, --set <key=value>', 'a param to try (alone: one variant; with experiments: set for each of their variants); repeatable', collect)
    .option('--params-file <file>', 'params file applied to every variant; repeatable', collect)
    .option('-t, --target <stage>', 'bring only this stage (name or glob) and its upstream up to date; repeatable', collect)
    .option('--name <name>', 'the name of a variant given with -S alone (default exp-<hash of its params>)')
    .option('-j, --jobs <n>', 'run at most n local stages at once, all variants together (default: number of cores)')
    .option('--gpus <ids>', 'GPU device ids to schedule on, e.g. 0,1 (default: detected; "none" for none)')
    .option('--mem <size>', 'memory available to stages, all variants together, e.g. 8G')
    .option('-k, --keep-going', "after a failure, keep running a variant's stages that do not depend on it")
    .option('-n, --dry-run', 'list the variants and their params; run nothing')
    .option('--no-wait', 'if another pipe holds the workspace or its experiments, exit at once naming it')
    .option('--json', 'events as JSON lines (each with its variant), then exp-end')
    .option('-v, --verbose', 'every stage line and log line')
    .action(async (file: string, names: string[], opts: Record<string, unknown>) => {
      const { expRunCommand } = await import('./commands/exp.js');
      process.exitCode = await expRunCommand(file, names, opts);
    });
  exp
    .command('show')
    .description('One table: the workspace, then each recorded variant; the params that differ and the declared metrics.')
    .argument('<file>', 'pipeline YAML')
    .argument('[names...]', 'experiments or variants to show (globs allowed; default all)')
    .option('--sort <column>', 'order the variants by a param or metric')
    .option('--desc', 'with --sort: largest first')
    .option('--only <columns>', 'comma-separated params and metrics to show (globs allowed)')
    .option('--md', 'a Markdown table (every column)')
    .option('--csv', 'CSV (every column)')
    .option('--json', 'machine-readable output')
    .option('--html <file>', 'also write an HTML page: the table and a chart of a metric against each swept param')
    .option('--metric <metric>', 'with --html: the metric to chart (default the experiment\'s `metric:`, else the first that varies)')
    .option('--width <n>', 'fit the table in n columns (default: the terminal\'s, else 80)')
    .action(async (file: string, names: string[], opts: Record<string, unknown>) => {
      const { expShowCommand } = await import('./commands/exp.js');
      process.exitCode = await expShowCommand(file, names, opts);
    });
  exp
    .command('diff')
    .description('Params and metrics of two variants (or of one against the workspace) side by side, with the change.')
    .argument('<file>', 'pipeline YAML')
    .argument('<a>', 'a variant, or `workspace`')
    .argument('[b]', 'another variant, or `workspace` (default: compare a with the workspace)')
    .option('--all', 'list unchanged metrics too')
    .option('--md', 'a Markdown table')
    .option('--json', 'machine-readable output')
    .action(async (file: string, a: string, b: string | undefined, opts: Record<string, unknown>) => {
      const { expDiffCommand } = await import('./commands/exp.js');
      process.exitCode = await expDiffCommand(file, a, b, opts);
    });
  exp
    .command('apply')
    .description("Restore a variant's outputs into the workspace from the cache (running nothing) and write its params to <name>.params.yaml, which `pipe run` reads.")
    .argument('<file>', 'pipeline YAML')
    .argument('<variant>', 'the variant to apply')
    .option('--force', 'replace a <name>.params.yaml that pipe did not write')
    .option('--no-wait', 'if another pipe holds the workspace, exit at once naming it')
    .option('--json', 'machine-readable output')
    .action(async (file: string, name: string, opts: Record<string, unknown>) => {
      const { expApplyCommand } = await import('./commands/exp.js');
      process.exitCode = await expApplyCommand(file, name, opts);
    });
  exp
    .command('remove')
    .description("Delete variants: their records and scratch workspaces, forgotten by the cache's registry (then `pipe gc` frees what only they used).")
    .argument('<file>', 'pipeline YAML')
    .argument('[names...]', 'variants or experiments (globs allowed)')
    .option('--all', 'every variant of this pipeline')
    .option('--no-wait', 'if another pipe holds the experiments, exit at once naming it')
    .option('--json', 'machine-readable output')
    .action(async (file: string, names: string[], opts: Record<string, unknown>) => {
      const { expRemoveCommand } = await import('./commands/exp.js');
      process.exitCode = await expRemoveCommand(file, names, opts);
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
