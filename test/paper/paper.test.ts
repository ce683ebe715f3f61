// The README's promise, end to end: `pipe run pipelines/paper.yaml` on a fresh workspace reproduces the study's
// numbers, writes every table, figure and the report; a second run is all cache hits; an edit to one evaluation
// param re-runs only what depends on it; and a deleted out/ comes back from the cache without running anything.
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipeBin, repoRoot } from '../engine/helpers.js';

interface Ev {
  type: string;
  stage?: string;
  status?: string;
  verdict?: string;
}

/**
 * The real CLI, asynchronously: a multi-minute spawnSync would block this worker's event loop and vitest's own
 * messages to it would time out.
 */
function run(ws: string, args: string[], command = 'run'): Promise<{ code: number | null; events: Ev[]; text: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [pipeBin, command, 'pipelines/paper.yaml', '--json', ...args], {
      cwd: ws,
      env: { ...process.env, CI: 'true', NO_COLOR: '1' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => {
      const events = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Ev);
      resolve({ code, events, text: stdout.slice(-4000) + stderr });
    });
  });
}

const ends = (events: Ev[]) => events.filter((e) => e.type === 'stage-end');
const withStatus = (events: Ev[], status: string) => new Set(ends(events).filter((e) => e.status === status).map((e) => e.stage!));

function csv(path: string): Record<string, string>[] {
  const [head, ...rows] = readFileSync(path, 'utf8').trim().split('\n');
  const cols = head!.split(',');
  return rows.map((r) => Object.fromEntries(r.split(',').map((v, i) => [cols[i], v])));
}

