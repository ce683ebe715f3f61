/**
 * `pipe exp run|show|diff|apply|remove`: experiments (docs/experiments.md). A variant is a parameter set run in its
 * own scratch workspace under `.pipe/exp/` sharing the workspace's cache (engine/experiments/run.ts); the workspace's
 * own outputs are only ever written by `exp apply`, which restores a variant's results from the cache and runs
 * nothing.
 */
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeFileAtomicSync } from '../../cache/atomic.js';
import { hashBytes } from '../../cache/hash.js';
import { workspaceLock } from '../../cache/lock.js';
import { readBoundedSync, unreadText } from '../../cache/read.js';
import { unregisterWorkspace } from '../../cache/registry.js';
import { didYouMean, displayPath } from '../dsl/diagnostics.js';
import { badVariantName, variantName } from '../dsl/experiments.js';
import type { ParsedFiles } from '../dsl/files.js';
import { readLimits } from '../dsl/limits.js';
import { APPLIED_HEADER, appliedParamsPath, parseOverride } from '../dsl/params.js';
import type { Emit, EventInput, PipeEvent } from '../events.js';
import type { Executor, Job, JobResult } from '../executors/executor.js';
import { experimentsPage } from '../experiments/html.js';
import { changedParams, flattenParams, overrideArgs, paramText, paramsFileText, unwritableParams } from '../experiments/params.js';
import { experimentsDir, ownExperimentsDir, readRecords, removeRecord, variantRoot, type VariantRecord } from '../experiments/records.js';
import { runVariants, SHARED, type VariantPlan } from '../experiments/run.js';
import { columnsOf, diffRows, diffTable, fitTable, hiddenNote, namesMetric, pickColumns, rowOf, showTable, sortRows, type Columns, type ExpRow, type MetricColumn } from '../experiments/table.js';
import { gitState } from '../git.js';
import { matcher } from '../glob.js';
import type { ExperimentSpec, Pipeline } from '../model.js';
import type { Decision } from '../plan.js';
import { planStages, runStages } from '../run.js';
import { namesWorkspace, scratchPipeline } from '../scratch.js';
import { csvTable, markdownTable, terminalWidth, textTable } from '../ui/table.js';
import { bufferedWriter } from '../ui/format.js';
import { plainRenderer } from '../ui/plain.js';
import { openWorkspace, pipeDirOf } from '../workspace.js';
import { DiagnosticsError, loadAll, selectStages, type Loaded } from './load.js';
import { ExitError, refuseUnreadableLock, UsageError } from './errors.js';
import { interrupts, releaseLockOnExit } from './interrupts.js';
import { workspaceMetrics } from './metrics.js';
import { executorChooser, machineFor } from './session.js';
import { pipeVersion } from './version.js';

// ---------------------------------------------------------------------------------------------------------------
// pipe exp run

export interface ExpRunCommandOptions {
  set?: string[];
  paramsFile?: string[];
  target?: string[];
  name?: string;
  jobs?: string;
  gpus?: string;
  mem?: string;
  keepGoing?: boolean;
  dryRun?: boolean;
  json?: boolean;
  verbose?: boolean;
  wait?: boolean;
}

