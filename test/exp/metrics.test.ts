// `pipe metrics` made readable (issue 13): a long table (stage, file, metric, value) unless one row per file fits the
// terminal; `pipe metrics diff [--rev REF]` against the lock file committed at a git revision, as DVC's metrics diff.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runPipe } from '../engine/helpers.js';
import { metricsDiff, metricsTable } from '../../engine/metrics.js';
import { git, sweepWorkspace, type SweepWs } from './helpers.js';

let ws: SweepWs | undefined;
afterEach(() => {
  ws?.cleanup();
  ws = undefined;
});

describe('pipe metrics', () => {
  it('prints one line per metric when a row per file would not fit, a row per file when it does', async () => {
    ws = sweepWorkspace();
    expect((await runPipe(ws.dir, ['run', 'p.yaml'], ws.env())).code).toBe(0);
    const long = (await runPipe(ws.dir, ['metrics', 'p.yaml'], { COLUMNS: '80' })).stdout.trimEnd().split('\n');
    expect(long[0]).toMatch(/^stage\s+file\s+metric\s+value$/);
    expect(long.slice(2)).toEqual([
      expect.stringMatching(/^evaluate\s+out\/metrics\.json\s+score\s+15$/),
      expect.stringMatching(/^evaluate\s+out\/metrics\.json\s+n\s+5$/),
      expect.stringMatching(/rates\.fpr_children_age_0_1\s+1$/),
      expect.stringMatching(/rates\.fpr_children_age_1_5\s+2$/),
      expect.stringMatching(/rates\.fpr_children_age_5_10\s+3$/),
      expect.stringMatching(/rates\.fpr_adults_healthy\s+0\.1$/),
    ]);
    for (const l of long) expect(l.length).toBeLessThanOrEqual(80);
    const wide = (await runPipe(ws.dir, ['metrics', 'p.yaml'], { COLUMNS: '250' })).stdout.split('\n');
    expect(wide[0]).toMatch(/^stage\s+file\s+run\s+n\s+rates\.fpr_adults_healthy\s.*score$/);
    expect((await runPipe(ws.dir, ['metrics', 'p.yaml', '--long'], { COLUMNS: '250' })).stdout.split('\n')[0]).toMatch(/^stage\s+file\s+metric\s+value$/);
  });

  it('the table helpers: pivot only within the width; the run column only across runs', async () => {
    const rows = [{ stage: 's', path: 'm.json', run: 'current', metrics: { a: 1, b: 0.5 } }];
    expect(metricsTable(rows, 80).split('\n')[0]).toMatch(/^stage\s+file\s+run\s+a\s+b$/);
    expect(metricsTable(rows, 20).split('\n')).toEqual(['stage  file    metric  value', '-----  ------  ------  -----', 's      m.json  a           1', 's      m.json  b         0.5']);
    const runs = metricsTable([...rows, { ...rows[0]!, run: '2024-01-01T00:00:00.000Z' }], 0).split('\n');
    expect(runs[0]).toMatch(/^stage\s+file\s+run\s+metric\s+value$/);
    expect(metricsDiff({ 'm.json': { a: 1, gone: 2 } }, { 'm.json': { a: 1.5, b: 'x' } })).toEqual([
      { path: 'm.json', metric: 'a', old: 1, new: 1.5, change: 0.5 },
      { path: 'm.json', metric: 'b', old: undefined, new: 'x' },
      { path: 'm.json', metric: 'gone', old: 2, new: undefined },
    ]);
  });
});

