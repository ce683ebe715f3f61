// Atomic small-file writes (run records, history markers): whole files only, first writer wins, no temp left behind.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createExclusiveSync, removeDeadTemps, tempName, writeFileAtomicSync } from '../../cache/atomic.js';
import { tempDir } from './helpers.js';

describe('atomic writes', () => {
  it('writeFileAtomicSync makes missing folders, replaces whole, and leaves no temp file', () => {
    const d = tempDir();
    writeFileAtomicSync(`${d}/a/b/rec.json`, 'one');
    writeFileAtomicSync(`${d}/a/b/rec.json`, 'two');
    expect(readFileSync(`${d}/a/b/rec.json`, 'utf8')).toBe('two');
    expect(readdirSync(`${d}/a/b`)).toEqual(['rec.json']);
  });

  it('createExclusiveSync: the first writer wins, later ones are told so and change nothing', () => {
    const d = tempDir();
    expect(createExclusiveSync(`${d}/x/rec.json`, 'first')).toBe(true);
    expect(createExclusiveSync(`${d}/x/rec.json`, 'second')).toBe(false);
    expect(readFileSync(`${d}/x/rec.json`, 'utf8')).toBe('first');
    expect(readdirSync(`${d}/x`)).toEqual(['rec.json']);
  });

  it('temp names never repeat in a process, and a dead process its temps are recognised as such', async () => {
    const d = tempDir();
    const names = new Set(Array.from({ length: 10_000 }, () => tempName(`${d}/f`)));
    expect(names.size).toBe(10_000);
    const mine = tempName(`${d}/f`);
    expect(mine).toMatch(new RegExp(`^${d}/f\\.tmp-${process.pid}-[0-9a-f]{12}$`));
    // A temp of a pid that does not exist (beyond pid_max) is removed; ours (alive) stays.
    const dead = mine.replace(`-${process.pid}-`, '-4999999-');
    writeFileSync(mine, 'x');
    writeFileSync(dead, 'x');
    await removeDeadTemps(`${d}/f`, ['tmp']);
    expect(readdirSync(d).sort()).toEqual([mine.slice(d.length + 1)]);
  });
});