export async function expRunCommand(file: string, names: string[], opts: ExpRunCommandOptions): Promise<number> {
  const set = opts.set ?? [];
  const paramsFiles = opts.paramsFile ?? [];
  // Every load of this command reads and parses the pipeline's files once; each variant still expands and validates.
  const parsed: ParsedFiles = new Map();
  const base = await loadAll(file, { overrides: set, paramsFiles, parsed });
  const wanted = variantsToRun(base.pipeline, names, set, opts.name, paramsFiles.map(contentHash));
  const targets = opts.target ?? [];

  // Every variant loads and validates before anything runs: a value that breaks a stage is exit 2, nothing ran.
  const plans: VariantPlan[] = [];
  const problems: string[] = [];
  for (const w of wanted) {
    let loaded: Loaded;
    try {
      loaded = w.cli ? base : await loadAll(file, { overrides: [...set, ...overrideArgs(w.own)], paramsFiles, cacheWrite: false, parsed });
    } catch (e) {
      if (!(e instanceof DiagnosticsError)) throw e;
      problems.push(`variant ${w.name} (${describe(w.overrides)}):`, ...e.formatted);
      continue;
    }
    const t = [...(w.experiment?.targets ?? []), ...targets];
    const selected = selectStages(loaded, t, false);
    for (const s of loaded.pipeline.stages) {
      const named = selected.has(s.name) ? namesWorkspace(s, loaded.pipeline.workdir) : undefined;
      if (named) {
        throw new UsageError(
          `stage ${s.name}: its ${named} names the workspace's absolute path ${loaded.pipeline.workdir}; run in a variant's own workspace it would write ` +
            `the workspace's files. Use paths relative to the workspace (commands run in it).`,
        );
      }
    }
    plans.push({ name: w.name, ...(w.experiment ? { experiment: w.experiment.name } : {}), ...(w.index !== undefined ? { index: w.index } : {}), overrides: w.overrides, loaded, selected, targets: t });
  }
  if (problems.length > 0) {
    for (const p of problems) process.stderr.write(`${p}\n`);
    throw new ExitError(`pipe: a variant's params make the pipeline invalid; nothing was run.`, 2);
  }

  if (opts.dryRun) {
    if (opts.json) process.stdout.write(`${JSON.stringify({ variants: plans.map((p) => ({ name: p.name, experiment: p.experiment, overrides: p.overrides, targets: p.targets, stages: p.selected.size })) }, null, 2)}\n`);
    else {
      for (const p of plans) process.stdout.write(`${p.name}  ${describe(p.overrides)}  (${p.selected.size} stage${p.selected.size === 1 ? '' : 's'}${p.targets.length ? `: ${p.targets.join(', ')} and upstream` : ''})\n`);
      process.stdout.write(`would run ${plans.length} variant${plans.length === 1 ? '' : 's'}, each in ${experimentsDir(base.pipeline)}/<name>/\n`);
    }
    return 0;
  }

  const machine = machineFor(opts, plans.flatMap((p) => p.loaded.pipeline.stages.filter((s) => p.selected.has(s.name))));
  const defaults = (await loadAll(file, { appliedParams: false })).pipeline.params;
  const stop = interrupts();
  const command = `pipe exp run ${process.argv.slice(4).join(' ')}`.trim();
  let releaseExp: (() => Promise<void>) | undefined;
  let releaseWs: (() => Promise<void>) | undefined;
  try {
    releaseExp = await take(ownedExperiments(base.pipeline), command, opts.wait !== false, stop.cancel, 'the experiments of this pipeline');
    if (!releaseExp) return 130;
    // The workspace is locked only while the variants' inputs are copied: a `pipe run` cannot change them half-way.
    releaseWs = await take(pipeDirOf(base.pipeline), command, opts.wait !== false, stop.cancel, 'the workspace');
    if (!releaseWs) return 130;
    const out = expOutput(opts);
    const result = await runVariants({
      workspace: base.pipeline,
      defaults,
      variants: plans,
      machine,
      pipeVersion: pipeVersion(),
      signal: stop.cancel,
      kill: stop.kill,
      keepGoing: opts.keepGoing ?? false,
      emitFor: out.emitFor,
      executors: (p, stages, pipeDir) => executorChooser(p, stages, pipeDir),
      onCopied: async () => {
        await releaseWs?.();
        releaseWs = undefined;
      },
      ...(gitOf(base.pipeline) ?? {}),
    });
    out.close();
    const failed = result.records.filter((r) => r.status !== 'ok');
    if (opts.json) {
      process.stdout.write(`${JSON.stringify({ type: 'exp-end', ok: failed.length === 0 && !result.interrupted, variants: result.records.map((r) => ({ name: r.name, status: r.status, ...(r.reason ? { reason: r.reason } : {}), durationMs: r.durationMs })), at: Date.now() })}\n`);
    } else {
      for (const r of result.records) process.stderr.write(`${r.status === 'ok' ? '✔' : '✗'} ${r.name} ${r.status === 'ok' ? `done in ${seconds(r.durationMs)}` : `${r.status}: ${r.reason ?? ''}`}\n`);
      const rows = [await baselineRow(await loadAll(file)), ...result.records.map(rowOf)];
      process.stdout.write(renderShow(rows, columnsOf(rows, metricPaths(base.pipeline)), {}, preferredMetrics(base.pipeline, result.records)));
      staleNote(rows);
    }
    // `exp show`, `diff` and `apply` know a variant by its record: one not written is not there for them.
    if (result.unrecorded) process.stderr.write(`pipe: the variants ran, but no record of them was written: ${result.unrecorded}\n`);
    if (result.interrupted) return 130;
    return failed.length > 0 || result.unrecorded ? 1 : 0;
  } finally {
    await releaseWs?.();
    await releaseExp?.();
    stop.dispose();
  }
}

interface Wanted {
  name: string;
  experiment?: ExperimentSpec;
  index?: number;
  /** Everything the variant sets (command line and experiment). */
  overrides: Record<string, unknown>;
  /** What the experiment sets (loaded over the command line's `-S`). */
  own: Record<string, unknown>;
  /** The command line's `-S` is the whole variant (no experiment named). */
  cli?: true;
}

/** A params file's bytes, hashed (it was read whole, within the load's bounds, a moment ago). */
function contentHash(file: string): string {
  const r = readBoundedSync(file, readLimits().limits.fileBytes);
  return r.ok ? hashBytes(r.bytes) : `unreadable:${file}`;
}

