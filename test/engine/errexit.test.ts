// errexit for `cmd` (issue 10.3): a failing line fails the stage in every form a command can take, so a failure is
// never cached as a success. Real shells, real runs.
import { spawnSync } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { events, pipe, runRecords, statuses, workspace, type Ws } from './helpers.js';

let ws: Ws;
afterEach(() => ws?.cleanup());

function runTwice(yaml: string): { first: ReturnType<typeof pipe>; second: ReturnType<typeof pipe> } {
  ws = workspace({ 'p.yaml': yaml });
  const first = pipe(ws.dir, ['run', 'p.yaml', '--json']);
  const second = pipe(ws.dir, ['run', 'p.yaml', '--json']);
  return { first, second };
}

function expectFailedAndNotCached(r: { first: ReturnType<typeof pipe>; second: ReturnType<typeof pipe> }, exit = 1): void {
  expect(r.first.code).toBe(1);
  expect(statuses(r.first.stdout).s).toBe('failed');
  expect(events(r.first.stdout).find((e) => e.type === 'stage-end')).toMatchObject({ code: 'exit-non-zero', reason: `exit code ${exit}` });
  expect(ws.exists('out/x.txt')).toBe(false);
  expect(runRecords(ws.dir)).toEqual([]);
  // The next run does not call it up to date: it runs (and fails) again.
  expect(statuses(r.second.stdout).s).toBe('failed');
}

describe('a failing line fails the stage', () => {
  it('string form: `false; echo …`', () => {
    expectFailedAndNotCached(runTwice('name: e\nstages:\n  s:\n    cmd: "echo a > out/x.txt; false; echo b >> out/x.txt"\n    outs: [out/x.txt]\n'));
    expect(ws.exists('after.txt')).toBe(false);
  });

  it('block form (`cmd: |`): the second line fails', () => {
    const r = runTwice('name: e\nstages:\n  s:\n    cmd: |\n      echo a > out/x.txt\n      ls no-such-file\n      echo b >> out/x.txt\n      touch after.txt\n    outs: [out/x.txt]\n');
    expectFailedAndNotCached(r, 2); // ls's own status
    expect(ws.exists('after.txt')).toBe(false);
    expect(events(r.first.stdout).find((e) => e.type === 'stage-end')!.logTail).toMatch(/no-such-file/);
  });

  it('list form: a failing line inside a multi-line item stops the list', () => {
    const r = runTwice('name: e\nstages:\n  s:\n    cmd:\n      - echo a > out/x.txt\n      - |\n        false\n        touch after.txt\n      - touch later.txt\n    outs: [out/x.txt]\n');
    expectFailedAndNotCached(r);
    expect(ws.exists('after.txt')).toBe(false);
    expect(ws.exists('later.txt')).toBe(false);
  });

  it('a command may opt out with set +e; `|| true` is honoured', () => {
    ws = workspace({ 'p.yaml': 'name: e\nstages:\n  s:\n    cmd: |\n      false || true\n      set +e\n      false\n      echo ok > out/x.txt\n    outs: [out/x.txt]\n' });
    const r = pipe(ws.dir, ['run', 'p.yaml']);
    expect(r.code, r.stderr).toBe(0);
    expect(ws.read('out/x.txt')).toBe('ok\n');
  });

  it('pipefail where sh has it; where it does not (dash), a pipeline reports its last command', () => {
    const shHasPipefail = spawnSync('sh', ['-c', 'set -o pipefail'], { stdio: 'ignore' }).status === 0;
    ws = workspace({ 'p.yaml': 'name: e\nstages:\n  s:\n    cmd: false | cat > out/x.txt\n    outs: [out/x.txt]\n' });
    const r = pipe(ws.dir, ['run', 'p.yaml']);
    expect(r.code).toBe(shHasPipefail ? 1 : 0);
  });
});
