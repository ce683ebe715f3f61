// Decide: who a stage waits for, why it cannot start, and the plan of a whole pipeline without running anything.
import { afterEach, describe, expect, it } from 'vitest';
import { ancestorsOf, missingDeps, missingDepsReason, planStages, upstreamBlock, waitsForOf, type StageGraph } from '../../../engine/run/decide.js';
import { computeKey } from '../../../engine/plan.js';
import type { StageOutcome } from '../../../engine/run/report.js';
import { fixture, recorder, type Fixture } from './fixture.js';

// a → b → c, a → d
const graph: StageGraph = {
  order: ['a', 'b', 'c', 'd'],
  predecessors: (s) => ({ a: [], b: ['a'], c: ['b'], d: ['a'] })[s] ?? [],
};

const outcome = (stage: string, status: StageOutcome['status'], code: StageOutcome['code'], reason = ''): StageOutcome => ({ stage, status, code, reason, durationMs: 0 });

describe('waiting and blocking', () => {
  it('a stage waits for its nearest selected ancestors, through unselected ones', () => {
    expect(waitsForOf(graph, new Set(['a', 'b', 'c']))('c')).toEqual(['b']);
    expect(waitsForOf(graph, new Set(['a', 'c']))('c')).toEqual(['a']);
    expect(waitsForOf(graph, new Set(['c']))('c')).toEqual([]);
    expect(ancestorsOf(graph, 'c')).toEqual(['a', 'b']);
  });

  it('names the root cause of a block: the failed stage, not the skipped one in between', () => {
    const ends = new Map<string, StageOutcome>();
    expect(upstreamBlock(['a'], (s) => ends.get(s))).toBeUndefined();
    ends.set('a', outcome('a', 'failed', 'exit-non-zero', 'exit code 1'));
    expect(upstreamBlock(['a'], (s) => ends.get(s))).toEqual({ code: 'upstream-failed', text: 'upstream stage a failed' });
    ends.set('b', outcome('b', 'skipped', 'upstream-failed', 'upstream stage a failed'));
    expect(upstreamBlock(['b'], (s) => ends.get(s))).toEqual({ code: 'upstream-failed', text: 'upstream stage a failed' });
    ends.set('d', outcome('d', 'cancelled', 'cancelled', 'cancelled'));
    expect(upstreamBlock(['d'], (s) => ends.get(s))).toEqual({ code: 'upstream-incomplete', text: 'upstream stage d did not complete' });
    ends.set('x', outcome('x', 'skipped', 'stopped', 'not started: stage q failed (use --keep-going to run independent stages)'));
    expect(upstreamBlock(['x'], (s) => ends.get(s))).toEqual({ code: 'upstream-incomplete', text: 'upstream stage x did not complete' });
    ends.set('e', outcome('e', 'up-to-date', 'up-to-date'));
    expect(upstreamBlock(['e'], (s) => ends.get(s))).toBeUndefined();
  });
});

describe('with a real workspace', () => {
  let f: Fixture;
  afterEach(() => f?.cleanup());

  it('a missing dep names the stage that produces it', async () => {
    f = await fixture('name: m\nstages:\n  make:\n    cmd: echo > out/x\n    outs: [out/x]\n  use:\n    cmd: cat out/x\n    deps: [out/x]\n');
    const info = await computeKey(f.stage('use'), f.ws);
    const missing = missingDeps(f.stage('use'), info);
    expect(missing).toEqual(['out/x']);
    expect(missingDepsReason(f.pipeline, missing)).toBe('dep out/x does not exist (stage make produces it: run it first or select it)');
  });

  it('plans without running: new stages run, their downstream waits for the re-run; nothing is written but the memo', async () => {
    f = await fixture('name: m\nstages:\n  make:\n    cmd: cp in.txt out/x\n    deps: [in.txt]\n    outs: [out/x]\n  use:\n    cmd: cp out/x out/y\n    deps: [out/x]\n    outs: [out/y]\n', { 'in.txt': 'hi\n' });
    const r = recorder();
    const graphOf: StageGraph = { order: ['make', 'use'], predecessors: (s) => (s === 'use' ? ['make'] : []) };
    const d = await planStages({ pipeline: f.pipeline, graph: graphOf, workspace: f.ws, selected: new Set(['make', 'use']), emit: r.emit, pipeVersion: 't' });
    expect(d.get('make')).toMatchObject({ action: 'run', reasons: [{ code: 'never-ran', text: 'new stage (never ran)' }] });
    expect(d.get('use')).toMatchObject({ action: 'run', reasons: [{ code: 'upstream-will-run', text: 'upstream stage make will re-run' }] });
    expect(r.events).toMatchObject([
      { type: 'plan', stage: 'make', codes: ['never-ran'], reasons: ['new stage (never ran)'] },
      { type: 'plan', stage: 'use', codes: ['upstream-will-run'], reasons: ['upstream stage make will re-run'] },
    ]);
    expect(f.exists('out/x')).toBe(false);
  });
});