/**
 * The variants the command line asks for: the named experiments' (with `-S` on each), or one made of `-S` and
 * params files. A variant's name hashes all that the command line adds, params files' content included: the same
 * `-S` over two params files is two variants, not one replacing the other.
 */
function variantsToRun(p: Pipeline, names: string[], set: string[], name: string | undefined, paramsFiles: string[]): Wanted[] {
  const named = (o: Record<string, unknown>): Record<string, unknown> => (paramsFiles.length > 0 ? { ...o, '--params-file': paramsFiles } : o);
  const cli: Record<string, unknown> = {};
  for (const raw of set) {
    const o = parseOverride(raw);
    if (typeof o !== 'string') cli[o.path.join('.')] = o.value; // malformed ones were reported by the load
  }
  const declared = p.experiments ?? [];
  const bad = name === undefined ? undefined : badVariantName(name);
  if (bad) throw new UsageError(`--name ${name}: a variant name ${bad}`);
  if (names.length === 0) {
    if (set.length === 0 && paramsFiles.length === 0) {
      throw new UsageError(
        `exp run: name an experiment (${declared.length ? `this pipeline declares ${declared.map((e) => e.name).join(', ')}` : 'this pipeline declares none under `experiments:`'}) or give params to try with -S key=value or --params-file`,
      );
    }
    return [{ name: name ?? variantName('exp', named(cli)), overrides: cli, own: cli, cli: true }];
  }
  if (name !== undefined) throw new UsageError('--name names a variant given with -S or --params-file alone; an experiment names its own variants');
  const out: Wanted[] = [];
  for (const n of names) {
    const e = declared.find((x) => x.name === n);
    if (!e) throw new UsageError(`exp run: no experiment \`${n}\`${didYouMean(n, declared.map((x) => x.name))} (this pipeline declares ${declared.map((x) => x.name).join(', ') || 'none'})`);
    e.variants.forEach((v, index) => {
      const clash = Object.keys(cli).find((k) => Object.prototype.hasOwnProperty.call(v.overrides, k));
      if (clash) throw new UsageError(`-S ${clash}: experiment \`${e.name}\` sets it itself; -S may set other params for its variants`);
      const overrides = { ...cli, ...v.overrides };
      out.push({ name: set.length || paramsFiles.length ? variantName(e.name, named(overrides)) : v.name, experiment: e, index, overrides, own: v.overrides });
    });
  }
  const dup = out.find((w, i) => out.findIndex((x) => x.name === w.name) !== i);
  if (dup) throw new UsageError(`two variants are named ${dup.name} (experiments ${dup.experiment?.name ?? '-S'}); rename one experiment`);
  return out;
}

function describe(overrides: Record<string, unknown>): string {
  return Object.entries(overrides).map(([k, v]) => `${k}=${paramText(v)}`).join(', ') || 'no overrides';
}

function seconds(ms: number): string {
  return ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(1)}s`;
}

function gitOf(p: Pipeline): { git: NonNullable<ReturnType<typeof gitState>> } | undefined {
  const g = gitState(p.workdir);
  return g ? { git: g } : undefined;
}

/**
 * Events of every variant: JSON lines with a `variant` field (`--json`), or plain lines with the variant before the
 * stage (`lr-sweep-3f2a1c › train`); a variant's own run-start/run-end are left out (the command sums up).
 */
function expOutput(opts: { json?: boolean; verbose?: boolean }): { emitFor: (label: string) => Emit; close: () => void } {
  if (opts.json) {
    return {
      emitFor: (variant) => (e: EventInput) => void process.stdout.write(`${JSON.stringify({ ...e, variant, at: Date.now() })}\n`),
      close: () => {},
    };
  }
  const out = bufferedWriter(process.stderr);
  const render = plainRenderer({ verbose: opts.verbose ?? false, write: out.write });
  return {
    emitFor: (label) => (e: EventInput) => {
      if (e.type === 'run-start' || e.type === 'run-end') return;
      const shown = label === SHARED ? `(shared) ` : `${label} › `;
      const full = { ...e, at: Date.now() } as PipeEvent;
      render('stage' in full && typeof full.stage === 'string' ? ({ ...full, stage: `${shown}${full.stage}` } as PipeEvent) : full);
    },
    close: out.flush,
  };
}

/** ownExperimentsDir, its refusal said as one paragraph and exit 1. */
function ownedExperiments(p: Pipeline): string {
  return refusedAsExit(() => ownExperimentsDir(p));
}

/** readRecords, its refusal (a folder that is a link) said as one paragraph and exit 1. */
function recordsOf(p: Pipeline): VariantRecord[] {
  return refusedAsExit(() => readRecords(p));
}

function refusedAsExit<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new ExitError(`pipe: ${(e as Error).message}`, 1);
  }
}

/** Take a lock (waiting, with a note, unless `wait` is false); undefined when interrupted while waiting. */
async function take(dir: string, command: string, wait: boolean, signal: AbortSignal, what: string): Promise<(() => Promise<void>) | undefined> {
  const got = await workspaceLock(dir, command)
    .acquire({ wait, signal, onWait: (h) => process.stderr.write(`pipe: waiting for ${what}, locked by \`${h.command}\` (pid ${h.pid} on ${h.host})\n`) })
    .catch((e: unknown) => {
      if (signal.aborted) return undefined;
      throw e;
    });
  if (got && !got.ok) refuseUnreadableLock(got.holder);
  if (!got || (!got.ok && signal.aborted)) return undefined;
  if (!got.ok) throw new ExitError(`pipe: ${what} is locked by \`${got.holder.command}\` (pid ${got.holder.pid} on ${got.holder.host}); not waiting (--no-wait)`, 1);
  const undo = releaseLockOnExit(dir);
  return async () => {
    undo();
    await got.release();
  };
}