describe('pipe metrics diff', () => {
  it('compares with the lock file at a git revision: from the cache, else from git; --all, --md, --json; clear errors', async () => {
    ws = sweepWorkspace();
    const outside = await runPipe(ws.dir, ['metrics', 'diff', 'p.yaml']);
    expect(outside.code).toBe(2);
    expect(outside.stderr).toMatch(/is not in a git repository .*it compares with the lock file committed at a git revision/);

    git(ws.dir, 'init', '-q');
    git(ws.dir, 'add', 'p.yaml', 'in.txt', 'train.sh', 'eval.sh');
    git(ws.dir, 'commit', '-qm', 'pipeline');
    const noLock = await runPipe(ws.dir, ['metrics', 'diff', 'p.yaml']);
    expect(noLock.code, noLock.stderr).toBe(0);
    expect(noLock.stderr).toMatch(/p\.lock\.yaml is not in HEAD \(commit it with the pipeline\)/);

    expect((await runPipe(ws.dir, ['run', 'p.yaml'], ws.env())).code).toBe(0);
    git(ws.dir, 'add', 'p.lock.yaml');
    git(ws.dir, 'commit', '-qm', 'results');
    expect((await runPipe(ws.dir, ['metrics', 'diff', 'p.yaml'])).stdout).toBe('No metric changed since HEAD (--all lists them all).\n');

    ws.write('p.params.yaml', 'scale: 2\n');
    expect((await runPipe(ws.dir, ['run', 'p.yaml'], ws.env())).code).toBe(0);
    const d = await runPipe(ws.dir, ['metrics', 'diff', 'p.yaml']);
    expect(d.code, d.stderr).toBe(0);
    const lines = d.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^file\s+metric\s+HEAD\s+workspace\s+change$/);
    expect(lines).toContainEqual(expect.stringMatching(/^out\/metrics\.json\s+score\s+15\s+30\s+\+15$/));
    expect(lines).toContainEqual(expect.stringMatching(/^out\/metrics\.json\s+rates\.fpr_children_age_0_1\s+1\s+0\.5\s+-0\.5$/));
    expect(lines.some((l) => /\sn\s/.test(l))).toBe(false);
    expect((await runPipe(ws.dir, ['metrics', 'diff', 'p.yaml', '--all'])).stdout).toMatch(/^out\/metrics\.json\s+n\s+5\s+5\s+0$/m);
    expect((await runPipe(ws.dir, ['metrics', 'diff', 'p.yaml', '--md'])).stdout).toMatch(/^\| out\/metrics\.json \| score \| 15 \| 30 \| \+15 \|$/m);
    const json = JSON.parse((await runPipe(ws.dir, ['metrics', 'diff', 'p.yaml', '--json'])).stdout) as { rev: string; diff: Array<{ metric: string; old: unknown; new: unknown; change?: number }> };
    expect(json.rev).toBe('HEAD');
    expect(json.diff.find((x) => x.metric === 'score')).toEqual({ path: 'out/metrics.json', metric: 'score', old: 15, new: 30, change: 15 });

    // The old metrics file gone from the cache: read from git when it is committed, else said so.
    const head = git(ws.dir, 'rev-parse', 'HEAD').trim();
    rmSync(join(ws.dir, '.pipe/cache'), { recursive: true, force: true });
    const gone = await runPipe(ws.dir, ['metrics', 'diff', 'p.yaml', '--rev', head]);
    expect(gone.stderr).toMatch(/out\/metrics\.json at [0-9a-f]{40}: neither in the cache \(collected by `pipe gc`\?\) nor committed to git; shown as added/);
    expect(gone.stdout).toMatch(/^out\/metrics\.json\s+score\s+-\s+30\s+added$/m);
    git(ws.dir, 'checkout', '-q', '-b', 'with-metrics', head);
    ws.write('out/metrics.json', '{"score": 15, "n": 5}\n');
    git(ws.dir, 'add', '-f', 'out/metrics.json');
    git(ws.dir, 'commit', '-qm', 'metrics committed');
    ws.write('out/metrics.json', '{"score": 30, "n": 5}\n');
    const fromGit = await runPipe(ws.dir, ['metrics', 'diff', 'p.yaml', '--rev', 'with-metrics']);
    expect(fromGit.stderr).toBe('');
    expect(fromGit.stdout).toMatch(/^out\/metrics\.json\s+score\s+15\s+30\s+\+15$/m);

    const unknown = await runPipe(ws.dir, ['metrics', 'diff', 'p.yaml', '--rev', 'nope']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/metrics diff --rev nope: unknown git revision `nope`/);
    expect((await runPipe(ws.dir, ['metrics', 'diff', 'p.yaml', '--rev', '--output=/tmp/x'])).stderr).toMatch(/is not a git revision/);
  });
});

