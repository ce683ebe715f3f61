/**
 * The watch screen, drawn from the engine's events and watch mode's own (engine/watch/events.ts).
 *
 * - TTY: one compact frame redrawn in place: what changed, this cycle's stages (running / done / cache hit /
 *   failed), the last cycle's time and counts, failures with the tail of their log, manual stages waiting, keys.
 * - Plain (not a TTY, or CI): one line per thing that happened, nothing redrawn.
 * - JSON (`--json`): every event as one JSON line on stdout.
 *
 * `reduce` (events → state) and `frame` (state → text) are pure, so the screen is testable without a terminal.
 */
import type { StageStatus } from '../events.js';
import type { WatchOutputEvent } from '../watch/events.js';
import { duration, indent } from './format.js';

type Row = { stage: string; state: 'running' | StageStatus; detail: string; since: number };

export interface ScreenState {
  pipeline: string;
  watching: string;
  keys: boolean;
  cycle: number;
  trigger: string;
  cycleRunning: boolean;
  cycleStartedAt: number;
  changed: string[];
  rows: Map<string, Row>;
  /** Plan reasons of the stages that will run (why each re-runs). */
  reasons: Map<string, string>;
  restarting: Set<string>;
  last?: string;
  failures: string[];
  diagnostics: string[];
  /** The diagnostics shown are errors (the pipeline did not load), cleared by the next cycle; warnings stay. */
  diagnosticsAreErrors: boolean;
  warnings: string[];
  pending: Array<{ stage: string; reasons: string[] }>;
  held: string[];
  /** Cycles paused by the loop guard until `r`. */
  paused: boolean;
  stopped?: string;
}

export function initialState(keys: boolean): ScreenState {
  return {
    pipeline: '',
    watching: '',
    keys,
    cycle: 0,
    trigger: '',
    cycleRunning: false,
    cycleStartedAt: 0,
    changed: [],
    rows: new Map(),
    reasons: new Map(),
    restarting: new Set(),
    failures: [],
    diagnostics: [],
    diagnosticsAreErrors: false,
    warnings: [],
    pending: [],
    held: [],
    paused: false,
  };
}

const LIST_MAX = 4;

/** `a, b, c (+2 more)`. */
export function fileList(files: readonly string[], max = LIST_MAX): string {
  if (files.length === 0) return '(nothing)';
  const head = files.slice(0, max).join(', ');
  return files.length > max ? `${head} (+${files.length - max} more)` : head;
}

function countsText(c: Record<StageStatus, number>): string {
  const parts: string[] = [];
  if (c.ran) parts.push(`${c.ran} ran`);
  if (c.restored) parts.push(`${c.restored} cache hit${c.restored > 1 ? 's' : ''}`);
  if (c['up-to-date']) parts.push(`${c['up-to-date']} up to date`);
  if (c.failed) parts.push(`${c.failed} failed`);
  if (c.cancelled) parts.push(`${c.cancelled} cancelled`);
  if (c.skipped) parts.push(`${c.skipped} skipped`);
  return parts.length ? parts.join(', ') : 'nothing to do';
}