describe('pipelines/paper.yaml end to end', () => {
  let ws: string;
  let first: Awaited<ReturnType<typeof run>>;

  beforeAll(async () => {
    // A workspace laid out like a fresh clone: the pipelines and the vendored data (stage kinds come from dist/).
    ws = mkdtempSync(join(tmpdir(), 'pipe-paper-'));
    cpSync(join(repoRoot, 'pipelines'), join(ws, 'pipelines'), { recursive: true, filter: (src) => !src.endsWith('.lock.yaml') });
    cpSync(join(repoRoot, 'data', 'seed'), join(ws, 'data', 'seed'), { recursive: true });
    first = await run(ws, []);
  }, 900_000);

  afterAll(() => rmSync(ws, { recursive: true, force: true }));

  it('runs every stage and writes every table, figure and the report', () => {
    expect(first.code, first.text).toBe(0);
    const statuses = new Set(ends(first.events).map((e) => e.status));
    expect([...statuses]).toEqual(['ran']);
    expect(ends(first.events).length).toBeGreaterThan(80);
    for (const fig of ['age_documented_how', 'countries', 'task_categories', 'modalities', 'breakdown']) {
      expect(existsSync(join(ws, `out/review/figures/${fig}.svg`)), fig).toBe(true);
      expect(existsSync(join(ws, `out/review/figures/${fig}.png`)), fig).toBe(true);
    }
    for (const fig of ['children', 'adult-same', 'adult-diff', 'fig2', 'hm']) {
      expect(existsSync(join(ws, `out/eval/figures/${fig}.svg`)), fig).toBe(true);
      expect(existsSync(join(ws, `out/eval/figures/${fig}.png`)), fig).toBe(true);
    }
    for (const fig of ['children', 'fig2', 'learning_curve_vindr_cxr', 'learning_curve_nih_cxr18']) {
      expect(existsSync(join(ws, `out/retrain/figures/${fig}.svg`)), fig).toBe(true);
    }
    const html = readFileSync(join(ws, 'out/report.html'), 'utf8');
    expect(html.match(/<svg/g)?.length).toBe(14);
    expect(html).not.toMatch(/(src|href)="https?:/); // self-contained
    expect(readFileSync(join(ws, 'out/report.md'), 'utf8')).toContain('203');
    expect(existsSync(join(ws, 'pipelines/paper.lock.yaml'))).toBe(true);
  });

  it('writes exactly the committed pipelines/paper.lock.yaml: the lock in git is what a fresh clone computes', () => {
    const ours = readFileSync(join(ws, 'pipelines/paper.lock.yaml'), 'utf8').split('\n');
    const committed = readFileSync(join(repoRoot, 'pipelines/paper.lock.yaml'), 'utf8').split('\n');
    const differing = committed.flatMap((line, i) => (line === ours[i] ? [] : [`line ${i + 1}: committed ${JSON.stringify(line)}, computed ${JSON.stringify(ours[i])}`]));
    // Regenerate with a clean build (`rm -rf dist && npm run build`) and a fresh run whenever code feeding a key changes.
    expect(differing.slice(0, 5), `${differing.length} line(s) differ`).toEqual([]);
    expect(ours.length).toBe(committed.length);
  });

  it('pipe verify re-runs every stage in a scratch copy and reproduces every output bit for bit', async () => {
    const before = readFileSync(join(ws, 'pipelines/paper.lock.yaml'), 'utf8');
    const v = await run(ws, [], 'verify');
    expect(v.code, v.text).toBe(0);
    const verdicts = v.events.filter((e) => e.type === 'verify-stage');
    expect(verdicts.length).toBeGreaterThan(80);
    const differ = verdicts.filter((e) => e.verdict !== 'reproduced').map((e) => `${e.stage}: ${e.verdict}`);
    expect(differ).toEqual([]);
    expect(readFileSync(join(ws, 'pipelines/paper.lock.yaml'), 'utf8')).toBe(before); // the workspace is untouched
  }, 900_000);

  it('reproduces the dataset review totals', () => {
    const totals = JSON.parse(readFileSync(join(ws, 'out/review/data/summary_stats.json'), 'utf8')).totals;
    expect(totals).toMatchObject({ datasets: 203, usable: 135, patients: 512608, children: 6026, perc_children: 1.18 });
    expect(readFileSync(join(ws, 'out/review/data/summary_stats.csv'), 'utf8')).toContain('Total,34,181,203,135,512608,6026,1.18');
  });

  it('reproduces the thresholds and the false-positive rates on healthy children', () => {
    const thresholds = Object.fromEntries(csv(join(ws, 'out/eval/thresholds.csv')).map((r) => [r.model, Number(r.threshold)]));
    expect(thresholds).toEqual({ vindr_cxr: 0.2652, nih_cxr18: 0.0884, padchest: 0.3852, chexbert: 0.3946 });
    const fpr = JSON.parse(readFileSync(join(ws, 'out/eval/fpr.json'), 'utf8'));
    const children = ['vindr_cxr', 'nih_cxr18', 'padchest', 'chexbert'].map((m) => fpr[m].vindr_pcxr.test);
    // Direct FPR (the correct definition); the published fpr.json's 49.65 for NIH is the authors' re-estimate.
    const published = [30.4, 49.65, 38.62, 59.68];
    children.forEach((v, i) => expect(Math.abs(v - published[i]!)).toBeLessThanOrEqual(0.0100001));
  });

  it('shows the effect on retrained phantom models: children flagged far more often than adults', () => {
    const rows = csv(join(ws, 'out/retrain/eval/fpr_overall.csv'));
    for (const model of ['vindr_cxr', 'nih_cxr18']) {
      const kids = rows.find((r) => r.model === model && r.population === 'children')!;
      const adults = rows.filter((r) => r.model === model && r.population === 'adults');
      expect(adults.length).toBeGreaterThan(0);
      for (const a of adults) {
        expect(Number(kids.fpr)).toBeGreaterThan(Number(a.fpr));
        expect(Number(kids.fpr_lower)).toBeGreaterThan(Number(a.fpr_upper)); // intervals do not overlap
      }
    }
  });

  it('a second run is all cache hits', async () => {
    const again = await run(ws, []);
    expect(again.code, again.text).toBe(0);
    expect([...new Set(ends(again.events).map((e) => e.status))]).toEqual(['up-to-date']);
  });

  it('editing the FPR definition re-runs only the summary and what reads it', async () => {
    const edited = await run(ws, ['-S', 'eval.fpr_method=authors_reestimate']);
    expect(edited.code, edited.text).toBe(0);
    const ran = withStatus(edited.events, 'ran');
    expect(ran.has('eval-summary')).toBe(true);
    for (const s of ran) expect(s, `${s} should not re-run`).toMatch(/^(eval-summary|eval-fig|report)/);
    expect([...ran].some((s) => /^(eval-threshold|eval-fpr|eval-hm|review|retrain)/.test(s))).toBe(false);
    const fpr = JSON.parse(readFileSync(join(ws, 'out/eval/fpr.json'), 'utf8'));
    expect(fpr.nih_cxr18.vindr_pcxr.test).toBe(49.65); // the published value
  });

  it('a deleted out/ comes back from the run cache without running a stage', async () => {
    rmSync(join(ws, 'out'), { recursive: true, force: true });
    const back = await run(ws, []);
    expect(back.code, back.text).toBe(0);
    expect(withStatus(back.events, 'ran').size).toBe(0);
    expect(withStatus(back.events, 'restored').size).toBeGreaterThan(80);
    expect(readFileSync(join(ws, 'out/report.html'), 'utf8').match(/<svg/g)?.length).toBe(14);
  });
});