describe('a metrics file that is a link', () => {
  it('to a file outside the workspace is not read as the stage\'s metrics (metrics, exp show); one inside is', async () => {
    const { mkdtempSync, symlinkSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { workspace } = await import('../engine/helpers.js');
    const outside = mkdtempSync(join(tmpdir(), 'pipe-outside-'));
    writeFileSync(join(outside, 'm.json'), '{"acc": 99}\n');
    const w = workspace({ 'p.yaml': 'name: m\nstages:\n  s:\n    cmd: |\n      echo \'{"acc": 1}\' > m.json\n    metrics: [m.json]\n' });
    try {
      expect((await runPipe(w.dir, ['run', 'p.yaml'])).code).toBe(0);
      // A stage (or anyone) replaced the out with a link leaving the workspace: `pipe run` refuses the out, and
      // `pipe metrics` showed the linked file's values as the stage's current metrics.
      rmSync(join(w.dir, 'm.json'));
      symlinkSync(join(outside, 'm.json'), join(w.dir, 'm.json'));
      const m = await runPipe(w.dir, ['metrics', 'p.yaml', '--json']);
      expect(m.code, m.stderr).toBe(0);
      const shown = JSON.parse(m.stdout) as { rows: unknown[]; problems: string[] };
      expect(shown.rows).toEqual([]);
      expect(shown.problems).toEqual([expect.stringMatching(/^m\.json: is not read: out m\.json resolves \(it is a symbolic link\) to .*m\.json, which is outside the workspace/)]);
      const exp = await runPipe(w.dir, ['exp', 'show', 'p.yaml', '--json']);
      expect(exp.code, exp.stderr).toBe(0);
      expect(exp.stdout).not.toContain('99');
      // A link that stays inside the workspace is an out pipe may read.
      w.write('keep/m.json', '{"acc": 2}\n');
      rmSync(join(w.dir, 'm.json'));
      symlinkSync('keep/m.json', join(w.dir, 'm.json'));
      const inside = JSON.parse((await runPipe(w.dir, ['metrics', 'p.yaml', '--json'])).stdout) as { rows: Array<{ metrics: unknown }> };
      expect(inside.rows.map((r) => r.metrics)).toEqual([{ acc: 2 }]);
    } finally {
      w.cleanup();
      rmSync(outside, { recursive: true, force: true });
    }
  });
});

describe('readMetricsFile', () => {
  it('a metrics file a stage turned into a FIFO is not read (a plain open waits for a writer): said at once; size bound named', async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { readMetricsFile } = await import('../../engine/metrics.js');
    const d = mkdtempSync(join(tmpdir(), 'pipe-metrics-'));
    try {
      execFileSync('mkfifo', [join(d, 'm.json')]);
      expect(readMetricsFile(join(d, 'm.json'))).toEqual({ problem: 'is not a regular file' });
      writeFileSync(join(d, 'big.json'), `{"a": "${'x'.repeat(100)}"}`);
      expect(readMetricsFile(join(d, 'big.json'), 10)).toEqual({ problem: expect.stringMatching(/^is 109 bytes, over the limit of 10 for a metrics file \(set PIPE_MAX_METRICS_BYTES/) });
      expect(readMetricsFile(join(d, 'none.json'))).toEqual({ problem: 'missing', missing: true });
      writeFileSync(join(d, 'ok.json'), '{"a": 1}');
      expect(readMetricsFile(join(d, 'ok.json'))).toEqual({ metrics: { a: 1 } });
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  });
});
