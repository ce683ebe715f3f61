// Bounded reads of files others write (cache/read.ts), and the log tail built on them (engine/run/dispatch.ts).
import { execFileSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { readBoundedSync, readBounded, readTailSync } from '../../cache/read.js';
import { logTail } from '../../engine/run/dispatch.js';
import { PIPE_LINE } from '../../engine/runner.js';
import { tempDir } from './helpers.js';

describe('readBounded', () => {
  it('reads on when a file is larger than its stat said (being written), up to the bound', async () => {
    // procfs files stat as 0 bytes and hold more: what a file growing between the stat and the read looks like.
    const sync = readBoundedSync('/proc/self/status', 1024 * 1024);
    expect(sync.ok).toBe(true);
    if (sync.ok) expect(sync.bytes.toString()).toMatch(/^Name:/);
    const r = await readBounded('/proc/self/status', 1024 * 1024);
    expect(r.ok).toBe(true);
    // Past the bound it is too large, however small its stat.
    expect(readBoundedSync('/proc/self/status', 16)).toMatchObject({ ok: false, why: 'too-large' });
    expect(await readBounded('/proc/self/status', 16)).toMatchObject({ ok: false, why: 'too-large' });
  });

  it('readTailSync: the last bytes of a regular file and how many came before; nothing of a link or FIFO', () => {
    const d = tempDir();
    writeFileSync(`${d}/f`, 'abcdefghij');
    const t = readTailSync(`${d}/f`, 4);
    expect(t?.bytes.toString()).toBe('ghij');
    expect(t?.skipped).toBe(6);
    expect(readTailSync(`${d}/f`, 100)?.skipped).toBe(0);
    expect(readTailSync(`${d}/missing`, 4)).toBeUndefined();
    symlinkSync(`${d}/f`, `${d}/link`);
    expect(readTailSync(`${d}/link`, 4)).toBeUndefined();
    execFileSync('mkfifo', [`${d}/fifo`]);
    expect(readTailSync(`${d}/fifo`, 4)).toBeUndefined(); // a plain open would wait for a writer
  });
});

describe('logTail', () => {
  const big = 256 * 1024;
  it('shows the last lines; a line cut by the window is left out, unless it is the only one', () => {
    const d = tempDir();
    mkdirSync(`${d}/logs`);
    writeFileSync(`${d}/logs/a.log`, 'one\ntwo\nthree\n');
    expect(logTail(`${d}/logs/a.log`)).toBe('one\ntwo\nthree');
    // The window starts mid-line: that line's end is not shown as a line.
    writeFileSync(`${d}/logs/b.log`, `${'x'.repeat(big)}\nlast\n`);
    expect(logTail(`${d}/logs/b.log`)).toBe('last');
    // The window starts exactly at a line: every line in it is shown.
    writeFileSync(`${d}/logs/c.log`, `${'y'.repeat(9)}\n${'z'.repeat(big - 6)}\nend\n`);
    expect(logTail(`${d}/logs/c.log`)).toBe(`${'z'.repeat(big - 6)}\nend`);
    // One line longer than the window (a progress line with no newline): its end, marked.
    writeFileSync(`${d}/logs/d.log`, 'p'.repeat(big + 100));
    expect(logTail(`${d}/logs/d.log`)).toBe(`…${'p'.repeat(big)}`);
  });

  it('is undefined when nothing but protocol lines is left, so the caller falls back to the lines it saw', () => {
    const d = tempDir();
    mkdirSync(`${d}/logs`);
    writeFileSync(`${d}/logs/a.log`, `Traceback: real error\n${`${PIPE_LINE}{"type":"log","message":"m"}\n`.repeat(10_000)}`);
    expect(logTail(`${d}/logs/a.log`)).toBeUndefined();
    writeFileSync(`${d}/logs/e.log`, '');
    expect(logTail(`${d}/logs/e.log`)).toBeUndefined();
  });
});