/** Fold one event into the screen state. */
export function reduce(s: ScreenState, e: WatchOutputEvent): void {
  switch (e.type) {
    case 'watch-ready':
      s.pipeline = e.pipeline;
      s.watching = `${e.files.length} file(s), ${e.trees.length} folder tree(s) (${e.watchedDirs} dirs)${e.missing.length ? `, ${e.missing.length} not there yet` : ''} — ready in ${duration(e.startupMs)}`;
      return;
    case 'watch-change':
      if (!s.cycleRunning) s.changed = e.files;
      return;
    case 'watch-invalid':
      s.rows.clear();
      s.last = `pipeline invalid (${e.problems} problem${e.problems > 1 ? 's' : ''}): fix and save — still watching`;
      return;
    case 'diagnostics':
      s.diagnostics = e.formatted;
      s.diagnosticsAreErrors = e.diagnostics.length > 0;
      return;
    case 'cycle-start':
      s.cycle = e.cycle;
      s.trigger = e.trigger;
      s.paused = false;
      s.cycleRunning = true;
      s.cycleStartedAt = e.at;
      s.changed = e.files;
      s.rows.clear();
      s.reasons.clear();
      s.restarting.clear();
      s.failures = [];
      if (s.diagnosticsAreErrors) s.diagnostics = [];
      s.diagnosticsAreErrors = false;
      s.warnings = [];
      return;
    case 'plan':
      if (e.action === 'run' && e.reasons.length) s.reasons.set(e.stage, e.reasons.join('; '));
      return;
    case 'stage-start':
      s.rows.set(e.stage, { stage: e.stage, state: 'running', detail: s.reasons.get(e.stage) ?? '', since: e.at });
      return;
    case 'stage-progress': {
      const r = s.rows.get(e.stage);
      if (r && r.state === 'running') r.detail = [e.done !== undefined && e.total ? `${e.done}/${e.total}` : '', e.message ?? ''].filter(Boolean).join(' ');
      return;
    }
    case 'stage-end': {
      if (e.status === 'up-to-date') return; // counted in the summary, not listed
      // Cancelled for a change, or failed by the engine's own check that a dep changed mid-run (a save that landed
      // before the debounce ended): either way it runs again in the next cycle; not a failure of the stage.
      const restarting =
        (s.restarting.has(e.stage) && (e.status === 'cancelled' || e.status === 'failed')) ||
        (e.status === 'failed' && e.code === 'dep-changed-mid-run');
      const detail =
        e.status === 'ran'
          ? duration(e.durationMs)
          : e.status === 'restored'
            ? 'cache hit'
            : restarting
              ? 'stale: restarts next cycle'
              : e.reason;
      s.rows.set(e.stage, { stage: e.stage, state: restarting ? 'cancelled' : e.status, detail, since: e.at });
      if (e.status === 'failed' && !restarting) {
        s.failures.push(`✗ ${e.stage}: ${e.reason}${e.logFile ? `\n    log: ${e.logFile}` : ''}${e.logTail ? `\n${indent(lastLines(e.logTail, 10), '    │ ')}` : ''}`);
      }
      return;
    }
    case 'watch-cancel':
      for (const st of e.stages) s.restarting.add(st);
      return;
    case 'warning':
      s.warnings.push(`warning: ${e.stage ? `${e.stage}: ` : ''}${e.message}`);
      if (e.code === 'watch-paused') s.paused = true;
      return;
    case 'cycle-end':
      s.cycleRunning = false;
      s.last = `cycle ${e.cycle}: ${countsText(e.counts)}${e.restarted.length ? `; restarting ${fileList(e.restarted)}` : ''} in ${duration(e.durationMs)}`;
      return;
    case 'manual-pending':
      s.pending = e.stages;
      s.held = e.held;
      return;
    case 'watch-stop':
      s.stopped = e.reason === 'quit' ? 'stopped' : 'interrupted';
      return;
    default:
      return;
  }
}

function lastLines(text: string, n: number): string {
  return text.split('\n').slice(-n).join('\n');
}

const ICON: Record<Row['state'], string> = {
  running: '▶',
  ran: '✔',
  restored: '↺',
  'up-to-date': '✓',
  failed: '✗',
  cancelled: '⟲',
  skipped: '-',
};

/** The whole TTY frame. `now` drives the elapsed times; `width` truncates long lines. */
export function frame(s: ScreenState, now: number, width = 100): string {
  const out: string[] = [];
  const cut = (l: string): string => (l.length > width ? `${l.slice(0, width - 1)}…` : l);
  out.push(cut(`pipe watch ${s.pipeline}  ·  ${s.watching || 'starting…'}`));
  if (s.cycle > 0) {
    const state = s.cycleRunning ? `running ${duration(now - s.cycleStartedAt)}` : 'idle';
    const why = s.changed.length > 0 ? `changed: ${fileList(s.changed)}` : s.trigger === 'manual' ? 'manual stages (a)' : s.trigger === 'start' ? 'first check' : 're-check';
    out.push(cut(`cycle ${s.cycle} (${state})  ·  ${why}`));
  }
  const rows = [...s.rows.values()];
  for (const r of rows.slice(-15)) {
    const t = r.state === 'running' ? duration(now - r.since) : '';
    out.push(cut(`  ${ICON[r.state]} ${r.stage}${t ? ` ${t}` : ''}${r.detail ? `  ${r.detail}` : ''}`));
  }
  if (rows.length > 15) out.push(`  … ${rows.length - 15} more`);
  if (s.last) out.push(cut(s.last));
  for (const d of s.diagnostics) out.push(d);
  for (const f of s.failures.slice(-3)) out.push(f);
  for (const w of s.warnings.slice(-3)) out.push(cut(w));
  if (s.pending.length > 0) {
    out.push(cut(`⏸ manual, stale: ${s.pending.map((p) => p.stage).join(', ')}${s.held.length ? `  (holding ${fileList(s.held)})` : ''}`));
    for (const p of s.pending.slice(0, 3)) out.push(cut(`    ${p.stage}: ${p.reasons.join('; ')}`));
  }
  if (s.stopped) out.push(s.stopped);
  else if (s.keys) out.push(`keys: ${s.pending.length ? 'a run manual stages · ' : ''}r ${s.paused ? 'resume' : 're-check'} · q quit`);
  return `${out.join('\n')}\n`;
}