// ---------------------------------------------------------------------------------------------------------------
// pipe exp show

export interface ExpShowOptions {
  sort?: string;
  desc?: boolean;
  only?: string;
  md?: boolean;
  csv?: boolean;
  json?: boolean;
  html?: string;
  metric?: string;
  width?: string;
}

/** The declared metrics files, in stage order. */
function metricPaths(p: Pipeline): string[] {
  return p.stages.flatMap((s) => s.outs.filter((o) => o.metric && !o.path.endsWith('/')).map((o) => o.path));
}

/**
 * The workspace as it is: its params (as `pipe run` loads them, without a command line's `-S`) and its metrics files.
 * Those a stage left that is not up to date now (params edited, not run) are from an earlier run, not what the params
 * beside them compute: the row is `stale`, saying which stage and why.
 */
async function baselineRow(loaded: Loaded): Promise<ExpRow> {
  const p = loaded.pipeline;
  const row: ExpRow = { name: 'workspace', baseline: true, status: 'workspace', params: flattenParams(p.params), metrics: workspaceMetrics(p, p.workdir) };
  const writers = p.stages.filter((s) => s.outs.some((o) => o.metric && !o.path.endsWith('/') && row.metrics[o.path] !== undefined)).map((s) => s.name);
  if (writers.length === 0) return row;
  const plan = await planStages({ pipeline: p, graph: loaded.graph, workspace: await openWorkspace(p), selected: selectStages(loaded, writers, false), emit: () => {}, pipeVersion: pipeVersion() });
  const stale = writers.find((s) => plan.get(s)?.action !== 'up-to-date');
  if (stale === undefined) return row;
  const why = plan.get(stale)?.reasons[0]?.text;
  return { ...row, status: 'stale', reason: `stage ${stale} is not up to date${why ? ` (${why})` : ''}; its metrics are from an earlier run, not what its params compute: \`pipe run ${displayPath(p.file)}\`` };
}

/** The stale workspace row's reason, under a table that shows it. */
function staleNote(rows: readonly ExpRow[]): void {
  for (const r of rows) if (r.baseline && r.status === 'stale') process.stderr.write(`note: workspace: ${r.reason}\n`);
}

/** The metrics the shown experiments name with `metric:` (kept first when columns must be chosen). */
function preferredMetrics(p: Pipeline, records: readonly VariantRecord[]): string[] {
  const shown = new Set(records.map((r) => r.experiment));
  return (p.experiments ?? []).filter((e) => shown.has(e.name) && e.metric).map((e) => e.metric!);
}

/** Records matching the command line's names (experiments or variants, globs allowed); all without names. */
function selectRecords(records: VariantRecord[], names: string[]): VariantRecord[] {
  if (names.length === 0) return records;
  const m = matcher(names);
  const picked = records.filter((r) => m(r.name) || (r.experiment !== undefined && m(r.experiment)));
  for (const n of names) {
    if (!records.some((r) => matcher([n])(r.name) || (r.experiment !== undefined && matcher([n])(r.experiment)))) {
      throw new UsageError(`no recorded experiment or variant \`${n}\`${didYouMean(n, [...new Set(records.flatMap((r) => [r.name, r.experiment ?? r.name]))])}`);
    }
  }
  return picked;
}

/** Experiments first in declaration order and variants in theirs, then command-line variants by start time. */
function ordered(p: Pipeline, records: VariantRecord[]): VariantRecord[] {
  const rank = new Map((p.experiments ?? []).map((e, i) => [e.name, i]));
  const r = (x: VariantRecord): number => (x.experiment !== undefined ? (rank.get(x.experiment) ?? rank.size) : rank.size + 1);
  return [...records].sort((a, b) => r(a) - r(b) || (a.index ?? 0) - (b.index ?? 0) || a.startedAt.localeCompare(b.startedAt));
}

