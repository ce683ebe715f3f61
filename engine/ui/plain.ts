/**
 * Plain lines (CI, pipes, no TTY): one line per thing that happened, nothing redrawn. Up-to-date stages are only
 * counted (a no-op run of 1,000 stages prints one line), unless `verbose`.
 */
import type { PipeEvent } from '../events.js';
import { bufferedWriter, COMPLETED, duration, indent, outputLines, progressLine, summary, type SummaryOutput } from './format.js';

export interface PlainOptions {
  write?: (s: string) => void;
  verbose?: boolean;
  /** The pipeline's main outputs, named after the closing line. */
  outputs?: readonly SummaryOutput[];
}

export function plainRenderer(opts: PlainOptions = {}): (e: PipeEvent) => void {
  const out = opts.write ? undefined : bufferedWriter(process.stderr);
  const write = opts.write ?? out!.write;
  const lastProgress = new Map<string, number>();
  /** Why a stage will run, printed on its start line (one line less per stage). */
  const why = new Map<string, string>();
  /** Skipped/cancelled stages beyond the first few are only counted (a failure at the head of a long chain). */
  let unlisted = 0;
  let listed = 0;
  const completed = new Set<string>();
  return (e) => {
    switch (e.type) {
      case 'run-start':
        if (opts.verbose) write(`pipe: ${e.stages.length} stage(s), -j ${e.jobs}\n`);
        break;
      case 'plan':
        if (e.action === 'run' && e.reasons.length) why.set(e.stage, e.reasons.join('; '));
        break;
      case 'stage-start': {
        const reason = why.get(e.stage);
        why.delete(e.stage);
        write(`▶ ${e.stage}${e.gpuIds.length ? ` [gpu ${e.gpuIds.join(',')}]` : ''}${e.executor !== 'local' ? ` [${e.executor}]` : ''}${reason ? ` (${reason})` : ''}\n`);
        break;
      }
      case 'stage-progress': {
        // At most one progress line per stage every 2 s: CI logs must stay readable.
        const last = lastProgress.get(e.stage) ?? 0;
        if (e.at - last >= 2000 || (e.total !== undefined && e.done === e.total)) {
          lastProgress.set(e.stage, e.at);
          write(`  ${e.stage}: ${progressLine(e)}\n`);
        }
        break;
      }
      case 'stage-log':
        if (opts.verbose) write(`  ${e.stage} | ${e.line}\n`);
        break;
      case 'stage-state':
        write(`  ${e.stage}: ${e.state}\n`);
        break;
      case 'stage-end':
        if (COMPLETED.has(e.status)) completed.add(e.stage);
        if (e.status === 'failed' || e.status === 'cancelled') out?.flush();
        if (e.status === 'up-to-date') {
          if (opts.verbose) write(`✓ ${e.stage} up to date\n`);
        } else if (e.status === 'ran') write(`✔ ${e.stage} done in ${duration(e.durationMs)}\n`);
        else if (e.status === 'restored') write(`↺ ${e.stage} restored from cache (${e.reason})\n`);
        else if (e.status === 'failed') {
          write(`✗ ${e.stage} failed: ${e.reason}${e.logFile ? `\n    log: ${e.logFile}` : ''}\n`);
          if (e.logTail) write(`${indent(e.logTail, '    │ ')}\n`);
        } else if (opts.verbose || listed++ < 10) write(`- ${e.stage} ${e.status}: ${e.reason}\n`);
        else unlisted++;
        break;
      case 'warning':
        write(`warning: ${e.message}\n`);
        break;
      case 'diagnostics':
        for (const d of e.formatted) write(`${d}\n`);
        break;
      case 'run-end':
        if (unlisted > 0) write(`  … and ${unlisted} more not run (see --json or -v)\n`);
        write(`${summary(e.counts, e.durationMs, e.interrupted)}\n`);
        for (const line of outputLines(opts.outputs ?? [], completed)) write(`${line}\n`);
        out?.flush();
        break;
    }
  };
}
