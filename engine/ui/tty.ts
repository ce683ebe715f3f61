/**
 * The live terminal view (listr2): one line per stage — cached / running (with elapsed time and the stage's own
 * progress line) / done / failed. Loaded lazily by the CLI only when stderr is a TTY. Pipelines with very many
 * stages fall back to the plain renderer: redrawing thousands of lines helps nobody.
 */
import type { PipeEvent } from '../events.js';
import { COMPLETED, duration, indent, outputLines, progressLine, summary, type SummaryOutput } from './format.js';
import { plainRenderer } from './plain.js';

const MAX_LIVE_STAGES = 150;

interface TaskLike {
  title: string | undefined;
  output: string | undefined;
  skip(message?: string): void;
}

interface StageView {
  /** When it started running (for the live elapsed time). */
  startedAt?: number;
  running?: string;
  task?: TaskLike;
  resolve?: () => void;
  reject?: (e: Error) => void;
  /** An end that arrived before listr called the task function. */
  pending?: PipeEvent & { type: 'stage-end' };
  output?: string;
  title?: string;
}

export interface Renderer {
  listener: (e: PipeEvent) => void;
  /** Wait until the renderer has drawn its last frame. */
  close(): Promise<void>;
}

/** `outputs`: the pipeline's main outputs, named after the closing line. */
export async function ttyRenderer(outputs: readonly SummaryOutput[] = []): Promise<Renderer> {
  const { Listr } = await import('listr2');
  // Elapsed time of running stages, refreshed every second.
  let ticker: NodeJS.Timeout | undefined;
  const tick = (): void => {
    for (const [name, v] of views) {
      if (v.startedAt === undefined || !v.task || !v.running) continue;
      v.task.title = `${name} ${dim(`${v.running} ${duration(Math.round((Date.now() - v.startedAt) / 1000) * 1000)}`)}`;
    }
  };
  const write = (s: string): void => void process.stderr.write(s);
  const views = new Map<string, StageView>();
  const failures: string[] = [];
  let fallback: ((e: PipeEvent) => void) | undefined;
  let running: Promise<unknown> | undefined;
  let endLine: string | undefined;
  const warnings: string[] = [];
  const completed = new Set<string>();

  const apply = (name: string, v: StageView, e: PipeEvent & { type: 'stage-end' }): void => {
    v.running = undefined;
    if (!v.task || !v.resolve || !v.reject) {
      v.pending = e;
      return;
    }
    switch (e.status) {
      case 'ran':
        v.task.title = `${name} ${dim(`done in ${duration(e.durationMs)}`)}`;
        return v.resolve();
      case 'restored':
        v.task.title = `${name} ${dim('restored from cache')}`;
        return v.resolve();
      case 'up-to-date':
        v.task.skip(`${name} up to date`);
        return v.resolve();
      case 'failed':
        if (e.logTail || e.logFile) failures.push(`✗ ${name}: ${e.reason}${e.logFile ? `\n    log: ${e.logFile}` : ''}${e.logTail ? `\n${indent(e.logTail, '    │ ')}` : ''}`);
        return v.reject(new Error(`${name}: ${e.reason}`));
      default:
        v.task.skip(`${name} ${e.status}: ${e.reason}`);
        return v.resolve();
    }
  };

  const listener = (e: PipeEvent): void => {
    if (fallback) return fallback(e);
    switch (e.type) {
      case 'run-start': {
        if (e.stages.length > MAX_LIVE_STAGES) {
          fallback = plainRenderer({ outputs });
          return fallback(e);
        }
        const list = new Listr(
          e.stages.map((name) => {
            const v: StageView = {};
            views.set(name, v);
            return {
              // listr2 spins every concurrent task; the title tells waiting stages from running ones.
              title: `${name} ${dim('waiting')}`,
              task: (_ctx: unknown, task: TaskLike) =>
                new Promise<void>((resolve, reject) => {
                  v.task = task;
                  v.resolve = resolve;
                  v.reject = reject;
                  if (v.title) task.title = v.title;
                  if (v.output) task.output = v.output;
                  if (v.pending) apply(name, v, v.pending);
                }),
            };
          }),
          {
            concurrent: true,
            exitOnError: false,
            registerSignalListeners: false,
            renderer: 'default',
            rendererOptions: { collapseSkips: true, suffixSkips: false, showSkipMessage: true, showErrorMessage: true },
          },
        );
        running = list.run().catch(() => undefined);
        ticker = setInterval(tick, 1000);
        ticker.unref();
        return;
      }
      case 'stage-start': {
        const v = views.get(e.stage);
        if (!v) return;
        v.startedAt = e.at;
        v.running = `running${e.gpuIds.length ? ` on gpu ${e.gpuIds.join(',')}` : ''}${e.executor !== 'local' ? ` (${e.executor})` : ''}`;
        v.title = `${e.stage} ${dim(v.running)}`;
        if (v.task) v.task.title = v.title;
        return;
      }
      case 'stage-progress': {
        const v = views.get(e.stage);
        if (!v) return;
        v.output = progressLine(e);
        if (v.task) v.task.output = v.output;
        return;
      }
      case 'stage-state': {
        const v = views.get(e.stage);
        if (v?.task) v.task.output = e.state;
        return;
      }
      case 'stage-end': {
        if (COMPLETED.has(e.status)) completed.add(e.stage);
        const v = views.get(e.stage);
        if (v) apply(e.stage, v, e);
        return;
      }
      case 'warning':
        warnings.push(`warning: ${e.message}`);
        return;
      case 'diagnostics':
        for (const d of e.formatted) write(`${d}\n`);
        return;
      case 'run-end':
        endLine = [summary(e.counts, e.durationMs, e.interrupted), ...outputLines(outputs, completed)].join('\n');
        return;
      default:
        return;
    }
  };

  return {
    listener,
    async close() {
      if (running) await running;
      if (ticker) clearInterval(ticker);
      for (const w of warnings) write(`${w}\n`);
      for (const f of failures) write(`${f}\n`);
      if (endLine && !fallback) write(`${endLine}\n`);
    },
  };
}

function dim(s: string): string {
  return `\x1b[2m${s}\x1b[22m`;
}