function renderShow(rows: ExpRow[], cols: Columns, opts: ExpShowOptions, preferred: string[]): string {
  if (opts.md) return `${markdownTable(showTable(rows, cols))}\n`;
  if (opts.csv) return `${csvTable(showTable(rows, cols))}\n`;
  const w = opts.width !== undefined ? Number(opts.width) : terminalWidth();
  const { table, hidden } = fitTable(rows, cols, w, preferred);
  const note = hiddenNote(hidden, w);
  return `${textTable(table)}\n${note ? `${note}\n` : ''}`;
}

export async function expShowCommand(file: string, names: string[], opts: ExpShowOptions): Promise<number> {
  if (opts.width !== undefined && !(Number.isInteger(Number(opts.width)) && Number(opts.width) >= 20)) throw new UsageError(`--width expects a whole number ≥ 20, got ${JSON.stringify(opts.width)}`);
  if ([opts.md, opts.csv, opts.json].filter(Boolean).length > 1) throw new UsageError('give one of --md, --csv and --json');
  const loaded = await loadAll(file);
  const { pipeline } = loaded;
  const records = ordered(pipeline, selectRecords(recordsOf(pipeline), names));
  if (records.length === 0 && !opts.json) {
    const declared = (pipeline.experiments ?? []).map((e) => e.name);
    process.stdout.write(`No experiments recorded for ${file} yet: \`pipe exp run ${file} ${declared[0] ?? 'NAME'}\`${declared.length ? ` (declared: ${declared.join(', ')})` : ''}, or \`pipe exp run ${file} -S key=value\`.\n`);
    return 0;
  }
  let rows: ExpRow[] = [await baselineRow(loaded), ...records.map(rowOf)];
  let cols = columnsOf(rows, metricPaths(pipeline));
  const full = cols;
  if (opts.sort !== undefined) {
    const sorted = sortRows(rows, cols, opts.sort, opts.desc ?? false);
    if ('error' in sorted) throw new UsageError(sorted.error);
    rows = sorted;
  }
  if (opts.only !== undefined) {
    const picked = pickColumns(cols, opts.only.split(',').map((s) => s.trim()).filter(Boolean));
    if ('error' in picked) throw new UsageError(picked.error);
    cols = picked;
  }
  if (opts.html !== undefined) {
    const metric = chartMetric(full, rows, opts.metric, preferredMetrics(pipeline, records));
    const html = await experimentsPage({ title: `Experiments: ${pipeline.name}`, rows, cols, ...(metric ? { metric } : {}), generatedAt: new Date().toISOString() }, await pageTools());
    // Its folder may not exist yet: `pipe exp run` leaves the workspace's out/ as it was (absent, on a fresh clone).
    mkdirSync(dirname(opts.html), { recursive: true });
    writeFileAtomicSync(opts.html, html);
    process.stderr.write(`wrote ${opts.html}${metric ? ` (${metric.id} against ${cols.params.join(', ') || 'no swept param'})` : ''}\n`);
    if (!opts.md && !opts.csv && !opts.json) return 0;
  }
  if (opts.json) {
    process.stdout.write(
      `${JSON.stringify(
        {
          columns: { params: cols.params, metrics: cols.metrics },
          rows: rows.map((r) => ({
            name: r.name,
            ...(r.baseline ? { baseline: true } : {}),
            ...(r.experiment !== undefined ? { experiment: r.experiment } : {}),
            status: r.status,
            ...(r.reason !== undefined ? { reason: r.reason } : {}),
            params: Object.fromEntries(cols.params.map((p) => [p, r.params[p]])),
            metrics: Object.fromEntries(cols.metrics.map((m) => [m.id, r.metrics[m.path]?.[m.key]])),
            ...(r.durationMs !== undefined ? { durationMs: r.durationMs } : {}),
          })),
        },
        null,
        2,
      )}\n`,
    );
    return 0;
  }
  process.stdout.write(renderShow(rows, cols, opts, preferredMetrics(pipeline, records)));
  staleNote(rows);
  return 0;
}

/** The metric charted: `--metric`, else the one the experiments name, else the first that varies, else the first. */
function chartMetric(cols: Columns, rows: ExpRow[], wanted: string | undefined, preferred: string[]): MetricColumn | undefined {
  if (wanted !== undefined) {
    const m = cols.metrics.find((c) => namesMetric(c, wanted));
    if (!m) throw new UsageError(`--metric ${wanted}: no such metric${didYouMean(wanted, cols.metrics.map((c) => c.id))} (metrics: ${cols.metrics.map((c) => c.id).join(', ') || 'none recorded'})`);
    return m;
  }
  const varies = (c: MetricColumn): boolean => new Set(rows.filter((r) => !r.baseline).map((r) => JSON.stringify(r.metrics[c.path]?.[c.key]))).size > 1;
  return cols.metrics.find((c) => preferred.some((p) => namesMetric(c, p))) ?? cols.metrics.find(varies) ?? cols.metrics[0];
}