/** Plain lines for one event (empty when it says nothing worth a line). */
export function plainLines(s: ScreenState, e: WatchOutputEvent): string[] {
  switch (e.type) {
    case 'watch-ready':
      return [`pipe watch: watching ${s.watching}${s.keys ? ' · keys: a run manual stages, r re-check, q quit' : ''}`];
    case 'watch-change':
      return [`~ changed: ${fileList(e.files)}`];
    case 'watch-invalid':
      return [s.last ?? 'pipeline invalid'];
    case 'diagnostics':
      return e.formatted;
    case 'cycle-start':
      return [`── cycle ${e.cycle} (${e.files.length > 0 ? fileList(e.files) : e.trigger}): ${e.stages.length} stage(s) to check`];
    case 'stage-start': {
      const why = s.reasons.get(e.stage);
      return [`▶ ${e.stage}${why ? ` (${why})` : ''}`];
    }
    case 'stage-end': {
      const r = s.rows.get(e.stage);
      if (e.status === 'up-to-date' || !r) return [];
      if (e.status === 'failed' && r.state === 'failed') return [s.failures[s.failures.length - 1] ?? `✗ ${e.stage}: ${e.reason}`];
      if (e.status === 'skipped' && e.code === 'upstream-incomplete') return [];
      return [`${ICON[r.state]} ${e.stage} ${r.detail}`];
    }
    case 'watch-cancel':
      return [`⟲ ${fileList(e.stages)}: made stale by ${fileList(e.files)} — cancelled, restarting`];
    case 'warning':
      return [`warning: ${e.stage ? `${e.stage}: ` : ''}${e.message}`];
    case 'cycle-end':
      return [s.last ?? ''];
    case 'manual-pending':
      if (e.stages.length === 0) return ['manual stages: none waiting'];
      return [`⏸ manual, stale (not run automatically${s.keys ? '; press a' : '; run with --all'}): ${e.stages.map((p) => `${p.stage} (${p.reasons.join('; ')})`).join(', ')}${e.held.length ? `; holding ${fileList(e.held)}` : ''}`];
    case 'watch-stop':
      return [s.stopped ?? 'stopped'];
    default:
      return [];
  }
}

/** Terminal rows a text takes (long lines wrap), so that the next frame starts exactly where this one did. */
export function screenRows(text: string, width: number): number {
  const lines = text.endsWith('\n') ? text.slice(0, -1).split('\n') : text.split('\n');
  return lines.reduce((n, l) => n + Math.max(1, Math.ceil([...l].length / Math.max(1, width))), 0);
}

export interface WatchScreen {
  listener: (e: WatchOutputEvent) => void;
  close(): void;
}

export interface WatchScreenOptions {
  mode: 'tty' | 'plain' | 'json';
  /** Whether keys work (stdin is a terminal or a pipe we read). */
  keys: boolean;
  write?: (s: string) => void;
}

export function watchScreen(opts: WatchScreenOptions): WatchScreen {
  if (opts.mode === 'json') {
    const write = opts.write ?? ((s: string) => void process.stdout.write(s));
    return { listener: (e) => write(`${JSON.stringify(e)}\n`), close: () => {} };
  }
  const write = opts.write ?? ((s: string) => void process.stderr.write(s));
  const s = initialState(opts.keys);
  if (opts.mode === 'plain') {
    return {
      listener: (e) => {
        reduce(s, e);
        for (const l of plainLines(s, e)) write(`${l}\n`);
      },
      close: () => {},
    };
  }
  // TTY: redraw at most every 80 ms, and every second while a cycle runs (elapsed times).
  let timer: NodeJS.Timeout | undefined;
  let lastLines = 0;
  const draw = (): void => {
    timer = undefined;
    const width = process.stderr.columns || 100;
    const text = frame(s, Date.now(), width);
    // Move to the top of the previous frame and clear it: the frame stays compact, the scrollback stays clean.
    write(`${lastLines > 0 ? `\x1b[${lastLines}F` : ''}\x1b[J${text}`);
    lastLines = screenRows(text, width);
  };
  const schedule = (): void => {
    timer ??= setTimeout(draw, 80);
  };
  const tick = setInterval(() => s.cycleRunning && schedule(), 1000);
  tick.unref();
  return {
    listener: (e) => {
      reduce(s, e);
      schedule();
    },
    close: () => {
      clearInterval(tick);
      if (timer) clearTimeout(timer);
      draw();
    },
  };
}
