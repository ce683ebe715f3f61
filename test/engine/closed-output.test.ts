// A reader that goes away (issue 10.9): `pipe run p.yaml -n --json | head -1` ends quietly — no EPIPE stack trace —
// and a real run whose output is closed stops as on Ctrl-C (no half outputs, lock released). Real pipes.
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Gates } from '../support/gate.js';
import { pipeBin, workspace, type Ws } from './helpers.js';

let ws: Ws;
afterEach(() => ws?.cleanup());

const many = (n: number, cmd = 'echo $PIPE_STAGE > out/$PIPE_STAGE.txt') =>
  `name: many\nstages:\n${Array.from({ length: n }, (_, i) => `  s${i}:\n    cmd: ${cmd}\n    outs: [out/s${i}.txt]\n`).join('')}`;

/** Run the CLI, read the first line of its stdout, then close the pipe as `head -1` does. */
function headOne(cwd: string, args: string[]): Promise<{ first: string; code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [pipeBin, ...args], { cwd, env: { ...process.env, CI: 'true', NO_COLOR: '1' } });
  let out = '';
  let stderr = '';
  let first = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (!first && out.includes('\n')) {
      first = out.slice(0, out.indexOf('\n'));
      child.stdout.destroy();
    }
  });
  return new Promise((resolve) => child.on('close', (code) => resolve({ first, code, stderr })));
}

describe('closed output', () => {
  it('-n --json | head -1: the first event, then a quiet exit 141 (SIGPIPE), no stack trace', async () => {
    ws = workspace({ 'p.yaml': many(600) }); // ~120 KB of plan events: more than a pipe holds
    const r = await headOne(ws.dir, ['run', 'p.yaml', '-n', '--json']);
    // Plan events come in the pipeline's order: the first is s0's.
    expect(JSON.parse(r.first)).toMatchObject({ type: 'plan', stage: 's0', action: 'run' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(141);
  });

  it('status and dag of a 3,000-stage pipeline | head -1: the first line, no stack trace', async () => {
    ws = workspace({ 'p.yaml': many(3000) });
    for (const args of [['status', 'p.yaml'], ['dag', 'p.yaml']]) {
      const r = await headOne(ws.dir, args);
      expect(r.first.length, args.join(' ')).toBeGreaterThan(0);
      expect(r.stderr, args.join(' ')).toBe('');
      // Done writing before the reader left (0), or stopped by the closed pipe (141): never a crash.
      expect([0, 141], args.join(' ')).toContain(r.code);
    }
  });

  it('a real run whose reader goes away cancels like Ctrl-C: no outputs of unfinished stages, lock released', async () => {
    // Gated stages (test/support/gate.ts): the first two start and wait; none can end before the reader leaves.
    ws = workspace();
    const g = new Gates(join(ws.dir, '.gates'));
    ws.write('p.yaml', many(12, g.cmd('$PIPE_STAGE', 'echo $PIPE_STAGE > out/$PIPE_STAGE.txt')));
    const r = await headOne(ws.dir, ['run', 'p.yaml', '--json', '-j', '2']);
    expect(JSON.parse(r.first)).toMatchObject({ type: 'run-start' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(141);
    expect(ws.exists('.pipe/lock')).toBe(false);
    // At most the first two started (and none ended); the next run finishes them all, nothing half-written is up to date.
    expect(g.started().length).toBeLessThanOrEqual(2);
    expect(g.log().filter((e) => e.what === 'end')).toEqual([]);
    g.open(...Array.from({ length: 12 }, (_, i) => `s${i}`));
    const again = spawnSync(process.execPath, [pipeBin, 'run', 'p.yaml'], { cwd: ws.dir, encoding: 'utf8', env: { ...process.env, CI: 'true' } });
    expect(again.status, again.stderr).toBe(0);
    for (let i = 0; i < 12; i++) expect(ws.read(`out/s${i}.txt`)).toBe(`s${i}\n`);
  });
});