/** The plot kind's Vega-Lite → SVG renderer and the report's escaping, loaded only for `--html`. */
async function pageTools(): Promise<Parameters<typeof experimentsPage>[1]> {
  const { renderSvg } = await import('../../stages/plot/lib/render.js');
  const { escapeHtml } = await import('../../stages/report/lib/text.js');
  return {
    svg: async (spec, data) => {
      const r = await renderSvg(spec as Parameters<typeof renderSvg>[0], data);
      return r.ok ? { svg: r.value.svg } : { error: r.error };
    },
    escape: escapeHtml,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// pipe exp diff

export async function expDiffCommand(file: string, a: string, b: string | undefined, opts: { all?: boolean; json?: boolean; md?: boolean }): Promise<number> {
  const loaded = await loadAll(file);
  const records = recordsOf(loaded.pipeline);
  const baseline = a === 'workspace' || b === undefined || b === 'workspace' ? await baselineRow(loaded) : undefined;
  const row = (n: string): ExpRow => {
    if (n === 'workspace') return baseline!;
    const r = records.find((x) => x.name === n);
    if (!r) throw new UsageError(`no recorded variant \`${n}\`${didYouMean(n, ['workspace', ...records.map((x) => x.name)])}`);
    return rowOf(r);
  };
  // One name: the variant against the workspace (DVC's `exp diff` compares with the baseline).
  const [x, y] = b === undefined ? [row('workspace'), row(a)] : [row(a), row(b)];
  const d = diffRows(x, y, opts.all ?? false);
  staleNote([x, y]);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ a: x.name, b: y.name, params: d.params, metrics: d.metrics, ...(baseline?.status === 'stale' ? { stale: baseline.reason } : {}) }, null, 2)}\n`);
    return 0;
  }
  if (d.params.length === 0 && d.metrics.length === 0) {
    process.stdout.write(`${x.name} and ${y.name} have the same params and metrics.\n`);
    return 0;
  }
  const t = diffTable(x, y, d);
  process.stdout.write(`${opts.md ? markdownTable(t) : textTable(t)}\n`);
  return 0;
}

// ---------------------------------------------------------------------------------------------------------------
// pipe exp apply

/** An executor for `exp apply`, which runs nothing: a stage it would have to run fails, saying why. */
const refuseToRun: Executor = {
  name: 'local',
  async run(job: Job): Promise<JobResult> {
    const now = Date.now();
    return { status: 'failed', exitCode: null, signal: null, failure: 'submit', reason: `pipe exp apply runs nothing, and stage ${job.stage} has no cached result to restore`, startedAt: now, endedAt: now };
  },
  async close() {},
};

/**
 * Of the stages a plan in the workspace says would run, those the variant's own folder cannot vouch for. Planning
 * without running cannot know the hash of a folder dep that upstream outputs fill in (`eval/fpr/` of several
 * restored files): such a stage looks new. In the variant's folder, where those outputs are, the current pipeline
 * plans with the real hashes: a stage up to date there under the key the variant recorded restores here too.
 */
/** The stage has an out `cache: false`: never stored, so never restored. */
function uncached(p: Pipeline, stage: string): boolean {
  return p.stages.find((x) => x.name === stage)?.outs.some((o) => o.cache === false) ?? false;
}

async function notInVariant(target: Loaded, record: VariantRecord, selected: ReadonlySet<string>, wouldRun: Array<[string, Decision]>): Promise<Array<[string, Decision]>> {
  // Its folder where `pipe exp run` made it, not the record's `root`: a record is a file a stage could rewrite.
  const root = variantRoot(target.pipeline, record.name);
  if (!existsSync(join(root, '.pipe'))) return wouldRun;
  const there = scratchPipeline(target.pipeline, root, { cacheDir: target.pipeline.settings.cacheDir });
  const vws = await openWorkspace(there);
  const plan = await planStages({ pipeline: there, graph: target.graph, workspace: vws, selected, emit: () => {}, pipeVersion: pipeVersion() });
  const vouched = (s: string): boolean => {
    const v = plan.get(s);
    // Its key, that is; restoring needs its outputs in the cache, which a `cache: false` out never is.
    return v !== undefined && v.action !== 'run' && v.info?.key === record.stages[s]?.key && !uncached(target.pipeline, s);
  };
  // What is left is said as the variant's folder sees it (the real reason), where it has one.
  return wouldRun.filter(([s]) => !vouched(s)).map(([s, d]) => [s, plan.get(s)?.action === 'run' ? plan.get(s)! : d]);
}

export async function expApplyCommand(file: string, name: string, opts: { force?: boolean; json?: boolean; wait?: boolean }): Promise<number> {
  const current = await loadAll(file);
  const records = recordsOf(current.pipeline);
  const record = records.find((r) => r.name === name);
  if (!record) throw new UsageError(`no recorded variant \`${name}\`${didYouMean(name, records.map((r) => r.name))}; \`pipe exp show ${file}\` lists them`);
  if (record.status !== 'ok') throw new ExitError(`pipe: variant ${name} ${record.status === 'failed' ? 'failed' : 'was cancelled'} (${record.reason ?? ''}): it has no results to apply`, 1);
  const paramsFile = appliedParamsPath(current.pipeline.file);
  // Bounded and non-blocking, as every read of a file a stage could have replaced: one that cannot be read whole is
  // not one `pipe exp apply` wrote.
  const existing = readBoundedSync(paramsFile, readLimits().limits.fileBytes);
  if (!(existing.ok ? existing.bytes.toString('utf8').startsWith(APPLIED_HEADER) : existing.why === 'missing') && !opts.force) {
    const what = existing.ok ? 'exists and was not written by `pipe exp apply`' : `is ${unreadText(existing)}, not a file \`pipe exp apply\` wrote`;
    throw new UsageError(`${displayPath(paramsFile)} ${what}; move it away, or give --force to replace it`);
  }
  const defaults = flattenParams((await loadAll(file, { appliedParams: false })).pipeline.params);
  const changed = changedParams(record.params, defaults);
  const unwritable = unwritableParams(record.params, defaults);
  if (unwritable.length > 0) {
    throw new ExitError(
      `pipe: exp apply ${name}: its params cannot be written as a params file over the pipeline's own (${displayPath(paramsFile)} is merged key by key, so it cannot ` +
        `drop a param or empty a mapping): ${unwritable.map((k) => `\`${k}\` is ${k in defaults ? paramText(defaults[k]) : 'absent'} in the pipeline, ${k in record.params ? paramText(record.params[k]) : 'absent'} in the variant`).join('; ')}. ` +
        `Nothing was changed; set those params in the pipeline's \`params:\` to apply it.`,
      1,
    );
  }
  // The pipeline as `pipe run` will load it once the params file is written: defaults, then the variant's params.
  const target = await loadAll(file, { appliedParams: false, overrides: Object.entries(changed).map(([k, v]) => `+${k}=${JSON.stringify(v)}`) });
  const selected = selectStages(target, record.targets, false);
  const stop = interrupts();
  // The experiments' lock first (as `pipe exp run` takes them): no run replaces the variant's folder meanwhile.
  const releaseExp = await take(ownedExperiments(current.pipeline), `pipe exp apply ${name}`, opts.wait !== false, stop.cancel, 'the experiments of this pipeline');
  if (!releaseExp) return 130;
  const release = await take(pipeDirOf(target.pipeline), `pipe exp apply ${name}`, opts.wait !== false, stop.cancel, 'the workspace').catch(async (e: unknown) => {
    await releaseExp();
    throw e;
  });
  if (!release) {
    await releaseExp();
    return 130;
  }
  try {
    if (recordsOf(current.pipeline).find((r) => r.name === name)?.endedAt !== record.endedAt) {
      throw new ExitError(`pipe: variant ${name} was run again or removed while this waited; nothing was changed. Apply it again.`, 1);
    }
    const ws = await openWorkspace(target.pipeline);
    const plan = await planStages({ pipeline: target.pipeline, graph: target.graph, workspace: ws, selected, emit: () => {}, pipeVersion: pipeVersion() });
    let wouldRun = [...plan].filter(([, d]) => d.action !== 'up-to-date' && d.action !== 'restore');
    if (wouldRun.length > 0) wouldRun = await notInVariant(target, record, selected, wouldRun);
    if (wouldRun.length > 0) {
      const why = (s: string, d: Decision): string => (uncached(target.pipeline, s) ? 'its outs are not cached (`cache: false`): nothing to restore' : d.reasons.map((r) => r.text).join('; '));
      const lines = wouldRun.slice(0, 5).map(([s, d]) => `  ${s}: ${why(s, d)}`);
      throw new ExitError(
        `pipe: exp apply ${name} runs nothing, but ${wouldRun.length} stage(s) have no cached result for its params (the pipeline changed since it ran, or \`pipe gc\` collected them):\n${lines.join('\n')}${wouldRun.length > 5 ? `\n  … and ${wouldRun.length - 5} more` : ''}\nnothing was changed; run the variant again (\`pipe exp run\`) first`,
        1,
      );
    }
    if (Object.keys(changed).length > 0) {
      writeFileAtomicSync(paramsFile, paramsFileText(`${APPLIED_HEADER.slice(2)} ${name}\` (${new Date().toISOString()}): the params of that variant over the pipeline's own. Delete this file to return to them.`, changed));
    } else if (existsSync(paramsFile)) rmSync(paramsFile);
    const events: PipeEvent[] = [];
    const summary = await runStages({
      pipeline: target.pipeline,
      graph: target.graph,
      workspace: ws,
      selected,
      emit: (e) => void events.push({ ...e, at: Date.now() } as PipeEvent),
      pipeVersion: pipeVersion(),
      machine: machineFor({ gpus: 'none' }, []),
      executorFor: () => refuseToRun,
      signal: stop.cancel,
      keepGoing: false,
    });
    const counts = summary.counts;
    // The keys the stages had when restored (a plan cannot always know them: see notInVariant).
    const changedKeys = [...summary.outcomes.values()].filter((o) => o.key !== undefined && record.stages[o.stage]?.key !== undefined && record.stages[o.stage]!.key !== o.key).map((o) => o.stage);
    if (opts.json) process.stdout.write(`${JSON.stringify({ type: 'exp-apply', variant: name, ok: summary.ok, counts, paramsFile: Object.keys(changed).length > 0 ? paramsFile : null, changedDefinition: changedKeys }, null, 2)}\n`);
    else {
      for (const e of events) {
        // A restore that failed (an object found corrupt on the way) is why the stage then "has no cached result".
        if (e.type === 'warning' && e.code === 'restore-failed') process.stderr.write(`✗ ${e.message.replace(/; running it instead$/, '')}\n`);
        else if (e.type === 'stage-end' && e.status === 'failed') process.stderr.write(`✗ ${e.stage}: ${e.reason}\n`);
      }
      for (const s of changedKeys) process.stderr.write(`note: stage ${s}'s definition changed since ${name} ran; restored the cached result for the current one\n`);
    }
    if (!summary.ok) {
      // Half applied: its params are written and some stages restored. The lock file says which, so `pipe run` is
      // consistent either way; the user chooses.
      const done = counts.restored + counts['up-to-date'];
      const missing = [...summary.outcomes.values()].filter((o) => o.status !== 'restored' && o.status !== 'up-to-date').map((o) => o.stage);
      const params = Object.keys(changed).length > 0 ? displayPath(paramsFile) : undefined;
      const text =
        `pipe: exp apply ${name} did not complete: ${done} of ${summary.outcomes.size} stage(s) restored, ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ` and ${missing.length - 5} more` : ''} not` +
        `${summary.interrupted ? ' (interrupted)' : ''}. ` +
        (params
          ? `Its params are in ${params} (the workspace's lock file records what was restored): \`pipe run ${displayPath(file)}\` computes the rest with them, or delete ${params} and \`pipe run\` to return to the pipeline's own.`
          : `It uses the pipeline's own params: \`pipe run ${displayPath(file)}\` computes the rest.`);
      process.stderr.write(`${text}\n`);
    } else if (!opts.json) {
      process.stdout.write(
        `applied ${name}: ${counts.restored} restored, ${counts['up-to-date']} already in place${counts.failed ? `, ${counts.failed} failed` : ''}; ` +
          (Object.keys(changed).length > 0 ? `its params are in ${displayPath(paramsFile)} (\`pipe run\` uses them; delete it to return to the defaults)\n` : 'it uses the pipeline\'s own params\n'),
      );
    }
    if (summary.interrupted) return 130;
    return summary.ok ? 0 : 1;
  } finally {
    await release();
    await releaseExp();
    stop.dispose();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// pipe exp remove

export async function expRemoveCommand(file: string, names: string[], opts: { all?: boolean; json?: boolean; wait?: boolean }): Promise<number> {
  const { pipeline } = await loadAll(file);
  if (names.length === 0 && !opts.all) throw new UsageError('exp remove: name the variants or experiments to remove (globs allowed), or give --all');
  const records = recordsOf(pipeline);
  const gone = opts.all ? records : selectRecords(records, names);
  const stop = interrupts();
  const release = await take(ownedExperiments(pipeline), `pipe exp remove ${names.join(' ')}`.trim(), opts.wait !== false, stop.cancel, 'the experiments of this pipeline');
  if (!release) return 130;
  try {
    for (const r of gone) {
      const root = variantRoot(pipeline, r.name);
      // Forgotten by the cache's registry first: `pipe gc` then collects what only this variant referenced.
      await unregisterWorkspace(pipeline.settings.cacheDir, join(root, '.pipe'));
      rmSync(root, { recursive: true, force: true });
      removeRecord(pipeline, r.name);
    }
  } finally {
    await release();
    stop.dispose();
  }
  if (opts.json) process.stdout.write(`${JSON.stringify({ removed: gone.map((r) => r.name) })}\n`);
  else process.stdout.write(`removed ${gone.length} variant${gone.length === 1 ? '' : 's'}${gone.length ? `: ${gone.map((r) => r.name).join(', ')}` : ''}; \`pipe gc ${file}\` frees what only they referenced\n`);
  return 0;
}

