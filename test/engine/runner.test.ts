// The stage runner (engine/runner.ts) reads the spec file pipe wrote into .pipe/tmp just before starting it. A stage
// can write .pipe: whatever it put at that name is refused in one line (exit 1), never waited on (a FIFO) or thrown
// as a stack. The compiled runner, run as the executors run it, on real files and a real FIFO.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'pipe-runner-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function runner(specFile: string): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [join(repoRoot, 'dist', 'engine', 'runner.js'), specFile], { encoding: 'utf8', timeout: 20_000, killSignal: 'SIGKILL' });
  return { status: r.status, stderr: r.stderr };
}

describe('the stage runner’s spec file', () => {
  it('a FIFO at the spec’s name is refused at once, not read (a plain read waits for a writer forever)', () => {
    const fifo = join(dir, 'job.json');
    execFileSync('mkfifo', [fifo]);
    const r = runner(fifo);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`pipe: the stage's spec file ${fifo} is not a regular file: not the one pipe wrote before starting this runner\n`);
  });

  it('a missing spec and one that is not JSON: one line each, no stack', () => {
    expect(runner(join(dir, 'gone.json'))).toEqual({ status: 1, stderr: `pipe: the stage's spec file ${join(dir, 'gone.json')} is missing: not the one pipe wrote before starting this runner\n` });
    writeFileSync(join(dir, 'junk.json'), '{"stage": ');
    expect(runner(join(dir, 'junk.json'))).toEqual({ status: 1, stderr: `pipe: the stage's spec file ${join(dir, 'junk.json')} is not JSON: not the one pipe wrote before starting this runner\n` });
  });
});
