/** Small text helpers shared by the renderers. */
import type { RunCounts } from '../events.js';

export function duration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m${Math.round((ms % 60_000) / 1000)}s`;
}

export function summary(counts: RunCounts, ms: number, interrupted: boolean): string {
  const parts = (Object.entries(counts) as Array<[string, number]>).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`);
  const head = interrupted ? 'interrupted' : counts.failed > 0 ? 'failed' : 'done';
  return `${head}: ${parts.length ? parts.join(', ') : 'nothing to do'} in ${duration(ms)}`;
}

/** A main output the pipeline declares (`settings.summary`): its label, its path as shown, the stage that writes it. */
export interface SummaryOutput {
  label: string;
  path: string;
  stage: string;
}

/**
 * The lines after "done: …" naming the main outputs, `report: out/report.html` — only those whose stage ended
 * well in this run (ran, restored or up to date): a failed or unselected stage's file would be stale or missing.
 */
export function outputLines(outputs: readonly SummaryOutput[], completed: ReadonlySet<string>): string[] {
  return outputs.filter((o) => completed.has(o.stage)).map((o) => `${o.label}: ${o.path}`);
}

/** Stage statuses after which a stage's outputs are in place. */
export const COMPLETED: ReadonlySet<string> = new Set(['ran', 'restored', 'up-to-date']);

export function progressLine(p: { done?: number; total?: number; unit?: string; message?: string }): string {
  const bits: string[] = [];
  if (p.done !== undefined && p.total !== undefined && p.total > 0) {
    bits.push(`${p.done}/${p.total}${p.unit ? ` ${p.unit}` : ''} (${Math.floor((100 * p.done) / p.total)}%)`);
  } else if (p.done !== undefined) bits.push(`${p.done}${p.unit ? ` ${p.unit}` : ''}`);
  if (p.message) bits.push(p.message);
  return bits.join(' ');
}

export function indent(text: string, prefix = '    '): string {
  return text
    .split('\n')
    .map((l) => prefix + l)
    .join('\n');
}

/**
 * Coalesce many small writes into one write per ~50 ms (or 64 KiB): a 10,000-stage run emits tens of thousands of
 * lines, and a write(2) each cost more than the stages themselves. `flush()` writes what is pending at once.
 */
export function bufferedWriter(stream: NodeJS.WritableStream): { write: (s: string) => void; flush: () => void } {
  let pending: string[] = [];
  let size = 0;
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    const text = pending.join('');
    pending = [];
    size = 0;
    stream.write(text);
  };
  return {
    write: (s) => {
      pending.push(s);
      size += s.length;
      if (size > 65536) flush();
      else if (!timer) {
        timer = setTimeout(flush, 50);
        timer.unref();
      }
    },
    flush,
  };
}
